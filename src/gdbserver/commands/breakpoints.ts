/** Z TYPE,ADDR,KIND · z TYPE,ADDR,KIND (conditions and commands after `;` are ignored). */

import { BadPacket, type PointType, type Request } from '../request.js';
import { hexBig, hexInt } from './args.js';

const types: Record<string, PointType> = { '0': 'sw', '1': 'hw', '2': 'write', '3': 'read', '4': 'access' };

export function parseBreakpoint(packet: string): Request {
  const [t, a, k, ...rest] = packet.slice(1).split(';')[0]!.split(',');
  const type = types[t ?? ''];
  if (!type) throw new BadPacket(packet, `breakpoint type "${t ?? ''}" is not 0-4`);
  if (rest.length > 0) throw new BadPacket(packet, 'expected TYPE,ADDR,KIND');
  return {
    kind: packet[0] === 'Z' ? 'insert-point' : 'remove-point',
    type,
    addr: hexBig(packet, a, 'address'),
    length: hexInt(packet, k, 'kind/length', 0x10000),
  };
}
