/**
 * makedumpfile's flattened format (`makedumpfile -F`, and what QEMU 7.2's dump-guest-memory -z
 * writes): a stream that a pipe can carry. After a 4 KiB header (`makedumpfile` signature, then
 * type and version as big-endian u64) come records, each a big-endian {i64 offset, i64 size}
 * followed by `size` bytes that belong at `offset` of the real (rearranged) dump; a record with
 * offset -1 ends the stream. `makedumpfile -R` rearranges; dbg instead indexes the records once
 * (their headers only, no data) and reads the rearranged file through the index.
 *
 * Records may overlap; a later one wins, as it would in the file `makedumpfile -R` writes.
 */

import type { ByteSource } from '../../common/byte-source.js';
import { DbgError } from '../../common/errors.js';

export const FLAT_SIGNATURE = 'makedumpfile';
const HEADER_BYTES = 4096;
const RECORD_HEADER = 16;

interface Piece {
  /** Offset in the rearranged dump. */
  readonly start: number;
  readonly end: number;
  /** Offset of the bytes in the flattened file. */
  readonly at: number;
}

export function isFlattened(head: Buffer): boolean {
  return head.length >= 16 && head.toString('latin1', 0, 12) === FLAT_SIGNATURE && head[12] === 0;
}

/** The rearranged dump that a flattened file describes, read through an index of its records. */
export class FlattenedSource implements ByteSource {
  readonly size: number;
  private readonly pieces: Piece[];

  constructor(
    /** The flattened file itself. */
    readonly file: ByteSource,
    readonly name = file.name,
  ) {
    const head = file.read(0, Math.min(HEADER_BYTES, file.size));
    if (!isFlattened(head)) throw corrupt(name, 'no "makedumpfile" signature at offset 0');
    if (file.size < HEADER_BYTES) throw corrupt(name, `the file is ${file.size} bytes, shorter than the 4096-byte flattened header`);
    const type = head.readBigUInt64BE(16);
    const version = head.readBigUInt64BE(24);
    if (type !== 1n || version !== 1n) {
      throw corrupt(name, `flattened header type ${type}, version ${version}; dbg reads type 1 version 1`);
    }
    const records: { start: number; end: number; at: number; seq: number }[] = [];
    let pos = HEADER_BYTES;
    let ended = false;
    while (pos + RECORD_HEADER <= file.size) {
      const h = file.read(pos, RECORD_HEADER);
      const offset = h.readBigInt64BE(0);
      const size = h.readBigInt64BE(8);
      if (offset === -1n) {
        ended = true;
        break;
      }
      if (offset < 0n || size < 0n || offset + size > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw corrupt(name, `flattened record at file offset 0x${pos.toString(16)} says offset ${offset}, size ${size}`);
      }
      const at = pos + RECORD_HEADER;
      const n = Number(size);
      if (at + n > file.size) {
        throw corrupt(name, `flattened record at file offset 0x${pos.toString(16)} holds ${n} bytes but the file ends ${file.size - at} bytes after its header: the dump is truncated`);
      }
      if (n > 0) records.push({ start: Number(offset), end: Number(offset) + n, at, seq: records.length });
      pos = at + n;
    }
    if (!ended) throw corrupt(name, `no end record (offset -1) before the end of the file at 0x${file.size.toString(16)}: the dump is truncated`);
    this.pieces = resolve(records);
    this.size = this.pieces.reduce((m, p) => Math.max(m, p.end), 0);
  }

  read(offset: number, length: number): Buffer {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw corrupt(this.name, `read of ${length} bytes at offset 0x${offset.toString(16)} of the rearranged dump runs past its end (0x${this.size.toString(16)}); a header lies`);
    }
    return this.readUpTo(offset, length);
  }

  /** Bytes no record wrote read as zeros, as in the file `makedumpfile -R` writes. */
  readUpTo(offset: number, length: number): Buffer {
    const end = Math.min(this.size, offset + length);
    if (offset < 0 || offset >= end) return Buffer.alloc(0);
    let i = this.first(offset);
    const p = this.pieces[i];
    if (p && p.start <= offset && end <= p.end) return this.file.read(p.at + (offset - p.start), end - offset);
    const out = Buffer.alloc(end - offset);
    for (; i < this.pieces.length && this.pieces[i]!.start < end; i++) {
      const q = this.pieces[i]!;
      const from = Math.max(q.start, offset);
      const to = Math.min(q.end, end);
      if (from < to) this.file.read(q.at + (from - q.start), to - from).copy(out, from - offset);
    }
    return out;
  }

  /** Where the `length` bytes at `offset` sit in the flattened file, when one record holds them all. */
  filePosition(offset: number, length: number): number | undefined {
    const p = this.pieces[this.first(offset)];
    return p && p.start <= offset && offset + length <= p.end ? p.at + (offset - p.start) : undefined;
  }

  close(): void {
    this.file.close();
  }

  /** Index of the first piece that ends after `offset`. */
  private first(offset: number): number {
    let lo = 0;
    let hi = this.pieces.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.pieces[mid]!.end <= offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/**
 * Non-overlapping pieces, sorted, where each byte comes from the last record that wrote it: a
 * sweep over the records' ends with a heap of the records that cover the current point, latest on
 * top (O(n log n), so that a stream of many overlapping records cannot stall the open).
 */
function resolve(records: { start: number; end: number; at: number; seq: number }[]): Piece[] {
  const byStart = [...records].sort((a, b) => a.start - b.start || a.seq - b.seq);
  let overlaps = false;
  for (let i = 1; i < byStart.length; i++) if (byStart[i]!.start < byStart[i - 1]!.end) overlaps = true;
  if (!overlaps) return byStart.map((r) => ({ start: r.start, end: r.end, at: r.at }));
  const points = [...new Set(records.flatMap((r) => [r.start, r.end]))].sort((a, b) => a - b);
  const heap: (typeof records)[number][] = []; // max-heap by seq
  const push = (r: (typeof records)[number]) => {
    heap.push(r);
    for (let i = heap.length - 1; i > 0; ) {
      const up = (i - 1) >> 1;
      if (heap[up]!.seq >= heap[i]!.seq) break;
      [heap[up], heap[i]] = [heap[i]!, heap[up]!];
      i = up;
    }
  };
  const pop = () => {
    const last = heap.pop()!;
    if (heap.length === 0) return;
    heap[0] = last;
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let top = i;
      if (l < heap.length && heap[l]!.seq > heap[top]!.seq) top = l;
      if (r < heap.length && heap[r]!.seq > heap[top]!.seq) top = r;
      if (top === i) break;
      [heap[top], heap[i]] = [heap[i]!, heap[top]!];
      i = top;
    }
  };
  const out: Piece[] = [];
  let next = 0;
  for (let p = 0; p + 1 < points.length; p++) {
    const from = points[p]!;
    const to = points[p + 1]!;
    while (next < byStart.length && byStart[next]!.start <= from) push(byStart[next++]!);
    while (heap.length > 0 && heap[0]!.end <= from) pop(); // finished records: dropped once on top
    const top = heap[0];
    if (!top) continue;
    const last = out[out.length - 1];
    const at = top.at + (from - top.start);
    if (last && last.end === from && last.at + (last.end - last.start) === at) out[out.length - 1] = { start: last.start, end: to, at: last.at };
    else out.push({ start: from, end: to, at });
  }
  return out;
}

function corrupt(name: string, what: string): DbgError {
  return new DbgError('corrupt', `${name}: ${what}`);
}
