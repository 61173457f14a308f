/**
 * One unwinder for every target: the sample kernel on two vCPUs, recorded, stopped at sampled
 * positions (pseudo-random seqs, and breakpoints at the places where unwinders go wrong: a
 * frameless function's first instruction, an interrupt handler's entry, a frameless function's
 * body). At each position `::stack -a` must read the same on the live guest, on the replay of its
 * trace at that seq, and on `dbg open` of a `::dump` written there; and gdb's own `bt` (gdb reading
 * that dump through dbg's GDB server, unwinding with its own CFI reader and prologue analyser)
 * must give the same pcs for the frames dbg found by CFI.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveGdb } from '../../src/gdbserver/gdb-server.js';
import { EmulatorRecorder } from '../../src/store/emulator-recorder.js';
import { KernelDumpTarget } from '../../src/targets/elfcore/kernel-dump-target.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { ReplayTarget } from '../../src/targets/replay/replay-target.js';
import { unwind } from '../../src/targets/unwind.js';
import { gdbBatch } from '../gdbserver/gdb-batch.js';
import { sampleKernel } from './sample-kernel.js';
import { session } from './emulator-session.js';

const kernel = sampleKernel();
const dir = mkdtempSync(join(tmpdir(), 'dbg-unwind-diff-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Sample {
  readonly seq: bigint;
  readonly why: string;
  readonly live: string[];
  /** Per thread: the pcs dbg found from the registers or by CFI (what gdb must agree with). */
  readonly cfiPcs: bigint[][];
  readonly dump: string;
}

const samples: Sample[] = [];
const trace = join(dir, 'k.trace');

/**
 * gdb's frames as pcs ("PC thread pc" lines; its bt omits the pc of a frame at a line's start),
 * without the inlined calls it shows as frames of their own (::stack -s shows those).
 */
const framePcs = [
  'for t in sorted(gdb.selected_inferior().threads(), key=lambda t: t.num):',
  '  t.switch()',
  '  f = gdb.newest_frame()',
  '  while f is not None:',
  '    if f.type() != gdb.INLINE_FRAME:',
  "      print('PC %d 0x%x' % (t.num, f.pc()))",
  '    try:',
  '      f = f.older()',
  '    except gdb.error:',
  '      f = None',
].join('\n');

/** Breakpoints where stacks used to go wrong, each taken once. */
const stopAt = ['task_worker', 'timer_tick', 'task_init+5', 'task_idle+6', 'log_append'];

beforeAll(async () => {
  const t = EmulatorTarget.open(kernel, { ramBytes: 32 << 20, cpus: 2 });
  try {
    t.record(new EmulatorRecorder(trace, { guest: 'kernel.elf', symbols: kernel }));
    const s = session(t);
    const bps = new Map<number, string>();
    for (const where of stopAt) {
      const [sym, off] = where.split('+');
      bps.set(t.addBreakpoint(t.symbols.lookup(sym!) + BigInt(off ?? 0)).id, where);
    }
    // Pseudo-random positions (a fixed LCG: the same every run) in the kernel's ~1M instructions.
    let x = 12345;
    const random = Array.from({ length: 8 }, () => {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      return BigInt(x % 1_000_000);
    }).sort((a, b) => (a < b ? -1 : 1));
    for (;;) {
      const next = random.find((r) => r > t.machine.seq);
      if (next === undefined && bps.size === 0) break;
      const stop = t.machine.runSync(next === undefined ? 2_000_000n : next - t.machine.seq);
      let why = `seq ${t.machine.seq}`;
      if (stop?.reason.kind === 'breakpoint') {
        why = bps.get(stop.reason.id)!;
        bps.delete(stop.reason.id);
        t.deleteEvent(stop.reason.id);
      } else if (stop) {
        why = stop.reason.kind;
      }
      const dump = join(dir, `${samples.length}.dump`);
      await s.run(`::dump ${dump}`);
      const cfiPcs = t.threads().map((th) => {
        const fr = unwind(t, th.index);
        const n = fr.findIndex((f) => f.how === 'frame-pointer');
        return fr.slice(0, n < 0 ? fr.length : n).map((f) => f.pc);
      });
      samples.push({ seq: t.machine.seq, why, live: await s.run('::stack -a'), cfiPcs, dump });
      if (stop && stop.reason.kind !== 'breakpoint') break;
    }
  } finally {
    t.close();
  }
}, 240_000);

describe('::stack -a is the same on the live guest, its replay and its dump', () => {
  it('stopped at every sampled position', () => {
    if (process.env.DBG_TEST_VERBOSE) for (const smp of samples) console.log(smp.why, smp.seq, smp.live.join(' | '));
    expect(samples.map((s) => s.why)).toEqual(expect.arrayContaining(stopAt));
    expect(samples.length).toBeGreaterThanOrEqual(10);
  });

  it('the replay at each seq shows the live stacks', async () => {
    const r = ReplayTarget.open(trace);
    try {
      const s = session(r);
      for (const smp of samples) {
        await s.run(`::seek ${smp.seq}`);
        expect({ at: smp.why, stack: await s.run('::stack -a') }).toEqual({ at: smp.why, stack: smp.live });
      }
    } finally {
      r.close();
    }
  }, 120_000);

  it('dbg open of the ::dump at each position shows the live stacks', async () => {
    for (const smp of samples) {
      const d = KernelDumpTarget.open(smp.dump, { symbols: [kernel] });
      try {
        const got = (await session(d).run('::stack -a')).map((l) => l.replace(/^thread (\d) \(CPU (\d)\):$/, 'thread $1 (vCPU $2):'));
        expect({ at: smp.why, stack: got }).toEqual({ at: smp.why, stack: smp.live });
      } finally {
        d.close();
      }
    }
  }, 120_000);

  it("gdb's bt on each dump gives the pcs dbg unwinds by CFI", async () => {
    for (const smp of samples) {
      const pcs = await gdbFrames(smp.dump, kernel);
      for (const [i, ours] of smp.cfiPcs.entries()) {
        expect({ at: smp.why, thread: i + 1, pcs: pcs[i]!.slice(0, ours.length) }).toEqual({ at: smp.why, thread: i + 1, pcs: ours });
      }
    }
  }, 180_000);
});

/** Every thread's frame pcs by gdb reading `dump` (through dbg's GDB server) with symbols `elf`. */
async function gdbFrames(dump: string, elf: string): Promise<bigint[][]> {
  const d = KernelDumpTarget.open(dump, { symbols: [elf] });
  const server = await serveGdb(d, undefined, { port: 0, log: () => {} });
  try {
    const run = await gdbBatch(server.port, [`python exec(${JSON.stringify(framePcs)})`], { file: elf });
    const pcs: bigint[][] = [];
    for (const m of run.stdout.matchAll(/^PC (\d+) (0x[0-9a-f]+)$/gm)) (pcs[Number(m[1]) - 1] ??= []).push(BigInt(m[2]!));
    expect(pcs.filter(Boolean).length, run.stdout + run.stderr).toBe(2);
    return pcs;
  } finally {
    await server.close();
    d.close();
  }
}

describe('stacks without CFI (the kernel with its .debug_frame removed), as gdb finds them', () => {
  it('at a function entry, after push %rbp, in a frameless body: the caller is not skipped', async () => {
    const bare = join(dir, 'kernel-nocfi.elf');
    execFileSync('objcopy', ['--remove-section=.debug_frame', kernel, bare]);
    const t = EmulatorTarget.open(bare, { ramBytes: 32 << 20, cpus: 2 });
    try {
      const s = session(t);
      for (const where of ['task_init+5', 'run_cpu', 'run_cpu+1', 'task_worker', 'task_worker+0x15']) {
        await s.run(`${where}::bp`);
        const stop = (await s.run(':c'))[0]!;
        const thread = Number(/on vCPU (\d)/.exec(stop)![1]) + 1;
        await s.run('::delete all');
        const dump = join(dir, 'nocfi.dump');
        await s.run(`::dump ${dump}`);
        const ours = unwind(t, thread).map((f) => f.pc);
        const gdb = (await gdbFrames(dump, bare))[thread - 1]!;
        expect({ at: where, pcs: gdb.slice(0, ours.length) }).toEqual({ at: where, pcs: ours });
        expect(ours.length, where).toBeGreaterThanOrEqual(3);
      }
    } finally {
      t.close();
    }
  }, 120_000);
});

describe('::step out and $c where the frame pointer is not set up', () => {
  it('::step out of the frameless task_init returns to kmain; $c at a first instruction shows the caller', async () => {
    const t = EmulatorTarget.open(kernel, { ramBytes: 32 << 20, cpus: 2 });
    try {
      const s = session(t);
      await s.run('task_init+5::bp');
      expect((await s.run(':c'))[0]).toMatch(/^stopped: breakpoint 1 at 0x[0-9a-f]+ task_init\+0x5 on vCPU 0$/);
      await s.run('::delete all');
      expect(await s.run('::step out')).toEqual([expect.stringMatching(/^stopped: step at 0x[0-9a-f]+ kmain\+0x54 on vCPU 0$/)]);
      await s.run('task_worker::bp');
      await s.run(':c');
      expect((await s.run('$c')).slice(0, 2)).toEqual([expect.stringMatching(/ task_worker$/), expect.stringMatching(/ run_cpu\+0x77$/)]);
    } finally {
      t.close();
    }
  }, 60_000);
});
