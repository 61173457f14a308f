/**
 * Writes a trace: each chunk the native recorder cuts goes in in one transaction (chunk row,
 * memory rows, checkpoints, the inputs seen since the last chunk), so a process that dies leaves
 * a trace that opens up to its last whole chunk.
 */

import { rowFirstOrder } from './line-rows.js';
import type { NativeChunk } from './native-recorder.js';
import { createTrace, guard, type Db } from './schema.js';
import type Database from 'better-sqlite3';

export interface InputRecord {
  readonly seq: bigint;
  readonly vcpu?: number;
  readonly kind: string;
  readonly detail: unknown;
}

const jsonBig = (_k: string, v: unknown): unknown => (typeof v === 'bigint' ? `0x${v.toString(16)}` : Buffer.isBuffer(v) ? v.toString('hex') : v);

export class TraceWriter {
  private readonly db: Db;
  private nextChunk = 0;
  private readonly pendingInputs: InputRecord[] = [];
  private readonly insChunk: Database.Statement;
  private readonly insMem: Database.Statement;
  private readonly insMask: Database.Statement;
  private readonly insCkpt: Database.Statement;
  private readonly insInput: Database.Statement;
  private bytesIn = 0;
  private instructions = 0;
  private closed = false;

  constructor(
    readonly path: string,
    meta: Record<string, string | number>,
    replace = false,
  ) {
    this.db = createTrace(path, meta, replace);
    this.insChunk = this.db.prepare('INSERT INTO chunk (id, first, count, pcs, writes, lines) VALUES (?, ?, ?, ?, ?, ?)');
    this.insMem = this.db.prepare('INSERT INTO mem (line, chunk, part, final, data) VALUES (?, ?, ?, ?, ?)');
    this.insMask = this.db.prepare('INSERT INTO mem_mask (line, chunk, part, first, mask) VALUES (?, ?, ?, ?, ?)');
    this.insCkpt = this.db.prepare('INSERT INTO ckpt (seq, vcpu, chunk, flags, data) VALUES (?, ?, ?, ?, ?)');
    this.insInput = this.db.prepare('INSERT INTO input (seq, vcpu, kind, detail) VALUES (?, ?, ?, ?)');
  }

  /** RAM as it is when recording starts: its non-zero 4 KiB pages. */
  writeInitialRam(ram: Buffer, physBase: bigint): void {
    const ins = this.db.prepare('INSERT INTO ram_init (page, data) VALUES (?, ?)');
    const zero = Buffer.alloc(4096);
    guard(this.path, () =>
      this.db.transaction(() => {
        for (let off = 0; off < ram.length; off += 4096) {
          const page = ram.subarray(off, off + 4096);
          if (!page.equals(zero.subarray(0, page.length))) ins.run(Number((physBase + BigInt(off)) >> 12n), Buffer.from(page));
        }
      })(),
    );
  }

  /** Kept until the next chunk is written, in the same transaction. */
  addInput(input: InputRecord): void {
    this.pendingInputs.push(input);
  }

  writeChunk(c: NativeChunk): void {
    if (c.count === 0 && c.ckpts.length === 0 && this.pendingInputs.length === 0) return;
    const id = this.nextChunk++;
    guard(this.path, () =>
      this.db.transaction(() => {
        this.insChunk.run(id, c.first, c.count, c.pcs, c.writes, c.lines);
        const m = c.mem;
        let prevLine = -1n;
        let part = 0;
        for (let p = 0; p < m.length; ) {
          const line = m.readBigUInt64LE(p);
          const n = m.readUInt32LE(p + 8);
          const mask = BigInt.asIntN(64, m.readBigUInt64LE(p + 12));
          part = line === prevLine ? part + 1 : 0;
          prevLine = line;
          this.insMem.run(line, id, part, m.subarray(p + 20 + 64, p + 20 + 128), m.subarray(p + 20, p + 20 + n));
          this.insMask.run(line, id, part, Math.floor(rowFirstOrder(m.subarray(p + 20, p + 20 + n), Number(c.first)) / 2), mask);
          p += 20 + n;
        }
        const k = c.ckpts;
        for (let p = 0; p < k.length; ) {
          const seq = k.readBigUInt64LE(p);
          const vcpu = k[p + 8]!;
          const flags = k[p + 9]!;
          const n = k.readUInt32LE(p + 10);
          this.insCkpt.run(seq, vcpu, id, flags, k.subarray(p + 14, p + 14 + n));
          p += 14 + n;
        }
        for (const i of this.pendingInputs.splice(0)) {
          this.insInput.run(i.seq, i.vcpu ?? null, i.kind, JSON.stringify(i.detail, jsonBig));
        }
      })(),
    );
    this.bytesIn += c.pcs.length + c.mem.length + c.ckpts.length;
    this.instructions += c.count;
  }

  /** Payload bytes handed to SQLite so far and instructions recorded. */
  stats(): { bytes: number; instructions: number; chunks: number } {
    return { bytes: this.bytesIn, instructions: this.instructions, chunks: this.nextChunk };
  }

  setMeta(key: string, value: string | number): void {
    guard(this.path, () => this.db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(key, value));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    guard(this.path, () => {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
      this.db.close();
    });
  }
}
