/**
 * The GDB server's round trips, one command at a time, against QEMU's own gdbstub on the same
 * kernel (issue 15's Speed table), side by side in one run. Each figure is the median over RUNS
 * gdb runs of the mean time of one `stepi` (or `reverse-stepi`) command, timed inside gdb (its
 * Python clock) over STEPS commands issued one by one (gdb.execute, as a user types them: each
 * reads the registers and the frame it stops in, as `stepi` at the prompt does).
 *
 *   qemu          qemu-system-x86_64 -kernel dumps/qemu/kernel.elf -S -gdb (TCG), stepping the
 *                 kernel's run_ticks loop, reached by a breakpoint deleted before the timing.
 *   live          dbg live --emulate on the same kernel, no recording, the same loop.
 *                 Goal: <= QEMU's.
 *   replay        dbg replay of that kernel's recorded run, from the same breakpoint (reached by
 *                 reverse-continue): `stepi` forward in the history, then `reverse-stepi` back.
 *                 Goal: each <= live.
 *   loaded        qemu and live again with a CPU hog per core running (busy `sh` loops).
 *                 Goal: live <= 1.5x QEMU's.
 *
 * Servers start fresh for each run (a live guest cannot step the same instructions twice); the
 * runs of each kind are interleaved, so load changes hit all alike.
 */

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from './bench-result.js';
import { median, startQemu, startServer, stop, timeGdb } from './gdb-bench.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, here.endsWith(join('dist', 'bench')) ? '../..' : '..');
const work = join(root, 'bench', '.work', 'gdb-latency');
const kernel = join(root, 'dumps', 'qemu', 'kernel.elf');
const dbg = join(root, 'bin', 'dbg');
const RUNS = Number(process.env.DBG_BENCH_RUNS ?? 5);
const STEPS = 200;

/** gdb commands: STEPS times `cmd`, one gdb command each, timed as a whole; prints TIMED seconds. */
function eachTimed(cmd: string): string[] {
  return [
    `python import time; t0 = time.monotonic(); [gdb.execute('${cmd}', to_string=True) for _ in range(${STEPS})]; print("TIMED %.6f" % (time.monotonic() - t0))`,
  ];
}

const dbgListening = /listening on 127\.0\.0\.1:(\d+)/;

/** One run: a fresh server, gdb to run_ticks, then the timed commands; ms per command. */
async function oneRun(kind: 'qemu' | 'live' | 'replay-forward' | 'replay-reverse', trace: string): Promise<number> {
  const server =
    kind === 'qemu'
      ? await startQemu(kernel)
      : kind === 'live'
        ? await startServer(process.execPath, [dbg, 'live', '--emulate', kernel, '--wait', '-q', '--no-record', '--gdb', '127.0.0.1:0'], dbgListening)
        : await startServer(process.execPath, [dbg, 'replay', trace, '--symbols', kernel, '--gdb', '127.0.0.1:0'], dbgListening);
  try {
    // A replay starts at the end of its history: back to run_ticks. The reverse figure steps
    // back from STEPS instructions after it, so both replay figures cover the same instructions.
    const reach = kind.startsWith('replay') ? ['break run_ticks', 'reverse-continue', 'delete'] : ['break run_ticks', 'continue', 'delete'];
    const prepare = kind === 'replay-reverse' ? [`stepi ${STEPS}`] : [];
    const secs = await timeGdb(server.port, kernel, [...reach, ...prepare, ...eachTimed(kind === 'replay-reverse' ? 'reverse-stepi' : 'stepi')]);
    return (secs * 1000) / STEPS;
  } finally {
    await stop(server.child);
  }
}

/** A busy loop per core, for the loaded figures; stopped by the returned function. */
function hogs(): () => Promise<void> {
  const children = cpus().map(() => spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }));
  return async () => {
    await Promise.all(children.map((c) => stop(c)));
  };
}

export async function run(): Promise<BenchResult[]> {
  for (const tool of ['gdb', 'qemu-system-x86_64']) {
    if (spawnSync('which', [tool]).status !== 0) throw new Error(`${tool} is not installed (the setup script installs it)`);
  }
  if (!existsSync(kernel)) throw new Error(`${kernel} is missing (node scripts/setup.mjs)`);
  mkdirSync(work, { recursive: true });
  const trace = join(work, 'kernel.trace');
  rmSync(trace, { force: true });
  const rec = spawnSync(process.execPath, [dbg, 'live', '--emulate', kernel, '-q', '--record', trace, '-e', ':c'], { input: '', encoding: 'utf8', timeout: 300_000 });
  if (rec.status !== 0) throw new Error(`recording the kernel failed: ${rec.stderr}`);

  const kinds = ['qemu', 'live', 'replay-forward', 'replay-reverse'] as const;
  const quiet: Record<string, number[]> = Object.fromEntries(kinds.map((k) => [k, []]));
  const loaded: Record<string, number[]> = { qemu: [], live: [] };
  // One untimed round first (page cache, JIT, gdb's own start), then RUNS rounds.
  for (let i = -1; i < RUNS; i++) {
    for (const k of kinds) {
      const ms = await oneRun(k, trace);
      if (i >= 0) quiet[k]!.push(ms);
    }
  }
  const release = hogs();
  try {
    for (let i = 0; i < RUNS; i++) {
      for (const k of ['qemu', 'live'] as const) loaded[k]!.push(await oneRun(k, trace));
    }
  } finally {
    await release();
  }
  rmSync(trace, { force: true });

  const list = (xs: number[]) => xs.map((x) => x.toFixed(2)).join('/');
  const q = median(quiet.qemu!);
  const live = median(quiet.live!);
  const fwd = median(quiet['replay-forward']!);
  const rev = median(quiet['replay-reverse']!);
  const lq = median(loaded.qemu!);
  const ll = median(loaded.live!);
  const per = `ms per command, ${STEPS} one at a time, median of ${RUNS}`;
  return [
    { name: 'stepi: QEMU gdbstub', value: q, unit: 'ms', baseline: `${per}; runs ${list(quiet.qemu!)}` },
    { name: 'stepi: dbg live', value: live, unit: 'ms', goal: '<= QEMU', ok: live <= q, baseline: `runs ${list(quiet.live!)}` },
    { name: 'stepi: dbg replay, forward', value: fwd, unit: 'ms', goal: '<= dbg live', ok: fwd <= live, baseline: `runs ${list(quiet['replay-forward']!)}` },
    { name: 'reverse-stepi: dbg replay', value: rev, unit: 'ms', goal: '<= dbg live', ok: rev <= live, baseline: `runs ${list(quiet['replay-reverse']!)}` },
    { name: 'stepi, a CPU hog per core: QEMU gdbstub', value: lq, unit: 'ms', baseline: `${cpus().length} busy loops; runs ${list(loaded.qemu!)}` },
    { name: 'stepi, a CPU hog per core: dbg live / QEMU', value: ll / lq, unit: 'x', goal: '<= 1.5x', ok: ll <= 1.5 * lq, baseline: `dbg live ${ll.toFixed(2)} ms; runs ${list(loaded.live!)}` },
  ];
}
