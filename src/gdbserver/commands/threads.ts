/** H{g,c}THREAD · T THREAD · qC · qfThreadInfo · qsThreadInfo */

import { BadPacket, type Request } from '../request.js';
import { threadId } from './args.js';

export function parseThreads(packet: string): Request {
  if (packet === 'qC') return { kind: 'current-thread' };
  if (packet === 'qfThreadInfo' || packet === 'qsThreadInfo') return { kind: 'thread-info', first: packet[1] === 'f' };
  if (packet[0] === 'T') return { kind: 'thread-alive', thread: threadId(packet, packet.slice(1)) };
  const op = packet[1];
  if (op !== 'g' && op !== 'c') throw new BadPacket(packet, `H${op ?? ''}: expected Hg or Hc`);
  return { kind: 'set-thread', op, thread: threadId(packet, packet.slice(2)) };
}
