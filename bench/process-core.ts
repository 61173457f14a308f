/**
 * Process-core speed: open a 1 GiB gcore core and print every thread's backtrace with symbol
 * names, against `gdb -batch -ex 'thread apply all bt'` on the same core and executable, in the
 * same run. Goal (issue 2): at most 0.5x gdb's wall time, at most 150 MB peak RSS. Also reported:
 * the ratio to a gdb kept from separate debug info (less work for gdb: it then names exactly
 * what dbg names), and how much of dbg's time is Node.js starting up.
 *
 * Both sides run as fresh processes measured from outside (`/usr/bin/time -v` when present, else
 * the child's own resource usage), so start-up and RSS are honest. The program, its core and its
 * executable are cached under bench/.work/ (git-ignored), keyed by the source.
 *
 * Run as a script with `--child CORE EXE`, this file is the dbg side: the child process. That
 * side must not pay for what only the harness needs, so node:child_process and node:crypto
 * (~10 ms of start-up between them) are imported by the harness functions, not at the top.
 */

import { existsSync, mkdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { peakRssKiB, type BenchResult } from './bench-result.js';

const SOURCE = String.raw`
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GIB (1UL << 30)
static char *big;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int pipefd[2];
static volatile int blocked;

static void *waiter(void *a) { (void)a; pthread_mutex_lock(&mu); __sync_fetch_and_add(&blocked, 1); for (;;) pthread_cond_wait(&cv, &mu); }
static void nap(int depth) { if (depth) { nap(depth - 1); return; } struct timespec ts = {3600, 0}; __sync_fetch_and_add(&blocked, 1); for (;;) nanosleep(&ts, NULL); }
static void *sleeper(void *a) { (void)a; nap(8); return NULL; }
static void *reader(void *a) { (void)a; char b[16]; __sync_fetch_and_add(&blocked, 1); while (read(pipefd[0], b, sizeof b) > 0) {} return NULL; }
static void *toucher(void *a) { (void)a; for (size_t i = 0; i < GIB; i += 4096) big[i] = (char)i; __sync_fetch_and_add(&blocked, 1); pause(); return NULL; }

int main(void) {
  pthread_t t[4];
  big = malloc(GIB);
  memset(big, 1, GIB / 2);
  if (pipe(pipefd)) return 1;
  pthread_create(&t[0], NULL, waiter, NULL);
  pthread_create(&t[1], NULL, sleeper, NULL);
  pthread_create(&t[2], NULL, reader, NULL);
  pthread_create(&t[3], NULL, toucher, NULL);
  while (blocked < 4) usleep(1000);
  usleep(100000);
  printf("ready\n");
  fflush(stdout);
  pthread_join(t[0], NULL);
  return 0;
}
`;

const here = dirname(fileURLToPath(import.meta.url));
/** The checkout: this file runs from dist/bench/ (compiled) or bench/ (sources). */
const root = resolve(here, here.endsWith(join('dist', 'bench')) ? '../..' : '..');

export interface Measured {
  readonly seconds: number;
  /** User + system CPU seconds, from /usr/bin/time -v (0 without it). */
  readonly cpuSeconds: number;
  readonly maxRssKiB: number;
  readonly stdout: string;
}

const childProcess = () => import('node:child_process');

/** Wall time and peak RSS of one process, measured by /usr/bin/time -v when it exists. */
export async function measure(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<Measured> {
  const { spawnSync } = await childProcess();
  const hasTime = existsSync('/usr/bin/time');
  const t0 = process.hrtime.bigint();
  const opts = { encoding: 'utf8' as const, maxBuffer: 64 << 20, ...(env ? { env } : {}) };
  const r = hasTime ? spawnSync('/usr/bin/time', ['-v', cmd, ...args], opts) : spawnSync(cmd, args, opts);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  let maxRssKiB = 0;
  let cpuSeconds = 0;
  if (hasTime) {
    const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
    maxRssKiB = m ? Number(m[1]) : 0;
    for (const t of r.stderr.matchAll(/(?:User|System) time \(seconds\): ([\d.]+)/g)) cpuSeconds += Number(t[1]);
  } else {
    const m = /maxrss=(\d+)/.exec(r.stderr);
    maxRssKiB = m ? Number(m[1]) : 0;
  }
  return { seconds, cpuSeconds, maxRssKiB, stdout: r.stdout };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** How to make a cached core: the program's source, how to build it, how to run it. */
export interface CoreRecipe {
  /** Names the cache directory under bench/.work/ (the source's hash follows). */
  readonly area: string;
  readonly source: string;
  /** The source file's extension: 'c' or 'cc'. */
  readonly ext: string;
  /** Compiler and its flags; the source and `-o EXE` are appended. */
  readonly compile: readonly string[];
  /** The program's environment (e.g. LD_LIBRARY_PATH for a library with debug info). */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * Builds the program, runs it until it prints "ready", gcores it and kills it; cached by the
 * source's hash, so the (slow) core is made once per machine.
 */
export async function coreFixture(r: CoreRecipe): Promise<{ exe: string; core: string }> {
  const { execFileSync, spawn, spawnSync } = await childProcess();
  const { createHash } = await import('node:crypto');
  const key = createHash('sha256').update(r.source).digest('hex').slice(0, 12);
  const dir = join(root, 'bench', '.work', `${r.area}-${key}`);
  const exe = join(dir, 'big');
  const core = join(dir, 'big.core');
  if (existsSync(join(dir, 'done'))) return { exe, core };
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const src = join(dir, `big.${r.ext}`);
  writeFileSync(src, r.source);
  execFileSync(r.compile[0]!, [...r.compile.slice(1), '-o', exe, src]);
  const child = spawn(exe, [], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...r.env } });
  try {
    await new Promise<void>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`the ${r.area} program did not get ready in 120 s`)), 120_000);
      child.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('ready')) {
          clearTimeout(timer);
          res();
        }
      });
      child.on('exit', (c) => rej(new Error(`the ${r.area} program exited (${c}) before it was ready`)));
    });
    const g = spawnSync('gdb', ['-nx', '-batch', '-iex', 'set debuginfod enabled off', '-p', String(child.pid), '-ex', `gcore ${core}`], { encoding: 'utf8', timeout: 600_000 });
    if (!existsSync(core)) throw new Error(`gcore failed: ${g.stderr}`);
  } finally {
    child.kill('SIGKILL');
  }
  writeFileSync(join(dir, 'done'), '');
  return { exe, core };
}

export async function run(): Promise<BenchResult[]> {
  const { exe, core } = await coreFixture({ area: 'process-core', source: SOURCE, ext: 'c', compile: ['gcc', '-O0', '-g', '-fno-omit-frame-pointer', '-pthread'] });
  // The baseline: gdb as installed (here it loads libc6-dbg's separate debug info, as
  // MEASUREMENTS.md's 0.153 s anchor did); -nx only keeps a user's init file out.
  const gdbArgs = ['-nx', '-batch', '-ex', 'thread apply all bt', exe, core];
  // A stricter one: gdb kept from any separate debug info, so it names what dbg names.
  const gdbBareArgs = ['-nx', '-batch', '-iex', 'set debug-file-directory /nonexistent', '-iex', 'set debuginfod enabled off', '-iex', 'set sysroot /', '-ex', 'thread apply all bt', exe, core];
  // The dbg side is the command a user types, from a fresh process: bin/dbg open -e '::stack -a'.
  const binDbg = fileURLToPath(new URL('../../bin/dbg', import.meta.url));
  const dbgArgs = [binDbg, 'open', core, '--exe', exe, '-e', '::stack -a'];
  const runs = 7;
  // Warm the page cache for every side, then interleave them so load on the machine hits all alike.
  await measure('gdb', gdbArgs);
  await measure('gdb', gdbBareArgs);
  await measure(process.execPath, dbgArgs);
  const gdb: Measured[] = [];
  const bare: Measured[] = [];
  const dbg: Measured[] = [];
  const floor: Measured[] = [];
  for (let i = 0; i < runs; i++) {
    gdb.push(await measure('gdb', gdbArgs));
    bare.push(await measure('gdb', gdbBareArgs));
    dbg.push(await measure(process.execPath, dbgArgs));
    floor.push(await measure(process.execPath, ['-e', '']));
  }
  // dbg must name what gdb without debug info names: every function it prints, dbg prints too.
  const named = new Set([...bare[0]!.stdout.matchAll(/ in (\w+) \(/g)].map((m) => m[1]!));
  const missing = [...named].filter((n) => !new RegExp(`[ \`]${n}(\\+0x[0-9a-f]+)?$`, 'm').test(dbg[0]!.stdout));
  if (named.size === 0 || missing.length) throw new Error(`dbg's backtraces lack frames gdb names: ${missing.join(', ') || '(gdb named none)'}`);

  const med = (ms: Measured[]) => median(ms.map((m) => m.seconds));
  const least = (ms: Measured[]) => Math.min(...ms.map((m) => m.seconds));
  const [gdbS, bareS, dbgS, floorS] = [med(gdb), med(bare), med(dbg), med(floor)];
  const dbgRss = Math.max(...dbg.map((m) => m.maxRssKiB)) / 1024;
  const gdbRss = Math.max(...gdb.map((m) => m.maxRssKiB)) / 1024;
  const ratio = dbgS / gdbS;
  const fmt = (x: number) => x.toFixed(3);
  return [
    {
      name: 'open 1 GiB core + all backtraces: time vs gdb',
      value: ratio,
      unit: 'x',
      goal: '<= 0.5x',
      ok: ratio <= 0.5,
      baseline: `gdb ${fmt(gdbS)} s, dbg ${fmt(dbgS)} s (medians of ${runs}; fastest ${fmt(least(gdb))} and ${fmt(least(dbg))})`,
    },
    {
      name: 'the same vs gdb without separate debug info',
      value: dbgS / bareS,
      unit: 'x',
      baseline: `gdb -iex 'set debug-file-directory /nonexistent' ${fmt(bareS)} s (fastest ${fmt(least(bare))})`,
    },
    {
      name: 'the same, less Node.js start-up, vs gdb',
      value: (dbgS - floorS) / gdbS,
      unit: 'x',
      baseline: `node -e "" ${fmt(floorS)} s (fastest ${fmt(least(floor))})`,
    },
    { name: 'open 1 GiB core + all backtraces: peak RSS', value: dbgRss, unit: 'MiB', goal: '<= 150 MB', ok: dbgRss * 1.048576 <= 150, baseline: `gdb ${gdbRss.toFixed(0)} MiB` },
  ];
}

/** The dbg side, in its own process: open, unwind every thread, print as gdb does. */
async function child(core: string, exe: string): Promise<void> {
  const { ProcessCoreTarget } = await import('../src/targets/elfcore/process-core-target.js');
  const { unwind } = await import('../src/targets/unwind.js');
  const t = ProcessCoreTarget.open(core, { exe });
  const lines: string[] = [];
  for (const w of t.warnings) lines.push(`warning: ${w}`);
  for (const th of [...t.threads()].reverse()) {
    lines.push(`Thread ${th.index} (${th.name}):`);
    for (const f of unwind(t, th.index)) {
      const name = t.symbols.describe(f.pc - (f.level > 0 ? 1n : 0n))?.replace(/\+0x[0-9a-f]+$/, '') ?? '??';
      lines.push(`#${f.level}  0x${f.pc.toString(16).padStart(16, '0')} in ${name} ()`);
    }
    lines.push('');
  }
  t.close();
  // fs.writeSync, not process.stdout: setting up the stdout stream costs a few ms at start-up.
  writeSync(1, lines.join('\n') + '\n');
  if (!existsSync('/usr/bin/time')) writeSync(2, `maxrss=${peakRssKiB()}\n`);
}

if (process.argv[2] === '--child' && process.argv[1] === fileURLToPath(import.meta.url)) {
  await child(process.argv[3]!, process.argv[4]!);
}
