/**
 * The emulated guest's speed with breakpoints and watchpoints set but not hit, against the same
 * guest with none, in one run: the sample kernel with "nobug" (it runs forever) on two vCPUs,
 * the same 3*10^7 instructions from the same saved state each time.
 *
 * "Unhooked" is dbg's execution loop without breakpoints or watchpoints: it still counts
 * instructions in C (uc_emu_start's own count= would cost the same), which exact seq numbers and
 * deterministic vCPU scheduling need. MEASUREMENTS.md gives Unicorn without any hook at ~101 M/s
 * on a tight loop, for scale.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from './bench-result.js';
import { EmulatorTarget } from '../src/targets/emulator/emulator-target.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const N = 30_000_000n;

export async function run(): Promise<BenchResult[]> {
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
      { name: 'guest speed, no breakpoints or watchpoints', value: best(plain) / 1e6, unit: 'M insn/s', baseline: 'Unicorn without any hook: ~101 M insn/s on a tight loop (MEASUREMENTS.md)' },
      { name: 'guest speed, 10 breakpoints + 2 watchpoints not hit', value: best(hooked) / 1e6, unit: 'M insn/s' },
      { name: 'hooked / unhooked speed', value: ratio, unit: 'x', goal: '>= 0.5x', ok: ratio >= 0.5, baseline: `same guest, same ${N} instructions, one run` },
    ];
  } finally {
    t.close();
  }
}
