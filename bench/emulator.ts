/**
 * The emulated guest's speed with breakpoints and watchpoints set but not hit, in one run:
 *
 * 1. against Unicorn with no hook at all, on the same guest: the QEMU fixture kernel
 *    (dumps/qemu/kernel.elf), which boots to its panic without interrupts in a fixed 5,809,881
 *    instructions, so one uc_emu_start can run it whole (best of 5 boots each, translation included);
 * 2. against dbg's own loop without breakpoints or watchpoints on the sample kernel with "nobug"
 *    (it runs forever) on two vCPUs with timer interrupts: the same 3*10^7 instructions from the
 *    same saved state each time. dbg always counts instructions exactly (seq numbers and vCPU
 *    scheduling need it): per translated block on each vCPU's fast engine, per instruction on its
 *    exact engine where a stop may fall inside a block (native/emu/emu.c, "Fast engine").
 *    The sample kernel's two watchpoints sit on its busiest data page (jiffies, the run queue,
 *    the console lock), which trap-page watchpoints pay for on every access to that page.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from './bench-result.js';
import { readFileSync } from 'node:fs';
import { EmulatorTarget } from '../src/targets/emulator/emulator-target.js';
import { loadKernel } from '../src/targets/emulator/loader.js';
import { Machine } from '../src/targets/emulator/machine.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const N = 30_000_000n;

const FIXTURE_INSNS = 5_809_881n;

/** Boot the fixture kernel to its panic: on bare Unicorn, in dbg's loop, and with hooks set. */
function fixtureRatios(): BenchResult[] {
  const path = join(root, 'dumps', 'qemu', 'kernel.elf');
  if (!existsSync(path)) return [];
  const image = readFileSync(path);
  const boot = (mode: 'raw' | 'dbg' | 'hooked'): number => {
    const m = new Machine({ ramBytes: 32 << 20, cpus: 1, uncounted: mode === 'raw' });
    try {
      loadKernel(m, path, image);
      if (mode === 'hooked') {
        // never executed (data addresses) and never accessed (the unused end of klog)
        for (let i = 0; i < 10; i++) m.addPoint(100 + i, 0xffffffffc0005060n + BigInt(i * 8), 0xffffffffc0005060n + BigInt(i * 8), 0);
        m.addPoint(200, 0xffffffffc0004040n + 3000n, 0xffffffffc0004040n + 3007n, 2);
        m.addPoint(201, 0xffffffffc0004040n + 3500n, 0xffffffffc0004040n + 3507n, 3);
      }
      const t0 = performance.now();
      if (mode === 'raw') {
        const err = m.runUncounted();
        if (err !== 0) throw new Error(`raw Unicorn run of the fixture kernel failed: uc_err ${err}`);
      } else {
        const stop = m.runSync(FIXTURE_INSNS * 2n);
        if (stop?.reason.kind !== 'halted' || m.seq !== FIXTURE_INSNS) throw new Error(`the fixture kernel did not reach its panic in ${FIXTURE_INSNS} instructions (${m.seq})`);
      }
      return Number(FIXTURE_INSNS) / ((performance.now() - t0) / 1000);
    } finally {
      m.close();
    }
  };
  const best = { raw: 0, dbg: 0, hooked: 0 };
  for (let i = 0; i < 5; i++) for (const k of ['raw', 'dbg', 'hooked'] as const) best[k] = Math.max(best[k], boot(k));
  const ratio = best.hooked / best.raw;
  return [
    { name: 'fixture kernel boot, Unicorn with no hook at all', value: best.raw / 1e6, unit: 'M insn/s' },
    { name: "fixture kernel boot, dbg's loop (counting), nothing set", value: best.dbg / 1e6, unit: 'M insn/s' },
    { name: 'fixture kernel boot, 10 breakpoints + 2 watchpoints not hit', value: best.hooked / 1e6, unit: 'M insn/s' },
    { name: 'hooked dbg / bare Unicorn, same guest', value: ratio, unit: 'x', goal: '>= 0.5x', ok: ratio >= 0.5, baseline: `bare Unicorn ${(best.raw / 1e6).toFixed(1)} M insn/s` },
  ];
}

export async function run(): Promise<BenchResult[]> {
  const first = fixtureRatios();
  const kernel = [join(root, 'dumps', 'kernel.elf'), join(root, 'dumps', 'kernel.prebuilt.elf')].find((f) => existsSync(f))!;
  const t = EmulatorTarget.open(kernel, { ramBytes: 64 << 20, cpus: 2, cmdline: 'nobug' });
  try {
    const m = t.machine;
    m.runSync(5_000_000n); // boot, both CPUs up, code translated
    const start = m.saveState();
    const measure = (): { ips: number; pc: bigint } => {
      m.loadState(start);
      const t0 = performance.now();
      const stop = m.runSync(N);
      const s = (performance.now() - t0) / 1000;
      if (stop) throw new Error(`the bench guest stopped: ${JSON.stringify(stop.reason, (_k, v) => (typeof v === 'bigint' ? v.toString(16) : v))}`);
      return { ips: Number(N) / s, pc: m.pc(0) };
    };
    // Ten breakpoints in code that never runs without the bug (panic, check_task's error path)
    // and two watchpoints on data nothing touches then.
    const arm = (): number[] => {
      const ids: number[] = [];
      const panic = t.symbols.lookup('panic');
      for (let i = 0n; i < 10n; i++) ids.push(t.addBreakpoint(panic + i * 4n).id);
      ids.push(t.addWatchpoint(t.symbols.lookup('panic_msg'), 8, 'write').id);
      ids.push(t.addWatchpoint(t.symbols.lookup('panicking'), 4, 'access').id);
      return ids;
    };
    const plain: number[] = [];
    const hooked: number[] = [];
    let pcPlain = 0n;
    let pcHooked = 0n;
    for (let round = 0; round < 3; round++) {
      const a = measure();
      plain.push(a.ips);
      pcPlain = a.pc;
      const ids = arm();
      const b = measure();
      hooked.push(b.ips);
      pcHooked = b.pc;
      for (const id of ids) t.deleteEvent(id);
    }
    if (pcPlain !== pcHooked) throw new Error('hooked and unhooked runs ended at different pcs: the bench is not deterministic');
    if (process.env.DBG_BENCH_DEBUG) process.stderr.write(`plain ${plain.map((x) => (x / 1e6).toFixed(1))} hooked ${hooked.map((x) => (x / 1e6).toFixed(1))}\n`);
    const best = (xs: number[]): number => Math.max(...xs);
    const ratio = best(hooked) / best(plain);
    return [
      ...first,
      { name: 'guest speed, no breakpoints or watchpoints', value: best(plain) / 1e6, unit: 'M insn/s', baseline: 'Unicorn without any hook: ~101 M insn/s on a tight loop (MEASUREMENTS.md)' },
      { name: 'guest speed, 10 breakpoints + 2 watchpoints not hit', value: best(hooked) / 1e6, unit: 'M insn/s' },
      { name: 'hooked / unhooked speed', value: ratio, unit: 'x', goal: '>= 0.5x', ok: ratio >= 0.5, baseline: `same guest, same ${N} instructions, one run` },
    ];
  } finally {
    t.close();
  }
}
