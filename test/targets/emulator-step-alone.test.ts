/**
 * Stepping moves only the selected vCPU (KMDB: single-step "only resumes execution on the
 * processor being stepped"): `:s`, counted steps, `::step over|out`, and gdb's `stepi`, `next`,
 * `finish` through the GDB server, on the sample kernel with two vCPUs, with a breakpoint that the
 * other vCPU would hit at its very next instruction if it ran.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { serveGdb } from '../../src/gdbserver/gdb-server.js';
import { EmulatorRecorder } from '../../src/store/emulator-recorder.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { ReplayTarget } from '../../src/targets/replay/replay-target.js';
import { gdbBatch } from '../gdbserver/gdb-batch.js';
import { session } from './emulator-session.js';
import { sampleKernel } from './sample-kernel.js';

const kernel = sampleKernel();
const dir = mkdtempSync(join(tmpdir(), 'dbg-step-alone-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let t: EmulatorTarget | undefined;
afterEach(() => {
  t?.close();
  t = undefined;
});

/**
 * The guest stopped at task_worker's first instruction on vCPU 1 (its quantum under way, so a
 * round-robin run would go on with vCPU 1), a breakpoint at vCPU 1's next instruction, and vCPU 0
 * selected.
 */
async function twoCpus(trace?: string): Promise<{ s: ReturnType<typeof session>; t: EmulatorTarget; other: Record<string, bigint> }> {
  t = EmulatorTarget.open(kernel, { ramBytes: 32 << 20, cpus: 2 });
  if (trace) t.record(new EmulatorRecorder(trace, { guest: 'kernel.elf', symbols: kernel, chunkTarget: 100_000 }));
  const s = session(t);
  await s.run('task_worker::bp');
  expect((await s.run(':c'))[0]).toMatch(/task_worker on vCPU 1$/);
  await s.run('::delete all');
  await s.run('task_worker+4::bp');
  await s.run('1::thread');
  return { s, t, other: Object.fromEntries(t.registers(2)) };
}

describe('stepping one vCPU', () => {
  it(':s and a counted ::step move vCPU 0 only; vCPU 1 stays before its breakpoint', async () => {
    const { s, t, other } = await twoCpus();
    const seq0 = t.machine.seq;
    const pc0 = t.machine.pc(0);
    expect(await s.run(':s')).toEqual([expect.stringMatching(/^stopped: step at 0x[0-9a-f]+ \S+ on vCPU 0$/)]);
    expect(t.machine.seq).toBe(seq0 + 1n);
    expect(t.machine.pc(0)).not.toBe(pc0);
    expect(await s.run(',0t50::step')).toEqual([expect.stringMatching(/^stopped: step at .* on vCPU 0$/)]);
    expect(t.machine.seq).toBe(seq0 + 51n);
    expect(Object.fromEntries(t.registers(2))).toEqual(other);
    // the other vCPU still runs when asked: its breakpoint is next
    expect(await s.run(':c')).toEqual([expect.stringMatching(/^stopped: breakpoint 2 at 0x[0-9a-f]+ task_worker\+0x4 on vCPU 1$/)]);
  });

  it('::step over and ::step out run vCPU 0 alone until they end', async () => {
    const { s, t, other } = await twoCpus();
    // vCPU 0 is in run_cpu, which never returns: stepping out of it runs vCPU 0 into task_worker,
    // where the breakpoint stops vCPU 0, not vCPU 1
    expect((await s.run('$c'))[0]).toMatch(/ run_cpu\+0x4$/);
    expect(await s.run('::step out')).toEqual(['stopped: breakpoint 2 at 0xffffffff80101090 task_worker+0x4 on vCPU 0']);
    expect(await s.run('::step out')).toEqual(['stopped: step at 0xffffffff801011f6 run_cpu+0x77 on vCPU 0']);
    expect(await s.run(',3::step over')).toEqual([expect.stringMatching(/^stopped: step at .* run_cpu\+0x[0-9a-f]+ on vCPU 0$/)]);
    expect(Object.fromEntries(t.registers(2))).toEqual(other);
  });

  it('a vCPU that cannot run alone is refused with what to do', async () => {
    t = EmulatorTarget.open(kernel, { ramBytes: 32 << 20, cpus: 2 });
    const s = session(t);
    await expect(s.run('2::thread; :s')).rejects.toThrow('vCPU 1 is waiting to be started (port 0x518): it has no instruction to run on its own (:c runs every vCPU)');
    await expect(s.run(',0::step')).rejects.toThrow('::step: count 0 must be at least 1 (usage: [,count]::step [over|out])');
    await expect(s.run('::step sideways')).rejects.toThrow('::step sideways: expected over, out or nothing');
  });

  it("gdb's stepi, next and finish on one thread leave the other where it is", async () => {
    const { t, other } = await twoCpus();
    const server = await serveGdb(t, undefined, { port: 0, log: () => {} });
    try {
      await session(t).run('::delete all');
      // gdb's default (scheduler-locking replay) sends vCont;s:1;c for stepi: vCPU 0 alone steps.
      // `next` and `finish` continue over calls: with scheduler-locking on gdb sends vCont;c:1,
      // which runs vCPU 0 alone too.
      const r = await gdbBatch(
        server.port,
        ['thread 1', 'stepi', 'stepi 20', 'set scheduler-locking on', 'tbreak task_worker', 'continue', 'finish', 'next', 'next', 'thread 2', 'printf "T2 %lx\\n", $pc', 'thread 1', 'printf "T1 %lx\\n", $pc'],
        { file: kernel },
      );
      // the breakpoint, then finish's return to run_cpu (gdb prints "Run till exit" on stderr)
      expect(r.stdout).toMatch(/Thread 1 "vCPU 0" hit Temporary breakpoint 1, task_worker .*\n.*\nrun_cpu \(cpu=cpu@entry=0\) at /);
      expect(r.stdout).toContain(`T2 ${other.rip!.toString(16)}`);
      expect(Object.fromEntries(t.registers(2))).toEqual(other);
    } finally {
      await server.close();
    }
  });

  it('recorded: steps of one vCPU replay, go back, and ::discard inside them restores the machine', async () => {
    const trace = join(dir, 'alone.trace');
    const { s, t: live } = await twoCpus(trace);
    const regs = (x: { registers(n: number): ReadonlyMap<string, bigint> }) => [Object.fromEntries(x.registers(1)), Object.fromEntries(x.registers(2))];
    const seen = new Map<bigint, Record<string, bigint>[]>();
    const mark = () => seen.set(live.machine.seq, regs(live));
    await s.run(',0t20000::step'); // vCPU 0 alone, across its timer ticks
    mark();
    await s.run('::seek -7000');
    const S = live.machine.seq - 7000n;
    const atS = regs(live);
    await s.run('::discard -f');
    expect(live.machine.seq).toBe(S);
    expect(regs(live)).toEqual(atS);
    await s.run(',0t3000::step');
    mark();
    expect(await s.run(':c')).toEqual([expect.stringMatching(/^stopped: breakpoint 2 at 0x[0-9a-f]+ task_worker\+0x4 on vCPU 1$/)]);
    mark();
    live.close();
    t = undefined;
    const r = ReplayTarget.open(trace);
    try {
      for (const [seq, want] of seen) {
        if (seq > S + 3000n) continue; // the live run past the discard: compared below
        await r.caps.reverse!.seek(seq);
        expect(regs(r), `seq ${seq}`).toEqual(want);
      }
      const last = [...seen].at(-1)!;
      await r.caps.reverse!.seek(last[0]);
      expect(regs(r)).toEqual(last[1]);
    } finally {
      r.close();
    }
  }, 60_000);
});
