/**
 * What recording costs before the guest runs (issue 10: <= +0.1 s, <= +30 MiB): `dbg live` on
 * the sample kernel, stopped at its first instruction, with and without a recording, as a user
 * starts it (bin/dbg, a fresh process each time). Wall time and peak RSS (/usr/bin/time -v) of
 * five runs of each, interleaved so the machine's load hits both alike; medians.
 */

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from './bench-result.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = [join(here, '..'), join(here, '..', '..')].find((d) => existsSync(join(d, 'bin', 'dbg')));
const TIME = '/usr/bin/time';

function once(args: string[]): { ms: number; rssMiB: number } {
  const t0 = performance.now();
  const r = spawnSync(TIME, ['-v', join(root!, 'bin', 'dbg'), ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, DBG_HISTORY: '/dev/null' } });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`dbg ${args.join(' ')} failed: ${r.stderr}`);
  const kib = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1] ?? NaN);
  return { ms, rssMiB: kib / 1024 };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function run(): Promise<BenchResult[]> {
  const kernel = root && join(root, 'dumps', 'kernel.elf');
  if (!kernel || !existsSync(kernel) || !existsSync(TIME)) return [];
  const dir = mkdtempSync(join(tmpdir(), 'dbg-bench-startup-'));
  try {
    const base = ['live', '--emulate', kernel, '--wait', '-q', '-e', '::status'];
    const plain: { ms: number; rssMiB: number }[] = [];
    const rec: { ms: number; rssMiB: number }[] = [];
    for (let i = 0; i < 5; i++) {
      plain.push(once([...base, '--no-record']));
      const trace = join(dir, `t${i}.trace`);
      rec.push(once([...base, '--record', trace]));
    }
    const dMs = median(rec.map((r) => r.ms)) - median(plain.map((r) => r.ms));
    const dRss = median(rec.map((r) => r.rssMiB)) - median(plain.map((r) => r.rssMiB));
    const baseline = `unrecorded ${median(plain.map((r) => r.ms)).toFixed(0)} ms, ${median(plain.map((r) => r.rssMiB)).toFixed(0)} MiB; medians of 5`;
    return [
      { name: 'recording start-up: dbg live --wait to its first prompt, recorded minus unrecorded', value: dMs / 1000, unit: 's', goal: '<= +0.1 s', ok: dMs <= 100, baseline },
      { name: 'recording start-up: peak RSS, recorded minus unrecorded', value: dRss, unit: 'MiB', goal: '<= +30 MiB', ok: dRss <= 30, baseline },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
