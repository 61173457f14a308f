/**
 * Schema version 7 keys memory rows by chunk and stores a row's final image once; a version 6
 * trace (keyed by line, `final` in a column of its own) reads to the same history.
 * Schema version 6 keeps, in a memory row's write records, only the bytes a write changed; a
 * version 5 trace (every byte written) reads to the same writes.
 * Schema version 5 adds the stop table (the recording session's stops); a version 4 trace, which
 * has none, reads as one whose session never stopped.
 * Schema version 4 stores each chunk's pc stream deflated; a version 3 trace (the stream as it
 * is) still reads, to the same instructions. A pc stream that does not inflate, or inflates past
 * what its instruction count can take, is a one-line trace error.
 */
import Database from 'better-sqlite3';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateRawSync, deflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuestMachine } from '../../bench/recording-guest.js';
import { DbgError } from '../../src/common/errors.js';
import { EmulatorRecorder } from '../../src/store/emulator-recorder.js';
import { decodeLineRow, encodeLineRow } from '../../src/store/line-rows.js';
import { TRACE_SCHEMA_VERSION } from '../../src/store/schema.js';
import { TraceReader } from '../../src/store/trace-reader.js';
import { ReplayMachine } from '../../src/targets/replay/replay-machine.js';

const dir = mkdtempSync(join(tmpdir(), 'dbg-trace-versions-'));
const v4 = join(dir, 'v5.trace');

beforeAll(() => {
  const m = new GuestMachine();
  const rec = new EmulatorRecorder(v4, { chunkTarget: 50_000 });
  m.setObserver(rec);
  m.run(200_000);
  rec.onStop(123_456n, 0, { kind: 'breakpoint', id: 3, addr: 0xffffffff80100000n });
  m.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A copy of the trace with `edit` applied to every chunk's pcs and user_version set; below
 * version 7, `mem` is keyed by line and has the `final` column; below version 6, its memory rows
 * hold every byte written (schema.ts).
 */
function variant(name: string, version: number, edit: (pcs: Buffer, id: number) => Buffer): string {
  const p = join(dir, name);
  copyFileSync(v4, p);
  const db = new Database(p);
  for (const r of db.prepare('SELECT id, pcs FROM chunk').all() as { id: number; pcs: Buffer }[]) db.prepare('UPDATE chunk SET pcs = ? WHERE id = ?').run(edit(r.pcs, r.id), r.id);
  if (version < 7) memByLine(db);
  if (version < 6) plainRows(db);
  db.pragma(`user_version = ${version}`);
  db.close();
  return p;
}

/** The `mem` table as schema 6 and older lay it out: keyed by line, the final image in a column of its own. */
function memByLine(db: Database.Database): void {
  db.exec(`
    DROP VIEW memory_lines;
    CREATE TABLE mem6 (line INTEGER NOT NULL, chunk INTEGER NOT NULL, part INTEGER NOT NULL, final BLOB NOT NULL, data BLOB NOT NULL,
                       PRIMARY KEY (line, chunk, part)) WITHOUT ROWID;
    INSERT INTO mem6 SELECT line, chunk, part, substr(data, 65, 64), data FROM mem;
    DROP TABLE mem;
    ALTER TABLE mem6 RENAME TO mem;
    CREATE INDEX mem_by_chunk ON mem (chunk);
    CREATE VIEW memory_lines AS
      SELECT m.line * 64 AS phys_addr, m.chunk, m.part, c.first AS chunk_first_seq, k.mask AS bytes_written_mask, length(m.data) AS bytes
      FROM mem m JOIN chunk c ON c.id = m.chunk JOIN mem_mask k ON k.line = m.line AND k.chunk = m.chunk AND k.part = m.part;
  `);
}

/** Memory rows as schema 5 and older write them: every byte of every write. */
function plainRows(db: Database.Database): void {
  const firsts = new Map((db.prepare('SELECT id, first FROM chunk').all() as { id: number; first: number }[]).map((c) => [c.id, c.first]));
  const upd = db.prepare('UPDATE mem SET data = ? WHERE line = ? AND chunk = ? AND part = ?');
  for (const r of db.prepare('SELECT line, chunk, part, data FROM mem').all() as { line: number; chunk: number; part: number; data: Buffer }[]) {
    const first = firsts.get(r.chunk)!;
    const d = decodeLineRow(r.data, r.line, first);
    upd.run(encodeLineRow(d.init, d.writes.map((w) => ({ seq: w.seq, host: w.host, off: w.phys - r.line * 64, data: w.data })), first, false), r.line, r.chunk, r.part);
  }
}

describe('trace schema versions', () => {
  it('version 4 deflates the pc streams; a version 3 trace reads to the same instructions and replays', () => {
    const r4 = TraceReader.open(v4);
    expect(r4.version).toBe(TRACE_SCHEMA_VERSION);
    const v3 = variant('v3.trace', 3, (pcs) => inflateRawSync(pcs));
    const r3 = TraceReader.open(v3);
    expect(r3.version).toBe(3);
    expect([r3.first, r3.end, r3.chunkCount]).toEqual([r4.first, r4.end, r4.chunkCount]);
    const stored = (p: string) => (new Database(p, { readonly: true }).prepare('SELECT sum(length(pcs)) AS n FROM chunk').get() as { n: number }).n;
    expect(stored(v4)).toBeLessThan(stored(v3));
    for (let id = 0; id < r4.chunkCount; id++) {
      expect(Buffer.from(r3.pcs(id).pc.buffer).equals(Buffer.from(r4.pcs(id).pc.buffer))).toBe(true);
    }
    const m3 = new ReplayMachine(r3);
    const m4 = new ReplayMachine(r4);
    for (const s of [r4.first, 12_345, 99_999, r4.end - 1]) {
      m3.seek(s);
      m4.seek(s);
      expect(m3.registers(0)).toEqual(m4.registers(0));
    }
    m3.close();
    m4.close();
    r3.close();
    r4.close();
  });

  it('version 7 keys memory rows by chunk, without the final image twice; a version 6 trace reads to the same lines, writes and registers', () => {
    const r7 = TraceReader.open(v4);
    const r6 = TraceReader.open(variant('v6.trace', 6, (pcs) => pcs));
    expect(r6.version).toBe(6);
    const cols = (r: TraceReader) => (r.db.prepare('SELECT name FROM pragma_table_info(?)').all('mem') as { name: string }[]).map((c) => c.name);
    expect(cols(r7)).toEqual(['chunk', 'line', 'part', 'data']);
    expect(cols(r6)).toEqual(['line', 'chunk', 'part', 'final', 'data']);
    const lines = (r7.db.prepare('SELECT DISTINCT line FROM mem_mask ORDER BY line').all() as { line: number }[]).map((l) => l.line);
    expect(lines.length).toBeGreaterThan(10);
    for (const line of lines.slice(0, 40)) {
      expect(r6.writesTo(line * 64, 64)).toEqual(r7.writesTo(line * 64, 64));
      for (const at of [r7.first, r7.first + 1, 77_777, 150_001, r7.end]) {
        expect(r6.lineAt(line, at).equals(r7.lineAt(line, at))).toBe(true);
        expect(r6.lastWriteInRange(line * 64, 64, at)).toEqual(r7.lastWriteInRange(line * 64, 64, at));
      }
    }
    expect(r6.sql('SELECT count(*), sum(bytes) FROM memory_lines').rows).toEqual(r7.sql('SELECT count(*), sum(bytes) FROM memory_lines').rows);
    const m6 = new ReplayMachine(r6);
    const m7 = new ReplayMachine(r7);
    for (const s of [r7.first, 54_321, 199_999]) {
      m6.seek(s);
      m7.seek(s);
      expect(m6.registers(0)).toEqual(m7.registers(0));
    }
    m6.close();
    m7.close();
    r6.close();
    r7.close();
  });

  it('version 6 keeps the bytes a write changed; a version 5 trace (every byte) reads to the same writes, smaller', () => {
    const r6 = TraceReader.open(v4);
    const v5 = variant('v5-all-bytes.trace', 5, (pcs) => pcs);
    const r5 = TraceReader.open(v5);
    expect(r5.version).toBe(5);
    const stored = (p: string) => (new Database(p, { readonly: true }).prepare('SELECT sum(length(data)) AS n FROM mem').get() as { n: number }).n;
    expect(stored(v4)).toBeLessThan(stored(v5));
    const lines = (new Database(v4, { readonly: true }).prepare('SELECT DISTINCT line FROM mem ORDER BY line').all() as { line: number }[]).map((l) => l.line);
    expect(lines.length).toBeGreaterThan(10);
    for (const line of lines.slice(0, 40)) {
      expect(r5.writesTo(line * 64, 64)).toEqual(r6.writesTo(line * 64, 64));
      for (const at of [r6.first + 1, 77_777, r6.end]) {
        expect(r5.lineAt(line, at).equals(r6.lineAt(line, at))).toBe(true);
        expect(r5.lastWriteInRange(line * 64, 64, at)).toEqual(r6.lastWriteInRange(line * 64, 64, at));
      }
    }
    r5.close();
    r6.close();
  });

  it('version 5 keeps the stops; a version 4 trace (no stop table) opens with none', () => {
    const r5 = TraceReader.open(v4);
    expect(r5.stops()).toEqual([{ seq: 123_456, vcpu: 0, kind: 'breakpoint', id: 3, addr: 0xffffffff80100000n }]);
    r5.close();
    const old = join(dir, 'v4-no-stops.trace');
    copyFileSync(v4, old);
    const db = new Database(old);
    db.exec('DROP VIEW stops; DROP TABLE stop');
    db.pragma('user_version = 4');
    db.close();
    const r4 = TraceReader.open(old);
    expect(r4.version).toBe(4);
    expect(r4.stops()).toEqual([]);
    expect([r4.first, r4.end]).toEqual([0, 200_000]);
    r4.close();
  });

  it('a pc stream that does not inflate, or inflates past its instruction count, is a one-line trace error', () => {
    const bad = variant('bad.trace', 4, (pcs, id) => (id === 1 ? Buffer.from('not deflate at all') : pcs));
    const big = variant('bomb.trace', 4, (pcs, id) => (id === 1 ? deflateRawSync(Buffer.alloc(64 << 20)) : pcs));
    for (const [p, msg] of [
      [bad, /^trace ".*bad\.trace": the pcs of chunk 1 do not inflate \(.+\)/],
      [big, /^trace ".*bomb\.trace": the pcs of chunk 1 do not inflate \(.*(larger|buffer).*\)/i],
    ] as const) {
      const r = TraceReader.open(p);
      let err: unknown;
      try {
        r.pcs(1);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DbgError);
      expect((err as Error).message).toMatch(msg);
      expect((err as Error).message).not.toContain('\n');
      r.close();
    }
  });
});
