/**
 * Types on a real Debian vmlinux (issue 12), side by side with drgn in the same run:
 *   - cold start to `::sizeof struct task_struct`: <= 1.5 s, <= 400 MiB peak RSS;
 *   - cold start to `init_task::print`: <= drgn's time to print init_task, RSS <= drgn's.
 * Needs the opt-in cache (node scripts/setup-vmlinux.mjs: the vmlinux and python3-drgn); without
 * it the bench says so and reports nothing.
 *
 * Run as `--child CMDS` this file is the measured side: a fresh process that opens the vmlinux,
 * runs the commands, and prints its peak RSS. drgn prints init_task from the same file: the
 * section that holds it is given to drgn as a memory segment read from the file.
 */

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtinModules } from '../src/mdb/modules/index.js';
import { CaptureOutput, Session } from '../src/mdb/session.js';
import { ElfFile } from '../src/symbols/elf-file.js';
import { openTarget } from '../src/targets/open-target.js';
import { timed, type BenchResult } from './bench-result.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, here.endsWith(join('dist', 'bench')) ? '../..' : '..');
const vmlinux = join(root, 'test', '.fixtures', 'vmlinux', 'vmlinux');
const PYTHON = '/usr/bin/python3';

async function child(cmds: string): Promise<void> {
  const s = new Session(openTarget(vmlinux, {}), builtinModules);
  const out = new CaptureOutput(false);
  await s.execute(cmds, out);
  console.log(JSON.stringify({ lines: out.lines.length, first: out.lines[0], maxRssKiB: process.resourceUsage().maxRSS }));
}

/** drgn printing init_task from the file: the section holding it becomes a memory segment. */
const drgnScript = `
import sys, resource, drgn
path, addr, off, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
prog = drgn.Program(drgn.host_platform)
f = open(path, 'rb')
def read(address, count, offset, physical):
    f.seek(off + offset)
    return f.read(count)
prog.add_memory_segment(addr, size, read)
prog.load_debug_info([path])
text = str(prog['init_task'])
print(len(text.splitlines()), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
`;

export async function run(): Promise<BenchResult[]> {
  if (!existsSync(vmlinux)) {
    process.stderr.write('bench: vmlinux: no cached vmlinux (node scripts/setup-vmlinux.mjs, as root, installs it): skipped\n');
    return [];
  }
  const self = fileURLToPath(import.meta.url);
  const last = (s: string) => JSON.parse(s.trim().split('\n').at(-1)!) as { lines: number; first: string; maxRssKiB: number };
  const sz = timed(process.execPath, [self, '--child', '::sizeof struct task_struct']);
  const szr = last(sz.stdout);
  const pr = timed(process.execPath, [self, '--child', 'init_task::print']);
  const prr = last(pr.stdout);
  const rows: BenchResult[] = [
    { name: 'cold ::sizeof struct task_struct: wall', value: sz.ms / 1000, unit: 's', goal: '<= 1.5 s', ok: sz.ms <= 1500, baseline: szr.first },
    { name: 'cold ::sizeof struct task_struct: peak RSS', value: (szr.maxRssKiB * 1024) / 2 ** 20, unit: 'MiB', goal: '<= 400 MiB', ok: szr.maxRssKiB * 1024 <= 400 * 2 ** 20 },
  ];
  const elf = ElfFile.open(vmlinux);
  const sym = elf.symbols().find((x) => x.name === 'init_task');
  const sec = sym ? elf.sections().find((x) => x.addr <= sym.value && sym.value < x.addr + BigInt(x.size) && x.type !== 8) : undefined;
  elf.close();
  if (!sym || !sec || !existsSync(PYTHON) || spawnSync(PYTHON, ['-c', 'import drgn']).status !== 0) {
    rows.push({ name: 'cold init_task::print: wall', value: pr.ms / 1000, unit: 's', baseline: 'drgn not installed (python3-drgn): no comparison' });
    return rows;
  }
  const dr = timed(PYTHON, ['-c', drgnScript, vmlinux, String(sec.addr), String(sec.offset), String(sec.size)]);
  const [drLines, drRssKiB] = dr.stdout.trim().split(/\s+/).map(Number) as [number, number];
  rows.push(
    { name: 'cold init_task::print: wall', value: pr.ms / dr.ms, unit: 'x drgn', goal: '<= 1x drgn', ok: pr.ms <= dr.ms, baseline: `dbg ${(pr.ms / 1000).toFixed(2)} s (${prr.lines} lines), drgn ${(dr.ms / 1000).toFixed(2)} s (${drLines} lines)` },
    { name: 'cold init_task::print: peak RSS', value: prr.maxRssKiB / drRssKiB, unit: 'x drgn', goal: '<= 1x drgn', ok: prr.maxRssKiB <= drRssKiB, baseline: `dbg ${(prr.maxRssKiB / 1024).toFixed(0)} MiB, drgn ${(drRssKiB / 1024).toFixed(0)} MiB` },
  );
  return rows;
}

if (process.argv[2] === '--child') await child(process.argv[3]!);
