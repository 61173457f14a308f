/**
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

/** A copy of the trace with `edit` applied to every chunk's pcs and user_version set. */
function variant(name: string, version: number, edit: (pcs: Buffer, id: number) => Buffer): string {
  const p = join(dir, name);
  copyFileSync(v4, p);
  const db = new Database(p);
  for (const r of db.prepare('SELECT id, pcs FROM chunk').all() as { id: number; pcs: Buffer }[]) db.prepare('UPDATE chunk SET pcs = ? WHERE id = ?').run(edit(r.pcs, r.id), r.id);
  db.pragma(`user_version = ${version}`);
  db.close();
  return p;
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
