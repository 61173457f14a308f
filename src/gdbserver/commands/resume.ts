/**
 * c [ADDR] · C SIG[;ADDR] · s [ADDR] · S SIG[;ADDR] · vCont;ACTION[:THREAD]... · vCont? · bs · bc
 *
 * gdb 13 sends reverse execution only as bare `bs`/`bc` after `Hc`, never inside vCont.
 * Resuming at another address (c ADDR) is not supported: gdb does not send it.
 */

import { BadPacket, type Request, type ResumeAction } from '../request.js';
import { hexInt, threadId } from './args.js';

export function parseResume(packet: string): Request {
  if (packet === 'vCont?') return { kind: 'resume-query' };
  if (packet === 'bs' || packet === 'bc') return { kind: 'reverse', action: packet === 'bs' ? 'step' : 'continue' };
  if (packet.startsWith('vCont;')) {
    const actions: ResumeAction[] = packet
      .slice(6)
      .split(';')
      .map((part) => {
        const [act, tid] = part.split(':');
        const thread = tid === undefined ? ({ kind: 'all' } as const) : threadId(packet, tid);
        const letter = act?.[0];
        if (letter === 'c' || letter === 's') {
          if (act!.length !== 1) throw new BadPacket(packet, `vCont action "${act}" takes no signal`);
          return { action: letter === 's' ? 'step' : 'continue', thread };
        }
        if (letter === 'C' || letter === 'S') {
          return { action: letter === 'S' ? 'step' : 'continue', thread, signal: hexInt(packet, act!.slice(1), 'signal', 0xff) };
        }
        throw new BadPacket(packet, `vCont action "${act ?? ''}" is not c, C, s or S`);
      });
    return { kind: 'resume', actions };
  }
  const letter = packet[0]!;
  const args = packet.slice(1);
  const step = letter === 's' || letter === 'S';
  if (letter === 'c' || letter === 's') {
    if (args !== '') throw new BadPacket(packet, 'resuming at another address is not supported');
    return { kind: 'resume', actions: [{ action: step ? 'step' : 'continue', thread: { kind: 'any' } }] };
  }
  const [sig, addr] = args.split(';');
  if (addr !== undefined) throw new BadPacket(packet, 'resuming at another address is not supported');
  return {
    kind: 'resume',
    actions: [{ action: step ? 'step' : 'continue', thread: { kind: 'any' }, signal: hexInt(packet, sig, 'signal', 0xff) }],
  };
}
