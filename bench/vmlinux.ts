/**
 * Types on a real Debian vmlinux (issue 12), side by side with drgn in the same run:
 *   - cold start to `::sizeof struct task_struct`: <= 1.5 s, <= 400 MiB peak RSS;
 *   - cold start to `init_task::print`: <= drgn's time to print init_task, RSS <= drgn's.
 * Needs the opt-in cache (node scripts/setup-vmlinux.mjs: the vmlinux and python3-drgn); without
 * it the bench says so and reports nothing.
 *
 * The dbg side is the command a user types (bin/dbg open VMLINUX -e CMDS), five cold runs
 * interleaved with drgn's, medians compared. Run as `--child CMDS` this file is a stand-in for
 * machines without /usr/bin/time: a fresh process that opens the vmlinux, runs the commands, and
 * prints its peak RSS. drgn prints init_task from the same file: the
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
import { peakRssKiB, PYTHON_PEAK_RSS_KIB, timed, type BenchResult } from './bench-result.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, here.endsWith(join('dist', 'bench')) ? '../..' : '..');
const vmlinux = join(root, 'test', '.fixtures', 'vmlinux', 'vmlinux');
const PYTHON = '/usr/bin/python3';

async function child(cmds: string): Promise<void> {
  const s = new Session(openTarget(vmlinux, {}), builtinModules);
  const out = new CaptureOutput(false);
  await s.execute(cmds, out);
  console.log(JSON.stringify({ lines: out.lines.length, first: out.lines[0], maxRssKiB: peakRssKiB() }));
}

/** drgn printing init_task from the file: the section holding it becomes a memory segment. */
const drgnScript = `
import sys, drgn
path, addr, off, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
prog = drgn.Program(drgn.host_platform)
f = open(path, 'rb')
def read(address, count, offset, physical):
    f.seek(off + offset)
    return f.read(count)
prog.add_memory_segment(addr, size, read)
prog.load_debug_info([path])
text = str(prog['init_task'])
print(len(text.splitlines()), ${PYTHON_PEAK_RSS_KIB})
`;

interface DbgRun {
  readonly ms: number;
  readonly lines: number;
  readonly first: string;
  readonly maxRssKiB: number;
}

/**
 * dbg answering `cmds` from a cold start, as a user runs it (bin/dbg open VMLINUX -e CMDS), its
 * peak RSS from /usr/bin/time -v; without /usr/bin/time, this file's --child mode reports it.
 */
function dbgRun(cmds: string): DbgRun {
  if (existsSync('/usr/bin/time')) {
    const r = timed('/usr/bin/time', ['-v', process.execPath, join(root, 'bin', 'dbg'), 'open', vmlinux, '-e', cmds]);
    const lines = r.stdout.split('\n').filter((l) => l !== '');
    return { ms: r.ms, lines: lines.length, first: lines[0] ?? '', maxRssKiB: Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1] ?? 0) };
  }
  const r = timed(process.execPath, [fileURLToPath(import.meta.url), '--child', cmds]);
  const c = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { lines: number; first: string; maxRssKiB: number };
  return { ms: r.ms, ...c };
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function run(): Promise<BenchResult[]> {
  if (!existsSync(vmlinux)) {
    process.stderr.write('bench: vmlinux: no cached vmlinux (node scripts/setup-vmlinux.mjs, as root, installs it): skipped\n');
    return [];
  }
  const runs = 5;
  dbgRun('::sizeof struct task_struct'); // the page cache warm for every side alike
  const sizeofRuns = Array.from({ length: runs }, () => dbgRun('::sizeof struct task_struct'));
  const sz = { ms: median(sizeofRuns.map((r) => r.ms)), maxRssKiB: Math.max(...sizeofRuns.map((r) => r.maxRssKiB)), first: sizeofRuns[0]!.first };
  const rows: BenchResult[] = [
    { name: 'cold ::sizeof struct task_struct: wall', value: sz.ms / 1000, unit: 's', goal: '<= 1.5 s', ok: sz.ms <= 1500, baseline: `${sz.first} (median of ${runs})` },
    { name: 'cold ::sizeof struct task_struct: peak RSS', value: (sz.maxRssKiB * 1024) / 2 ** 20, unit: 'MiB', goal: '<= 400 MiB', ok: sz.maxRssKiB * 1024 <= 400 * 2 ** 20 },
  ];
  const elf = ElfFile.open(vmlinux);
  const sym = elf.symbols().find((x) => x.name === 'init_task');
  const sec = sym ? elf.sections().find((x) => x.addr <= sym.value && sym.value < x.addr + BigInt(x.size) && x.type !== 8) : undefined;
  elf.close();
  if (!sym || !sec || !existsSync(PYTHON) || spawnSync(PYTHON, ['-c', 'import drgn']).status !== 0) {
    const pr = dbgRun('init_task::print');
    rows.push({ name: 'cold init_task::print: wall', value: pr.ms / 1000, unit: 's', baseline: 'drgn not installed (python3-drgn): no comparison' });
    return rows;
  }
  const drgnArgs = ['-c', drgnScript, vmlinux, String(sec.addr), String(sec.offset), String(sec.size)];
  // Interleaved, so load on the machine hits both alike; medians.
  const ours: DbgRun[] = [];
  const theirs: { ms: number; lines: number; rssKiB: number }[] = [];
  for (let i = 0; i < runs; i++) {
    ours.push(dbgRun('init_task::print'));
    const dr = timed(PYTHON, drgnArgs);
    const [lines, rssKiB] = dr.stdout.trim().split(/\s+/).map(Number) as [number, number];
    theirs.push({ ms: dr.ms, lines, rssKiB });
  }
  const prMs = median(ours.map((r) => r.ms));
  const drMs = median(theirs.map((r) => r.ms));
  const prRss = Math.max(...ours.map((r) => r.maxRssKiB));
  const drRss = Math.max(...theirs.map((r) => r.rssKiB));
  rows.push(
    { name: 'cold init_task::print: wall', value: prMs / drMs, unit: 'x drgn', goal: '<= 1x drgn', ok: prMs <= drMs, baseline: `dbg ${(prMs / 1000).toFixed(2)} s (${ours[0]!.lines} lines), drgn ${(drMs / 1000).toFixed(2)} s (${theirs[0]!.lines} lines), medians of ${runs}` },
    { name: 'cold init_task::print: peak RSS', value: prRss / drRss, unit: 'x drgn', goal: '<= 1x drgn', ok: prRss <= drRss, baseline: `dbg ${(prRss / 1024).toFixed(0)} MiB, drgn ${(drRss / 1024).toFixed(0)} MiB` },
  );
  return rows;
}

if (process.argv[2] === '--child') await child(process.argv[3]!);
