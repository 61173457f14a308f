/**
 * Symbol tables (issue 14, item 5) on an executable of 400,000 function symbols (one in ten a C++
 * name), made here with gcc from generated assembly and cached beside the other work files:
 *   - `::nm` of all of them, against GNU nm on the same file in the same run: <= 2x its time;
 *   - cold open and one lookup by name (`bin/dbg open FILE -e 'NAME=K'`): <= 0.2 s, <= 100 MiB.
 * Each side runs three times, interleaved; medians are compared. Wall time and peak RSS come from
 * /usr/bin/time (the process as a user starts it).
 */

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from './bench-result.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, here.endsWith(join('dist', 'bench')) ? '../..' : '..');
const COUNT = 400_000;

/** The name of symbol i: `sym_000123` or, one in ten, the C++ `demo::Widget123` mangled. */
const nameOf = (i: number) => (i % 10 === 0 ? `_ZN4demo6Widget${i}E` : `sym_${String(i).padStart(6, '0')}`);

function fixture(): string {
  const dir = join(root, 'dumps', '.work');
  const exe = join(dir, 'symbols400k');
  if (existsSync(exe)) return exe;
  mkdirSync(dir, { recursive: true });
  const lines = ['.text'];
  for (let i = 0; i < COUNT; i++) {
    const n = nameOf(i);
    lines.push(`.globl ${n}`, `.type ${n},@function`, `${n}:`, ' ret', `.size ${n},1`);
  }
  const src = join(dir, 'symbols400k.s');
  writeFileSync(src, lines.join('\n') + '\n');
  execFileSync('gcc', ['-nostdlib', '-no-pie', `-Wl,-e,${nameOf(1)}`, '-o', exe, src]);
  return exe;
}

function measure(cmd: string, args: string[]): { seconds: number; rssMiB: number; lines: number } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], { encoding: 'utf8', maxBuffer: 512 << 20, env: { ...process.env, DBG_HISTORY: '/dev/null' } });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.slice(0, 500)}`);
  const kib = Number(/(\d+)\s*$/.exec(r.stderr)?.[1] ?? 0);
  return { seconds, rssMiB: kib / 1024, lines: r.stdout.split('\n').length - 1 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function run(): Promise<BenchResult[]> {
  if (!existsSync('/usr/bin/time')) throw new Error('needs /usr/bin/time (apt-get install time)');
  const exe = fixture();
  const dbg = join(root, 'bin', 'dbg');
  const target = nameOf(COUNT - 7);
  const nm: number[] = [];
  const dnm: number[] = [];
  const look: { seconds: number; rssMiB: number }[] = [];
  for (let k = 0; k < 3; k++) {
    nm.push(measure('nm', [exe]).seconds);
    const d = measure(dbg, ['open', exe, '-e', '::nm']);
    if (d.lines < COUNT) throw new Error(`::nm printed ${d.lines} lines, expected at least ${COUNT}`);
    dnm.push(d.seconds);
    look.push(measure(dbg, ['open', exe, '-e', `${target}=K`]));
  }
  const ratio = median(dnm) / median(nm);
  const lookS = median(look.map((l) => l.seconds));
  const lookMiB = median(look.map((l) => l.rssMiB));
  return [
    { name: `::nm of ${COUNT} symbols`, value: ratio, unit: 'x GNU nm', goal: '<= 2x', ok: ratio <= 2, baseline: `nm: ${median(nm).toFixed(2)} s, dbg: ${median(dnm).toFixed(2)} s` },
    { name: `cold open + one lookup, ${COUNT} symbols: time`, value: lookS, unit: 's', goal: '<= 0.2 s', ok: lookS <= 0.2 },
    { name: `cold open + one lookup, ${COUNT} symbols: peak RSS`, value: lookMiB, unit: 'MiB', goal: '<= 100 MiB', ok: lookMiB <= 100 },
  ];
}
