/**
 * Packet text -> Request. Dispatches on the first letter to one parser per packet family (as the
 * gdbstub crate's src/protocol/commands/). Unknown packets become { kind: 'unknown' } (the empty
 * reply); recognised packets with bad arguments throw BadPacket (an `E` reply).
 */

import type { Request } from '../request.js';
import { parseBreakpoint } from './breakpoints.js';
import { parseFile } from './files.js';
import { parseMemory } from './memory.js';
import { parseQuery } from './queries.js';
import { parseRegisters } from './registers.js';
import { parseResume } from './resume.js';
import { parseThreads } from './threads.js';

/**
 * `payload` is the decoded packet; binary packets (X) read their data from it. `packet` is its
 * text, when the caller has made it already.
 */
// latin1 keeps one character per byte, so offsets in the text are offsets in the payload.
export function parseRequest(payload: Buffer, packet = payload.toString('latin1')): Request {
  switch (packet[0]) {
    case '?':
      return packet === '?' ? { kind: 'halt-reason' } : unknown(packet);
    case 'g':
    case 'G':
    case 'p':
    case 'P':
      return parseRegisters(packet);
    case 'm':
    case 'M':
    case 'X':
      return parseMemory(packet, payload);
    case 'Z':
    case 'z':
      return parseBreakpoint(packet);
    case 'c':
    case 'C':
    case 's':
    case 'S':
      return parseResume(packet);
    case 'b':
      return packet === 'bs' || packet === 'bc' ? parseResume(packet) : unknown(packet);
    case 'v':
      if (packet === 'vCont?' || packet.startsWith('vCont;')) return parseResume(packet);
      if (packet.startsWith('vKill')) return { kind: 'kill' };
      if (packet.startsWith('vFile:')) return parseFile(packet);
      return parseQuery(packet) ?? unknown(packet);
    case 'H':
    case 'T':
      return parseThreads(packet);
    case 'k':
      return { kind: 'kill' };
    case 'D': {
      // D;PID may name a forked child gdb lets go rather than the target: the client knows its pid.
      const m = /^D;([0-9a-fA-F]{1,8})$/.exec(packet);
      return m ? { kind: 'detach', pid: parseInt(m[1]!, 16) } : { kind: 'detach' };
    }
    case 'q':
      if (packet === 'qC' || packet === 'qfThreadInfo' || packet === 'qsThreadInfo') return parseThreads(packet);
      return parseQuery(packet) ?? unknown(packet);
    case 'Q':
      return parseQuery(packet) ?? unknown(packet);
    default:
      return unknown(packet);
  }
}

function unknown(packet: string): Request {
  return { kind: 'unknown', packet };
}
