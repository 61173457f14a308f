/**
 * Decoding of a memory row (one 64-byte physical line in one chunk), as native/recorder writes it:
 *
 *   +0    64 B   the line before the chunk's first write to it
 *   +64   records, in execution order:
 *           varint   (seq - previous record's seq (the chunk's first seq for the first)) << 1 | host
 *           u8       offset in the line (bits 0-5) | log2(length) (bits 6-7)
 *           len B    the bytes written
 *
 * Time convention: a guest write made by instruction `seq` is part of the memory state at every
 * position after `seq` (state "at S" = before instruction S runs); a host write (interrupt frame,
 * debugger write) recorded at `seq` happened before instruction `seq`, so it is part of the state
 * at `seq` already. `order` sorts both on one axis: 2 * seq + (guest ? 1 : 0), and the state at S
 * holds every write with order <= 2 * S.
 */

import { errors } from '../common/errors.js';

export interface LineWrite {
  /** The instruction that wrote (guest), or the position before which the host wrote. */
  readonly seq: number;
  readonly host: boolean;
  /** Physical address of the first byte written. */
  readonly phys: number;
  readonly len: number;
  readonly old: Buffer;
  readonly data: Buffer;
}

export function writeOrder(w: { seq: number; host: boolean }): number {
  return 2 * w.seq + (w.host ? 0 : 1);
}

/** The order bound of the state at position `s`: writes with order <= this are applied. */
export function stateBound(s: number): number {
  return 2 * s;
}

export interface DecodedRow {
  /** The line before the row's first write. */
  readonly init: Buffer;
  readonly writes: LineWrite[];
}

/** Decode one row; `file` names the trace for the corruption message. */
export function decodeLineRow(blob: Buffer, line: number, chunkFirst: number, file = 'trace'): DecodedRow {
  if (blob.length < 64) throw errors.corrupt(file, `memory row of line 0x${(line * 64).toString(16)} has ${blob.length} bytes, expected at least 64`);
  const state = Buffer.from(blob.subarray(0, 64));
  const init = Buffer.from(state);
  const writes: LineWrite[] = [];
  let p = 64;
  let seq = chunkFirst;
  while (p < blob.length) {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (p >= blob.length) throw errors.corrupt(file, `memory row of line 0x${(line * 64).toString(16)} is cut short`);
      const b = blob[p++]!;
      v += (b & 0x7f) * mul;
      mul *= 128;
      if (!(b & 0x80)) break;
    }
    const host = v % 2 === 1;
    seq += Math.floor(v / 2);
    if (p >= blob.length) throw errors.corrupt(file, `memory row of line 0x${(line * 64).toString(16)} is cut short`);
    const meta = blob[p++]!;
    const off = meta & 63;
    const len = 1 << (meta >> 6);
    if (off + len > 64 || p + len > blob.length) {
      throw errors.corrupt(file, `memory row of line 0x${(line * 64).toString(16)}: a write of ${len} bytes at offset ${off} does not fit`);
    }
    const data = Buffer.from(blob.subarray(p, p + len));
    p += len;
    writes.push({ seq, host, phys: line * 64 + off, len, old: Buffer.from(state.subarray(off, off + len)), data });
    data.copy(state, off);
  }
  return { init, writes };
}

/** The 64 bytes of the line at position `s` (given a row whose chunk is the last at or before s's). */
export function lineStateAt(row: DecodedRow, s: number): Buffer {
  const state = Buffer.from(row.init);
  const bound = stateBound(s);
  for (const w of row.writes) {
    if (writeOrder(w) > bound) break;
    w.data.copy(state, w.phys & 63);
  }
  return state;
}

/** Encode a row (for tests and tools; the recorder encodes in C). */
export function encodeLineRow(init: Buffer, writes: readonly { seq: number; host: boolean; off: number; data: Buffer }[], chunkFirst: number): Buffer {
  const parts: Buffer[] = [Buffer.from(init)];
  let prev = chunkFirst;
  for (const w of writes) {
    let v = (w.seq - prev) * 2 + (w.host ? 1 : 0);
    prev = w.seq;
    const bytes: number[] = [];
    while (v >= 0x80) {
      bytes.push((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    bytes.push(v);
    const lg = [1, 2, 4, 8].indexOf(w.data.length);
    if (lg < 0) throw errors.badInput(`a row write is 1, 2, 4 or 8 bytes, not ${w.data.length}`);
    bytes.push(w.off | (lg << 6));
    parts.push(Buffer.from(bytes), w.data);
  }
  return Buffer.concat(parts);
}
