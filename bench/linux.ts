/**
 * A real Linux dump (issue 13), side by side with drgn in the same run:
 *   - open + `::ps -t` + `::stacks` (every task's stack): <= 0.5x drgn's for_each_task + pid, comm,
 *     state and stack_trace of each; peak RSS <= drgn's;
 *   - open + `::stack -a` (both CPUs): <= 0.5x drgn's open + stack of the crashed thread, and
 *     <= 0.2x gdb's `thread apply all bt` on the same vmlinux and dump (gdb 13 does not apply the
 *     KASLR offset to an ELF vmcore, so its frames stay unresolved: its time, not its answer).
 * Needs the opt-in fixtures (node scripts/setup-vmlinux.mjs, then node scripts/make-linux-dumps.mjs)
 * and python3-drgn; without them the bench says so and reports nothing. The dump is the one drgn
 * reads: 512 MiB, with VMCOREINFO, written with paging.
 *
 * The dbg side is the command a user types, in a fresh process: bin/dbg open DUMP --symbols
 * vmlinux -e CMDS (the bundled fast path). Each side runs RUNS times, the two interleaved so that
 * a burst of load on the shared machine hits both; the medians are compared. Wall time and peak
 * RSS come from /usr/bin/time -v.
 */

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PYTHON_PEAK_RSS_KIB, type BenchResult } from './bench-result.js';
import { measure, median, type Measured } from './process-core.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, here.endsWith(join('dist', 'bench')) ? '../..' : '..');
const vmlinux = join(root, 'test', '.fixtures', 'vmlinux', 'vmlinux');
const vmcore = join(root, 'test', '.fixtures', 'linux', 'vmci-paging.elf');
const PYTHON = '/usr/bin/python3';
const RUNS = 3;

const drgnAll = `
import sys, drgn
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.sched import task_state_to_char
prog = drgn.Program()
prog.set_core_dump(sys.argv[1])
prog.load_debug_info([sys.argv[2]])
n = frames = 0
for t in for_each_task(prog):
    n += 1
    (t.pid.value_(), t.comm.string_(), task_state_to_char(t))
    try:
        frames += len(prog.stack_trace(t))
    except Exception:
        pass
print(n, frames, ${PYTHON_PEAK_RSS_KIB})
`;

const drgnCrashed = `
import sys, drgn
prog = drgn.Program()
prog.set_core_dump(sys.argv[1])
prog.load_debug_info([sys.argv[2]])
try:
    frames = len(prog.stack_trace(prog.crashed_thread().object))
except Exception:
    frames = 0
print(frames, ${PYTHON_PEAK_RSS_KIB})
`;

/** dbg and drgn each RUNS times, interleaved, after one warm-up run of each. */
async function sideBySide(cmds: string, drgn: string): Promise<{ dbg: Measured[]; drgn: Measured[] }> {
  const dbgArgs = [join(root, 'bin', 'dbg'), 'open', vmcore, '--symbols', vmlinux, '-e', cmds];
  const drgnArgs = ['-c', drgn, vmcore, vmlinux];
  await measure(process.execPath, dbgArgs);
  await measure(PYTHON, drgnArgs);
  const out = { dbg: [] as Measured[], drgn: [] as Measured[] };
  for (let i = 0; i < RUNS; i++) {
    out.dbg.push(await measure(process.execPath, dbgArgs));
    out.drgn.push(await measure(PYTHON, drgnArgs));
  }
  return out;
}

export async function run(): Promise<BenchResult[]> {
  if (!existsSync(vmlinux) || !existsSync(vmcore)) {
    process.stderr.write('bench: linux: no cached dump or vmlinux (node scripts/setup-vmlinux.mjs, then node scripts/make-linux-dumps.mjs): skipped\n');
    return [];
  }
  if (!existsSync(PYTHON) || spawnSync(PYTHON, ['-c', 'import drgn']).status !== 0) {
    process.stderr.write('bench: linux: python3-drgn is not installed: skipped\n');
    return [];
  }
  const secs = (xs: Measured[]) => median(xs.map((x) => x.seconds));
  const lines = (m: Measured) => m.stdout.split('\n').filter(Boolean).length;
  const all = await sideBySide('::ps -t; ::stacks', drgnAll);
  const [tasks, frames, dAllRss] = all.drgn[0]!.stdout.trim().split(/\s+/).map(Number) as [number, number, number];
  const dbgRss = Math.max(...all.dbg.map((x) => x.maxRssKiB));
  const cpu = await sideBySide('::stack -a', drgnCrashed);
  const [dCpuFrames] = cpu.drgn[0]!.stdout.trim().split(/\s+/).map(Number) as [number, number];
  const gdbArgs = ['-batch', '-nx', '-ex', 'thread apply all bt', vmlinux, vmcore];
  const gdb: Measured[] = [];
  const hasGdb = spawnSync('gdb', ['--version']).status === 0;
  if (hasGdb) for (let i = 0; i < RUNS; i++) gdb.push(await measure('gdb', gdbArgs));
  const [a, da, c, dc] = [secs(all.dbg), secs(all.drgn), secs(cpu.dbg), secs(cpu.drgn)];
  // CPU time as well: on a shared, loaded machine wall time is mostly waiting for a CPU, and drgn's
  // threads get more of them than one process does.
  const cpuOf = (xs: Measured[]) => median(xs.map((x) => x.cpuSeconds));
  const [ac, dac, cc, dcc] = [cpuOf(all.dbg), cpuOf(all.drgn), cpuOf(cpu.dbg), cpuOf(cpu.drgn)];
  return [
    { name: 'open + ::ps -t + ::stacks: wall', value: a / da, unit: 'x drgn', goal: '<= 0.5x drgn', ok: a <= da / 2, baseline: `medians of ${RUNS}: dbg ${a.toFixed(2)} s (${lines(all.dbg[0]!)} lines), drgn ${da.toFixed(2)} s (${tasks} tasks, ${frames} frames)` },
    { name: 'open + ::ps -t + ::stacks: peak RSS', value: dbgRss / dAllRss, unit: 'x drgn', goal: '<= 1x drgn', ok: dbgRss <= dAllRss, baseline: `dbg ${(dbgRss / 1024).toFixed(0)} MiB, drgn ${(dAllRss / 1024).toFixed(0)} MiB` },
    { name: 'open + ::ps -t + ::stacks: CPU', value: ac / dac, unit: 'x drgn', baseline: `user + system, medians of ${RUNS}: dbg ${ac.toFixed(2)} s, drgn ${dac.toFixed(2)} s` },
    { name: 'open + ::stack -a: wall', value: c / dc, unit: 'x drgn', goal: '<= 0.5x drgn', ok: c <= dc / 2, baseline: `medians of ${RUNS}: dbg ${c.toFixed(2)} s (${lines(cpu.dbg[0]!)} lines), drgn ${dc.toFixed(2)} s (crashed thread, ${dCpuFrames} frames)` },
    { name: 'open + ::stack -a: CPU', value: cc / dcc, unit: 'x drgn', baseline: `user + system, medians of ${RUNS}: dbg ${cc.toFixed(2)} s, drgn ${dcc.toFixed(2)} s` },
    ...(gdb.length
      ? [{ name: 'open + ::stack -a vs gdb thread apply all bt: wall', value: c / secs(gdb), unit: 'x gdb', goal: '<= 0.2x gdb', ok: c <= secs(gdb) / 5, baseline: `medians of ${RUNS}: dbg ${c.toFixed(2)} s, gdb ${secs(gdb).toFixed(2)} s (CPU ${cpuOf(gdb).toFixed(2)} s, ${(Math.max(...gdb.map((x) => x.maxRssKiB)) / 1024).toFixed(0)} MiB; its frames unresolved: no KASLR offset)` }]
      : []),
  ];
}
