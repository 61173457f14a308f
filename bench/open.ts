/**
 * `dbg open` as a user runs it: `bin/dbg open CORE -e '::stack -a'` (the bundled fast path with
 * its code cache, src/cli/fast-path.ts), the MDB parser, the session and the target, against `gdb -batch -ex 'thread apply all bt'` on the same
 * small gcore core (the demo program of `npm start`, made by scripts/demo.mjs --core-only).
 *
 * On a small core both sides are start-up: the figures show the CLI against the same session
 * loaded module by module from dist/ (runSession from a plain node script) and against Node
 * itself, so a slow import in the command path is visible. bench/process-core.ts measures the target on a 1 GiB core.
 */

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchResult } from './bench-result.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, here.endsWith(join('dist', 'bench')) ? '../..' : '..');

interface Measured {
  readonly seconds: number;
  readonly maxRssKiB: number;
  readonly stdout: string;
}

function measure(cmd: string, args: string[]): Measured {
  const hasTime = existsSync('/usr/bin/time');
  const t0 = process.hrtime.bigint();
  const r = hasTime ? spawnSync('/usr/bin/time', ['-v', cmd, ...args], { encoding: 'utf8', env: { ...process.env, DBG_HISTORY: '/dev/null' } }) : spawnSync(cmd, args, { encoding: 'utf8' });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  return { seconds, maxRssKiB: m ? Number(m[1]) : 0, stdout: r.stdout };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function run(): Promise<BenchResult[]> {
  const made = spawnSync(process.execPath, [join(root, 'scripts', 'demo.mjs'), '--core-only'], { encoding: 'utf8' });
  const core = join(root, 'dumps', '.work', 'demo.core');
  const exe = join(root, 'dumps', '.work', 'demo');
  if (made.status !== 0 || !existsSync(core)) throw new Error(`could not make the demo core: ${made.stderr}`);

  const dbg = [join(root, 'bin', 'dbg'), 'open', core, '-e', '::stack -a'];
  const bare = [
    '--input-type=module',
    '-e',
    `const { openTarget } = await import(${JSON.stringify(pathToFileURL(join(root, 'dist', 'src', 'targets', 'open-target.js')).href)});
     const { runSession } = await import(${JSON.stringify(pathToFileURL(join(root, 'dist', 'src', 'mdb', 'cli-session.js')).href)});
     const t = openTarget(${JSON.stringify(core)}); process.exitCode = await runSession(t, { execute: '::stack -a' }); t.close();`,
  ];
  const gdb = ['-nx', '-batch', '-iex', 'set debug-file-directory /nonexistent', '-iex', 'set debuginfod enabled off', '-iex', 'set sysroot /', '-ex', 'thread apply all bt', exe, core];

  measure(process.execPath, dbg); // warm caches
  measure('gdb', gdb);
  const runs = 5;
  const m = { dbg: [] as Measured[], bare: [] as Measured[], gdb: [] as Measured[], node: [] as Measured[] };
  for (let i = 0; i < runs; i++) {
    m.dbg.push(measure(process.execPath, dbg));
    m.bare.push(measure(process.execPath, bare));
    m.gdb.push(measure('gdb', gdb));
    m.node.push(measure(process.execPath, ['-e', '']));
  }
  const named = new Set([...m.gdb[0]!.stdout.matchAll(/ in (\w+) \(/g)].map((x) => x[1]!));
  const missing = [...named].filter((n) => !m.dbg[0]!.stdout.includes(n));
  if (missing.length) throw new Error(`dbg open's ::stack -a lacks frames gdb names: ${missing.join(', ')}`);

  const s = (xs: Measured[]) => median(xs.map((x) => x.seconds));
  const [dbgS, bareS, gdbS, nodeS] = [s(m.dbg), s(m.bare), s(m.gdb), s(m.node)];
  const rss = Math.max(...m.dbg.map((x) => x.maxRssKiB)) / 1024;
  return [
    { name: "dbg open small core -e '::stack -a' (CLI): time vs gdb", value: dbgS / gdbS, unit: 'x', baseline: `gdb ${gdbS.toFixed(3)} s, dbg ${dbgS.toFixed(3)} s (median of ${runs})` },
    { name: 'the same unbundled (runSession from a node script): time vs gdb', value: bareS / gdbS, unit: 'x', baseline: `${bareS.toFixed(3)} s; node -e "" ${nodeS.toFixed(3)} s` },
    { name: 'what the bundle and code cache save', value: (bareS - dbgS) * 1000, unit: 'ms', baseline: 'unbundled session minus dbg open' },
    { name: 'dbg open small core: peak RSS', value: rss, unit: 'MiB', goal: '<= 150 MB', ok: rss * 1.048576 <= 150, baseline: `gdb ${(Math.max(...m.gdb.map((x) => x.maxRssKiB)) / 1024).toFixed(0)} MiB` },
  ];
}
