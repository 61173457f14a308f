/**
 * A real Linux dump (issue 13), side by side with drgn in the same run:
 *   - open + `::ps -t` + `::stacks` (every task's stack): <= 0.5x drgn's for_each_task + pid, comm,
 *     state and stack_trace of each; peak RSS <= drgn's;
 *   - open + `::stack -a` (both CPUs): <= 0.5x drgn's open + stack of the crashed thread.
 * Needs the opt-in fixtures (node scripts/setup-vmlinux.mjs, then node scripts/make-linux-dumps.mjs)
 * and python3-drgn; without them the bench says so and reports nothing. The dump is the one drgn
 * reads: 512 MiB, with VMCOREINFO, written with paging.
 *
 * Run as `--child CMDS` this file is the measured side: a fresh process that opens the dump with
 * the vmlinux, runs the commands, and prints its peak RSS.
 */

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtinModules } from '../src/mdb/modules/index.js';
import { CaptureOutput, Session } from '../src/mdb/session.js';
import { openTarget } from '../src/targets/open-target.js';
import { peakRssKiB, PYTHON_PEAK_RSS_KIB, timed, type BenchResult } from './bench-result.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, here.endsWith(join('dist', 'bench')) ? '../..' : '..');
const vmlinux = join(root, 'test', '.fixtures', 'vmlinux', 'vmlinux');
const vmcore = join(root, 'test', '.fixtures', 'linux', 'vmci-paging.elf');
const PYTHON = '/usr/bin/python3';

async function child(cmds: string): Promise<void> {
  const s = new Session(openTarget(vmcore, { symbols: [vmlinux] }), builtinModules);
  const out = new CaptureOutput(false);
  await s.execute(cmds, out);
  console.log(JSON.stringify({ lines: out.lines.length, maxRssKiB: peakRssKiB() }));
}

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

export async function run(): Promise<BenchResult[]> {
  if (!existsSync(vmlinux) || !existsSync(vmcore)) {
    process.stderr.write('bench: linux: no cached dump or vmlinux (node scripts/setup-vmlinux.mjs, then node scripts/make-linux-dumps.mjs): skipped\n');
    return [];
  }
  if (!existsSync(PYTHON) || spawnSync(PYTHON, ['-c', 'import drgn']).status !== 0) {
    process.stderr.write('bench: linux: python3-drgn is not installed: skipped\n');
    return [];
  }
  const self = fileURLToPath(import.meta.url);
  const last = (s: string) => JSON.parse(s.trim().split('\n').at(-1)!) as { lines: number; maxRssKiB: number };
  const all = timed(process.execPath, [self, '--child', '::ps -t; ::stacks']);
  const allr = last(all.stdout);
  const dAll = timed(PYTHON, ['-c', drgnAll, vmcore, vmlinux]);
  const [tasks, frames, dAllRss] = dAll.stdout.trim().split(/\s+/).map(Number) as [number, number, number];
  const cpu = timed(process.execPath, [self, '--child', '::stack -a']);
  const cpur = last(cpu.stdout);
  const dCpu = timed(PYTHON, ['-c', drgnCrashed, vmcore, vmlinux]);
  const [dCpuFrames] = dCpu.stdout.trim().split(/\s+/).map(Number) as [number, number];
  return [
    { name: 'open + ::ps -t + ::stacks: wall', value: all.ms / dAll.ms, unit: 'x drgn', goal: '<= 0.5x drgn', ok: all.ms <= dAll.ms / 2, baseline: `dbg ${(all.ms / 1000).toFixed(2)} s (${allr.lines} lines), drgn ${(dAll.ms / 1000).toFixed(2)} s (${tasks} tasks, ${frames} frames)` },
    { name: 'open + ::ps -t + ::stacks: peak RSS', value: allr.maxRssKiB / dAllRss, unit: 'x drgn', goal: '<= 1x drgn', ok: allr.maxRssKiB <= dAllRss, baseline: `dbg ${(allr.maxRssKiB / 1024).toFixed(0)} MiB, drgn ${(dAllRss / 1024).toFixed(0)} MiB` },
    { name: 'open + ::stack -a: wall', value: cpu.ms / dCpu.ms, unit: 'x drgn', goal: '<= 0.5x drgn', ok: cpu.ms <= dCpu.ms / 2, baseline: `dbg ${(cpu.ms / 1000).toFixed(2)} s (${cpur.lines} lines), drgn ${(dCpu.ms / 1000).toFixed(2)} s (crashed thread, ${dCpuFrames} frames)` },
  ];
}

if (process.argv[2] === '--child') await child(process.argv[3]!);
