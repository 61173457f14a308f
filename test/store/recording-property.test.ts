/**
 * Property: whatever commands a user types at a recording guest — runs, steps, breakpoints,
 * watchpoints, reverse steps and seeks, queries, register and memory writes, console input,
 * ::discard -f, in any order — the trace opens and replays to the registers the live guest had
 * at every present position it stopped at, and to its RAM at the end; and re-executed from its
 * start (`dbg traces --verify`, rerecord.ts), it records the same history again.
 *
 * fast-check draws the sequences (and shrinks a failing one to a short reproduction, printed
 * with its seed). A command may refuse with a DbgError (a write in the past, a step at the end of
 * history); anything else thrown is a bug.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { DbgError } from '../../src/common/errors.js';
import { builtinModules } from '../../src/mdb/modules/index.js';
import { Session } from '../../src/mdb/session.js';
import { EmulatorRecorder } from '../../src/store/emulator-recorder.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import type { ReverseExecution } from '../../src/targets/target.js';
import { ReplayTarget } from '../../src/targets/replay/replay-target.js';
import { verifyTrace } from '../../src/targets/replay/rerecord.js';
import { TraceReader } from '../../src/store/trace-reader.js';
import { ramDiff } from '../helpers/ram-diff.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const kernel = existsSync(join(root, 'dumps', 'kernel.elf')) ? join(root, 'dumps', 'kernel.elf') : join(root, 'dumps', 'kernel.prebuilt.elf');
const dir = mkdtempSync(join(tmpdir(), 'dbg-recording-property-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A command line, made when it runs (seeks name positions of the history as it is then). */
type Cmd = { text: string; line: (rev: ReverseExecution) => string };
const cmd = (text: string): Cmd => ({ text, line: () => text });

const functions = ['timer_tick', 'log_append', 'task_init', 'run_cpu', 'check_task'];
const command: fc.Arbitrary<Cmd> = fc.oneof(
  fc.constantFrom(':s', '::step over', '::step out', ':c', '::rstep', '::rstep over', '::rcont', '::delete all', '::discard -f').map(cmd),
  fc.constantFrom(...functions).map((f) => cmd(`${f}::bp`)),
  fc.constantFrom('tasks', 'jiffies').map((a) => cmd(`${a}::wp -w -L 8`)),
  fc.constantFrom('::now', '::traceinfo', '::timeline -w 60', 'tasks::whowrote', 'tasks,8::history -n 3', 'timer_tick::when -n 2', '::sql SELECT count(*) FROM chunk', '::regs', '::stack', '::console').map(cmd),
  fc.integer({ min: 1, max: 60_000 }).map((n) => cmd(`::seek -0t${n}`)),
  fc.integer({ min: 1, max: 60_000 }).map((n) => cmd(`::seek +0t${n}`)),
  fc.integer({ min: 0, max: 100 }).map((p) => ({ text: `::seek ${p}% of history`, line: (rev: ReverseExecution) => `::seek 0t${(rev.bounds().last * BigInt(p)) / 100n}` })),
  fc.constant({ text: '::seek to the present', line: (rev: ReverseExecution) => `::seek 0t${rev.bounds().last}` }),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((v) => cmd(`0x${v.toString(16)}::setreg r15`)),
  fc.integer({ min: 0, max: 1000 }).map((v) => cmd(`jiffies/Z 0t${v}`)),
  fc.constantFrom('x', 'hello').map((s) => cmd(`::input ${s}`)),
);

let runs = 0;
async function recordAndReplay(cpus: number, cmds: Cmd[]): Promise<void> {
  const path = join(dir, `run-${runs++}.trace`);
  const t = EmulatorTarget.open(kernel, { ramBytes: 32 << 20, cpus });
  const rev = (): ReverseExecution => t.caps.reverse!;
  /** Registers of every vCPU at each present position (and RAM at the last). */
  const seen = new Map<bigint, { regs: Record<string, bigint>[]; ram?: Buffer }>();
  const problems: string[] = [];
  try {
    t.record(new EmulatorRecorder(path, { guest: 'kernel.elf', symbols: kernel, chunkTarget: 100_000 }));
    for (const c of cmds) {
      const line = c.line(rev());
      try {
        await new Session(t, builtinModules).execute(line, { jsonMode: false, line: () => {}, json: () => {}, warn: () => {} });
      } catch (e) {
        if (!(e instanceof DbgError)) problems.push(`${line}: ${(e as Error).stack ?? e}`);
      }
      const b = rev().bounds();
      for (const k of seen.keys()) if (k > b.last) seen.delete(k); // ::discard -f cut the history
      if (b.now === b.last) seen.set(b.now, { regs: t.threads().map((th) => Object.fromEntries(t.registers(th.index))) });
    }
    const b = rev().bounds();
    if (b.now !== b.last) await rev().seek(b.last); // back to the present: the live registers
    seen.set(b.last, { regs: t.threads().map((th) => Object.fromEntries(t.registers(th.index))), ram: Buffer.from(t.machine.ram) });
  } finally {
    t.close();
  }
  expect(problems).toEqual([]);
  const last = [...seen.keys()].reduce((a, k) => (k > a ? k : a), 0n);
  const r = ReplayTarget.open(path);
  try {
    expect(r.caps.reverse!.bounds().last).toBe(last);
    // Visit the positions newest first, so the replay seeks backwards as a user would.
    for (const [seq, want] of [...seen].sort((a, b) => Number(b[0] - a[0]))) {
      await r.caps.reverse!.seek(seq);
      want.regs.forEach((regs, i) => expect(Object.fromEntries(r.registers(i + 1)), `registers of vCPU ${i} at seq ${seq}`).toEqual(regs));
      if (want.ram) expect(ramDiff(want.ram, r.machine.ram), `RAM at seq ${seq}`).toEqual([]);
    }
  } finally {
    r.close();
  }
  const reader = TraceReader.open(path);
  try {
    expect((await verifyTrace(reader)).difference).toBeUndefined();
  } finally {
    reader.close();
  }
  rmSync(path, { force: true });
}

describe('random command sequences on a recording guest', () => {
  it('always leave a trace that replays to the live run', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(1, 2), fc.array(command, { minLength: 1, maxLength: 14 }), (cpus, cmds) => recordAndReplay(cpus, cmds)),
      {
        numRuns: Number(process.env.DBG_PROPERTY_RUNS) || 12,
        interruptAfterTimeLimit: 150_000,
        markInterruptAsFailure: false,
        // DBG_PROPERTY_SEED replays a run. Under CI the seed is fixed (20261206), so a CI run is
        // reproducible; elsewhere each run draws a new one (fast-check prints it on a failure).
        ...(process.env.DBG_PROPERTY_SEED || process.env.CI ? { seed: Number(process.env.DBG_PROPERTY_SEED ?? 20261206) } : {}),
        // Found by this property (seed -111208695): a trace opened at seq 0 was reused after a
        // register write at seq 0, so ::rcont showed the state before the write.
        // Seed 1994397114: after `:c; ::seek 0tS; ::discard -f`, a memory write at S (no
        // checkpoint after it) was missing from replay at S, which re-executed up to S.
        examples: [
          [1, [{ text: '::seek to the present', line: (rev: ReverseExecution) => `::seek 0t${rev.bounds().last}` }, cmd('0x1::setreg r15'), cmd('::rcont')]],
          [1, [cmd(':c'), { text: '::seek 1% of history', line: (rev: ReverseExecution) => `::seek 0t${rev.bounds().last / 100n}` }, cmd('::discard -f'), cmd('jiffies/Z 0t1'), cmd('::rstep')]],
        ],
      },
    );
  }, 300_000);
});
