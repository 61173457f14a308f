/**
 * The memory rows a reader makes of a lazy trace (by re-executing chunks) are kept beside the
 * trace (src/store/rows-file.ts: `T.rows-H`, H the trace's history id): a later reader of the
 * same history answers from them without re-executing, exactly as the first did. A history cut
 * by ::discard gets a new id, so rows of the old one are never read for it; a file that cannot
 * be used (damaged, not a regular file, DBG_KEEP_ROWS=0) leaves the rows in memory as before.
 */
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { EmulatorRecorder } from '../../src/store/emulator-recorder.js';
import { listTraces, removeTrace } from '../../src/store/trace-folder.js';
import { TraceReader } from '../../src/store/trace-reader.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import '../../src/targets/replay/chunk-indexer.js';
import { session } from '../targets/emulator-session.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const kernel = existsSync(join(root, 'dumps', 'kernel.elf')) ? join(root, 'dumps', 'kernel.elf') : join(root, 'dumps', 'kernel.prebuilt.elf');
const dir = mkdtempSync(join(tmpdir(), 'dbg-rows-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The sample kernel recorded lazily for 1.2 M instructions (chunks of 100,000). */
async function recorded(name: string): Promise<string> {
  const path = join(dir, `${name}.trace`);
  const t = EmulatorTarget.open(kernel, { ramBytes: 32 << 20, cmdline: 'nobug' });
  try {
    t.record(new EmulatorRecorder(path, { guest: 'kernel.elf', chunkTarget: 100_000, rows: 'lazy' }));
    for (let i = 0; i < 8; i++) expect((await t.machine.run({ vcpu: 0, count: 150_000 })).reason.kind).toBe('step');
  } finally {
    t.close();
  }
  return path;
}

const rowsFiles = (trace: string): string[] => readdirSync(dirname(trace)).filter((f) => f.startsWith(`${trace.split('/').at(-1)}.rows-`));
const indexerOf = (r: TraceReader): unknown => (r as unknown as { indexer?: unknown }).indexer;

/** A written address of chunk `c` and its first 4 writes in the history, as reader `r` answers. */
function answers(r: TraceReader, c: number): { addr: number; writes: string } {
  r.ensureRows(c);
  const line = Number(r.sql(`SELECT line FROM mem WHERE chunk = ${c} ORDER BY line LIMIT 1 OFFSET 3`).rows[0]![0]);
  const addr = line * 64;
  return { addr, writes: JSON.stringify(r.writesTo(addr, 8, r.first, r.end, 4), (_k, v) => (typeof v === 'bigint' ? v.toString() : Buffer.isBuffer(v) ? v.toString('hex') : v)) };
}

describe('memory rows kept beside a lazy trace', () => {
  it('serve the next reader of the same history: the same answers, nothing re-executed', async () => {
    const path = await recorded('kept');
    const a = TraceReader.open(path);
    const id = a.meta.get('history_id') as string;
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(a.rowsPath).toBeUndefined(); // no file until rows are made
    expect(rowsFiles(path)).toEqual([]);
    const first = answers(a, 5);
    expect(a.rowsPath).toBe(`${path}.rows-${id}`);
    expect(a.chunksIndexed).toBeGreaterThan(0);
    a.close();
    // (and the chunk whose first writes the query re-executed only as far as them: finished at close)
    const made = a.chunksIndexed;
    expect(rowsFiles(path)).toEqual([`kept.trace.rows-${id}`]); // its WAL folded in at close

    const b = TraceReader.open(path);
    expect(b.chunksIndexed).toBe(made);
    const again = answers(b, 5);
    expect(again).toEqual(first);
    expect(indexerOf(b)).toBeUndefined(); // answered from the file
    // raw SQL reads the kept rows as the trace's own tables
    expect(Number(b.sql('SELECT count(*) FROM mem WHERE chunk = 5').rows[0]![0])).toBeGreaterThan(0);
    b.close();

    // DBG_KEEP_ROWS=0: rows in memory only, made again
    process.env.DBG_KEEP_ROWS = '0';
    try {
      const c = TraceReader.open(path);
      expect(c.rowsPath).toBeUndefined();
      expect(c.chunksIndexed).toBe(0);
      expect(answers(c, 5)).toEqual(first);
      expect(indexerOf(c)).toBeDefined();
      c.close();
    } finally {
      delete process.env.DBG_KEEP_ROWS;
    }
    // counted with the trace in the trace folder, and removed with it
    expect(listTraces(dir).find((e) => e.path === path)!.bytes).toBeGreaterThan(statSync(path).size);
    removeTrace(path);
    expect(rowsFiles(path)).toEqual([]);
  });

  it('are not read for another history: a cut history (new id) starts a file of its own and the old one goes', async () => {
    const path = await recorded('cut');
    const a = TraceReader.open(path);
    answers(a, 3);
    const old = a.rowsPath!;
    a.close();
    // ::discard gives the trace a new history id (trace-db-writer.ts truncateAfter); here by hand
    const db = new Database(path);
    db.prepare("UPDATE meta SET value = ? WHERE key = 'history_id'").run('ab'.repeat(16));
    db.close();
    const b = TraceReader.open(path);
    expect(b.chunksIndexed).toBe(0);
    answers(b, 3);
    expect(b.rowsPath).toBe(`${path}.rows-${'ab'.repeat(16)}`);
    expect(existsSync(old)).toBe(false);
    b.close();
    // a made chunk whose place in the trace differs is not counted as made
    const f = new Database(`${path}.rows-${'ab'.repeat(16)}`);
    f.prepare('DELETE FROM made').run();
    f.prepare('INSERT INTO made (chunk, first, count) VALUES (2, 1, 1)').run();
    f.close();
    const c = TraceReader.open(path);
    expect(c.rowsPath).toBe(`${path}.rows-${'ab'.repeat(16)}`);
    expect(c.chunksIndexed).toBe(0);
    c.close();
  });

  it('a rows file that cannot be used leaves the rows in memory: damaged, not a regular file, a history id that is not one', async () => {
    const path = await recorded('bad');
    const probe = TraceReader.open(path);
    const id = probe.meta.get('history_id') as string;
    const want = answers(probe, 2);
    probe.close();
    const file = `${path}.rows-${id}`;

    rmSync(file);
    writeFileSync(file, 'not a database, '.repeat(512));
    const a = TraceReader.open(path);
    expect(a.rowsPath).toBeUndefined();
    expect(answers(a, 2)).toEqual(want);
    a.close();

    rmSync(file);
    execFileSync('mkfifo', [file]);
    const b = TraceReader.open(path); // never opened: a FIFO would block
    expect(b.rowsPath).toBeUndefined();
    expect(answers(b, 2)).toEqual(want);
    b.close();
    rmSync(file);

    const db = new Database(path);
    db.prepare("UPDATE meta SET value = '../../x' WHERE key = 'history_id'").run();
    db.close();
    const c = TraceReader.open(path);
    expect(c.rowsPath).toBeUndefined();
    expect(answers(c, 2)).toEqual(want);
    c.close();
    expect(rowsFiles(path)).toEqual([]);
  });

  it('::discard gives the recording a new history id', async () => {
    const path = join(dir, 'discard.trace');
    const t = EmulatorTarget.open(kernel, { ramBytes: 32 << 20, cmdline: 'nobug' });
    try {
      t.record(new EmulatorRecorder(path, { guest: 'kernel.elf', chunkTarget: 100_000, rows: 'lazy' }));
      for (let i = 0; i < 4; i++) expect((await t.machine.run({ vcpu: 0, count: 150_000 })).reason.kind).toBe('step');
      const s = session(t);
      await s.run('::seek -200000');
      const before = TraceReader.open(path);
      const id = before.meta.get('history_id');
      before.close();
      await s.run('::discard -f');
      const after = TraceReader.open(path);
      expect(after.meta.get('history_id')).toMatch(/^[0-9a-f]{32}$/);
      expect(after.meta.get('history_id')).not.toBe(id);
      after.close();
    } finally {
      t.close();
    }
  });
});
