/**
 * Bad input: a trace of another schema version, a truncated or damaged trace, something that is
 * not a trace, a seq out of range, bad SQL and SQL that would write: each a clear DbgError, and
 * no read ever changes a byte of the trace.
 */
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuestMachine } from '../../bench/recording-guest.js';
import { DbgError } from '../../src/common/errors.js';
import { EmulatorRecorder } from '../../src/store/emulator-recorder.js';
import { TraceReader } from '../../src/store/trace-reader.js';
import { ReplayTarget } from '../../src/targets/replay/replay-target.js';

const dir = mkdtempSync(join(tmpdir(), 'dbg-trace-errors-'));
const good = join(dir, 'good.trace');

function expectError(fn: () => unknown, code: string, msg: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DbgError);
    expect((e as DbgError).code).toBe(code);
    expect((e as DbgError).message).toMatch(msg);
    return;
  }
  throw new Error('expected an error');
}

const digest = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

beforeAll(() => {
  const m = new GuestMachine();
  m.setObserver(new EmulatorRecorder(good, { chunkTarget: 50_000 }));
  m.run(300_000);
  m.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('trace bad input', () => {
  it('another schema version: says which was found, which is expected, and what to do', () => {
    const p = join(dir, 'v10.trace');
    copyFileSync(good, p);
    const fd = openSync(p, 'r+');
    const v = Buffer.alloc(4);
    v.writeUInt32BE(10);
    writeSync(fd, v, 0, 4, 60); // PRAGMA user_version lives at offset 60 of the header
    closeSync(fd);
    expectError(() => TraceReader.open(p), 'trace-version', /has schema version 10, this dbg reads version 9: it was written by a newer dbg; open it with that version/);
    v.writeUInt32BE(1);
    const fd2 = openSync(p, 'r+');
    writeSync(fd2, v, 0, 4, 60);
    closeSync(fd2);
    expectError(() => TraceReader.open(p), 'trace-version', /has schema version 1, this dbg reads version 9: it was written by an older dbg; open it with that version or record it again/);
  });

  it('a truncated trace', () => {
    const p = join(dir, 'cut.trace');
    copyFileSync(good, p);
    truncateSync(p, Math.floor(readFileSync(p).length / 2));
    expectError(() => TraceReader.open(p), 'corrupt', /cut\.trace: truncated: the header says \d+ pages of 8192 bytes \(\d+ bytes\) but the file has \d+/);
  });

  it('damaged pages: reading them reports corruption, never garbage', () => {
    const p = join(dir, 'bad.trace');
    copyFileSync(good, p);
    const b = readFileSync(p);
    // every third page from the third on (the first two hold the schema and meta)
    const page = b.readUInt16BE(16);
    for (let off = 2 * page; off < b.length; off += page * 3) b.fill(0x5a, off, off + page);
    writeFileSync(p, b);
    expectError(() => {
      const r = TraceReader.open(p);
      for (let id = 0; id < r.chunkCount; id++) r.pcs(id);
      r.sql('SELECT count(*), sum(length(data)) FROM mem');
    }, 'corrupt', /bad\.trace"?: (not a readable dbg trace|.*malformed|chunk)/);
  });

  it('not a trace', () => {
    const p = join(dir, 'notes.txt');
    writeFileSync(p, 'hello '.repeat(100));
    expectError(() => TraceReader.open(p), 'corrupt', /notes\.txt: not a dbg trace: no SQLite header/);
    expectError(() => TraceReader.open(join(dir, 'missing.trace')), 'not-found', /missing\.trace" does not exist/);
  });

  it('seq out of range, bad SQL, writing SQL: clear errors, and the trace is not changed by any read', async () => {
    const before = digest(good);
    const t = ReplayTarget.open(good);
    await expect(t.caps.reverse!.seek(300_001n)).rejects.toThrow(/seq 300001 is outside the recorded history \[0, 300000\]/);
    await expect(t.caps.reverse!.seek(-1n)).rejects.toThrow(/seq -1 is outside the recorded history/);
    expectError(() => t.caps.history!.sql('SELEC 1'), 'bad-input', /bad SQL: near "SELEC": syntax error/);
    expectError(() => t.caps.history!.sql('DELETE FROM chunk'), 'bad-input', /the trace is read-only here: only queries that return rows/);
    expectError(() => t.caps.history!.sql('SELECT nosuch FROM chunk'), 'bad-input', /bad SQL: no such column: nosuch/);
    expect(t.caps.history!.sql('SELECT instructions FROM summary').rows[0]![0]).toBe(300_000n);
    await t.caps.reverse!.seek(1234n);
    await t.caps.reverse!.stepBack(1);
    t.caps.history!.whoWrote(0x100000n, 64);
    t.close();
    expect(digest(good)).toBe(before);
    expect(existsSync(good + '-wal') ? readFileSync(good + '-wal').length : 0).toBe(0);
  });
});
