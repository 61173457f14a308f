/** m ADDR,LENGTH · M ADDR,LENGTH:HEX · X ADDR,LENGTH:BINARY */

import { BadPacket, type Request } from '../request.js';
import { addrLength, hexBytes } from './args.js';

/** Longest single read or write dbg accepts (gdb never asks for more than PacketSize allows). */
export const MAX_MEMORY_TRANSFER = 1 << 20;

export function parseMemory(packet: string, payload: Buffer): Request {
  const op = packet[0];
  if (op === 'm') {
    const { addr, length } = addrLength(packet, packet.slice(1), MAX_MEMORY_TRANSFER);
    return { kind: 'read-memory', addr, length };
  }
  const colon = packet.indexOf(':');
  if (colon < 0) throw new BadPacket(packet, 'expected ADDR,LENGTH:DATA');
  const { addr, length } = addrLength(packet, packet.slice(1, colon), MAX_MEMORY_TRANSFER);
  // X carries raw bytes (already unescaped by the codec): take them from the payload, not the text.
  const data = op === 'M' ? hexBytes(packet, packet.slice(colon + 1), 'data') : payload.subarray(colon + 1);
  if (data.length !== length) {
    throw new BadPacket(packet, `length 0x${length.toString(16)} but 0x${data.length.toString(16)} bytes of data`);
  }
  return { kind: 'write-memory', addr, data };
}
