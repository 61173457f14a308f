/** g · G HEX · p REGNO · P REGNO=HEX */

import { BadPacket, type Request } from '../request.js';
import { hexBytes, hexInt } from './args.js';

export function parseRegisters(packet: string): Request {
  switch (packet[0]) {
    case 'g':
      if (packet.length !== 1) throw new BadPacket(packet, 'g takes no arguments');
      return { kind: 'read-registers' };
    case 'G':
      return { kind: 'write-registers', data: hexBytes(packet, packet.slice(1), 'register data') };
    case 'p':
      return { kind: 'read-register', regno: hexInt(packet, packet.slice(1), 'register number', 0xffff) };
    default: {
      const eq = packet.indexOf('=');
      if (eq < 0) throw new BadPacket(packet, 'expected P REGNO=VALUE');
      return {
        kind: 'write-register',
        regno: hexInt(packet, packet.slice(1, eq), 'register number', 0xffff),
        data: hexBytes(packet, packet.slice(eq + 1), 'register value'),
      };
    }
  }
}
