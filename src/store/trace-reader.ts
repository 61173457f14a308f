/**
 * Reads a trace (opened read-only: nothing a reader does writes the file) and answers the
 * history queries: where an instruction ran, who wrote an address, every value it held, the
 * checkpoint nearest a seq.
 *
 * Seqs are numbers here (a history of 2^53 instructions would take years to record); the
 * targets convert to bigint at their boundary.
 */

import Database from 'better-sqlite3';
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { compressedInput } from '../common/compressed.js';
import { DbgError, errors } from '../common/errors.js';
import { decodeLineRow, encodedRows, rowFirstOrder, rowLastWrite, rowStateAt, stateBound, writeOrder, type DecodedRow, type LineWrite } from './line-rows.js';
import { nativeRecorder } from './native-recorder.js';
import { keepRows, removeRowsFiles, rowsFile } from './rows-file.js';
import { guard, openTrace, PCS_MAX_BYTES_PER_INSN, readMeta, type Db } from './schema.js';
import { blobOf, checkMeta, checkTracePath, guardTraceDb, intOf, traceCorrupt, type TraceMeta } from './trace-check.js';
import { grown } from '../common/grown.js';

export interface ChunkInfo {
  readonly id: number;
  readonly first: number;
  readonly count: number;
  readonly writes: number;
  readonly lines: number;
}

export interface Checkpoint {
  readonly seq: number;
  readonly vcpu: number;
  /** True when the vCPU does not run again before its next checkpoint (slice end). */
  readonly idle: boolean;
  /** The full uc_context image. */
  readonly image: Buffer;
}

export interface InputRow {
  readonly seq: number;
  readonly vcpu: number | null;
  readonly kind: string;
  readonly detail: Record<string, unknown>;
  /** The chunk it was stored with (schema 8); undefined in older traces. */
  readonly chunk?: number;
}

/** A stop of the recording session (TraceReader.stops). */
export interface StopRow {
  /** The next instruction that was to run. */
  readonly seq: number;
  readonly vcpu: number;
  /** The stop reason's kind (target.ts StopReason): breakpoint, watchpoint, step, interrupted, halted... */
  readonly kind: string;
  /** The breakpoint's or watchpoint's id and address; null for other stops. */
  readonly id: number | null;
  readonly addr: bigint | null;
}

/** A ckpt row as the reader selects it. */
interface CkptRow {
  readonly seq: number;
  readonly vcpu: number;
  readonly chunk: number;
  readonly flags: number;
  readonly data: Buffer;
}

/** A chunk's writes in execution order; `order[i]` = writeOrder(list[i]), ascending. */
export interface ChunkWrites {
  readonly list: readonly LineWrite[];
  readonly order: Float64Array;
}

/** First index whose order is > bound. */
export function upperBound(order: Float64Array, bound: number): number {
  let lo = 0;
  let hi = order.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (order[mid]! <= bound) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The rows one query may return (a bound on memory; page with LIMIT and OFFSET beyond it). */
export const SQL_MAX_ROWS = 1_000_000;

/**
 * Makes the memory rows of one chunk of a lazy-rows trace (see TraceReader.lazyRows), encoded as
 * the recorder's encodeRows() encodes them: the replay side re-executes the chunk with the
 * recorder's write hooks (src/targets/replay/chunk-indexer.ts registers it).
 */
export interface ChunkIndexer {
  /** Chunk `chunk` re-executed: its memory rows (encodeRows' format) and its pc stream (nibbles, not deflated). */
  rows(chunk: number): { rows: Buffer; pcs: Buffer };
  /**
   * A reading of the writes to physical line `line` in chunk `chunk`, oldest first, from a
   * re-execution of the chunk that goes no further than it must: each more() gives the writes not
   * given yet, as rows of that line alone (encodeRows' format), driving the chunk up to the
   * stretch holding the next of them (or to its end); empty when the chunk has no more (the lines
   * a chunk wrote are known only by their pages). `done`: the re-execution reached the chunk's
   * end, and rows(chunk) returns its rows without another.
   */
  lineReading(chunk: number, line: number): { more(): { rows: Buffer; done: boolean } };
  /** The chunk a line's reading re-executed part of, whose rows() would finish that re-execution. */
  readonly driving: number | undefined;
  close(): void;
}
let indexerFor: ((reader: TraceReader) => ChunkIndexer) | undefined;

/** Register what makes a lazy-rows trace's memory rows (called once, by chunk-indexer.ts). */
export function setChunkIndexer(make: (reader: TraceReader) => ChunkIndexer): void {
  indexerFor = make;
}

/** Inflated page images kept per reader (4 KiB each). */
const PAGE_CACHE = 1024;
/** The temporary tables a lazy-rows trace's rows are made into, as the trace's own are (schema.ts). */
const LAZY_DDL = `
CREATE TEMP TABLE mem (chunk INTEGER NOT NULL, line INTEGER NOT NULL, part INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (chunk, line, part)) WITHOUT ROWID;
CREATE TEMP TABLE mem_mask (line INTEGER NOT NULL, chunk INTEGER NOT NULL, part INTEGER NOT NULL, first INTEGER NOT NULL, mask INTEGER NOT NULL, PRIMARY KEY (line, chunk, part)) WITHOUT ROWID;
CREATE INDEX temp.mem_lines ON mem (chunk, line);
`;
/** Where a lazy trace's pc streams are made into (chunk.pcs is empty there). */
const LAZY_PCS_DDL = 'CREATE TEMP TABLE lazy_pcs (chunk INTEGER PRIMARY KEY, pcs BLOB NOT NULL)';
/**
 * The same tables in a rows file kept beside the trace (rows-file.ts), with the chunks made. A
 * connection of its own writes it (the trace's is read-only, and so is what it attaches); the
 * trace's connection attaches it as `rows` to read.
 */
const ROWS_DDL = `
CREATE TABLE IF NOT EXISTS mem (chunk INTEGER NOT NULL, line INTEGER NOT NULL, part INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (chunk, line, part)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mem_mask (line INTEGER NOT NULL, chunk INTEGER NOT NULL, part INTEGER NOT NULL, first INTEGER NOT NULL, mask INTEGER NOT NULL, PRIMARY KEY (line, chunk, part)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS mem_lines ON mem (chunk, line);
CREATE TABLE IF NOT EXISTS lazy_pcs (chunk INTEGER PRIMARY KEY, pcs BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS made (chunk INTEGER PRIMARY KEY, first INTEGER NOT NULL, count INTEGER NOT NULL);
`;
/** Views named as the trace's tables over an attached rows file: unqualified queries read them. */
const ROWS_VIEWS = `
CREATE TEMP VIEW mem AS SELECT chunk, line, part, data FROM rows.mem;
CREATE TEMP VIEW mem_mask AS SELECT line, chunk, part, first, mask FROM rows.mem_mask;
CREATE TEMP VIEW lazy_pcs AS SELECT chunk, pcs FROM rows.lazy_pcs;
`;

/** A query's result; `truncated` when it had more than the rows asked for. */
export interface SqlResult {
  readonly columns: string[];
  readonly rows: unknown[][];
  readonly truncated?: boolean;
}

const PCS_CACHE = 8;
/**
 * Decoded memory rows kept per reader: at most ROW_CACHE rows holding at most ROW_CACHE_WRITES
 * writes. A decoded write is ~280 bytes of heap (an object and two Buffers), and a row of a hot
 * line holds ~360 of them: 4096 rows of the sample kernel's timer counter (what `::history` of it
 * reads) were 420 MiB of heap, which every full collection marked and then swept on the worker
 * threads (40-100 ms of CPU after a forced GC, taken from the 2 cores the next query ran on).
 */
const ROW_CACHE = 4096;
const ROW_CACHE_WRITES = 65_536;

export class TraceReader {
  readonly db: Db;
  readonly meta: Map<string, string | number>;
  /** The meta values things are sized from, range-checked (trace-check.ts). */
  readonly info: TraceMeta;
  /** First seq of the history and one past the last instruction. */
  readonly first: number;
  readonly end: number;
  readonly chunkCount: number;
  /** The schema version (PRAGMA user_version; schema.ts). */
  readonly version: number;
  /** Memory rows keep only the bytes a write changed (schema 6; line-rows.ts). */
  private readonly compactRows: boolean;
  private readonly pcsCache = new Map<number, { pc: BigUint64Array; vcpu: Uint8Array }>();
  private scratch: { pc: BigUint64Array; vcpu: Uint8Array } | undefined;
  private readonly rowCache = new Map<string, DecodedRow>();
  /** The writes of the rows in rowCache. */
  private rowCacheWrites = 0;
  private lastPeek = -1;
  /** Full checkpoint images by "vcpu:chunk" (the base of that chunk's delta checkpoints). */
  private readonly keyCache = new Map<string, { data: Buffer }>();
  private readonly st: Record<string, Database.Statement>;
  private readonly chunkFirsts: Float64Array;
  private readonly chunkCounts: Float64Array;
  /** Lines and rows per chunk, counted on the index when first asked. */
  private readonly chunkRowCounts = new Map<number, { lines: number; rows: number }>();

  private aux: TraceReader | undefined;
  /**
   * A lazy-rows trace (meta memory_rows = 'lazy', schema 8): the recording kept, per chunk, the
   * 4 KiB pages the chunk wrote as they were at its end (table page), not its memory rows; a
   * chunk's rows are made when a query first needs them, by re-executing it (ChunkIndexer), into
   * temporary tables of this connection named as the trace's (SQLite looks in temp first), so
   * every query below reads them as it reads an eager trace's. Memory at a chunk's start comes
   * from the page images (pageAtChunkStart), so no query needs the rows of the chunks before.
   */
  readonly lazyRows: boolean;
  private readonly indexed = new Set<number>();
  private indexer: ChunkIndexer | undefined;
  private readonly pageCache = new Map<string, Buffer>();
  /**
   * A lazy trace keeps no pc stream either (meta pcs = 'lazy'): a chunk's pcs are made with its
   * memory rows, by the same re-execution.
   */
  readonly lazyPcs: boolean;
  /** Inputs name their chunk (schema 8). */
  private readonly inputChunks: boolean;
  /** Memory rows decoded into writes so far (what a history query cost; tests read it). */
  rowsDecoded = 0;

  private constructor(
    readonly path: string,
    db: Db,
    functions: boolean,
  ) {
    this.db = guardTraceDb(path, db);
    this.meta = readMeta(db);
    this.version = db.pragma('user_version', { simple: true }) as number;
    this.compactRows = this.version >= 6;
    this.info = checkMeta(path, this.meta);
    const columns = (table: string) => (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name);
    this.inputChunks = columns('input').includes('chunk');
    this.lazyRows = this.meta.get('memory_rows') === 'lazy';
    if (this.lazyRows) {
      if (!columns('page').includes('data')) throw traceCorrupt(path, 'meta.memory_rows says its memory is kept as page images, but it has no page table');
    }
    this.lazyPcs = this.lazyRows && this.meta.get('pcs') === 'lazy';
    if (this.lazyRows) {
      // an existing rows file now; a new one when the first chunk's rows are made (ensureRows)
      this.rowsFile = keepRows() && this.version >= 9 ? rowsFile(path, this.meta.get('history_id')) : undefined;
      if (!this.rowsFile || !existsSync(this.rowsFile) || !this.attachRows(db)) {
        db.exec(LAZY_DDL);
        if (this.lazyPcs) db.exec(LAZY_PCS_DDL);
      }
    }
    const p = (sql: string) => this.db.prepare(sql);
    this.st = {
      chunkById: p('SELECT id, first, count, writes, lines FROM chunk WHERE id = ?'),
      pcs: p('SELECT pcs, count FROM chunk WHERE id = ?'),
      // The last part of a line in a chunk whose first write is at or before a seq, and the first part.
      partAt: p(
        'SELECT k.part AS part, k.first AS first, m.data AS data FROM mem_mask k CROSS JOIN mem m ON m.line = k.line AND m.chunk = k.chunk AND m.part = k.part ' +
          'WHERE k.line = ? AND k.chunk = ? AND k.first <= ? ORDER BY k.part DESC LIMIT 1',
      ),
      firstPart: p('SELECT part, data FROM mem WHERE line = ? AND chunk = ? ORDER BY part LIMIT 1'),
      // The newest part at or before (chunk, part) whose mask shows a write to the asked bytes.
      lastMasked: p(
        'SELECT k.chunk AS chunk, k.part AS part, m.data AS data FROM mem_mask k ' +
          'CROSS JOIN mem m ON m.line = k.line AND m.chunk = k.chunk AND m.part = k.part ' +
          'WHERE k.line = ? AND (k.chunk, k.part) <= (?, ?) AND k.first <= ? AND (k.mask & ?) != 0 ' +
          'ORDER BY k.chunk DESC, k.part DESC LIMIT 1',
      ),
      // The last row of a line at or before a chunk: its final image (the line after it), which
      // a seek reads for every line written since its snapshot, without the rest of the row.
      lastRow: p(
        "SELECT k.chunk AS chunk, k.part AS part, typeof(m.data) = 'blob' AND length(m.data) >= 128 AS ok, substr(m.data, 65, 64) AS final " +
          'FROM mem_mask k CROSS JOIN mem m ON m.line = k.line AND m.chunk = k.chunk AND m.part = k.part ' +
          'WHERE k.line = ? AND k.chunk <= ? ORDER BY k.chunk DESC, k.part DESC LIMIT 1',
      ),
      // The first rows at or after (chunk, part), up to a chunk, whose mask shows a write to the asked bytes.
      // (Keys only: row() reads the blob by its key.)
      nextMasked: p('SELECT chunk, part FROM mem_mask WHERE line = ? AND (chunk, part) >= (?, ?) AND chunk <= ? AND (mask & ?) != 0 ORDER BY chunk, part LIMIT ?'),
      rowData: p('SELECT data FROM mem WHERE line = ? AND chunk = ? AND part = ?'),
      rowsOfLineInChunk: p('SELECT part, data FROM mem WHERE chunk = ? AND line = ?'),
      // The last row of chunks [?, ?] whose first write is before a seq (and touches the asked bytes).
      partBefore: p('SELECT chunk, part FROM mem_mask WHERE line = ? AND chunk BETWEEN ? AND ? AND first < ? AND (mask & ?) != 0 ORDER BY chunk DESC, part DESC LIMIT 1'),
      firstRow: p(
        'SELECT k.chunk AS chunk, m.data AS data FROM mem_mask k CROSS JOIN mem m ON m.line = k.line AND m.chunk = k.chunk AND m.part = k.part ' +
          'WHERE k.line = ? ORDER BY k.chunk, k.part LIMIT 1',
      ),
      rowsOfChunk: p('SELECT line, part, data FROM mem WHERE chunk = ?'),
      rowsOfChunkCount: p('SELECT count(DISTINCT line) AS lines, count(*) AS rows FROM mem WHERE chunk = ?'),
      linesOfChunks: p('SELECT DISTINCT line FROM mem WHERE chunk BETWEEN ? AND ?'),
      ckpt: p('SELECT seq, vcpu, chunk, flags, data FROM ckpt WHERE vcpu = ? AND seq <= ? ORDER BY seq DESC, id DESC LIMIT 1'),
      ckptById: p('SELECT seq, vcpu, chunk, flags, data FROM ckpt WHERE id = ?'),
      // A chunk's checkpoints, a vCPU's at a time through ckpt_by_vcpu over the chunk's seqs (by
      // chunk alone SQLite walks the whole table: 1.7 ms a chunk at 10^8 instructions).
      ckptRows: p('SELECT id, seq, vcpu, flags FROM ckpt WHERE vcpu = ? AND seq BETWEEN ? AND ? AND chunk = ?'),
      // A chunk's full image of a vCPU: through ckpt_by_vcpu over the chunk's seqs (by chunk alone
      // SQLite walks the whole table in id order: 16 ms for the last chunk of 10^8 instructions).
      ckptKey: p('SELECT data FROM ckpt WHERE vcpu = ? AND seq BETWEEN ? AND ? AND chunk = ? AND (flags & 1) = 1 ORDER BY id LIMIT 1'),
      ckptKeyAnywhere: p('SELECT data FROM ckpt WHERE vcpu = ? AND chunk = ? AND (flags & 1) = 1 ORDER BY id LIMIT 1'),
      ramPage: p('SELECT data FROM ram_init WHERE page = ?'),
      inputs: p(`SELECT seq, vcpu, kind, detail${this.inputChunks ? ', chunk' : ''} FROM input WHERE seq >= ? AND seq < ? ORDER BY seq, id`),
      // (through the partial index input_lapic_ids: not every input of the history parsed)
      ...(this.version >= 9 ? { lapicIds: p("SELECT seq, vcpu, detail FROM input WHERE kind = 'lapic-id' AND seq >= ? AND seq < ? ORDER BY seq, id") } : {}),
      ...(this.lazyRows
        ? {
            ...this.rowInserts(),
            pageIn: p('SELECT 1 FROM page WHERE page = ? AND chunk = ?'),
            pageBefore: p('SELECT chunk, data FROM page WHERE page = ? AND chunk < ? ORDER BY chunk DESC LIMIT 1'),
            pageChunksDown: p('SELECT chunk FROM page WHERE page = ? AND chunk <= ? ORDER BY chunk DESC LIMIT ?'),
            pageChunksUp: p('SELECT chunk FROM page WHERE page = ? AND chunk BETWEEN ? AND ? ORDER BY chunk LIMIT ?'),
            pagesOfChunks: p('SELECT DISTINCT page FROM page WHERE chunk BETWEEN ? AND ?'),
            ...(this.lazyPcs ? { lazyPcs: p('SELECT pcs FROM lazy_pcs WHERE chunk = ?') } : {}),
          }
        : {}),
    };
    // (Columns before `pcs` only: reading one after it walks the pcs blob's overflow pages.)
    const chunks = db.prepare('SELECT id, first, count FROM chunk ORDER BY id').raw().all() as [number, number, number][];
    this.chunkCount = chunks.length;
    this.chunkFirsts = new Float64Array(chunks.length);
    this.chunkCounts = new Float64Array(chunks.length);
    chunks.forEach(([id, first, count], i) => {
      intOf(path, first, `chunk ${i}'s first`);
      intOf(path, count, `chunk ${i}'s count`, 0, 2 ** 32 - 1);
      if (id !== i) throw traceCorrupt(path, `chunk ${i} is missing (found chunk ${id} in its place)`);
      if (i > 0 && first !== this.chunkFirsts[i - 1]! + this.chunkCounts[i - 1]!) {
        throw traceCorrupt(path, `chunk ${i} starts at seq ${first}, expected ${this.chunkFirsts[i - 1]! + this.chunkCounts[i - 1]!}`);
      }
      this.chunkFirsts[i] = first;
      this.chunkCounts[i] = count;
    });
    this.first = chunks.length ? chunks[0]![1] : this.info.firstSeq;
    this.end = chunks.length ? this.chunkFirsts[chunks.length - 1]! + this.chunkCounts[chunks.length - 1]! : this.first;
    this.db.defaultSafeIntegers(false);
    if (functions) this.registerFunctions();
  }

  /**
   * Table-valued functions for raw SQL: steps(first_seq, count) -> (seq, vcpu, pc) and
   * writes(phys_addr, length) -> (seq, host, phys_addr, length, old, new),
   * activity(buckets) -> (bucket, pc, instructions) (see activity()); and hex64(x), an
   * address as dbg prints it ('0xffffffff80101445'): SQLite's integers are signed, so a pc above
   * 2^63 is negative as a number.
   */
  private registerFunctions(): void {
    this.db.function('hex64', { deterministic: true, safeIntegers: true }, (v: unknown) =>
      typeof v === 'bigint' || typeof v === 'number' ? `0x${BigInt.asUintN(64, BigInt(v)).toString(16)}` : null,
    );
    // The functions read through a second connection: SQLite's connection is busy with the
    // statement that calls them.
    const self = this;
    const aux = (): TraceReader => (self.aux ??= TraceReader.open(self.path, false));
    this.db.table('steps', {
      columns: ['seq', 'vcpu', 'pc'],
      parameters: ['first_seq', 'count'],
      *rows(first: unknown, count: unknown) {
        const reader = aux();
        const from = Math.max(Number(first ?? reader.first), reader.first);
        // Rows are produced as SQLite asks for them: a large count costs only the rows consumed
        // (sql() bounds what a query may return).
        const to = Math.min(from + Math.max(Number(count ?? 1000), 0), reader.end);
        for (let s = from; s < to; ) {
          const id = reader.chunkIndexOf(s);
          const d = reader.pcs(id);
          const base = reader.chunkFirsts[id]!;
          // SQLite integers are signed 64-bit: pcs above 2^63 come out negative (printf("%x") shows them right).
          for (; s < to && s < base + reader.chunkCounts[id]!; s++) yield [s, d.vcpu[s - base]!, BigInt.asIntN(64, d.pc[s - base]!)];
        }
      },
    });
    this.db.table('activity', {
      columns: ['bucket', 'pc', 'instructions'],
      parameters: ['buckets'],
      *rows(buckets: unknown) {
        for (const [b, pc, n] of aux().activity(Number(buckets ?? 100))) yield [b, BigInt.asIntN(64, pc), n];
      },
    });
    this.db.table('writes', {
      columns: ['seq', 'host', 'phys_addr', 'length', 'old', 'new'],
      parameters: ['addr', 'len'],
      *rows(addr: unknown, length: unknown) {
        for (const w of aux().iterWrites(Number(addr), Number(length ?? 1))) yield [w.seq, w.host ? 1 : 0, w.phys, w.len, w.old, w.data];
      },
    });
  }

  /**
   * Attach a derived table's file (calls-db.ts) read-only under `schema`, replacing the one
   * attached before: its tables then answer unqualified names the trace does not define.
   */
  attachDerived(path: string, schema: string): void {
    const attached = (this.db.prepare('PRAGMA database_list').all() as { name: string; file: string }[]).find((d) => d.name === schema);
    if (attached?.file === path) return;
    if (attached) this.db.exec(`DETACH DATABASE ${schema}`);
    this.db.prepare(`ATTACH DATABASE ? AS ${schema}`).run(path);
  }

  /** Read-only SQL over the trace; DbgError('bad-input') for bad SQL or an attempt to write. */
  sql(query: string, maxRows = SQL_MAX_ROWS): SqlResult {
    let stmt: Database.Statement;
    try {
      stmt = this.db.prepare(query);
    } catch (e) {
      throw new DbgError('bad-input', `bad SQL: ${(e as Error).message}`);
    }
    if (!stmt.reader) throw new DbgError('bad-input', 'the trace is read-only here: only queries that return rows (SELECT, WITH, PRAGMA reads) are allowed');
    try {
      const rows: unknown[][] = [];
      let truncated = false;
      for (const row of stmt.safeIntegers(true).raw(true).iterate() as IterableIterator<unknown[]>) {
        if (rows.length >= maxRows) {
          truncated = true;
          break;
        }
        rows.push(row);
      }
      return { columns: stmt.columns().map((c) => c.name), rows, truncated };
    } catch (e) {
      throw new DbgError('bad-input', `SQL failed: ${(e as Error).message}`);
    }
  }

  static open(path: string, functions = true): TraceReader {
    checkTracePath(path);
    refuseCompressed(path);
    const db = openTrace(path);
    try {
      return guard(path, () => new TraceReader(path, db, functions));
    } catch (e) {
      db.close();
      throw e;
    }
  }

  close(): void {
    this.aux?.close();
    // A chunk a query re-executed part of (::history's first writes) is finished and its rows
    // kept for the next reader, which then re-executes nothing this one began. Derived data:
    // when that fails (a damaged chunk past what the query read), the next reader finds out.
    const driving = this.indexer?.driving;
    if (driving !== undefined && this.rowsFile && this.db.open) {
      try {
        this.ensureRows(driving);
      } catch {
        // left to be made again
      }
    }
    this.indexer?.close();
    this.indexer = undefined;
    if (this.db.open) this.db.close();
    if (this.rowsDb?.open) this.rowsDb.close();
  }

  /** Throws bad-input unless first <= seq <= end (end = the position after the last instruction). */
  checkSeq(seq: number): void {
    if (!Number.isSafeInteger(seq) || seq < this.first || seq > this.end) {
      throw new DbgError('bad-input', `seq ${seq} is outside the recorded history [${this.first}, ${this.end}] of "${this.path}"`);
    }
  }

  /**
   * The chunk holding instruction `seq` (for seq = end: the last chunk): the last chunk whose
   * first <= seq, so chunks of no instruction cut at `seq` (schema.ts) come before it.
   */
  chunkIndexOf(seq: number): number {
    let lo = 0;
    let hi = this.chunkCount - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.chunkFirsts[mid]! <= seq) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /**
   * The first chunk that may hold a write at position `seq` or later: writes of a chunk lie in
   * [first, first + count] (host writes at its end position go into it when it is cut after
   * them), so an earlier chunk ending at `seq`, and chunks of no instruction at `seq`, count.
   */
  firstChunkReaching(seq: number): number {
    let lo = 0;
    let hi = this.chunkCount - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.chunkFirsts[mid]! + this.chunkCounts[mid]! >= seq) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  chunk(id: number): ChunkInfo {
    const r = this.st.chunkById!.get(id) as ChunkInfo | undefined;
    if (!r) throw traceCorrupt(this.path, `chunk ${id} is missing`);
    return r;
  }

  chunkFirst(id: number): number {
    return this.chunkFirsts[id]!;
  }

  chunkCountOf(id: number): number {
    return this.chunkCounts[id]!;
  }

  /**
   * Distinct lines chunk `id` wrote and its memory rows (~1 KiB of records each: ~100 writes),
   * counted on the index mem_by_chunk (the chunk row's own counts lie beyond its pcs blob).
   */
  chunkRows(id: number): { lines: number; rows: number } {
    let n = this.chunkRowCounts.get(id);
    if (!n) {
      this.ensureRows(id);
      n = this.st.rowsOfChunkCount!.get(id) as { lines: number; rows: number };
      this.chunkRowCounts.set(id, n);
    }
    return n;
  }

  /**
   * Chunk `id`'s pc stream and instruction count, undefined when the chunk is missing. From
   * schema version 4 on the stream is stored deflated (schema.ts); the inflated size is bounded
   * by what `count` instructions can take, so a damaged blob cannot inflate without limit.
   */
  private pcsRow(id: number): { pcs: Buffer; count: number } | undefined {
    const r = this.st.pcs!.get(id) as { pcs: unknown; count: unknown } | undefined;
    if (!r) return undefined;
    const count = intOf(this.path, r.count, `chunk ${id}'s count`, 0, 2 ** 32 - 1);
    if (this.lazyPcs) {
      this.ensureRows(id);
      return { pcs: this.st.lazyPcs!.pluck().get(id) as Buffer, count };
    }
    const blob = blobOf(this.path, r.pcs, `the pcs of chunk ${id}`);
    if (this.version < 4) return { pcs: blob, count };
    try {
      return { pcs: inflateRawSync(blob, { maxOutputLength: PCS_MAX_BYTES_PER_INSN * count + 64 }), count };
    } catch (e) {
      throw traceCorrupt(this.path, `the pcs of chunk ${id} do not inflate (${(e as Error).message})`);
    }
  }

  /** Decoded pcs of a chunk (cached). */
  pcs(id: number): { pc: BigUint64Array; vcpu: Uint8Array } {
    let d = this.pcsCache.get(id);
    if (d) return d;
    const r = this.pcsRow(id);
    if (!r) throw traceCorrupt(this.path, `chunk ${id} is missing`);
    try {
      d = nativeRecorder().decodePcs(r.pcs, r.count);
    } catch (e) {
      throw traceCorrupt(this.path, `chunk ${id}: ${(e as Error).message}`);
    }
    if (this.pcsCache.size >= PCS_CACHE) this.pcsCache.delete(this.pcsCache.keys().next().value!);
    this.pcsCache.set(id, d);
    return d;
  }

  /**
   * The decoded pcs of chunk `id` in arrays this reader reuses: valid until the next call. For a
   * walk over every chunk, which would only churn the cache (and allocating fresh arrays per chunk
   * costs such a walk more than decoding does).
   */
  pcsScratch(id: number): { pc: BigUint64Array; vcpu: Uint8Array } {
    const cached = this.pcsCache.get(id);
    if (cached) return cached;
    const r = this.pcsRow(id);
    if (!r) throw traceCorrupt(this.path, `chunk ${id} is missing`);
    if (!this.scratch || this.scratch.pc.length < r.count) this.scratch = { pc: new BigUint64Array(r.count), vcpu: new Uint8Array(r.count) };
    try {
      nativeRecorder().decodePcsInto(r.pcs, r.count, this.scratch.pc, this.scratch.vcpu);
    } catch (e) {
      throw traceCorrupt(this.path, `chunk ${id}: ${(e as Error).message}`);
    }
    return { pc: this.scratch.pc.subarray(0, r.count), vcpu: this.scratch.vcpu.subarray(0, r.count) };
  }

  /**
   * The last instruction of the history as its recorder knows it (EmulatorRecorder.lastStored),
   * so that a reverse step right after opening does not decode the last chunk to check it.
   * Ignored unless it is the last instruction.
   */
  knowLastStep(last: { seq: number; pc: bigint; vcpu: number } | undefined): void {
    this.lastStep = last && last.seq === this.end - 1 ? last : undefined;
  }

  private lastStep: { seq: number; pc: bigint; vcpu: number } | undefined;

  /**
   * The vCPU that runs instruction `seq`, from the slices (a slice starts with a checkpoint not
   * flagged as a slice end): what a lazy trace says without its pcs.
   */
  vcpuAt(seq: number): number {
    for (let c = this.chunkIndexOf(seq); c >= 0; c--) {
      let starts = this.sliceStarts.get(c);
      if (!starts) {
        starts = this.checkpointRows(c).filter((k) => (k.flags & 2) === 0);
        if (this.sliceStarts.size >= 64) this.sliceStarts.delete(this.sliceStarts.keys().next().value!);
        this.sliceStarts.set(c, starts);
      }
      for (let i = starts.length - 1; i >= 0; i--) if (starts[i]!.seq <= seq) return starts[i]!.vcpu;
    }
    return 0;
  }

  private readonly sliceStarts = new Map<number, { seq: number; vcpu: number }[]>();

  /** pc and vCPU of instruction `seq` (first <= seq < end). */
  step(seq: number): { pc: bigint; vcpu: number } {
    if (seq < this.first || seq >= this.end) throw new DbgError('bad-input', `no instruction at seq ${seq}: the history holds [${this.first}, ${this.end - 1}]`);
    if (seq === this.lastStep?.seq) return { pc: this.lastStep.pc, vcpu: this.lastStep.vcpu };
    const id = this.chunkIndexOf(seq);
    const i = seq - this.chunkFirsts[id]!;
    // A first look into a chunk decodes only up to `seq`; a second one decodes and keeps it all.
    const d = this.pcsCache.get(id);
    if (d) return { pc: d.pc[i]!, vcpu: d.vcpu[i]! };
    // (Past the middle of the chunk a peek costs about what the whole decode does.)
    if (this.lastPeek !== id && i < this.chunkCounts[id]! / 2) {
      this.lastPeek = id;
      const r = this.pcsRow(id);
      if (!r) throw traceCorrupt(this.path, `chunk ${id} is missing`);
      let one;
      try {
        one = nativeRecorder().decodePcs(r.pcs, i + 1, true);
      } catch (e) {
        throw traceCorrupt(this.path, `chunk ${id}: ${(e as Error).message}`);
      }
      return { pc: one.pc[0]!, vcpu: one.vcpu[0]! };
    }
    const all = this.pcs(id);
    return { pc: all.pc[i]!, vcpu: all.vcpu[i]! };
  }

  /** Every seq in [from, to) whose pc is one of `pcs`, oldest first (at most `limit`). */
  findPcs(pcs: readonly bigint[], from = this.first, to = this.end, limit = Infinity): number[] {
    const targets = BigUint64Array.from(pcs);
    const out: number[] = [];
    if (this.chunkCount === 0 || from >= to) return out;
    const n = nativeRecorder();
    for (let id = this.chunkIndexOf(from); id < this.chunkCount && this.chunkFirsts[id]! < to; id++) {
      const r = this.pcsRow(id);
      const base = this.chunkFirsts[id]!;
      for (const off of this.findInChunk(n, id, r, targets, to - base)) {
        const s = base + off;
        if (s >= from) out.push(s);
        if (out.length >= limit) return out;
      }
    }
    return out;
  }

  /**
   * The first `limit` seqs of the whole history whose pc is one of `pcs` and how many there are
   * in all: one scan of every chunk's pcs.
   */
  countPcs(pcs: readonly bigint[], limit = 0): { seqs: number[]; count: number } {
    const targets = BigUint64Array.from(pcs);
    const n = nativeRecorder();
    const seqs: number[] = [];
    let count = 0;
    for (let id = 0; id < this.chunkCount; id++) {
      const r = this.pcsRow(id);
      const hits = this.findInChunk(n, id, r, targets, r?.count ?? 0);
      for (let k = 0; k < hits.length && seqs.length < limit; k++) seqs.push(this.chunkFirsts[id]! + hits[k]!);
      count += hits.length;
    }
    return { seqs, count };
  }

  /** The slice length activity(buckets) uses: `buckets` equal slices of the history, the last shorter. */
  activityWidth(buckets: number): number {
    return Math.max(1, Math.ceil((this.end - this.first) / Math.max(1, Math.floor(buckets))));
  }

  /**
   * Instructions per pc in each slice of activityWidth(buckets) instructions, slice by slice:
   * [bucket, pc, count]. One pass over the pc streams; pcs are matched on their low 32 bits first
   * (a Map of numbers: no BigInt per instruction).
   */
  *activity(buckets: number): Generator<[number, bigint, number]> {
    if (!Number.isSafeInteger(buckets) || buckets <= 0 || buckets > 1_000_000) throw new DbgError('bad-input', `activity(${buckets}): expected a count of buckets in [1, 1000000]`);
    const width = this.activityWidth(buckets);
    const pcs: bigint[] = [];
    const his: number[] = [];
    const byLo = new Map<number, number>();
    const byPc = new Map<bigint, number>();
    const lowFirst = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1 ? 0 : 1;
    let open = -1;
    // Per bucket: counts by pc index, and the indexes counted (to yield and reset only those).
    let counts = new Float64Array(1024);
    const touched: number[] = [];
    const flush = function* (): Generator<[number, bigint, number]> {
      for (const i of touched) {
        yield [open, pcs[i]!, counts[i]!];
        counts[i] = 0;
      }
      touched.length = 0;
    };
    for (let id = 0; id < this.chunkCount; id++) {
      const count = this.chunkCounts[id]!;
      if (count === 0) continue;
      const base = this.chunkFirsts[id]!;
      const d = this.pcs(id);
      const words = new Uint32Array(d.pc.buffer, d.pc.byteOffset, count * 2);
      let b = Math.floor((base - this.first) / width);
      let bEnd = this.first + (b + 1) * width;
      for (let k = 0; k < count; k++) {
        if (base + k >= bEnd) {
          b++;
          bEnd += width;
        }
        if (b !== open) {
          yield* flush();
          open = b;
        }
        const lo = words[2 * k + lowFirst]!;
        const hi = words[2 * k + 1 - lowFirst]!;
        let i = byLo.get(lo);
        if (i === undefined || his[i] !== hi) {
          const pc = d.pc[k]!;
          i = byPc.get(pc);
          if (i === undefined) {
            i = pcs.length;
            pcs.push(pc);
            his.push(hi);
            byPc.set(pc, i);
            if (!byLo.has(lo)) byLo.set(lo, i);
            if (i >= counts.length) counts = grown(counts, counts.length * 2);
          }
        }
        if (counts[i]! === 0) touched.push(i);
        counts[i]!++;
      }
    }
    yield* flush();
  }

  private findInChunk(n: ReturnType<typeof nativeRecorder>, id: number, r: { pcs: Buffer; count: number } | undefined, targets: BigUint64Array, below: number): Float64Array {
    if (!r) throw traceCorrupt(this.path, `chunk ${id} is missing`);
    try {
      return n.findPcs(r.pcs, r.count, targets, below);
    } catch (e) {
      throw traceCorrupt(this.path, `chunk ${id}: ${(e as Error).message}`);
    }
  }

  /** The last seq in [from, to) whose pc is one of `pcs`, searching back chunk by chunk. */
  lastPc(pcs: readonly bigint[], from: number, to: number): number | undefined {
    const targets = BigUint64Array.from(pcs);
    if (this.chunkCount === 0 || from >= to) return undefined;
    const n = nativeRecorder();
    for (let id = this.chunkIndexOf(Math.min(to, this.end) - 1); id >= 0; id--) {
      const base = this.chunkFirsts[id]!;
      if (base + this.chunkCounts[id]! <= from) break;
      // A chunk decoded already (steps decode the one they are in) is searched back from `to` in
      // its pcs, stopping at the first hit: a reverse-continue to a pc run just before costs
      // microseconds instead of inflating and scanning the chunk's stream (~10 ms for 560k).
      const decoded = targets.length <= 8 ? this.pcsCache.get(id) : undefined;
      if (decoded) {
        const top = Math.min(to - base, decoded.pc.length) - 1;
        let last = -1;
        for (const t of targets) if (top >= 0) last = Math.max(last, decoded.pc.lastIndexOf(t, top));
        if (last < 0) continue;
        return base + last >= from ? base + last : undefined;
      }
      const r = this.pcsRow(id);
      const hits = this.findInChunk(n, id, r, targets, to - base);
      for (let k = hits.length - 1; k >= 0; k--) {
        const s = base + hits[k]!;
        if (s >= from) return s;
        break;
      }
    }
    return undefined;
  }

  private row(line: number, chunk: number, part: number, data?: Buffer): DecodedRow {
    const key = `${line}:${chunk}:${part}`;
    let r = this.rowCache.get(key);
    if (r) return r;
    if (!data) {
      const got = this.st.rowData!.get(line, chunk, part) as { data: Buffer } | undefined;
      if (!got) throw traceCorrupt(this.path, `memory row of line 0x${(line * 64).toString(16)} in chunk ${chunk} is missing`);
      data = got.data;
    }
    r = decodeLineRow(this.rowBlob(data, line, chunk), line, this.chunkFirsts[chunk] ?? 0, this.label, this.compactRows);
    this.rowsDecoded++;
    this.rowCache.set(key, r);
    this.rowCacheWrites += r.writes.length;
    // the oldest out, the newest kept
    while (this.rowCache.size > 1 && (this.rowCache.size > ROW_CACHE || this.rowCacheWrites > ROW_CACHE_WRITES)) {
      const [oldest, row] = this.rowCache.entries().next().value!;
      this.rowCache.delete(oldest);
      this.rowCacheWrites -= row.writes.length;
    }
    return r;
  }

  /** The trace as corruption messages name it (see trace-check.ts). */
  private get label(): string {
    return `trace "${this.path}"`;
  }

  /** A memory row's `data`, checked to be a BLOB of at least the two 64-byte images. */
  private rowBlob(v: unknown, line: number, chunk: number): Buffer {
    const what = `memory row of line 0x${(line * 64).toString(16)} in chunk ${chunk}`;
    const b = blobOf(this.path, v, `the data of the ${what}`);
    if (b.length < 128) throw traceCorrupt(this.path, `${what} has ${b.length} bytes, expected at least 128`);
    return b;
  }

  /**
   * The rows file (rowsFile) opened for writing, made when missing, and attached as `rows`, its
   * chunks made counted as made here: whether it could be (else nothing is left attached and
   * the rows stay in memory).
   */
  private attachRows(db: Db): boolean {
    const file = this.rowsFile!;
    let w: Db | undefined;
    try {
      w = new Database(file, { timeout: 10_000 });
      w.pragma('journal_mode = WAL');
      // derived data: a power loss may lose the last chunks made (made again when asked), never
      // leave the file inconsistent (WAL with NORMAL syncs at checkpoints, not every commit)
      w.pragma('synchronous = NORMAL');
      w.exec(ROWS_DDL);
      db.prepare('ATTACH DATABASE ? AS rows').run(file);
      db.exec(ROWS_VIEWS);
      const made = db.prepare('SELECT m.chunk AS chunk FROM rows.made m JOIN main.chunk c ON c.id = m.chunk AND c.first = m.first AND c.count = m.count').all() as { chunk: number }[];
      for (const r of made) this.indexed.add(r.chunk);
    } catch {
      // not a file this process can read and write (read-only, damaged, another's): rows in memory
      w?.close();
      for (const sql of ['DROP VIEW IF EXISTS temp.mem', 'DROP VIEW IF EXISTS temp.mem_mask', 'DROP VIEW IF EXISTS temp.lazy_pcs', 'DETACH DATABASE rows']) {
        try {
          db.exec(sql);
        } catch {
          // nothing to undo
        }
      }
      this.indexed.clear();
      this.rowsFile = undefined;
      return false;
    }
    this.rowsDb = w;
    removeRowsFiles(this.path, this.meta.get('history_id') as string);
    return true;
  }

  /**
   * Before the first rows of a trace whose rows file does not exist yet: the file made and
   * attached in place of the temporary tables (empty still), or kept in memory when it cannot be.
   */
  private startRowsFile(): void {
    const db = this.db;
    db.exec('DROP TABLE temp.mem; DROP TABLE temp.mem_mask' + (this.lazyPcs ? '; DROP TABLE temp.lazy_pcs' : ''));
    if (this.attachRows(db)) Object.assign(this.st, this.rowInserts());
    else {
      db.exec(LAZY_DDL);
      if (this.lazyPcs) db.exec(LAZY_PCS_DDL);
    }
  }

  /** Where made rows are inserted: the rows file through its own connection, or the temporary tables. */
  private rowInserts(): Record<string, Database.Statement> {
    const made = this.rowsDb ? '' : 'temp.';
    const w = (sql: string) => (this.rowsDb ? this.rowsDb.prepare(sql) : this.db.prepare(sql));
    return {
      // (OR IGNORE: another reader of the rows file may have made the same chunk meanwhile)
      insMem: w(`INSERT OR IGNORE INTO ${made}mem (chunk, line, part, data) VALUES (?, ?, ?, ?)`),
      insMask: w(`INSERT OR IGNORE INTO ${made}mem_mask (line, chunk, part, first, mask) VALUES (?, ?, ?, ?, ?)`),
      ...(this.lazyPcs ? { insPcs: w(`INSERT OR IGNORE INTO ${made}lazy_pcs (chunk, pcs) VALUES (?, ?)`) } : {}),
      ...(this.rowsDb ? { insMade: w('INSERT OR REPLACE INTO made (chunk, first, count) VALUES (?, ?, ?)') } : {}),
    };
  }

  /** The connection that writes the rows file (attachRows). */
  private rowsDb: Db | undefined;

  /**
   * The rows file of this trace's history (rows-file.ts) the rows made are kept in, when there
   * is one; undefined (rows in temporary tables) when rows are not kept, the trace names no
   * history (written before schema 9), or the file cannot be read and written.
   */
  get rowsPath(): string | undefined {
    return this.rowsDb ? this.rowsFile : undefined;
  }

  /** The rows file to keep rows in (rowsPath once it is attached). */
  private rowsFile: string | undefined;

  /**
   * Chunk `c`'s memory rows, made now if this is a lazy-rows trace whose chunk has none yet: the
   * chunk re-executed (~20 ms for 2^18 instructions), its rows put in the rows file (or the
   * temporary tables: attachRows).
   */
  ensureRows(c: number): void {
    if (!this.lazyRows || this.indexed.has(c) || c < 0 || c >= this.chunkCount) return;
    const { rows, pcs } = this.chunkIndexer().rows(c);
    if (this.rowsFile && !this.rowsDb && this.indexed.size === 0) this.startRowsFile();
    const st = this.st;
    const write = () => {
      if (this.lazyPcs) st.insPcs!.run(c, pcs);
      for (const r of encodedRows(rows, this.chunkFirsts[c]!)) {
        st.insMem!.run(c, r.line, r.part, r.data);
        st.insMask!.run(r.line, c, r.part, r.first, r.mask);
      }
      st.insMade?.run(c, this.chunkFirsts[c]!, this.chunkCountOf(c));
    };
    if (this.rowsDb) {
      const file = this.rowsPath;
      guard(this.path, () => {
        try {
          this.rowsDb!.transaction(write)();
        } catch (e) {
          throw new DbgError('io', `cannot keep the memory rows of trace "${this.path}" in ${file}: ${(e as Error).message} (DBG_KEEP_ROWS=0 keeps them in memory)`);
        }
      });
    } else this.db.transaction(write)();
    this.indexed.add(c);
    this.chunkRowCounts.delete(c);
  }

  /** What makes this lazy-rows trace's memory rows (chunk-indexer.ts). */
  private chunkIndexer(): ChunkIndexer {
    if (!this.indexer) {
      if (!indexerFor) throw new DbgError('state', `trace "${this.path}" keeps its memory as page images; this command cannot re-execute it to answer memory queries`);
      this.indexer = indexerFor(this);
    }
    return this.indexer;
  }

  /** Chunks whose memory rows a lazy-rows trace made so far (tests read it). */
  get chunksIndexed(): number {
    return this.indexed.size;
  }

  /** Whether physical page `page` was written in chunk `c` (a lazy-rows trace: it has an image there). */
  private pageWritten(page: number, c: number): boolean {
    return this.st.pageIn!.get(page, c) !== undefined;
  }

  /**
   * The chunks in which physical page `page` was written, from chunk `from` towards the start
   * (`down`) or up to chunk `to`, in that order, a batch at a time (the caller makes rows between
   * batches: no statement may be open then).
   */
  private *pageChunks(page: number, from: number, down: boolean, to = from): Generator<number> {
    for (let batch = 4, at = from; ; batch = Math.min(batch * 4, 4096)) {
      const rows = (down ? this.st.pageChunksDown!.raw().all(page, at, batch) : this.st.pageChunksUp!.raw().all(page, at, to, batch)) as [unknown][];
      for (const [c] of rows) yield intOf(this.path, c, `page.chunk of page ${page}`, 0, this.chunkCount - 1);
      if (rows.length < batch) return;
      const last = Number(rows[rows.length - 1]![0]);
      at = down ? last - 1 : last + 1;
      if (down ? at < 0 : at > to) return;
    }
  }

  /**
   * Physical page `page` (4 KiB) as it was when chunk `c` began, before the inputs stored with
   * it: its image at the end of the last chunk before `c` that wrote it, else as recording began.
   * Shared: callers copy what they keep.
   */
  pageAtChunkStart(page: number, c: number): Buffer {
    const got = this.st.pageBefore!.get(page, c) as { chunk: unknown; data: unknown } | undefined;
    if (!got) {
      const init = this.st.ramPage!.get(page) as { data: unknown } | undefined;
      return init ? blobOf(this.path, init.data, `ram_init.data of page ${page}`, 4096) : ZERO_PAGE;
    }
    const key = `${page}:${String(got.chunk)}`;
    let img = this.pageCache.get(key);
    if (!img) {
      const what = `the image of page 0x${(page * 4096).toString(16)} in chunk ${String(got.chunk)}`;
      const packed = blobOf(this.path, got.data, what);
      try {
        img = inflateRawSync(packed, { maxOutputLength: 4096 });
      } catch (e) {
        throw traceCorrupt(this.path, `${what} does not inflate (${(e as Error).message})`);
      }
      if (img.length !== 4096) throw traceCorrupt(this.path, `${what} inflates to ${img.length} bytes, expected 4096`);
      if (this.pageCache.size >= PAGE_CACHE) this.pageCache.delete(this.pageCache.keys().next().value!);
      this.pageCache.set(key, img);
    }
    return img;
  }

  /**
   * The physical pages whose contents differ between the start of chunk `a` and the start of
   * chunk `b` (or may: written in chunks between), with RAM mid-chunk in `a` counted as `a`'s
   * start plus what `a` wrote: the pages a move of RAM between them rewrites.
   */
  pagesBetween(a: number, b: number, midA: boolean): number[] {
    const lo = Math.min(a, b);
    const hi = b > a ? b - 1 : midA ? a : a - 1;
    if (hi < lo) return [];
    return (this.st.pagesOfChunks!.raw().all(lo, hi) as [unknown][]).map(([p]) => intOf(this.path, p, 'page.page', 0, 2 ** 40));
  }

  /**
   * The last write that touched physical byte `phys` and is part of the state at position
   * `at` (a guest write by an instruction before `at`, or a host write at or before it).
   */
  lastWrite(phys: number, at: number): LineWrite | undefined {
    return this.lastWriteInRange(phys, 1, at);
  }

  /** The last write touching any byte of [phys, phys + len) that is part of the state at `at`. */
  lastWriteInRange(phys: number, len: number, at: number): LineWrite | undefined {
    if (this.chunkCount === 0 || len <= 0) return undefined;
    let best: LineWrite | undefined;
    const top = this.chunkIndexOf(at);
    for (let line = Math.floor(phys / 64); line * 64 < phys + len; line++) {
      const lo = Math.max(phys - line * 64, 0);
      const hi = Math.min(phys + len - line * 64, 64);
      // Rows whose mask shows a write to [lo, hi): an index walk over the line's chunks.
      let mask = 0n;
      for (let b = lo; b < hi; b++) mask |= 1n << BigInt(b);
      if (this.lazyRows) {
        const hit = this.lazyLastWrite(line, lo, hi, BigInt.asIntN(64, mask), at, top);
        if (hit && (!best || writeOrder(hit) > writeOrder(best))) best = hit;
        continue;
      }
      let chunk = top;
      let part = 0x7fffffff;
      for (;;) {
        const got = this.st.lastMasked!.get(line, chunk, part, at, BigInt.asIntN(64, mask)) as { chunk: number; part: number; data: Buffer } | undefined;
        if (!got) break;
        const hit = rowLastWrite(this.rowBlob(got.data, line, got.chunk), line, this.chunkFirsts[got.chunk]!, lo, hi, at, this.label, this.compactRows);
        if (hit) {
          if (!best || writeOrder(hit) > writeOrder(best)) best = hit;
          break;
        }
        // Its writes to the range all come after `at`: look at the part before.
        if (got.part > 0) {
          chunk = got.chunk;
          part = got.part - 1;
        } else if (got.chunk > 0) {
          chunk = got.chunk - 1;
          part = 0x7fffffff;
        } else break;
      }
    }
    return best;
  }

  /**
   * lastWriteInRange's walk in a lazy-rows trace: back over the chunks that wrote the line's page
   * (their rows made as it goes), newest first; within each, back over its parts.
   */
  private lazyLastWrite(line: number, lo: number, hi: number, mask: bigint, at: number, top: number): LineWrite | undefined {
    for (const c of this.pageChunks(Math.floor(line / 64), top, true)) {
      this.ensureRows(c);
      let part = 0x7fffffff;
      for (;;) {
        const got = this.st.lastMasked!.get(line, c, part, at, mask) as { chunk: number; part: number; data: Buffer } | undefined;
        if (!got || got.chunk !== c) break;
        const hit = rowLastWrite(this.rowBlob(got.data, line, c), line, this.chunkFirsts[c]!, lo, hi, at, this.label, this.compactRows);
        if (hit) return hit;
        if (got.part === 0) break;
        part = got.part - 1;
      }
    }
    return undefined;
  }

  /** Every write touching [phys, phys + len) in [from, to) positions, oldest first (at most `limit`). */
  writesTo(phys: number, len: number, from = this.first, to = this.end, limit = Infinity): LineWrite[] {
    const out: LineWrite[] = [];
    if (limit <= 0) return out;
    for (const w of this.iterWrites(phys, len, from, to)) {
      out.push(w);
      if (out.length >= limit) break;
    }
    return out;
  }

  /**
   * The writes of writesTo, produced lazily: each line of the range is a stream of its memory
   * rows in (chunk, part) order, which is execution order; a row is read and decoded only when
   * the merge reaches it, and rows whose mask shows no write to the range's bytes are skipped on
   * the index. The cost is that of the rows holding the writes taken (plus one index seek per
   * line to find where `from` lies), never that of the whole history of the range.
   */
  *iterWrites(phys: number, len: number, from = this.first, to = this.end): Generator<LineWrite> {
    if (this.chunkCount === 0 || len <= 0 || from >= to) return;
    const l0 = Math.floor(phys / 64);
    const l1 = Math.floor((phys + len - 1) / 64);
    const heads: { next: IteratorResult<LineWrite>; it: Generator<LineWrite> }[] = [];
    for (let line = l0; line <= l1; line++) {
      const it = this.lineWrites(line, Math.max(phys - line * 64, 0), Math.min(phys + len - line * 64, 64), from, to);
      heads.push({ it, next: it.next() });
    }
    for (;;) {
      // The oldest head; on a tie the lower line (one instruction's write split at a line boundary).
      let best: (typeof heads)[number] | undefined;
      for (const h of heads) if (!h.next.done && (!best || writeOrder(h.next.value) < writeOrder(best.next.value as LineWrite))) best = h;
      if (!best) return;
      yield best.next.value as LineWrite;
      best.next = best.it.next();
    }
  }

  /** The writes touching bytes [lo, hi) of `line` with from <= seq < to, oldest first, row by row. */
  private *lineWrites(line: number, lo: number, hi: number, from: number, to: number): Generator<LineWrite> {
    let mask = 0n;
    for (let b = lo; b < hi; b++) mask |= 1n << BigInt(b);
    const m = BigInt.asIntN(64, mask);
    const lastChunk = this.chunkIndexOf(Math.max(to - 1, this.first));
    if (this.lazyRows) {
      // the chunks that wrote the line's page, as the merge reaches each: from its rows when they
      // are made, else from a re-execution of the chunk that goes as far as the writes taken
      for (const c of this.pageChunks(Math.floor(line / 64), this.firstChunkReaching(from), false, lastChunk)) {
        const writes = this.indexed.has(c) ? this.madeLineWrites(c, line, m) : this.drivenLineWrites(c, line);
        for (const w of writes) {
          if (w.seq >= to) return;
          if (w.seq >= from && w.phys - line * 64 < hi && w.phys - line * 64 + w.len > lo) yield w;
        }
      }
      return;
    }
    let chunk = this.firstChunkReaching(from);
    let part = 0;
    if (from > this.first) {
      // Rows before the last one that starts before `from` end before it: start there.
      const r = this.st.partBefore!.get(line, chunk, this.chunkIndexOf(from), from, m) as { chunk: number; part: number } | undefined;
      if (r) ({ chunk, part } = r);
    }
    // Rows in batches that grow (2, 4, ... 256): a few rows for the first writes, few queries for many.
    for (let batch = 2; ; batch = Math.min(batch * 2, 256)) {
      const rows = this.st.nextMasked!.all(line, chunk, part, lastChunk, m, batch) as { chunk: number; part: number }[];
      for (const r of rows) {
        for (const w of this.row(line, r.chunk, r.part).writes) {
          if (w.seq >= to) return;
          if (w.seq >= from && w.phys - line * 64 < hi && w.phys - line * 64 + w.len > lo) yield w;
        }
      }
      if (rows.length < batch) return;
      chunk = rows[rows.length - 1]!.chunk;
      part = rows[rows.length - 1]!.part + 1;
    }
  }

  /** The writes of `line` in chunk `c` of a lazy-rows trace whose rows are made, in rows whose mask meets `mask`. */
  private *madeLineWrites(c: number, line: number, mask: bigint): Generator<LineWrite> {
    const rows = this.st.nextMasked!.all(line, c, 0, c, mask, 0x7fffffff) as { chunk: number; part: number }[];
    for (const r of rows) yield* this.row(line, r.chunk, r.part).writes;
  }

  /**
   * The writes of `line` in chunk `c` of a lazy-rows trace whose rows are not made yet, as a
   * re-execution of the chunk reaches them (ChunkIndexer.lineReading): a generator left early leaves
   * the chunk re-executed no further than the stretch of its last write taken (close() finishes
   * it); one taken to the chunk's end keeps the chunk's rows, as ensureRows does.
   */
  private *drivenLineWrites(c: number, line: number): Generator<LineWrite> {
    const reading = this.chunkIndexer().lineReading(c, line);
    const base = this.chunkFirsts[c]!;
    for (;;) {
      const { rows, done } = reading.more();
      for (const r of encodedRows(rows, base)) {
        if (r.line !== BigInt(line)) throw traceCorrupt(this.path, `re-executing chunk ${c} for the writes to line 0x${(line * 64).toString(16)} gave a row of line 0x${(r.line * 64n).toString(16)}`);
        const { writes } = decodeLineRow(this.rowBlob(r.data, line, c), line, base, this.label, this.compactRows);
        this.rowsDecoded++;
        yield* writes;
      }
      if (done) {
        this.ensureRows(c);
        return;
      }
    }
  }

  /** The 64 bytes of physical line `line` at position `at`. */
  lineAt(line: number, at: number): Buffer {
    if (this.lazyRows && this.chunkCount) {
      // The chunk holding `at` when it wrote the line's page, else the page as the chunk began.
      const chunk = this.chunkIndexOf(at);
      if (this.pageWritten(Math.floor(line / 64), chunk)) {
        this.ensureRows(chunk);
        if (this.st.firstPart!.get(line, chunk)) return this.stateInChunk(line, chunk, at);
      }
      const off = (line % 64) * 64;
      return Buffer.from(this.pageAtChunkStart(Math.floor(line / 64), chunk).subarray(off, off + 64));
    }
    const chunk = this.chunkCount ? this.chunkIndexOf(at) : -1;
    const fin = chunk >= 0 ? (this.st.lastRow!.get(line, chunk) as { chunk: number; part: number; ok: number; final: Buffer } | undefined) : undefined;
    // A row of an earlier chunk: every write in it is before `at`, its final state is the answer.
    if (fin && fin.chunk < chunk) {
      // (A damaged row: what rowBlob() says of it.)
      if (!fin.ok) this.rowBlob((this.st.rowData!.get(line, fin.chunk, fin.part) as { data: unknown }).data, line, fin.chunk);
      return fin.final;
    }
    if (fin) return this.stateInChunk(line, chunk, at);
    // Never written at or before `at`: as the first row found it, or as recording began.
    const first = this.st.firstRow!.get(line) as { chunk: number; data: Buffer } | undefined;
    if (first) return Buffer.from(this.rowBlob(first.data, line, first.chunk).subarray(0, 64));
    return this.initialLine(line);
  }

  /**
   * Line `line` at `at` from the rows of `chunk`, the chunk holding `at`, which has rows of the
   * line: the last part whose first write is part of the state at `at` (found on the index: a
   * part whose first write is at `at` itself counts when that write is a host write), else the
   * chunk's first part (its initial image).
   */
  private stateInChunk(line: number, chunk: number, at: number): Buffer {
    const base = this.chunkFirsts[chunk]!;
    let use = this.st.partAt!.get(line, chunk, at) as { part: number; first: number; data: Buffer } | undefined;
    if (use && use.first === at && rowFirstOrder(this.rowBlob(use.data, line, chunk), base, this.label) > stateBound(at)) {
      use = this.st.partAt!.get(line, chunk, at - 1) as typeof use;
    }
    use ??= this.st.firstPart!.get(line, chunk) as typeof use;
    if (!use) throw traceCorrupt(this.path, `the memory rows of line 0x${(line * 64).toString(16)} in chunk ${chunk} are missing (the table and its index disagree)`);
    return rowStateAt(this.rowBlob(use.data, line, chunk), base, at, this.label, this.compactRows);
  }

  /** The line as RAM held it when recording began. */
  initialLine(line: number): Buffer {
    const page = this.st.ramPage!.get(Math.floor(line / 64)) as { data: Buffer } | undefined;
    if (!page) return Buffer.alloc(64);
    const off = (line % 64) * 64;
    return Buffer.from(blobOf(this.path, page.data, `ram_init.data of page ${Math.floor(line / 64)}`, 4096).subarray(off, off + 64));
  }

  /** Every non-zero page of RAM as recording began: [physical page number, 4 KiB]. */
  *initialPages(): Iterable<[number, Buffer]> {
    for (const r of this.db.prepare('SELECT page, data FROM ram_init ORDER BY page').iterate() as Iterable<{ page: unknown; data: unknown }>) {
      const page = intOf(this.path, r.page, 'ram_init.page', 0, 2 ** 40);
      yield [page, blobOf(this.path, r.data, `ram_init.data of page ${page}`, 4096)];
    }
  }

  /**
   * Whether rowImages() can be used: from schema 7 on, rows are stored in (chunk, line, part)
   * order, so a pass over a range of chunks reads the table front to back.
   */
  get rowsByChunk(): boolean {
    return this.version >= 7;
  }

  /**
   * Every memory row of chunks [c0, c1], a chunk at a time in storage order, as its lines and
   * their 64-byte images back to back: forward, each row's final image, oldest chunk and row first
   * (the last image of a line is its state at the end of c1); backward, each row's initial image,
   * newest first (the last is its state before c0). A far move of RAM copies these instead of
   * looking each line up (~20 us a line: a recorded xv6 boot wrote 3.5 M lines, minutes of
   * lookups). SQLite concatenates a chunk's images into one blob (group_concat keeps a blob's
   * bytes as text of the database's UTF-8 encoding; the cast takes them back): a row and a buffer
   * each cost ~4x the time, most of it in the garbage collector.
   */
  *rowImages(c0: number, c1: number, forward: boolean): Iterable<[number[], Buffer]> {
    const order = forward ? 'line, part' : 'line DESC, part DESC';
    const whole = this.db.prepare(
      `SELECT count(*) AS n, sum(typeof(data) <> 'blob' OR length(data) < 128) AS bad, group_concat(line, ',' ORDER BY ${order}) AS lines, ` +
        `CAST(group_concat(substr(data, ${forward ? 65 : 1}, 64), '' ORDER BY ${order}) AS BLOB) AS images FROM mem WHERE chunk = ?`,
    );
    const utf8 = (this.db.pragma('encoding', { simple: true }) as string) === 'UTF-8';
    for (let c = forward ? c0 : c1; forward ? c <= c1 : c >= c0; c += forward ? 1 : -1) {
      this.ensureRows(c);
      const r = whole.get(c) as { n: number; bad: number | null; lines: unknown; images: unknown };
      if (!r.n) continue;
      const lines = typeof r.lines === 'string' ? r.lines.split(',').map(Number) : [];
      const images = r.images;
      if (!utf8 || r.bad || lines.length !== r.n || !(images instanceof Buffer) || images.length !== 64 * r.n || !lines.every((l) => Number.isSafeInteger(l) && l >= 0)) {
        // a damaged row, or a layout this pass does not know: row by row, as lineAt reads them
        const rows = this.db.prepare(`SELECT line, data FROM mem WHERE chunk = ? ORDER BY ${order}`).all(c) as { line: unknown; data: unknown }[];
        const out = Buffer.alloc(64 * rows.length);
        const ls = rows.map((row, i) => {
          const l = intOf(this.path, row.line, 'mem.line', 0, 2 ** 52);
          this.rowBlob(row.data, l, c).copy(out, 64 * i, forward ? 64 : 0, forward ? 128 : 64);
          return l;
        });
        yield [ls, out];
        continue;
      }
      yield [lines, images];
    }
  }

  /** Lines written in chunks [c0, c1]. */
  linesWritten(c0: number, c1: number): number[] {
    for (let c = c0; this.lazyRows && c <= c1; c++) this.ensureRows(c);
    return (this.st.linesOfChunks!.raw().all(c0, c1) as [number][]).map((r) => r[0]);
  }

  /** Whether chunk `chunk` holds a host write (an input's) at position `seq` to the byte at `phys`. */
  hostWriteIn(chunk: number, phys: number, seq: number): boolean {
    this.ensureRows(chunk);
    const line = Math.floor(phys / 64);
    const parts = this.st.rowsOfLineInChunk!.all(chunk, line) as { part: number; data: Buffer }[];
    return parts.some((p) => this.row(line, chunk, p.part, p.data).writes.some((w) => w.host && w.seq === seq && w.phys <= phys && phys < w.phys + w.len));
  }

  /** Every write of chunk `id`, in execution order, with their orders (see line-rows.ts). */
  chunkWrites(id: number): ChunkWrites {
    this.ensureRows(id);
    const all: LineWrite[] = [];
    for (const r of this.st.rowsOfChunk!.all(id) as { line: number; part: number; data: Buffer }[]) {
      for (const w of decodeLineRow(this.rowBlob(r.data, r.line, id), r.line, this.chunkFirsts[id]!, this.label, this.compactRows).writes) all.push(w);
    }
    // Sort by (order, index) with one native numeric sort: key = order * 2^22 + index.
    if (all.length >= 1 << 22) throw traceCorrupt(this.path, `chunk ${id} holds ${all.length} writes, more than this reader handles (4M)`);
    const base = 2 * this.chunkFirsts[id]!;
    const keys = new Float64Array(all.length);
    for (let i = 0; i < all.length; i++) keys[i] = (writeOrder(all[i]!) - base) * 4194304 + i;
    keys.sort();
    const list: LineWrite[] = new Array(all.length);
    const order = new Float64Array(all.length);
    for (let i = 0; i < keys.length; i++) {
      const w = all[keys[i]! % 4194304]!;
      list[i] = w;
      order[i] = writeOrder(w);
    }
    return { list, order };
  }

  /** The newest checkpoint of `vcpu` at or before `seq`. */
  checkpoint(vcpu: number, seq: number): Checkpoint | undefined {
    const r = this.st.ckpt!.get(vcpu, seq) as CkptRow | undefined;
    return r && this.decodeCheckpoint(r, r.vcpu);
  }

  /** The checkpoint of row `id` (checkpointRows). */
  checkpointById(id: number): Checkpoint | undefined {
    const r = this.st.ckptById!.get(id) as CkptRow | undefined;
    return r && this.decodeCheckpoint(r, intOf(this.path, r.vcpu, `the vCPU of checkpoint row ${id}`, 0, this.info.vcpus - 1));
  }

  /** A checkpoint row's image, a delta one decoded against its chunk's full image of `vcpu`. */
  private decodeCheckpoint(r: CkptRow, vcpu: number): Checkpoint {
    const what = `checkpoint at seq ${r.seq} of vCPU ${vcpu}`;
    intOf(this.path, r.seq, `the seq of a checkpoint of vCPU ${vcpu}`);
    intOf(this.path, r.flags, `the flags of the ${what}`, 0, 3);
    intOf(this.path, r.chunk, `the chunk of the ${what}`, 0, Math.max(this.chunkCount - 1, 0));
    let image = blobOf(this.path, r.data, `the data of the ${what}`);
    if (!(r.flags & 1)) {
      const k = `${vcpu}:${r.chunk}`;
      let key = this.keyCache.get(k);
      if (!key) {
        const first = this.chunkFirsts[r.chunk]!;
        key = (this.st.ckptKey!.get(vcpu, first, first + this.chunkCounts[r.chunk]!, r.chunk) ?? this.st.ckptKeyAnywhere!.get(vcpu, r.chunk)) as { data: Buffer } | undefined;
        if (key) {
          if (this.keyCache.size >= 64) this.keyCache.delete(this.keyCache.keys().next().value!);
          this.keyCache.set(k, key);
        }
      }
      if (!key) throw traceCorrupt(this.path, `checkpoint at seq ${r.seq} of vCPU ${vcpu}: its chunk's full image is missing`);
      try {
        image = nativeRecorder().ckptDecode(blobOf(this.path, key.data, `the full image of the ${what}`), image);
      } catch (e) {
        throw traceCorrupt(this.path, `checkpoint at seq ${r.seq}: ${(e as Error).message}`);
      }
    }
    return { seq: r.seq, vcpu: r.vcpu, idle: (r.flags & 2) !== 0, image };
  }

  /** Chunk `chunk`'s checkpoints without their images (checkpointById), in the order they were taken. */
  checkpointRows(chunk: number): { id: number; seq: number; vcpu: number; flags: number }[] {
    const rows: { id: number; seq: unknown; vcpu: unknown; flags: unknown }[] = [];
    const first = this.chunkFirsts[chunk] ?? 0;
    const end = first + (this.chunkCounts[chunk] ?? 0);
    for (let v = 0; v < this.info.vcpus; v++) rows.push(...(this.st.ckptRows!.all(v, first, end, chunk) as typeof rows));
    rows.sort((a, b) => Number(a.seq) - Number(b.seq) || a.id - b.id);
    return rows.map((r) => {
      const seq = intOf(this.path, r.seq, `the seq of a checkpoint of chunk ${chunk}`);
      return { id: r.id, seq, vcpu: intOf(this.path, r.vcpu, `the vCPU of the checkpoint at seq ${seq}`, 0, this.info.vcpus - 1), flags: intOf(this.path, r.flags, `the flags of the checkpoint at seq ${seq}`, 0, 3) };
    });
  }

  /** The first checkpoint seq (any vCPU) after `seq`, or undefined. */
  nextCheckpointSeq(seq: number): number | undefined {
    const r = this.db.prepare('SELECT min(seq) AS s FROM ckpt WHERE seq > ?').get(seq) as { s: number | null };
    return r.s ?? undefined;
  }

  /**
   * The recording session's stops (schema 5; a trace of an older schema has none), oldest first.
   * `seq` is the next instruction that was to run: at the end of the history it is `end`.
   */
  stops(): StopRow[] {
    if (this.version < 5) return [];
    const rows = this.db.prepare('SELECT seq, vcpu, kind, id, addr FROM stop ORDER BY seq, rowid').safeIntegers(true).all() as { seq: bigint; vcpu: bigint; kind: unknown; id: bigint | null; addr: bigint | null }[];
    return rows.map((r) => {
      if (typeof r.kind !== 'string') throw traceCorrupt(this.path, `the stop at seq ${r.seq}: its kind is not text`);
      return {
        seq: intOf(this.path, r.seq, 'a stop seq'),
        vcpu: intOf(this.path, r.vcpu, `the vCPU of the stop at seq ${r.seq}`, 0, this.info.vcpus - 1),
        kind: r.kind,
        id: r.id === null ? null : Number(r.id),
        addr: r.addr === null ? null : BigInt.asUintN(64, r.addr),
      };
    });
  }

  /**
   * The value vCPU `vcpu`'s local APIC ID register reads as at `seq` (the newest 'lapic-id' input
   * of the vCPU at or before it: schema 9), or undefined in a trace that tells none (an older
   * one records every read of the register as an 'mmio-read'). A reader of a growing trace reads
   * only the inputs stored since it last looked.
   */
  lapicIdAt(vcpu: number, seq: number): number | undefined {
    const m = this.lapicIds;
    // (read again from the start when the history was cut: ::discard)
    if (!m || this.end + 1 < m.to) this.lapicIds = { to: this.first, byVcpu: [] };
    const ids = this.lapicIds!;
    const st = this.st.lapicIds;
    if (ids.to <= this.end && st) {
      for (const r of st.all(ids.to, this.end + 1) as { seq: number; vcpu: number | null; detail: unknown }[]) {
        let v: unknown;
        try {
          v = typeof r.detail === 'string' ? (JSON.parse(r.detail) as { value?: unknown }).value : undefined;
        } catch {
          v = undefined;
        }
        const i = { seq: intOf(this.path, r.seq, 'an input seq'), vcpu: r.vcpu === null ? null : intOf(this.path, r.vcpu, `the vCPU of the input at seq ${r.seq}`, 0, this.info.vcpus - 1) };
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw traceCorrupt(this.path, `the lapic-id input at seq ${i.seq}: its value ${JSON.stringify(v)} is not a 32-bit register value`);
        (ids.byVcpu[i.vcpu ?? 0] ??= []).push({ seq: i.seq, value: v });
      }
      ids.to = this.end + 1;
    }
    const list = ids.byVcpu[vcpu];
    if (!list) return undefined;
    let lo = 0;
    let hi = list.length; // the first at seq > `seq`
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.seq <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo > 0 ? list[lo - 1]!.value : undefined;
  }

  /** The 'lapic-id' inputs read so far, by vCPU in seq order, and the seq they were read to (lapicIdAt). */
  private lapicIds?: { to: number; byVcpu: { seq: number; value: number }[][] };

  /** Whether the trace tells its local APIC IDs ('lapic-id' inputs, schema 9) instead of recording their reads. */
  get tellsLapicIds(): boolean {
    return this.version >= 9;
  }

  inputs(from: number, to: number): InputRow[] {
    // (raw rows: a paced drive of a boot's chunk reads hundreds, objects made once each)
    const rows = this.st.inputs!.raw().all(from, to) as [number, number | null, unknown, unknown, unknown?][];
    const out: InputRow[] = new Array(rows.length);
    for (let k = 0; k < rows.length; k++) {
      const [seq, vcpu, kind, text, chunk] = rows[k]!;
      let detail: unknown;
      try {
        detail = typeof text === 'string' ? JSON.parse(text) : undefined;
      } catch {
        detail = undefined;
      }
      if (typeof kind !== 'string' || typeof detail !== 'object' || detail === null) {
        throw traceCorrupt(this.path, `the input at seq ${seq}: kind ${typeof kind === 'string' ? kind : '(not text)'}, detail ${typeof text === 'string' ? 'is not a JSON object' : 'is not text'}`);
      }
      out[k] = {
        seq: intOf(this.path, seq, 'an input seq'),
        vcpu: vcpu === null ? null : intOf(this.path, vcpu, `the vCPU of the input at seq ${seq}`, 0, this.info.vcpus - 1),
        kind,
        detail: detail as Record<string, unknown>,
        ...(chunk === undefined || chunk === null ? {} : { chunk: intOf(this.path, chunk, `the chunk of the input at seq ${seq}`, 0, Math.max(this.chunkCount - 1, 0)) }),
      };
    }
    return out;
  }

  /** vCPU count recorded (1 when the meta does not say). */
  get vcpus(): number {
    return this.info.vcpus;
  }
}

const ZERO_PAGE = Buffer.alloc(4096);

/** A compressed trace (`k.trace.xz`): say how to decompress it rather than "not a dbg trace". */
function refuseCompressed(path: string): void {
  const head = Buffer.alloc(8);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, 8, 0);
  } finally {
    closeSync(fd);
  }
  const compressed = compressedInput(path, head, (plain) => `dbg replay ${plain}`);
  if (compressed) throw compressed;
}
