/** Argument scanners shared by the packet parsers. Each throws BadPacket with what was wrong. */

import { BadPacket, type ThreadSel } from '../request.js';

/**
 * `text` is one or more hex digits. A loop over the characters rather than a regular expression:
 * the parsers run on every packet (addresses, lengths, thread ids), before V8 has compiled them too.
 */
function isHex(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46))) return false;
  }
  return true;
}

/** Hex digits that fit a double exactly (below 2^52) are parsed as a number, without a string for BigInt. */
const EXACT_DIGITS = 13;

export function hexBig(packet: string, text: string | undefined, what: string): bigint {
  if (text === undefined || !isHex(text)) throw new BadPacket(packet, `${what} "${text ?? ''}" is not hex`);
  if (text.length > 16) throw new BadPacket(packet, `${what} 0x${text} does not fit in 64 bits`);
  return text.length <= EXACT_DIGITS ? BigInt(parseInt(text, 16)) : BigInt('0x' + text);
}

export function hexInt(packet: string, text: string | undefined, what: string, max = 0x7fffffff): number {
  if (text !== undefined && text.length <= EXACT_DIGITS && isHex(text)) {
    const n = parseInt(text, 16);
    if (n <= max) return n;
  }
  const v = hexBig(packet, text, what);
  if (v > BigInt(max)) throw new BadPacket(packet, `${what} 0x${v.toString(16)} is larger than 0x${max.toString(16)}`);
  return Number(v);
}

export function hexBytes(packet: string, text: string, what: string): Buffer {
  if (text.length % 2 !== 0 || (text.length > 0 && !isHex(text))) {
    throw new BadPacket(packet, `${what} is not an even number of hex digits`);
  }
  return Buffer.from(text, 'hex');
}

/** `addr,length` as m and Z/z carry them. */
export function addrLength(packet: string, text: string, maxLength: number): { addr: bigint; length: number } {
  const comma = text.indexOf(',');
  const l = comma < 0 ? undefined : text.slice(comma + 1);
  if (l !== undefined && l.indexOf(',') >= 0) throw new BadPacket(packet, 'expected ADDR,LENGTH');
  return { addr: hexBig(packet, comma < 0 ? text : text.slice(0, comma), 'address'), length: hexInt(packet, l, 'length', maxLength) };
}

/** A thread id: `p1.2`, `p1.-1`, `2`, `-1`, `0`. */
export function threadId(packet: string, text: string): ThreadSel {
  let t = text;
  if (t.startsWith('p')) {
    const dot = t.indexOf('.');
    const pid = dot < 0 ? t.slice(1) : t.slice(1, dot);
    if (pid !== '-1' && !isHex(pid)) throw new BadPacket(packet, `process id "${pid}" is not hex`);
    t = dot < 0 ? '-1' : t.slice(dot + 1);
  }
  if (t === '-1') return { kind: 'all' };
  const n = hexInt(packet, t, 'thread id');
  return n === 0 ? { kind: 'any' } : { kind: 'thread', index: n };
}
