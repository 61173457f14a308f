/**
 * Real debuggees for tests: a C program built by gcc, run until it says it is ready, dumped by
 * gdb's `gcore` (and by the kernel, when the machine lets a process dump core into its working
 * directory), then killed. Results are cached under test/.fixtures/<name>-<hash>/, keyed by what
 * changes them: the source, the flags, the gcc, gdb and glibc versions, and the directory the
 * program ran in (the cores name it: the kernel and gcore record the executable's absolute path in
 * NT_FILE). The record in the cache holds names relative to its directory, so a moved checkout
 * finds no stale entry and makes fresh cores instead of cores naming files that moved.
 *
 * `gdbBatch` asks a real gdb the same questions dbg answers, with everything that could make its
 * answers depend on the machine's configuration turned off (init files, separate debug info,
 * debuginfod, a sysroot other than /).
 */

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './repo.js';

export const fixturesSrc = join(repoRoot, 'test', 'fixtures-src');
const cacheRoot = join(repoRoot, 'test', '.fixtures');

/** Bump when the way fixtures are made changes, so old caches are not reused. */
const RECIPE = 'debuggee-v3';

export interface Debuggee {
  /** The executable gcc built. */
  readonly exe: string;
  /** The core gdb's gcore wrote of the running program. */
  readonly core: string;
  /**
   * The core the kernel wrote, if the machine allowed it: when the program was killed by SIGABRT,
   * or (kernelCoreBy 'stdin') when it crashed by itself after reading a line from its stdin.
   */
  readonly kernelCore?: string;
  /** Why there is no kernel core. */
  readonly kernelCoreProblem?: string;
  readonly pid: number;
  readonly dir: string;
}

export interface DebuggeeOptions {
  /** Compiler flags; the default is what the tests need from gdb: -O0 -g -fno-omit-frame-pointer. */
  readonly cflags?: readonly string[];
  /** Make a kernel-written core too. */
  readonly kernelCore?: boolean;
  /**
   * How the program is made to dump core after gcore: 'abort' (SIGABRT, the default) or 'stdin'
   * (a line on its stdin, which the program answers by crashing: a real crash's core).
   */
  readonly kernelCoreBy?: 'abort' | 'stdin';
  /** How long the program may take to print its ready line. */
  readonly readyTimeoutMs?: number;
  /** Where to cache; test/.fixtures by default. */
  readonly cacheDir?: string;
}

const defaultCflags = ['-O0', '-g', '-fno-omit-frame-pointer', '-pthread'];

function toolVersions(): string {
  const v = (cmd: string) => (spawnSync(cmd, ['--version'], { encoding: 'utf8' }).stdout ?? '').split('\n')[0] ?? '';
  // ldd's first line names the glibc build ("ldd (Debian GLIBC 2.36-9+deb12u10) 2.36"): a libc
  // update moves the libraries' code, and with it every backtrace through them.
  return `${v('gcc')}|${v('gdb')}|${v('ldd')}`;
}

/**
 * Why this machine's kernel will not write a core into a program's working directory, or
 * undefined when it will: core_pattern pipes cores to a crash handler (systemd-coredump, apport)
 * or names another directory, or the hard core-size limit is 0. Tests of kernel-written cores skip
 * with this reason.
 */
export function kernelCoreUnavailable(): string | undefined {
  let pattern: string;
  try {
    pattern = readFileSync('/proc/sys/kernel/core_pattern', 'utf8').trim();
  } catch (e) {
    return `cannot read /proc/sys/kernel/core_pattern (${(e as Error).message})`;
  }
  if (pattern.startsWith('|')) return `/proc/sys/kernel/core_pattern pipes cores to a program ("${pattern}"), not into the working directory`;
  if (pattern.includes('/')) return `/proc/sys/kernel/core_pattern writes cores elsewhere ("${pattern}")`;
  const hard = spawnSync('/bin/sh', ['-c', 'ulimit -H -c'], { encoding: 'utf8' }).stdout?.trim();
  if (hard === '0') return 'the hard core-size limit (ulimit -H -c) is 0';
  return undefined;
}

/** Prints why tests are skipped (once per reason and test file), so a skip is never silent. */
export function skipReason(what: string, reason: string | undefined): boolean {
  if (reason) console.warn(`skipped: ${what}: ${reason}`);
  return !!reason;
}

/** Build test/fixtures-src/<name>.c (or .cpp) and the cores of one run of it (cached). */
export async function debuggee(name: string, opts: DebuggeeOptions = {}): Promise<Debuggee> {
  // test/fixtures-src/NAME.c, or NAME.cpp (built by g++).
  const cpp = existsSync(join(fixturesSrc, `${name}.cpp`));
  const src = join(fixturesSrc, `${name}.${cpp ? 'cpp' : 'c'}`);
  const cflags = opts.cflags ?? defaultCflags;
  const key = createHash('sha256')
    .update(RECIPE)
    .update(readFileSync(src))
    .update(cflags.join(' '))
    .update(String(!!opts.kernelCore))
    .update(opts.kernelCoreBy === 'stdin' ? 'stdin' : '')
    .update(toolVersions())
    .update(opts.cacheDir ?? cacheRoot)
    .digest('hex')
    .slice(0, 16);
  const root = opts.cacheDir ?? cacheRoot;
  const dir = join(root, `${name}-${key}`);
  const meta = join(dir, 'debuggee.json');
  if (existsSync(meta)) return paths(dir, meta);

  // Built in place (not renamed afterwards) so the paths the core's NT_FILE note records stay
  // valid. mkdir is the lock: whoever creates the directory builds; others wait for its record.
  mkdirSync(root, { recursive: true });
  if (!claim(dir)) {
    await waitFor(meta);
    return paths(dir, meta);
  }
  try {
    const exe = join(dir, name);
    execFileSync(cpp ? 'g++' : 'gcc', [...cflags, '-o', exe, src], { stdio: 'pipe' });
    const made = await runAndDump(exe, dir, opts);
    writeFileSync(meta, JSON.stringify(made, null, 2));
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return paths(dir, meta);
}

/** Creates `dir`; false when another process has (a directory left by a crash is taken over). */
function claim(dir: string): boolean {
  try {
    mkdirSync(dir);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    if (Date.now() - statSync(dir).mtimeMs > 10 * 60_000 && !existsSync(join(dir, 'debuggee.json'))) {
      rmSync(dir, { recursive: true, force: true });
      return claim(dir);
    }
    return false;
  }
}

async function waitFor(file: string, timeoutMs = 300_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!existsSync(file)) {
    if (Date.now() > until) throw new Error(`gave up waiting for another test process to write ${file}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The stored record holds names relative to its directory, so the cache can move. */
function paths(dir: string, meta: string): Debuggee {
  const m = JSON.parse(readFileSync(meta, 'utf8')) as { exe: string; core: string; kernelCore?: string; kernelCoreProblem?: string; pid: number };
  return {
    exe: join(dir, m.exe),
    core: join(dir, m.core),
    ...(m.kernelCore ? { kernelCore: join(dir, m.kernelCore) } : {}),
    ...(m.kernelCoreProblem ? { kernelCoreProblem: m.kernelCoreProblem } : {}),
    pid: m.pid,
    dir,
  };
}

async function runAndDump(
  exe: string,
  work: string,
  opts: DebuggeeOptions,
): Promise<{ exe: string; core: string; kernelCore?: string; kernelCoreProblem?: string; pid: number }> {
  // A shell raises the core size limit for the program only; exec keeps the pid.
  const child = spawn('/bin/sh', ['-c', `ulimit -c unlimited 2>/dev/null; exec "$0"`, exe], {
    cwd: work,
    stdio: [opts.kernelCoreBy === 'stdin' ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid!;
  let exited = false;
  const exitedP = new Promise<void>((res) => child.on('exit', () => ((exited = true), res())));
  try {
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`${exe} did not print "ready" within ${opts.readyTimeoutMs ?? 30000} ms`)), opts.readyTimeoutMs ?? 30000);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (/ready/.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${exe} exited (${code}) before it was ready: ${out}`));
      });
    });
    const core = 'gcore.core';
    const r = spawnSync('gdb', ['-nx', '-batch', '-iex', 'set debuginfod enabled off', '-p', String(pid), '-ex', `gcore ${join(work, core)}`], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (!existsSync(join(work, core))) throw new Error(`gcore of pid ${pid} failed: ${r.stderr}${r.stdout}`);

    let kernelCore: string | undefined;
    let kernelCoreProblem: string | undefined;
    // Where the kernel would hand the core to a crash handler, do not crash the program at all
    // (no report lands in the user's crash reporter); the record says why there is no core.
    const unavailable = opts.kernelCore ? kernelCoreUnavailable() : undefined;
    if (unavailable) kernelCoreProblem = unavailable;
    else if (opts.kernelCore) {
      const pattern = readFileSync('/proc/sys/kernel/core_pattern', 'utf8').trim();
      if (opts.kernelCoreBy === 'stdin') child.stdin!.end('crash\n');
      else process.kill(pid, 'SIGABRT');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exitedP, new Promise((r) => (timer = setTimeout(r, 30_000)))]);
      clearTimeout(timer);
      const found = readdirSync(work).find((f) => f === 'core' || f.startsWith('core.'));
      if (found) kernelCore = found;
      else kernelCoreProblem = `the kernel wrote no core into the working directory (core_pattern is "${pattern}")`;
    }
    return { exe: exe.slice(work.length + 1), core, ...(kernelCore ? { kernelCore } : {}), ...(kernelCoreProblem ? { kernelCoreProblem } : {}), pid };
  } finally {
    if (!exited) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      await exitedP;
    }
  }
}

/**
 * Output of `gdb -batch` on `exe` and `core` running `commands` in order. gdb is made
 * deterministic: no init files, no separate debug info (so libc6-dbg's presence changes nothing),
 * no debuginfod, sysroot /, no pagination, and a wide line.
 */
export function gdbBatch(exe: string, core: string, commands: readonly string[], extraInit: readonly string[] = []): string {
  const args = [
    '-nx',
    '-batch',
    '-iex', 'set debug-file-directory /nonexistent',
    '-iex', 'set debuginfod enabled off',
    '-iex', 'set sysroot /',
    '-iex', 'set width 0',
    '-iex', 'set height 0',
    '-iex', 'set print thread-events off',
    ...extraInit.flatMap((c) => ['-iex', c]),
    exe,
    core,
    ...commands.flatMap((c) => ['-ex', c]),
  ];
  const r = spawnSync('gdb', args, { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return r.stdout;
}
