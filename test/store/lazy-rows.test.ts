/**
 * Lazy-rows traces (trace-reader.ts, TraceReader.lazyRows): a recording that kept each chunk's
 * written pages instead of its memory rows, the rows made by re-executing a chunk when a query
 * first needs it (src/targets/replay/chunk-indexer.ts). The same recorded history read both ways
 * (an eager trace, and the lazy-rows trace made of it: test/helpers/lazy-trace.ts) must answer
 * every memory query alike, making rows only for the chunks a query needs.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtinModules } from '../../src/mdb/modules/index.js';
import { Session } from '../../src/mdb/session.js';
import { EmulatorRecorder } from '../../src/store/emulator-recorder.js';
import { TraceReader } from '../../src/store/trace-reader.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { ReplayMachine } from '../../src/targets/replay/replay-machine.js';
import '../../src/targets/replay/chunk-indexer.js';
import { toLazyRows } from '../helpers/lazy-trace.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const kernel = existsSync(join(root, 'dumps', 'kernel.elf')) ? join(root, 'dumps', 'kernel.elf') : join(root, 'dumps', 'kernel.prebuilt.elf');
const dir = process.env.KEEP_DIR ?? mkdtempSync(join(tmpdir(), 'dbg-lazy-rows-'));
const eagerPath = join(dir, 'eager.trace');
const lazyPath = join(dir, 'lazy.trace');
afterAll(() => { if (!process.env.KEEP_DIR) rmSync(dir, { recursive: true, force: true }); });

const recordedLazy = join(dir, 'recorded-lazy.trace');

/** The sample kernel on 2 vCPUs under a session of breakpoints, a debugger write and a watchpoint, recorded to `path`. */
async function record(path: string, rows: 'lazy' | 'eager'): Promise<void> {
  const t = EmulatorTarget.open(kernel, { ramBytes: 32 << 20, cpus: 2, cmdline: 'nobug' });
  try {
    t.record(new EmulatorRecorder(path, { guest: 'kernel.elf', chunkTarget: 200_000, rows }));
    const out = { jsonMode: false, line: () => {}, json: () => {}, warn: () => {} };
    const session = new Session(t, builtinModules);
    // breakpoints and a debugger write: inputs at slice boundaries and inside the history
    for (const c of ['timer_tick::bp', ':c', ':c', '::delete all', '<rsp=K', '<rsp,8::wr 0', ':s', 'jiffies::wp -w -L 8', ':c', '::delete all']) {
      await session.execute(c, out).catch(() => {});
    }
    for (let i = 0; i < 8; i++) await t.machine.run({ vcpu: 0, count: 150_000 });
  } finally {
    t.close();
  }
}

beforeAll(async () => {
  await record(eagerPath, 'eager');
  await record(recordedLazy, 'lazy');
  toLazyRows(eagerPath, lazyPath);
}, 120_000);

/**
 * The first byte where two RAMs differ, but for page-table entries' accessed and dirty bits
 * (0x20, 0x40): the CPU's page walk sets them without a write a recorder hears of, so an eager
 * trace never has them, and a re-execution sets them where it walks, as the live run did (a
 * recording's page images keep them).
 */
function ramDifference(a: Buffer, b: Buffer): string | undefined {
  if (a.equals(b)) return undefined;
  for (let i = 0; i < a.length; i++) if ((a[i]! ^ b[i]!) & ~0x60) return `byte 0x${i.toString(16)}: ${a[i]} vs ${b[i]}`;
  return undefined;
}

/** `fn` with the eager trace and `lazyFile` open and a replay machine on each; all closed after. */
function withTraces(lazyFile: string, fn: (eager: TraceReader, lazy: TraceReader, a: ReplayMachine, b: ReplayMachine) => void): void {
  const eager = TraceReader.open(eagerPath);
  const lazy = TraceReader.open(lazyFile);
  const a = new ReplayMachine(eager);
  const b = new ReplayMachine(lazy);
  try {
    fn(eager, lazy, a, b);
  } finally {
    a.close();
    b.close();
    eager.close();
    lazy.close();
  }
}

/** Both machines sent to each of `seqs` in turn hold the same registers and RAM there. */
function seekBoth(a: ReplayMachine, b: ReplayMachine, seqs: readonly number[]): void {
  for (const s of seqs) {
    a.seek(s);
    b.seek(s);
    const v = a.runningAt(s);
    expect(b.registers(v), `registers at ${s}`).toEqual(a.registers(v));
    expect(ramDifference(a.ram, b.ram), `RAM at ${s}`).toBeUndefined();
  }
}

/** A small deterministic generator (the same picks every run). */
function picker(seed: number): (n: number) => number {
  let x = seed;
  return (n) => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x % n;
  };
}

describe('a lazy-rows trace', () => {
  it('recorded (no memory rows, no pc stream) answers as the eager recording of the same run', () => {
    withTraces(recordedLazy, (eager, lazy, a, b) => {
      expect(lazy.lazyPcs).toBe(true);
      expect([lazy.first, lazy.end, lazy.chunkCount]).toEqual([eager.first, eager.end, eager.chunkCount]);
      expect(lazy.db.prepare('SELECT sum(length(pcs)) FROM chunk').pluck().get()).toBeLessThan(lazy.chunkCount * 16);
      const pick = picker(5);
      for (let i = 0; i < 4; i++) {
        const c = pick(lazy.chunkCount);
        const [x, y] = [eager.pcs(c), lazy.pcs(c)];
        expect(Buffer.from(y.pc.buffer).equals(Buffer.from(x.pc.buffer)) && Buffer.from(y.vcpu.buffer).equals(Buffer.from(x.vcpu.buffer)), `pcs of chunk ${c}`).toBe(true);
      }
      const lines = eager.linesWritten(0, eager.chunkCount - 1);
      for (let i = 0; i < 200; i++) {
        const line = lines[pick(lines.length)]!;
        const s = lazy.first + pick(lazy.end - lazy.first + 1);
        expect(ramDifference(eager.lineAt(line, s), lazy.lineAt(line, s)), `line 0x${(line * 64).toString(16)} at ${s}`).toBeUndefined();
        const phys = line * 64 + pick(64);
        expect(lazy.lastWrite(phys, s), `last write of 0x${phys.toString(16)} at ${s}`).toEqual(eager.lastWrite(phys, s));
        if (s < lazy.end) expect(b.runningAt(s), `vCPU at ${s}`).toBe(a.runningAt(s));
      }
      seekBoth(a, b, [lazy.end, lazy.first + 12345, lazy.end - 3, lazy.chunkFirst(2) + 7]);
    });
  }, 120_000);

  it('answers lineAt, lastWrite and writesTo as the eager trace does, making rows only for the chunks asked', () => {
    withTraces(lazyPath, (eager, lazy) => {
      expect(lazy.lazyRows).toBe(true);
      expect(lazy.chunkCount).toBeGreaterThan(5);
      expect(lazy.db.prepare('SELECT count(*) FROM main.mem').pluck().get()).toBe(0);
      expect(lazy.db.prepare("SELECT count(*) FROM input WHERE kind IN ('interrupt', 'memory-write')").pluck().get()).toBeGreaterThan(0);
      const lines = eager.linesWritten(0, eager.chunkCount - 1);
      const at = Math.floor((lazy.first + lazy.end) / 2);
      lazy.lineAt(lines[0]!, at);
      expect(lazy.chunksIndexed).toBeLessThanOrEqual(1);
      const pick = picker(7);
      for (let i = 0; i < 400; i++) {
        const line = lines[pick(lines.length)]!;
        const s = lazy.first + pick(lazy.end - lazy.first + 1);
        expect(lazy.lineAt(line, s).toString('hex'), `line 0x${(line * 64).toString(16)} at ${s}`).toBe(eager.lineAt(line, s).toString('hex'));
        const phys = line * 64 + pick(64);
        expect(lazy.lastWrite(phys, s), `last write of 0x${phys.toString(16)} at ${s}`).toEqual(eager.lastWrite(phys, s));
      }
      for (let i = 0; i < 40; i++) {
        const line = lines[pick(lines.length)]!;
        const from = lazy.first + pick(lazy.end - lazy.first);
        const to = from + pick(lazy.end - from + 1);
        expect(lazy.writesTo(line * 64, 64, from, to, 50)).toEqual(eager.writesTo(line * 64, 64, from, to, 50));
      }
      expect(lazy.chunksIndexed).toBeGreaterThan(1);
    });
  }, 120_000);

  it("answers a history's first writes re-executing a chunk only as far as them, and makes the same rows of it after", () => {
    // rows in memory: no file of another test's rows, none left for the next
    process.env.DBG_KEEP_ROWS = '0';
    const eager = TraceReader.open(eagerPath);
    const lazy = TraceReader.open(lazyPath);
    const json = (ws: unknown) => JSON.stringify(ws, (_k, v) => (Buffer.isBuffer(v) ? v.toString('hex') : v));
    try {
      // the most written line: its first writes are early in the first chunk that writes it
      const hot = Number(eager.sql('SELECT line FROM mem_mask GROUP BY line ORDER BY count(*) DESC LIMIT 1').rows[0]![0]);
      expect(json(lazy.writesTo(hot * 64, 8, lazy.first, lazy.end, 3))).toBe(json(eager.writesTo(hot * 64, 8, eager.first, eager.end, 3)));
      expect(lazy.chunksIndexed).toBe(0);
      const driving = (lazy as unknown as { indexer: { driving: number | undefined } }).indexer.driving;
      expect(driving).toBeDefined();

      // Lines of every chunk, from anywhere, a few writes each; and two lines' writes taken in
      // turn (the re-execution moves between their chunks and back).
      const lines = eager.linesWritten(0, eager.chunkCount - 1);
      const pick = picker(13);
      for (let i = 0; i < 30; i++) {
        const line = lines[pick(lines.length)]!;
        const addr = line * 64 + 8 * pick(8);
        const from = lazy.first + pick(lazy.end - lazy.first);
        const n = 1 + pick(6);
        expect(json(lazy.writesTo(addr, 8, from, lazy.end, n)), `${n} writes of 0x${addr.toString(16)} from ${from}`).toBe(json(eager.writesTo(addr, 8, from, eager.end, n)));
      }
      const [x, y] = [lines[pick(lines.length)]!, hot];
      const [lx, ly] = [lazy.iterWrites(x * 64, 64), lazy.iterWrites(y * 64 + 32, 64)];
      const [ex, ey] = [eager.iterWrites(x * 64, 64), eager.iterWrites(y * 64 + 32, 64)];
      for (let i = 0; i < 40; i++) {
        expect(json(lx.next()), `write ${i} of line 0x${(x * 64).toString(16)}`).toBe(json(ex.next()));
        expect(json(ly.next()), `write ${i} from 0x${(y * 64 + 32).toString(16)}`).toBe(json(ey.next()));
      }

      // A chunk re-executed a stretch at a time, then to its end, makes the rows of one
      // re-execution at once (as the eager recorder wrote them).
      const c = lazy.chunkIndexOf(lazy.writesTo(hot * 64, 8, lazy.first, lazy.end, 1)[0]!.seq);
      const probe = TraceReader.open(lazyPath);
      const whole = TraceReader.open(lazyPath);
      try {
        probe.writesTo(hot * 64, 8, probe.first, probe.end, 2);
        expect(probe.chunksIndexed).toBe(0);
        probe.ensureRows(c);
        whole.ensureRows(c);
        const rows = (r: TraceReader) => r.db.prepare('SELECT line, part, hex(data) FROM mem WHERE chunk = ? ORDER BY line, part').raw().all(c);
        expect(rows(probe)).toEqual(rows(whole));
        expect(rows(whole)).toEqual(rows(eager));
      } finally {
        probe.close();
        whole.close();
      }
    } finally {
      delete process.env.DBG_KEEP_ROWS;
      eager.close();
      lazy.close();
    }
  }, 120_000);

  it("reads a line's writes a stretch at a time across a chunk, and on after its drive was given up and begun again, as the eager trace has them", () => {
    // rows in memory: no file of another test's rows, none left for the next
    process.env.DBG_KEEP_ROWS = '0';
    const eager = TraceReader.open(eagerPath);
    const json = (ws: unknown) => JSON.stringify(ws, (_k, v) => (Buffer.isBuffer(v) ? v.toString('hex') : v));
    const lazy = [TraceReader.open(lazyPath), TraceReader.open(lazyPath)];
    try {
      // the most written line in the first chunk that writes it: writes all over the chunk, each
      // stretch's read out of the recorder's log from where the stretch before left off
      const hot = Number(eager.sql('SELECT line FROM mem_mask GROUP BY line ORDER BY count(*) DESC LIMIT 1').rows[0]![0]);
      const c = eager.chunkIndexOf(eager.writesTo(hot * 64, 64, eager.first, eager.end, 1)[0]!.seq);
      const [from, to] = [eager.chunkFirst(c), eager.chunkFirst(c) + eager.chunkCountOf(c)];
      const want = eager.writesTo(hot * 64, 64, from, to);
      expect(want[want.length - 1]!.seq - want[0]!.seq, 'writes over many stretches').toBeGreaterThan(8 * 8192);
      expect(json(lazy[0]!.writesTo(hot * 64, 64, from, to))).toBe(json(want));

      // Half of them, then a line of another chunk (whose drive gives this one's up), then the rest:
      // the chunk driven again from its start, its log read past the writes given.
      const other = eager.linesWritten(c + 1, c + 1).find((l) => l !== hot)!;
      const r = lazy[1]!;
      const it = r.iterWrites(hot * 64, 64, from, to);
      const got = [];
      for (let i = 0; i < want.length / 2; i++) got.push(it.next().value);
      const driving = () => (r as unknown as { indexer: { driving: number | undefined } }).indexer.driving;
      expect(driving()).toBe(c);
      expect(json(r.writesTo(other * 64, 64, eager.chunkFirst(c + 1), eager.end, 1))).toBe(json(eager.writesTo(other * 64, 64, eager.chunkFirst(c + 1), eager.end, 1)));
      expect(driving()).toBe(c + 1);
      for (const w of it) got.push(w);
      expect(json(got)).toBe(json(want));
    } finally {
      delete process.env.DBG_KEEP_ROWS;
      eager.close();
      for (const r of lazy) r.close();
    }
  }, 120_000);

  it('seeks to the same RAM and registers, forward and back, far and near', () => {
    withTraces(lazyPath, (_eager, lazy, a, b) => {
      const pick = picker(11);
      const seqs = [lazy.end, lazy.first, lazy.end - 1, lazy.end - 2, lazy.chunkFirst(3), lazy.chunkFirst(3) - 1];
      for (let i = 0; i < 14; i++) seqs.push(lazy.first + pick(lazy.end - lazy.first));
      seekBoth(a, b, seqs);
    });
  }, 120_000);
});
