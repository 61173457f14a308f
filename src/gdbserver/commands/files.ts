/** vFile:setfs:PID · vFile:open:HEXPATH,FLAGS,MODE · vFile:pread:FD,COUNT,OFFSET · vFile:fstat:FD · vFile:close:FD */

import { BadPacket, type Request } from '../request.js';
import { hexBytes, hexInt } from './args.js';

/** The most one pread returns: its reply, escaped, must fit in PacketSize. */
export const MAX_PREAD = 0x10000;

export function parseFile(packet: string): Request {
  const colon = packet.indexOf(':', 6);
  const op = colon < 0 ? packet.slice(6) : packet.slice(6, colon);
  const args = colon < 0 ? [] : packet.slice(colon + 1).split(',');
  const want = (n: number): void => {
    if (args.length !== n) throw new BadPacket(packet, `vFile:${op} takes ${n} argument(s)`);
  };
  switch (op) {
    case 'setfs':
      want(1);
      return { kind: 'file', op: 'setfs' };
    case 'open':
      want(3);
      return { kind: 'file', op: 'open', path: hexBytes(packet, args[0]!, 'path').toString('utf8'), flags: hexInt(packet, args[1], 'flags') };
    case 'pread':
      want(3);
      return {
        kind: 'file',
        op: 'pread',
        fd: hexInt(packet, args[0], 'fd'),
        count: Math.min(hexInt(packet, args[1], 'count'), MAX_PREAD),
        offset: hexInt(packet, args[2], 'offset', Number.MAX_SAFE_INTEGER),
      };
    case 'fstat':
      want(1);
      return { kind: 'file', op: 'fstat', fd: hexInt(packet, args[0], 'fd') };
    case 'close':
      want(1);
      return { kind: 'file', op: 'close', fd: hexInt(packet, args[0], 'fd') };
    default:
      // pwrite, unlink, readlink: dbg's host I/O is read-only; the empty reply says "not supported"
      return { kind: 'unknown', packet };
  }
}
