/**
 * The SQLite side of writing a trace: each chunk the native recorder cuts goes in in one
 * transaction (chunk row, memory rows, checkpoints, the inputs seen since the last chunk), so a
 * process that dies leaves a trace that opens up to its last whole chunk. It runs on the trace
 * writer's thread (trace-writer.ts), on a trace that thread created.
 */

import { decodeLineRow, encodedRows, encodeLineRow, rowFirstOrder, stateBound, writeOrder } from './line-rows.js';
import { nativeRecorder, nativeRecorderPath, type NativeChunk } from './native-recorder.js';
import { newHistoryId } from './rows-file.js';
import { finishTrace, guard, openTraceForWriting, PCS_MAX_BYTES_PER_INSN, type Db } from './schema.js';
import { checkpointAndDie, killNow, testKillPoint, type KillPoint } from './test-kill.js';
import type Database from 'better-sqlite3';
import { deflateRawSync, inflateRawSync } from 'node:zlib';

export interface InputRecord {
  readonly seq: bigint;
  readonly vcpu?: number;
  readonly kind: string;
  readonly detail: unknown;
}

/** An input as it is stored: seq, vCPU (null: none), kind, detail as JSON. */
export type StoredInput = readonly [bigint, number | null, string, string];

/** A stop of the recording session (schema.ts, table stop). */
export interface StopRecord {
  /** The next instruction to run. */
  readonly seq: bigint;
  readonly vcpu: number;
  /** The stop reason's kind: breakpoint, watchpoint, step, interrupted, halted... */
  readonly kind: string;
  /** The breakpoint's or watchpoint's id, and its address. */
  readonly id?: number;
  readonly addr?: bigint;
}

const jsonBig = (_k: string, v: unknown): unknown => (typeof v === 'bigint' ? `0x${v.toString(16)}` : Buffer.isBuffer(v) ? v.toString('hex') : v);

/**
 * Kinds of input whose detail holds only numbers and strings: stringified without the replacer
 * (a booting xv6 reads ~4,000 ports; the replacer, called for every key, was most of their cost).
 */
const PLAIN_DETAIL = new Set(['port-in', 'mmio-read', 'lapic-id']);

/** A port read's detail as storedInput makes it, JSON.stringify({ port, size, value }), without the object. */
export function portInDetail(port: number, size: number, value: number): string {
  return `{"port":${port},"size":${size},"value":${value}}`;
}

/** `input` as the input table stores it. */
export function storedInput(i: InputRecord): StoredInput {
  return [i.seq, i.vcpu ?? null, i.kind, PLAIN_DETAIL.has(i.kind) ? JSON.stringify(i.detail) : JSON.stringify(i.detail, jsonBig)];
}

/** A chunk's memory rows, encoded from its write log (which goes back to the recorder: once per chunk cut). */
export function encodeRows(c: ChunkRecord): Buffer {
  return nativeRecorder().encodeRows(c.lineImages, c.log, c.writes, c.logCap);
}

/**
 * 4 KiB pages of RAM as they were when copied: `data` holds the 4 KiB pages whose physical page
 * numbers (physical address >> 12) `pages` lists, one after the other.
 */
export interface PageCopies {
  readonly pages: readonly number[];
  readonly data: Uint8Array;
}

/**
 * The 4 KiB pages `at` (indexes into `ram`, guest RAM at physical `physBase`) as they are now:
 * their physical page numbers and a copy of them back to back, in a buffer of its own (it moves
 * to the writer's thread).
 */
export function pageCopiesOf(ram: Buffer, physBase: bigint, at: Uint32Array): PageCopies {
  const base = Number(physBase >> 12n);
  const data = Buffer.allocUnsafeSlow(at.length * 4096);
  const pages: number[] = [];
  at.forEach((i, k) => {
    ram.copy(data, k * 4096, i * 4096, i * 4096 + 4096);
    pages.push(base + i);
  });
  return { pages, data };
}

/**
 * The images of 4 KiB pages of RAM for the trace's `page` table: `data` holds, for the pages
 * whose physical page numbers `pages` lists, in that order, each page as the native recorder's
 * packPages packs it (deflated already, or the page itself for the writer's thread to deflate).
 */
export interface PageImages {
  readonly pages: readonly number[];
  readonly data: Uint8Array;
  /** The physical page number of RAM's first page: `data` holds page indexes into RAM. */
  readonly base: number;
}

/**
 * The records the recording thread packs (native/recorder/records.h): a page image's head (page
 * index, length) and a checkpoint's (seq, vCPU, flags, length), before their bytes.
 */
const PAGE_RECORD_HEAD = 6;
const CKPT_RECORD_HEAD = 14;

/**
 * The images of the 4 KiB pages `at` (indexes into `ram`, guest RAM at physical `physBase`) as
 * they are now, in a buffer of their own (it moves to the writer's thread). Pages of runs (fills,
 * zeroes: a booting kernel writes most of its RAM so) are deflated here, cheaply and without a
 * copy; the others are copied, and deflated on the writer's thread (TraceDbWriter.insertPages).
 * `seen` (a byte per page of RAM) marks the pages the trace has an image of: one never seen
 * that is all zero needs none (a reader takes it for zero) and is left out.
 */
export function pageImagesOf(ram: Buffer, physBase: bigint, at: Uint32Array, seen: Uint8Array): PageImages {
  const base = Number(physBase >> 12n);
  const data = nativeRecorder().packPages(ram, at, seen);
  const pages: number[] = [];
  for (let o = 0; o < data.length; ) {
    pages.push(base + data.readUInt32LE(o));
    const n = data.readUInt16LE(o + 4);
    o += PAGE_RECORD_HEAD + (n || 4096);
  }
  return { pages, data, base };
}

/**
 * A chunk as cut() returns it, with the inputs seen since the last chunk, and for a lazy-rows
 * recording the images of the pages written in it, as they are at its end (schema.ts, `page`).
 */
export type ChunkRecord = Omit<NativeChunk, 'untranslated'> & { readonly inputs: readonly StoredInput[]; readonly images?: PageImages };

/**
 * Whether writeChunk stores the chunk: one of no instruction is stored when it carries something
 * (checkpoints, host writes, inputs at its `first`, written pages): a trace opened at that
 * position needs them (schema.ts). (A chunk has memory rows when it has written lines.)
 */
export function storesChunk(c: Pick<ChunkRecord, 'count' | 'ckpts' | 'lines' | 'inputs' | 'images'>): boolean {
  return c.count > 0 || c.ckpts.length > 0 || c.lines > 0 || c.inputs.length > 0 || (c.images?.pages.length ?? 0) > 0;
}

/** Memory rows stored by one INSERT (see writeChunk). */
const ROW_BATCH = 32;

/**
 * Whether the trace writer's connection `db` stores page images and checkpoints through the
 * recorder's SQLite extension (native/recorder/sqlite-rows.c: a chunk's are split into rows inside
 * SQLite, one INSERT each; in JavaScript the writer's thread spent ~1.5 us a row binding them, a
 * booting xv6 has ~80,000): loaded now, unless DBG_TRACE_SQL_ROWS=0 (tests compare both ways) or
 * it does not load (then the rows are bound here, as before).
 */
function sqlRows(db: Db): boolean {
  if (process.env.DBG_TRACE_SQL_ROWS === '0') return false;
  try {
    // (its entry point is the one SQLite derives from the file's name: sqlite3_recorder_init)
    db.loadExtension(nativeRecorderPath());
    return true;
  } catch {
    return false;
  }
}

export class TraceDbWriter {
  private readonly db: Db;
  private nextChunk = 0;
  private readonly insChunk: Database.Statement;
  private readonly insMem: Database.Statement;
  private readonly insMask: Database.Statement;
  private readonly insMemBatch: Database.Statement;
  private readonly insMaskBatch: Database.Statement;
  private readonly insCkpt: Database.Statement;
  private readonly insCkptBatch: Database.Statement;
  private readonly insInputBatch: Database.Statement;
  private readonly insInput: Database.Statement;
  private readonly insStop: Database.Statement;
  private readonly insPage: Database.Statement;
  private readonly insPageBatch: Database.Statement;
  /** A chunk's page images and its checkpoints in one statement each (sqlRows), else undefined. */
  private readonly insPagesSql: Database.Statement | undefined;
  private readonly insCkptsSql: Database.Statement | undefined;
  private bytesIn = 0;
  private instructions = 0;
  /** The seq after the last instruction stored (undefined: no chunk stored yet). */
  private storedEnd: bigint | undefined;
  private closed = false;
  private readonly kill: KillPoint | undefined = testKillPoint();
  /** Where a chunk's memory rows are encoded (see writeChunk). */
  private rows = Buffer.alloc(0);
  /** Where a chunk's pc stream is deflated, kept likewise. */
  private deflated = Buffer.alloc(0);

  /** Writes into the trace at `path`, made by createTrace(). */
  constructor(readonly path: string) {
    this.db = openTraceForWriting(path);
    this.insChunk = this.db.prepare('INSERT INTO chunk (id, first, count, pcs, writes, lines) VALUES (?, ?, ?, ?, ?, ?)');
    this.insMem = this.db.prepare('INSERT INTO mem (chunk, line, part, data) VALUES (?, ?, ?, ?)');
    this.insMask = this.db.prepare('INSERT INTO mem_mask (line, chunk, part, first, mask) VALUES (?, ?, ?, ?, ?)');
    this.insMemBatch = this.db.prepare(`INSERT INTO mem (chunk, line, part, data) VALUES ${Array(ROW_BATCH).fill('(?, ?, ?, ?)').join(', ')}`);
    this.insMaskBatch = this.db.prepare(`INSERT INTO mem_mask (line, chunk, part, first, mask) VALUES ${Array(ROW_BATCH).fill('(?, ?, ?, ?, ?)').join(', ')}`);
    this.insCkpt = this.db.prepare('INSERT INTO ckpt (seq, vcpu, chunk, flags, data) VALUES (?, ?, ?, ?, ?)');
    this.insInput = this.db.prepare('INSERT INTO input (seq, vcpu, kind, detail, chunk) VALUES (?, ?, ?, ?, ?)');
    this.insCkptBatch = this.db.prepare(`INSERT INTO ckpt (seq, vcpu, chunk, flags, data) VALUES ${Array(ROW_BATCH).fill('(?, ?, ?, ?, ?)').join(', ')}`);
    this.insInputBatch = this.db.prepare(`INSERT INTO input (seq, vcpu, kind, detail, chunk) VALUES ${Array(ROW_BATCH).fill('(?, ?, ?, ?, ?)').join(', ')}`);
    this.insPage = this.db.prepare('INSERT INTO page (chunk, page, data) VALUES (?, ?, ?)');
    this.insPageBatch = this.db.prepare(`INSERT INTO page (chunk, page, data) VALUES ${Array(ROW_BATCH).fill('(?, ?, ?)').join(', ')}`);
    this.insStop = this.db.prepare('INSERT INTO stop (seq, vcpu, kind, id, addr) VALUES (?, ?, ?, ?, ?)');
    if (sqlRows(this.db)) {
      this.insPagesSql = this.db.prepare('INSERT INTO page (chunk, page, data) SELECT ?, page, data FROM dbg_pages(?, ?)');
      this.insCkptsSql = this.db.prepare('INSERT INTO ckpt (seq, vcpu, chunk, flags, data) SELECT seq, vcpu, ?, flags, data FROM dbg_ckpts(?)');
    }
  }

  /** RAM as it was when recording started: `data` holds the 4 KiB pages whose physical page numbers `pages` lists. */
  writeInitialRam(pages: readonly number[], data: Buffer): void {
    const ins = this.db.prepare('INSERT INTO ram_init (page, data) VALUES (?, ?)');
    guard(this.path, () =>
      this.db.transaction(() => {
        pages.forEach((page, i) => ins.run(page, data.subarray(i * 4096, i * 4096 + 4096)));
      })(),
    );
  }

  /**
   * Stored at once (its own transaction): the history up to the stop may still be in the open
   * chunk, but a session stops rarely, and a stop with no instruction stored at its seq yet is
   * still where the session stopped (a reader shows it at the end of the history).
   */
  addStop(stop: StopRecord): void {
    guard(this.path, () => this.insStop.run(stop.seq, stop.vcpu, stop.kind, stop.id ?? null, stop.addr === undefined ? null : BigInt.asIntN(64, stop.addr)));
  }

  writeChunk(c: ChunkRecord): void {
    // (First: it gives the chunk's write log back to the recorder.) Into a buffer kept from one
    // chunk to the next: a fresh one a chunk cost the writer's thread a copy and a page fault
    // every 4 KiB.
    const native = nativeRecorder();
    const need = native.rowsBound(c.lines, c.writes);
    if (this.rows.length < need) this.rows = Buffer.allocUnsafeSlow(Math.ceil(need * 1.25));
    const n = native.encodeRows(c.lineImages, c.log, c.writes, c.logCap, this.rows);
    const mem = typeof n === 'number' ? this.rows.subarray(0, n) : n;
    if (!storesChunk(c)) return;
    const id = this.nextChunk++;
    // The pc stream deflated (schema 4): code that loops repeats its nibbles (the sample kernel's:
    // 80x smaller). By libdeflate with a compressor kept on this thread (native/recorder/deflate.c:
    // zlib.deflateRawSync made and zeroed a fresh zlib stream every chunk).
    const bound = native.deflateRawBound(c.pcs.length);
    if (this.deflated.length < bound) this.deflated = Buffer.allocUnsafeSlow(Math.ceil(bound * 1.25));
    const pcs = this.deflated.subarray(0, native.deflateRaw(c.pcs, this.deflated));
    guard(this.path, () =>
      this.db.transaction(() => {
        this.insChunk.run(id, c.first, c.count, pcs, c.writes, c.lines);
        // ROW_BATCH rows a statement: one call per row cost the writer's thread a JS-to-SQLite
        // round trip (binding, step, reset, a result object) each.
        const memArgs: unknown[] = [];
        const maskArgs: unknown[] = [];
        for (const r of encodedRows(mem, Number(c.first))) {
          memArgs.push(id, r.line, r.part, r.data);
          maskArgs.push(r.line, id, r.part, r.first, r.mask);
          if (memArgs.length === 4 * ROW_BATCH) {
            this.insMemBatch.run(...memArgs);
            this.insMaskBatch.run(...maskArgs);
            memArgs.length = 0;
            maskArgs.length = 0;
          }
        }
        for (let i = 0; i < memArgs.length; i += 4) {
          this.insMem.run(...memArgs.slice(i, i + 4));
          this.insMask.run(...maskArgs.slice((i / 4) * 5, (i / 4) * 5 + 5));
        }
        const k = c.ckpts;
        if (this.insCkptsSql) {
          if (k.length) this.insCkptsSql.run(id, k);
        } else {
          const ckptArgs: unknown[] = [];
          for (let p = 0; p < k.length; ) {
            const n = k.readUInt32LE(p + 10);
            ckptArgs.push(k.readBigUInt64LE(p), k[p + 8]!, id, k[p + 9]!, k.subarray(p + CKPT_RECORD_HEAD, p + CKPT_RECORD_HEAD + n));
            p += CKPT_RECORD_HEAD + n;
          }
          this.insertRows(this.insCkptBatch, this.insCkpt, ckptArgs, 5);
        }
        this.insertRows(this.insInputBatch, this.insInput, c.inputs.flatMap((i) => [...i, id]), 5);
        if (c.images) this.bytesIn += this.insertPages(id, c.images);
        if (this.kill?.at === 'commit' && this.kill.chunk === id) killNow();
      })(),
    );
    if (this.kill?.at === 'checkpoint' && this.kill.chunk === id) checkpointAndDie(this.path, () => this.db.pragma('wal_checkpoint(TRUNCATE)'));
    this.bytesIn += pcs.length + mem.length + c.ckpts.length;
    this.instructions += c.count;
    this.storedEnd = c.first + BigInt(c.count);
  }

  /**
   * Chunk `id`'s page images (deflated here: on the writer's thread, in the chunk's transaction);
   * the bytes stored.
   */
  private insertPages(id: number, images: PageImages): number {
    const native = nativeRecorder();
    // a Uint8Array when it crossed from the recording thread
    const data = Buffer.from(images.data.buffer, images.data.byteOffset, images.data.byteLength);
    if (this.insPagesSql) {
      if (data.length) this.insPagesSql.run(id, data, images.base);
      // (the bytes handed: a page left whole counts its 4096, not what it deflates to)
      return data.length - PAGE_RECORD_HEAD * images.pages.length;
    }
    let bytes = 0;
    let at = 0;
    const args: unknown[] = [];
    for (const page of images.pages) {
      if (at + PAGE_RECORD_HEAD > data.length) throw new Error(`page images of chunk ${id}: the packed data ends before page ${page}`);
      const n = data.readUInt16LE(at + 4);
      at += PAGE_RECORD_HEAD;
      let image: Buffer;
      if (n === 0) {
        // a page packPages left whole: deflated into a buffer of its own (the rows are bound at the batch's run)
        const out = Buffer.allocUnsafe(native.deflateRawBound(4096));
        image = out.subarray(0, native.deflateRaw(data.subarray(at, at + 4096), out));
        at += 4096;
      } else {
        image = data.subarray(at, at + n);
        at += n;
      }
      if (at > data.length) throw new Error(`page images of chunk ${id}: page ${page} runs past the packed data`);
      args.push(id, page, image);
      bytes += image.length;
    }
    this.insertRows(this.insPageBatch, this.insPage, args, 3);
    return bytes;
  }

  /** Rows of `width` values each, `args` back to back: ROW_BATCH a statement, the rest one by one. */
  private insertRows(batch: Database.Statement, one: Database.Statement, args: unknown[], width: number): void {
    let i = 0;
    for (; i + ROW_BATCH * width <= args.length; i += ROW_BATCH * width) batch.run(...args.slice(i, i + ROW_BATCH * width));
    for (; i < args.length; i += width) one.run(...args.slice(i, i + width));
  }

  /**
   * Cut the stored history at position `s` (every chunk written; nothing pending): what happened
   * from instruction `s` on is deleted — later chunks, and in the chunk holding `s` its later
   * instructions, memory writes (rows re-encoded), checkpoints and inputs. Host writes and inputs
   * recorded at `s` itself (an interrupt delivered before instruction `s`, a debugger write) stay:
   * they are part of the state at `s`. The next chunk written starts at `s`. In a lazy-rows trace
   * the chunk holding `s` gets `images` for its page images: RAM as it is at `s`.
   */
  truncateAfter(s: bigint, images?: PageImages): void {
    const db = this.db;
    guard(this.path, () =>
      db.transaction(() => {
        // The chunk holding `s` (after any chunk of no instruction cut at `s`).
        const row = db.prepare('SELECT id, first, count FROM chunk WHERE first <= ? ORDER BY id DESC LIMIT 1').get(s) as
          | { id: number; first: number; count: number }
          | undefined;
        let keep = 0; // chunks kept: ids [0, keep)
        if (row) {
          keep = row.id + 1;
          // Starting at `s` it becomes a chunk of no instruction that keeps the host writes at `s`.
          if (BigInt(row.first) + BigInt(row.count) > s) this.cutChunk(row.id, row.first, Number(s));
        }
        for (const t of ['mem', 'mem_mask', 'ckpt', 'page']) db.prepare(`DELETE FROM ${t} WHERE chunk >= ?`).run(keep);
        if (row && images) {
          db.prepare('DELETE FROM page WHERE chunk = ?').run(row.id);
          this.bytesIn += this.insertPages(row.id, images);
        }
        db.prepare('DELETE FROM chunk WHERE id >= ?').run(keep);
        db.prepare('DELETE FROM ckpt WHERE seq > ?').run(s);
        db.prepare("DELETE FROM input WHERE seq > ? OR (seq = ? AND kind IN ('port-in', 'mmio-read'))").run(s, s);
        db.prepare('DELETE FROM stop WHERE seq > ?').run(s);
        // another history from here on: rows readers made of this one are not its (rows-file.ts)
        db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('history_id', ?)").run(newHistoryId());
        this.nextChunk = keep;
        const t = db.prepare('SELECT coalesce(sum(count), 0) AS n FROM chunk').get() as { n: number };
        this.instructions = t.n;
        this.storedEnd = s;
      })(),
    );
  }

  /** Chunk `id` (from `first`) keeps its instructions before `s` and the writes of the state at `s`. */
  private cutChunk(id: number, first: number, s: number): void {
    const db = this.db;
    const bound = stateBound(s);
    const upd = db.prepare('UPDATE mem SET data = ? WHERE line = ? AND chunk = ? AND part = ?');
    const updMask = db.prepare('UPDATE mem_mask SET first = ?, mask = ? WHERE line = ? AND chunk = ? AND part = ?');
    const del = db.prepare('DELETE FROM mem WHERE line = ? AND chunk = ? AND part = ?');
    const delMask = db.prepare('DELETE FROM mem_mask WHERE line = ? AND chunk = ? AND part = ?');
    const rows = db.prepare('SELECT line, part, data FROM mem WHERE chunk = ?').all(id) as { line: number; part: number; data: Buffer }[];
    let writes = 0;
    const lines = new Set<number>();
    for (const r of rows) {
      const d = decodeLineRow(r.data, r.line, first, this.path);
      const kept = d.writes.filter((w) => writeOrder(w) <= bound);
      if (kept.length === d.writes.length) {
        writes += kept.length;
        lines.add(r.line);
        continue;
      }
      if (kept.length === 0) {
        del.run(r.line, id, r.part);
        delMask.run(r.line, id, r.part);
        continue;
      }
      const base = r.line * 64;
      const blob = encodeLineRow(d.init, kept.map((w) => ({ seq: w.seq, host: w.host, off: w.phys - base, data: w.data })), first);
      let mask = 0n;
      for (const w of kept) for (let i = 0; i < w.len; i++) mask |= 1n << BigInt(w.phys - base + i);
      upd.run(blob, r.line, id, r.part);
      updMask.run(Math.floor(rowFirstOrder(blob, first) / 2), BigInt.asIntN(64, mask), r.line, id, r.part);
      writes += kept.length;
      lines.add(r.line);
    }
    // The pc stream too: the reader bounds what a chunk's pcs may inflate to by its count, so the
    // cut chunk keeps only as many bytes as its instructions can take (their encoding is a prefix).
    const old = db.prepare('SELECT count, pcs FROM chunk WHERE id = ?').get(id) as { count: number; pcs: Buffer };
    const stream = inflateRawSync(old.pcs, { maxOutputLength: PCS_MAX_BYTES_PER_INSN * old.count + 64 });
    const pcs = deflateRawSync(stream.subarray(0, PCS_MAX_BYTES_PER_INSN * (s - first) + 64), { level: 1 });
    db.prepare('UPDATE chunk SET count = ?, writes = ?, lines = ?, pcs = ? WHERE id = ?').run(s - first, writes, lines.size, pcs, id);
  }

  /** Payload bytes handed to SQLite so far, instructions stored, and where the stored history ends. */
  stats(): { bytes: number; instructions: number; chunks: number; end: bigint | undefined } {
    return { bytes: this.bytesIn, instructions: this.instructions, chunks: this.nextChunk, end: this.storedEnd };
  }

  setMeta(key: string, value: string | number): void {
    guard(this.path, () => this.db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(key, value));
  }

  /** No more writes: make the trace one self-contained file now (see finishTrace); close() does too. */
  finish(): void {
    if (!this.closed) finishTrace(this.db);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    finishTrace(this.db);
    guard(this.path, () => this.db.close());
  }
}
