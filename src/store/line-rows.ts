/**
 * Decoding of a memory row (one 64-byte physical line in one chunk), as native/recorder writes it:
 *
 *   +0    64 B   the line before the chunk's first write to it
 *   +64   64 B   the line after the chunk's last write to it
 *   +128  records, in execution order:
 *           varint   (seq - previous record's seq (the chunk's first seq for the first)) << 1 | host
 *           u8       offset in the line (bits 0-5) | log2(length) (bits 6-7)
 *           compact (schema 6):   length 1: the byte written; 2, 4, 8: u8 `changed` (bit i: byte
 *                                 i differs from the line before the write), then the bytes
 *                                 written that differ, in order
 *           plain (schema <= 5):  the length's bytes written
 *
 * Each decoder takes `compact` (default: the format the recorder writes now).
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
  /** The line after the row's last write. */
  readonly final: Buffer;
  readonly writes: LineWrite[];
}

/** The line after the row's last write, without decoding the records. */
export function rowFinal(blob: Buffer): Buffer {
  return Buffer.from(blob.subarray(64, 128));
}

/**
 * Applies the bytes of the record whose offset/size byte was just before `p` to `state` (the
 * line before the write); returns where the next record starts, or -1 when the blob ends inside.
 */
function applyRecord(blob: Buffer, p: number, off: number, len: number, state: Buffer, compact: boolean): number {
  if (!compact || len === 1) {
    if (p + len > blob.length) return -1;
    // (byte by byte: Buffer.copy's checks cost more than 8 bytes do, at ~10^7 writes a history)
    for (let i = 0; i < len; i++) state[off + i] = blob[p + i]!;
    return p + len;
  }
  const changed = blob[p++];
  if (changed === undefined || changed >> len !== 0) return -1;
  for (let i = 0; i < len; i++) {
    if (!(changed & (1 << i))) continue;
    const b = blob[p++];
    if (b === undefined) return -1;
    state[off + i] = b;
  }
  return p;
}

/** Decode one row; `file` names the trace for the corruption message. */
export function decodeLineRow(blob: Buffer, line: number, chunkFirst: number, file = 'trace', compact = true): DecodedRow {
  const where = () => `memory row of line 0x${(line * 64).toString(16)}`;
  if (blob.length < 128) throw errors.corrupt(file, `${where()} has ${blob.length} bytes, expected at least 128`);
  const state = Buffer.from(blob.subarray(0, 64));
  const init = Buffer.from(state);
  const final = Buffer.from(blob.subarray(64, 128));
  // Old and new bytes of every write live in one buffer per row (views, not copies).
  // (a compact record of 8 bytes may take 3: up to 16 / 3 bytes of old and new per blob byte)
  const backing = Buffer.allocUnsafe(compact ? 6 * (blob.length - 128) : 2 * (blob.length - 128));
  let bp = 0;
  const writes: LineWrite[] = [];
  let p = 128;
  let seq = chunkFirst;
  while (p < blob.length) {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (p >= blob.length) throw errors.corrupt(file, `${where()} is cut short`);
      const b = blob[p++]!;
      v += (b & 0x7f) * mul;
      mul *= 128;
      if (!(b & 0x80)) break;
    }
    const host = v % 2 === 1;
    seq += Math.floor(v / 2);
    if (p >= blob.length) throw errors.corrupt(file, `${where()} is cut short`);
    const meta = blob[p++]!;
    const off = meta & 63;
    const len = 1 << (meta >> 6);
    if (off + len > 64) throw errors.corrupt(file, `${where()}: a write of ${len} bytes at offset ${off} does not fit`);
    for (let i = 0; i < len; i++) backing[bp + i] = state[off + i]!;
    const next = applyRecord(blob, p, off, len, state, compact);
    if (next < 0) throw errors.corrupt(file, `${where()}: a write of ${len} bytes at offset ${off} does not fit`);
    for (let i = 0; i < len; i++) backing[bp + len + i] = state[off + i]!;
    const old = backing.subarray(bp, bp + len);
    const data = backing.subarray(bp + len, bp + 2 * len);
    bp += 2 * len;
    p = next;
    writes.push({ seq, host, phys: line * 64 + off, len, old, data });
  }
  if (!state.equals(final)) throw errors.corrupt(file, `${where()}: its writes do not end in its recorded final state`);
  return { init, final, writes };
}

/**
 * The 64 bytes of a row's line at position `s`, straight from the blob (no objects per write:
 * hot lines have tens of thousands of writes per chunk).
 */
export function rowStateAt(blob: Buffer, chunkFirst: number, s: number, file = 'trace', compact = true): Buffer {
  if (blob.length < 128) throw errors.corrupt(file, `a memory row has ${blob.length} bytes, expected at least 128`);
  const state = Buffer.from(blob.subarray(0, 64));
  const bound = stateBound(s);
  let p = 128;
  let seq = chunkFirst;
  const n = blob.length;
  while (p < n) {
    let v = 0;
    let mul = 1;
    let b: number;
    do {
      b = blob[p++]!;
      v += (b & 0x7f) * mul;
      mul *= 128;
    } while (b & 0x80 && p < n);
    seq += Math.floor(v / 2);
    if (2 * seq + (v % 2 === 1 ? 0 : 1) > bound) break;
    p = nextRecord(blob, p, state, compact, file);
  }
  return state;
}

/** Applies the record whose offset/size byte is at `p` to `state`, checked to fit the line and the blob; the next record's start. */
function nextRecord(blob: Buffer, p: number, state: Buffer, compact: boolean, file: string): number {
  const meta = blob[p];
  if (meta === undefined) throw errors.corrupt(file, 'a memory row is cut short');
  const off = meta & 63;
  const len = 1 << (meta >> 6);
  const next = off + len > 64 ? -1 : applyRecord(blob, p + 1, off, len, state, compact);
  if (next < 0) throw errors.corrupt(file, `a memory row holds a write of ${len} bytes at offset ${off} that does not fit`);
  return next;
}

/**
 * The last write in a row that touches any byte of [lo, hi) (offsets in the line) and is part of
 * the state at `s`, decoded from the blob in one pass without objects per write (hot lines have
 * thousands of writes).
 */
export function rowLastWrite(blob: Buffer, line: number, chunkFirst: number, lo: number, hi: number, s: number, file = 'trace', compact = true): LineWrite | undefined {
  const bound = stateBound(s);
  const n = blob.length;
  const state = Buffer.from(blob.subarray(0, 64));
  const old = Buffer.alloc(8);
  const data = Buffer.alloc(8);
  let hit: { seq: number; host: boolean; off: number; len: number } | undefined;
  let p = 128;
  let seq = chunkFirst;
  while (p < n) {
    let v = 0;
    let mul = 1;
    let b: number;
    do {
      b = blob[p++]!;
      v += (b & 0x7f) * mul;
      mul *= 128;
    } while (b & 0x80 && p < n);
    seq += Math.floor(v / 2);
    const host = v % 2 === 1;
    if (2 * seq + (host ? 0 : 1) > bound) break;
    const meta = blob[p] ?? 0;
    const off = meta & 63;
    const len = 1 << (meta >> 6);
    const touches = off < hi && off + len > lo && off + len <= 64;
    if (touches) state.copy(old, 0, off, off + len);
    p = nextRecord(blob, p, state, compact, file);
    if (touches) {
      state.copy(data, 0, off, off + len);
      hit = { seq, host, off, len };
    }
  }
  if (!hit) return undefined;
  return { seq: hit.seq, host: hit.host, phys: line * 64 + hit.off, len: hit.len, old: Buffer.from(old.subarray(0, hit.len)), data: Buffer.from(data.subarray(0, hit.len)) };
}

/** The order (see writeOrder) of a row's first write, or Infinity for a row without writes. */
export function rowFirstOrder(blob: Buffer, chunkFirst: number, file = 'trace'): number {
  if (blob.length < 128) throw errors.corrupt(file, `a memory row has ${blob.length} bytes, expected at least 128`);
  let p = 128;
  if (p >= blob.length) return Infinity;
  let v = 0;
  let mul = 1;
  let b: number;
  do {
    b = blob[p++]!;
    v += (b & 0x7f) * mul;
    mul *= 128;
  } while (b & 0x80 && p < blob.length);
  const seq = chunkFirst + Math.floor(v / 2);
  return 2 * seq + (v % 2 === 1 ? 0 : 1);
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
export function encodeLineRow(init: Buffer, writes: readonly { seq: number; host: boolean; off: number; data: Buffer }[], chunkFirst: number, compact = true): Buffer {
  const final = Buffer.from(init);
  for (const w of writes) w.data.copy(final, w.off);
  const parts: Buffer[] = [Buffer.from(init), final];
  const state = Buffer.from(init);
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
    if (!compact || w.data.length === 1) {
      parts.push(Buffer.from(bytes), w.data);
    } else {
      const at = bytes.push(0) - 1;
      for (let i = 0; i < w.data.length; i++) {
        if (w.data[i] === state[w.off + i]) continue;
        bytes[at]! |= 1 << i;
        bytes.push(w.data[i]!);
      }
      parts.push(Buffer.from(bytes));
    }
    w.data.copy(state, w.off);
  }
  return Buffer.concat(parts);
}

/** One memory row of a chunk as the recorder encodes them (native encodeRows), with its key. */
export interface EncodedRow {
  readonly line: bigint;
  /** Its index among the line's rows in the chunk (a hot line's records are cut into parts). */
  readonly part: number;
  /** The seq of its first write (what mem_mask.first keys). */
  readonly first: number;
  /** Bit i set: byte i of the line was written in the row (signed, as SQLite stores it). */
  readonly mask: bigint;
  readonly data: Buffer;
}

/**
 * The rows of a chunk starting at seq `chunkFirst`, from encodeRows' output (u64 line | u32 n |
 * u64 mask | n bytes, sorted by line): what the trace's writer stores and what a lazy-rows
 * trace's reader makes (chunk-indexer.ts) alike.
 */
export function* encodedRows(rows: Buffer, chunkFirst: number): Generator<EncodedRow> {
  let prevLine = -1n;
  let part = 0;
  for (let p = 0; p < rows.length; ) {
    const line = rows.readBigUInt64LE(p);
    const n = rows.readUInt32LE(p + 8);
    const mask = BigInt.asIntN(64, rows.readBigUInt64LE(p + 12));
    part = line === prevLine ? part + 1 : 0;
    prevLine = line;
    const data = rows.subarray(p + 20, p + 20 + n);
    yield { line, part, first: Math.floor(rowFirstOrder(data, chunkFirst) / 2), mask, data };
    p += 20 + n;
  }
}
