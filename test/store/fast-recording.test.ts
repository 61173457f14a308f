/**
 * Recording from the fast engine (block by block, native/common/block-sink.h) against recording
 * every instruction on the exact engine: the same guest and the same commands, recorded both
 * ways, must give the same history, byte for byte: chunk boundaries, pc streams, memory rows,
 * inputs and stops. Only the checkpoints differ (the fast engine takes none inside a slice).
 * Breakpoints, write watchpoints and single steps make the machine hand over to the exact engine
 * inside blocks, on two vCPUs. The recorder's own idea of the last instruction stored (which a
 * live reverse step takes instead of decoding the chunk) is checked against the trace, right
 * after a flush: the trace is written on a thread of its own (trace-writer.ts), and what it
 * stores there is what it stores on the recording thread.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { builtinModules } from '../../src/mdb/modules/index.js';
import { Session } from '../../src/mdb/session.js';
import { EmulatorRecorder } from '../../src/store/emulator-recorder.js';
import { TraceReader } from '../../src/store/trace-reader.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const kernel = existsSync(join(root, 'dumps', 'kernel.elf')) ? join(root, 'dumps', 'kernel.elf') : join(root, 'dumps', 'kernel.prebuilt.elf');
const dir = mkdtempSync(join(tmpdir(), 'dbg-fast-recording-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const commands = [
  'timer_tick::bp',
  ':c',
  ':c',
  ':s',
  '::step over',
  '::delete all',
  'jiffies::wp -w -L 8',
  ':c',
  ':c',
  '::delete all',
  'tasks::wp -w -L 64',
  ':c',
  '::delete all',
  'log_append::bp',
  ':c',
  '::delete all',
];

async function record(path: string, fast: boolean, cpus: number): Promise<string> {
  const t = EmulatorTarget.open(kernel, { ramBytes: 32 << 20, cpus, cmdline: 'nobug' });
  try {
    const rec = new EmulatorRecorder(path, { guest: 'kernel.elf', chunkTarget: 200_000, fast, rows: 'eager' });
    t.record(rec);
    const status = t.machine.engines();
    const out = { jsonMode: false, line: () => {}, json: () => {}, warn: () => {} };
    const session = new Session(t, builtinModules);
    for (const c of commands) await session.execute(c, out);
    for (let i = 0; i < 8; i++) expect((await t.machine.run({ vcpu: 0, count: 150_000 })).reason.kind).toBe('step');
    // the last instruction a live reverse step checks without decoding the chunk
    rec.flush();
    const r = TraceReader.open(path);
    expect(rec.lastStored).toEqual({ seq: r.end - 1, ...r.step(r.end - 1) });
    r.close();
    return status;
  } finally {
    t.close();
  }
}

function history(path: string): Record<string, unknown[]> {
  const r = TraceReader.open(path, false);
  try {
    const all = (q: string) => r.db.prepare(q).raw().all();
    return {
      chunks: all('SELECT id, first, count, pcs, writes, lines FROM chunk ORDER BY id'),
      mem: all('SELECT line, chunk, part, data FROM mem ORDER BY line, chunk, part'),
      masks: all('SELECT line, chunk, part, first, mask FROM mem_mask ORDER BY line, chunk, part'),
      inputs: all('SELECT seq, vcpu, kind, detail FROM input ORDER BY rowid'),
      stops: all('SELECT seq, vcpu, kind, id, addr FROM stop ORDER BY rowid'),
    };
  } finally {
    r.close();
  }
}

describe('recording from the fast engine', () => {
  for (const cpus of [1, 2]) {
    it(`gives the exact engine's history, byte for byte (${cpus} vCPU${cpus > 1 ? 's' : ''})`, async () => {
      const fastPath = join(dir, `fast-${cpus}.trace`);
      const exactPath = join(dir, `exact-${cpus}.trace`);
      expect(await record(fastPath, true, cpus)).toMatch(/recorded block by block/);
      expect(await record(exactPath, false, cpus)).toMatch(/the recorder takes every instruction's pc/);
      const fast = history(fastPath);
      const exact = history(exactPath);
      expect(fast.chunks!.length).toBeGreaterThan(5);
      expect(fast.mem!.length).toBeGreaterThan(100);
      // the first difference of each table, not a diff of thousands of rows
      // every checkpoint of the fast recording (slice starts and ends) is at a position the exact
      // one has one too (their images may differ in QEMU's lazy flags: cc_op, cc_src)
      const ckpts = (p: string) => {
        const r = TraceReader.open(p, false);
        try {
          return (r.db.prepare('SELECT seq, vcpu, flags FROM ckpt').raw().all() as [number, number, number][]).map((c) => c.join(':'));
        } finally {
          r.close();
        }
      };
      const exactCkpts = new Set(ckpts(exactPath));
      expect(ckpts(fastPath).filter((k) => !exactCkpts.has(k))).toEqual([]);
      for (const k of Object.keys(exact)) {
        const i = exact[k]!.findIndex((row, i) => !isDeepStrictEqual(row, fast[k]![i]));
        expect(i === -1 ? undefined : { row: i, fast: fast[k]![i], exact: exact[k]![i] }, k).toBeUndefined();
        expect(fast[k]!.length, k).toBe(exact[k]!.length);
      }
    }, 120_000);
  }
});

describe('the trace writer on a thread of its own', () => {
  it('stores what it stores on the recording thread (DBG_RECORD_THREAD=0), checkpoints too; a flush waits for it', async () => {
    const threaded = join(dir, 'threaded.trace');
    const inline = join(dir, 'inline.trace');
    await record(threaded, true, 2);
    process.env.DBG_RECORD_THREAD = '0';
    try {
      await record(inline, true, 2);
    } finally {
      delete process.env.DBG_RECORD_THREAD;
    }
    const a = history(threaded);
    const b = history(inline);
    const ckpts = (p: string) => {
      const r = TraceReader.open(p, false);
      try {
        return r.db.prepare('SELECT seq, vcpu, chunk, flags, length(data) FROM ckpt ORDER BY id').raw().all();
      } finally {
        r.close();
      }
    };
    expect(a.chunks!.length).toBeGreaterThan(5);
    for (const k of Object.keys(b)) {
      const i = b[k]!.findIndex((row, i) => !isDeepStrictEqual(row, a[k]![i]));
      expect(i === -1 ? undefined : { row: i, threaded: a[k]![i], inline: b[k]![i] }, k).toBeUndefined();
      expect(a[k]!.length, k).toBe(b[k]!.length);
    }
    expect(ckpts(threaded)).toEqual(ckpts(inline));
  }, 120_000);
});
