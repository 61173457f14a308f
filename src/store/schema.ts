/**
 * The trace file: one SQLite database (WAL) per recording. This file and its siblings in
 * src/store are the only code of dbg that touches better-sqlite3.
 *
 * Layout (schema version 9, in `PRAGMA user_version`; version 8 was the same without the
 * `lapic-id` input (every read of the local APIC's ID an `mmio-read`), meta history_id and the
 * index input_lapic_ids; version 7 was as 8 without the `page`
 * table, meta memory_rows and input.chunk (every v7 trace's memory rows were made as it was
 * recorded); version 6 was as 7 with `mem` keyed by
 * (line, chunk, part), an index mem_by_chunk(chunk) instead of mem_lines, and a column `final`
 * repeating the row's final image; version 5 was as 6 with every memory
 * row's write records holding all the bytes written, not only those that changed (line-rows.ts);
 * version 4 was as 5 without the stop
 * table (a v4 trace reads as one where the session never stopped); version 3 also stored
 * chunk.pcs as it is, not deflated; version 2 also required chunk.first to be unique, so a chunk of
 * no instructions could not be followed by the next one; v2, v3 and v4 traces read as they are;
 * version 1 had one memory row per line and chunk, without parts):
 *
 *   meta(key, value)                      format = 'dbg-trace', arch, guest, ram_base, ram_size,
 *                                         context_size, checkpoint_every, chunk_target, created,
 *                                         history_id (32 hex digits, new whenever the history
 *                                         is cut: the rows readers keep beside the trace are
 *                                         of one history, rows-file.ts);
 *                                         memory_rows = 'lazy' for a lazy-rows trace (below),
 *                                         absent for an eager one, which says why in
 *                                         memory_rows_reason when lazy rows were asked for and
 *                                         the machine's RAM could not be tracked; pcs = 'lazy'
 *                                         when its chunks' pcs are empty too (a lazy recording
 *                                         hooks nothing: a reader makes a chunk's pcs with its
 *                                         rows, chunk-indexer.ts)
 *   chunk(id, first, count, pcs, ...)     one row per chunk of history: instructions
 *                                         [first, first + count), their pcs packed as nibbles
 *                                         (native/recorder/recorder.c) and deflated (raw
 *                                         DEFLATE, RFC 1951), write and line counts.
 *                                         Chunks are consecutive in id order (first = previous
 *                                         first + previous count). A chunk may hold no
 *                                         instruction (count 0): one cut where nothing ran since
 *                                         the last cut (a history query before the guest runs,
 *                                         a debugger write between two queries); it carries the
 *                                         checkpoints and host writes at its `first`, and the
 *                                         chunk holding instruction S is the last one whose
 *                                         first <= S.
 *   mem(chunk, line, part, data)          (none in a lazy-rows trace: see `page`)
 *                                         WITHOUT ROWID, PRIMARY KEY (chunk, line, part): for
 *                                         every 64-byte physical line written in a chunk (in
 *                                         parts of ~2 KiB of records for hot lines), in `data`
 *                                         the line before the part's first write, the line
 *                                         after its last write, and its writes (seq, offset,
 *                                         new bytes; line-rows.ts). Keyed chunk first, so a
 *                                         chunk's rows are appended at the end of the B-tree
 *                                         (keyed by line, each chunk rewrote pages all over it).
 *                                         Index mem_lines(chunk, line): the lines written in a
 *                                         range of chunks without reading their rows.
 *   mem_mask(line, chunk, part, first, mask) WITHOUT ROWID: the same keys by line, the seq of
 *                                         the part's first write, and bit i of `mask` set when
 *                                         byte i of the line was written in the part: the
 *                                         index by line of `mem` (~200 rows a page) that "who
 *                                         last wrote A" walks back without touching the blobs.
 *                                         "Last write to A at or before S" = one index seek on
 *                                         (A >> 6, chunk <= chunk(S)) + decoding a ~100 B blob.
 *   ckpt(id, seq, vcpu, chunk, flags, data) register checkpoints (uc_context images) at slice
 *                                         starts, slice ends (flags & 2) and every
 *                                         `checkpoint_every` instructions the exact engine
 *                                         runs (none inside a stretch recorded from the fast
 *                                         engine: slices are at most a quantum); flags & 1 = full
 *                                         image, else RLE(image XOR the chunk's full image of
 *                                         that vCPU). Index ckpt_by_vcpu(vcpu, seq).
 *   ram_init(page, data)                  4 KiB pages of RAM that were not zero when recording
 *                                         began (physical page number)
 *   page(chunk, page, data)               a lazy-rows trace's memory (schema 8): the recorder
 *                                         hooks no write (issue 10: a write hook alone costs
 *                                         the guest 1.7x) and stores no mem or mem_mask rows;
 *                                         for every 4 KiB page of RAM written in a chunk (the
 *                                         kernel tracks them: native/recorder/recorder.c,
 *                                         "dirty pages"), the page (physical address >> 12) as
 *                                         it is at the end of the chunk, after its last
 *                                         instruction and every input stored with it, as raw
 *                                         DEFLATE (RFC 1951) of exactly 4096 bytes. A reader
 *                                         makes a chunk's memory rows when it needs them by
 *                                         re-executing the chunk from its start (ram_init and
 *                                         the pages of earlier chunks). Unique index
 *                                         page_by_page(page, chunk): a page's state at a chunk's
 *                                         end; index page_by_chunk(chunk, page).
 *   input(seq, vcpu, kind, detail, chunk) every nondeterministic input (interrupt, port read,
 *                                         device register read 'mmio-read' {phys, size, value}
 *                                         (older traces have none), a local APIC ID
 *                                         'lapic-id' {value} (schema 9: from its seq the
 *                                         vCPU's ID register, 0xfee00020, reads as value, and
 *                                         its 4-byte reads are not 'mmio-read' inputs; older
 *                                         traces record every read; partial index
 *                                         input_lapic_ids), cpu start, debugger
 *                                         write), detail as JSON; chunk: the id of the chunk it
 *                                         was stored with (schema 8; older traces have no such
 *                                         column): an input at the seq where a chunk ends may
 *                                         belong to it or to the next
 *   stop(seq, vcpu, kind, id, addr)       every stop of the recording session (schema 5): seq
 *                                         of the next instruction to run, the vCPU, the stop
 *                                         reason's kind (breakpoint, watchpoint, step,
 *                                         interrupted, halted, fault...), the breakpoint or
 *                                         watchpoint id and its address (else NULL; addr is
 *                                         SQLite's signed 64-bit integer, as pcs are)
 *
 * Views for raw SQL (`::sql`, `dbg query`) are created in every trace; readers also get the
 * table-valued functions steps(from, to), writes(addr, len) and activity(buckets) (see
 * trace-reader.ts), and a `calls` table derived on first use, attached beside the trace, never
 * written into it (calls-db.ts).
 */

import Database from 'better-sqlite3';
import { closeSync, existsSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { newHistoryId, removeRowsFiles } from './rows-file.js';
import { testKillPoint } from './test-kill.js';
import { DbgError, errors } from '../common/errors.js';

export type Db = Database.Database;

export const TRACE_SCHEMA_VERSION = 9;
/**
 * Older versions this dbg reads as they are (see the layout above): readers name `mem`'s
 * columns and find rows by line through mem_mask, which reads both keyings of `mem`.
 */
const READABLE_VERSIONS = [2, 3, 4, 5, 6, 7, 8, TRACE_SCHEMA_VERSION];
export const TRACE_FORMAT = 'dbg-trace';

const DDL = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value) ;
CREATE TABLE chunk (
  id INTEGER PRIMARY KEY,
  first INTEGER NOT NULL,
  count INTEGER NOT NULL,
  pcs BLOB NOT NULL,
  writes INTEGER NOT NULL,
  lines INTEGER NOT NULL
);
CREATE TABLE mem (
  chunk INTEGER NOT NULL,
  line INTEGER NOT NULL,
  part INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (chunk, line, part)
) WITHOUT ROWID;
CREATE TABLE mem_mask (
  line INTEGER NOT NULL,
  chunk INTEGER NOT NULL,
  part INTEGER NOT NULL,
  first INTEGER NOT NULL,
  mask INTEGER NOT NULL,
  PRIMARY KEY (line, chunk, part)
) WITHOUT ROWID;
CREATE TABLE ckpt (
  id INTEGER PRIMARY KEY,
  seq INTEGER NOT NULL,
  vcpu INTEGER NOT NULL,
  chunk INTEGER NOT NULL,
  flags INTEGER NOT NULL,
  data BLOB NOT NULL
);
CREATE INDEX mem_lines ON mem (chunk, line);
CREATE INDEX ckpt_by_vcpu ON ckpt (vcpu, seq);
CREATE TABLE ram_init (page INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE page (chunk INTEGER NOT NULL, page INTEGER NOT NULL, data BLOB NOT NULL);
CREATE UNIQUE INDEX page_by_page ON page (page, chunk);
CREATE INDEX page_by_chunk ON page (chunk, page);
CREATE TABLE input (
  id INTEGER PRIMARY KEY,
  seq INTEGER NOT NULL,
  vcpu INTEGER,
  kind TEXT NOT NULL,
  detail TEXT NOT NULL,
  chunk INTEGER
);
CREATE INDEX input_by_seq ON input (seq);
CREATE INDEX input_lapic_ids ON input (seq) WHERE kind = 'lapic-id';
CREATE TABLE stop (
  seq INTEGER NOT NULL,
  vcpu INTEGER NOT NULL,
  kind TEXT NOT NULL,
  id INTEGER,
  addr INTEGER
);

-- Documented views for raw SQL.
CREATE VIEW chunks AS
  SELECT id AS chunk, first AS first_seq, first + count - 1 AS last_seq, count AS instructions,
         writes, lines, length(pcs) AS pc_bytes
  FROM chunk;
CREATE VIEW memory_lines AS
  SELECT m.line * 64 AS phys_addr, m.chunk, m.part, c.first AS chunk_first_seq, k.mask AS bytes_written_mask,
         length(m.data) AS bytes
  FROM mem m JOIN chunk c ON c.id = m.chunk JOIN mem_mask k ON k.line = m.line AND k.chunk = m.chunk AND k.part = m.part;
CREATE VIEW checkpoints AS
  SELECT seq, vcpu, chunk,
         CASE WHEN flags & 2 THEN 'slice-end' ELSE 'resume' END AS kind,
         (flags & 1) = 1 AS full_image, length(data) AS bytes
  FROM ckpt;
CREATE VIEW pages AS SELECT chunk, page * 4096 AS phys_addr, length(data) AS bytes FROM page;
CREATE VIEW inputs AS SELECT seq, vcpu, kind, detail FROM input;
CREATE VIEW stops AS SELECT seq, vcpu, kind, id, addr FROM stop;
CREATE VIEW summary AS
  SELECT (SELECT min(first) FROM chunk) AS first_seq,
         (SELECT max(first + count) - 1 FROM chunk) AS last_seq,
         (SELECT sum(count) FROM chunk) AS instructions,
         (SELECT sum(writes) FROM chunk) AS writes,
         (SELECT count(*) FROM chunk) AS chunks,
         (SELECT count(*) FROM ckpt) AS checkpoints,
         (SELECT count(*) FROM input) AS inputs;
`;

function sqliteFailure(path: string, e: unknown): DbgError {
  // One line: SQLite quotes the damaged schema text, newlines and all.
  const msg = ((e as Error).message ?? String(e)).replace(/\s+/g, ' ');
  const code = (e as { code?: string }).code ?? '';
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT' || /not a database|malformed/.test(msg)) {
    return errors.corrupt(path, `not a readable dbg trace (${msg}); the file is damaged or is not a trace`);
  }
  if (code === 'SQLITE_CANTOPEN') return new DbgError('io', `cannot open trace "${path}": ${msg}`);
  return new DbgError('io', `trace "${path}": ${msg}`);
}

/** Run `fn` translating SQLite's errors on `path` into DbgErrors. */
export function guard<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof DbgError) throw e;
    throw sqliteFailure(path, e);
  }
}

/**
 * A new, empty trace at `path` (refuses to overwrite an existing file unless `replace`), in WAL
 * mode, with its tables and meta; its writer opens it with openTraceForWriting(). The connection
 * returned keeps the -wal beside the file until it is closed (the last connection to close folds
 * the WAL into the file and removes it).
 */
export function createTrace(path: string, meta: Record<string, string | number>, replace = false): Db {
  if (existsSync(path) && !replace) throw errors.badInput(`trace "${path}" already exists: choose another file or remove it first`);
  // A WAL left beside no file (or beside the file replaced) is not this trace's, nor its rows.
  for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
  removeRowsFiles(path);
  return guard(path, () => {
    const db = new Database(path);
    try {
      // 8 KiB pages: a memory row of up to ~2 KiB stays on its B-tree page (no overflow page),
      // so hot lines take fewer rows and their 128 bytes of images (native/recorder: PART_BYTES).
      db.pragma('page_size = 8192');
      // While recording the trace is in WAL mode: each chunk is one transaction appended to the
      // -wal file, and a reader (time travel on the live guest) sees the last commit beside the
      // writer. finishTrace() folds the WAL back into one self-contained file.
      db.pragma('journal_mode = WAL');
      db.exec(DDL);
      const put = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
      db.transaction(() => {
        put.run('format', TRACE_FORMAT);
        put.run('history_id', newHistoryId());
        for (const [k, v] of Object.entries(meta)) put.run(k, v);
      })();
      db.pragma(`user_version = ${TRACE_SCHEMA_VERSION}`);
      return db;
    } catch (e) {
      db.close();
      throw e;
    }
  });
}

/** The connection that writes the trace createTrace() made at `path`. */
export function openTraceForWriting(path: string): Db {
  return guard(path, () => {
    const db = new Database(path, { fileMustExist: true });
    db.pragma('journal_mode = WAL');
    // NORMAL: a commit is in the WAL (the OS's page cache) when COMMIT returns, so a process that
    // dies (kill -9, a crash) loses nothing committed; the WAL is fsynced at each checkpoint and
    // at the end, so a power loss or an OS crash may lose the commits since the last checkpoint
    // but never leaves a damaged file (OFF could: a checkpoint could reach the disk before the
    // WAL frames it copies).
    db.pragma('synchronous = NORMAL');
    // Keep the pages of the indexes by line cached; checkpoint the WAL into the file in steps of
    // 4 MiB (512 pages of 8 KiB), on the writer's thread while the guest runs: what is left is
    // folded at the end, while the guest waits (xv6's 8 MiB boot trace: with steps of 16 MiB all
    // of it, ~55 ms; with 4 MiB ~20-40 ms); none at all under a crash test that wants a large one.
    db.pragma('cache_size = -65536');
    db.pragma(`wal_autocheckpoint = ${testKillPoint()?.at === 'checkpoint' ? 0 : 512}`);
    return db;
  });
}

/**
 * A trace whose writing ended: the WAL folded into the file and the file switched out of WAL
 * mode, so it is one self-contained file (copied alone, opened read-only anywhere). Switching
 * needs the only connection: when another one is open (a reader of this process, another dbg),
 * the file stays in WAL mode and the last one to close folds it (SQLite does on close). Errors
 * (a full disk) leave the trace as it is: it still opens to its last commit.
 */
export function finishTrace(db: Db): void {
  try {
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.pragma('journal_mode = DELETE');
  } catch {
    // Left in WAL mode: openTrace() recovers it.
  }
}

/** Paths this process writes traces to (their WAL is live: no recovery by a reader). */
const writing = new Set<string>();
export function markWriting(path: string, on: boolean): void {
  if (on) writing.add(resolve(path));
  else writing.delete(resolve(path));
}

/**
 * A trace left with a WAL (its writer was killed, ran out of disk, or is still running in another
 * process): fold the committed transactions into the file, as SQLite's own recovery would, and
 * make it self-contained. Nothing is lost: the WAL's committed frames become part of the file and
 * an uncommitted tail is dropped (it never was part of the trace). When the file cannot be
 * written (read-only, a full disk) it is left as it is and read with its WAL.
 */
function recoverWal(path: string): void {
  if (writing.has(resolve(path))) return;
  let size = 0;
  try {
    size = statSync(path + '-wal').size;
  } catch {
    return;
  }
  if (size === 0 && !existsSync(path + '-shm')) return;
  let db: Db | undefined;
  try {
    db = new Database(path, { fileMustExist: true, timeout: 0 });
    finishTrace(db);
  } catch {
    // Read with its WAL (below).
  } finally {
    db?.close();
  }
}

/**
 * Open an existing trace read-only. A trace left in WAL mode by a writer that died is recovered
 * first (recoverWal); otherwise reading never writes the file. Checks the format and the
 * schema version.
 */
export function openTrace(path: string): Db {
  if (!existsSync(path)) throw errors.notFound(`trace "${path}" does not exist`);
  recoverWal(path);
  checkHeader(path);
  return guard(path, () => {
    const db = new Database(path, { readonly: true, fileMustExist: true });
    try {
      const version = db.pragma('user_version', { simple: true }) as number;
      const hasMeta = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get() as { n: number };
      const format = hasMeta.n ? (db.prepare("SELECT value FROM meta WHERE key = 'format'").get() as { value: string } | undefined)?.value : undefined;
      if (format !== TRACE_FORMAT) {
        throw errors.corrupt(path, 'is a SQLite database but not a dbg trace (no meta.format = dbg-trace)');
      }
      if (!READABLE_VERSIONS.includes(version)) {
        throw new DbgError(
          'trace-version',
          `trace "${path}" has schema version ${version}, this dbg reads version ${TRACE_SCHEMA_VERSION}: ` +
            (version > TRACE_SCHEMA_VERSION
              ? 'it was written by a newer dbg; open it with that version'
              : 'it was written by an older dbg; open it with that version or record it again'),
        );
      }
      return db;
    } catch (e) {
      db.close();
      throw e;
    }
  });
}

/** The SQLite header says how many pages the main file holds: a shorter file was cut short. */
function checkHeader(path: string): void {
  const size = statSync(path).size;
  const wal = existsSync(path + '-wal') && statSync(path + '-wal').size > 0;
  if (size === 0 && wal) return; // everything is in the WAL still: SQLite reads it there
  const head = Buffer.alloc(100);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, 100, 0);
  } finally {
    closeSync(fd);
  }
  if (size < 100 || head.toString('latin1', 0, 16) !== 'SQLite format 3\0') {
    throw errors.corrupt(path, `not a dbg trace: ${size < 100 ? `only ${size} bytes` : 'no SQLite header'} (truncated or another kind of file)`);
  }
  const raw = head.readUInt16BE(16);
  const pageSize = raw === 1 ? 65536 : raw;
  const pages = head.readUInt32BE(28);
  // With a WAL, the pages the file lacks may be in it (a checkpoint cut short): SQLite reads them there.
  if (!wal && pages > 0 && size < pages * pageSize) {
    throw errors.corrupt(path, `truncated: the header says ${pages} pages of ${pageSize} bytes (${pages * pageSize} bytes) but the file has ${size}`);
  }
}

/** meta as a map. */
export function readMeta(db: Db): Map<string, string | number> {
  const rows = db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string | number }[];
  return new Map(rows.map((r) => [r.key, r.value]));
}

/** The most bytes one instruction takes in a pc stream (a jump: nibbles 0 0 s + 22 of a 64-bit zigzag delta + a vCPU switch). */
export const PCS_MAX_BYTES_PER_INSN = 16;
