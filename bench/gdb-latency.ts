/**
 * The GDB server's round trips, one command at a time, against QEMU's own gdbstub on the same
 * kernel (issue 15's Speed table), side by side in one run. A figure is the mean time of one
 * `stepi` (or `reverse-stepi`) command over STEPS commands issued one by one, timed inside gdb (its
 * Python clock: gdb.execute, as a user types them; each reads the registers and the frame it stops
 * in, as `stepi` at the prompt does).
 *
 *   qemu          qemu-system-x86_64 -kernel dumps/qemu/kernel.elf -S -gdb (TCG), stepping the
 *                 kernel's run_ticks loop, reached by a breakpoint deleted before the timing.
 *   live          dbg live --emulate on the same kernel, no recording, the same loop.
 *                 Goal: <= QEMU's.
 *   replay        dbg replay of that kernel's recorded run, from the same breakpoint (reached by
 *                 reverse-continue): `stepi` forward in the history, and on another server
 *                 `reverse-stepi` back over the same instructions. Goal: each <= live.
 *   loaded        qemu and live again with a CPU hog per core running (busy `sh` loops).
 *                 Goal: live <= 1.5x QEMU's.
 *
 * Interleaved, because on a shared 2-core machine one run's figure moves by +-20% with what else
 * runs: each round starts fresh servers of every kind (a live guest cannot step the same
 * instructions twice, and a fresh dbg is what a user meets), a gdb on each stopped at run_ticks,
 * then takes BLOCK commands from each in turn (the order rotating) until each has done STEPS. A
 * round's ratios (dbg live / QEMU, replay / live) compare steps made in the same seconds, and the
 * figures are medians over RUNS rounds, with their range. Before each block every server has gone
 * quiet (quiet(): V8 may finish a compile on its worker threads after dbg's last reply), so that
 * no server's leftover work lands in another's steps; that leftover is counted in its CPU time.
 *
 * CPU per step (the kernel's schedstat): dbg's main thread (the event loop that answers gdb) and
 * its whole process (V8's compiler and GC threads too), QEMU's whole process (its I/O thread that
 * answers gdb and its vCPU thread that steps).
 */

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from './bench-result.js';
import { median, processCpu, quiet, startQemu, startServer, SteppingGdb, stop } from './gdb-bench.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, here.endsWith(join('dist', 'bench')) ? '../..' : '..');
const work = join(root, 'bench', '.work', 'gdb-latency');
const kernel = join(root, 'dumps', 'qemu', 'kernel.elf');
const dbg = join(root, 'bin', 'dbg');
const RUNS = Number(process.env.DBG_BENCH_RUNS ?? 7);
/** Commands per server and round. */
const STEPS = 200;
/** Commands per turn. */
const BLOCK = 20;

type Kind = 'qemu' | 'live' | 'replay-forward' | 'replay-reverse';

const dbgListening = /listening on 127\.0\.0\.1:(\d+)/;

/** One server of a round and what its steps took so far. */
interface Contender {
  readonly kind: Kind;
  readonly server: Awaited<ReturnType<typeof startQemu>>;
  readonly gdb: SteppingGdb;
  readonly cmd: string;
  secs: number;
  mainNs: number;
  allNs: number;
}

/** What one round measured for one kind: per command. */
interface Sample {
  readonly ms: number;
  readonly mainUs: number;
  readonly allUs: number;
}

/** A fresh server of `kind` and a gdb on it stopped at run_ticks (a reverse one STEPS after it). */
async function contender(kind: Kind, trace: string): Promise<Contender> {
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
    const gdb = await SteppingGdb.start(server.port, kernel, [...reach, ...prepare], work);
    return { kind, server, gdb, cmd: kind === 'replay-reverse' ? 'reverse-stepi' : 'stepi', secs: 0, mainNs: 0, allNs: 0 };
  } catch (e) {
    await stop(server.child);
    throw e;
  }
}

/** One round: fresh servers of `kinds`, STEPS commands on each in turns of BLOCK. */
async function round(kinds: readonly Kind[], trace: string): Promise<Map<Kind, Sample>> {
  const all: Contender[] = [];
  try {
    // One after another, so that each dbg's rehearsal (src/gdbserver/rehearsal.ts) runs alone as it does for a user.
    for (const k of kinds) all.push(await contender(k, trace));
    const pids = all.map((c) => c.server.child.pid!);
    await quiet(pids);
    for (let turn = 0; turn * BLOCK < STEPS; turn++) {
      for (let i = 0; i < all.length; i++) {
        const c = all[(turn + i) % all.length]!;
        const pid = c.server.child.pid!;
        const before = processCpu(pid);
        c.secs += await c.gdb.block(BLOCK, c.cmd);
        await quiet([pid]);
        const after = processCpu(pid);
        c.mainNs += after.mainNs - before.mainNs;
        c.allNs += after.allNs - before.allNs;
      }
    }
  } finally {
    await Promise.all(all.map(async (c) => {
      await c.gdb.close();
      await stop(c.server.child);
    }));
  }
  return new Map(all.map((c) => [c.kind, { ms: (c.secs * 1000) / STEPS, mainUs: c.mainNs / 1000 / STEPS, allUs: c.allNs / 1000 / STEPS }]));
}

/** A busy loop per core, for the loaded figures; stopped by the returned function. */
function hogs(): () => Promise<void> {
  const children = cpus().map(() => spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }));
  return async () => {
    await Promise.all(children.map((c) => stop(c)));
  };
}

/** "median (min-max)" of `xs` with `digits` decimals. */
function spread(xs: readonly number[], digits = 2): string {
  return `${median([...xs]).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)})`;
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

  const quietRounds: Map<Kind, Sample>[] = [];
  // One untimed round first (page cache, gdb's own start), then RUNS rounds.
  for (let i = -1; i < RUNS; i++) {
    const r = await round(['qemu', 'live', 'replay-forward', 'replay-reverse'], trace);
    if (i >= 0) quietRounds.push(r);
  }
  const loadedRounds: Map<Kind, Sample>[] = [];
  const release = hogs();
  try {
    for (let i = 0; i < RUNS; i++) loadedRounds.push(await round(['qemu', 'live'], trace));
  } finally {
    await release();
  }
  rmSync(trace, { force: true });

  const of = (rounds: Map<Kind, Sample>[], k: Kind, f: (s: Sample) => number) => rounds.map((r) => f(r.get(k)!));
  const ms = (rounds: Map<Kind, Sample>[], k: Kind) => of(rounds, k, (s) => s.ms);
  const ratios = (rounds: Map<Kind, Sample>[], a: Kind, b: Kind) => rounds.map((r) => r.get(a)!.ms / r.get(b)!.ms);
  const list = (xs: number[]) => xs.map((x) => x.toFixed(2)).join('/');
  const liveQemu = ratios(quietRounds, 'live', 'qemu');
  const fwdLive = ratios(quietRounds, 'replay-forward', 'live');
  const revLive = ratios(quietRounds, 'replay-reverse', 'live');
  const cpuRatio = quietRounds.map((r) => r.get('live')!.mainUs / r.get('qemu')!.allUs);
  const loadedRatio = ratios(loadedRounds, 'live', 'qemu');
  const us = (k: Kind, f: (s: Sample) => number) => spread(of(quietRounds, k, f), 0);
  const per = `ms per command, ${STEPS} one at a time in turns of ${BLOCK} with the other servers'; median (range) of ${RUNS} rounds`;
  return [
    { name: 'stepi: QEMU gdbstub', value: median(ms(quietRounds, 'qemu')), unit: 'ms', baseline: `${per}: ${spread(ms(quietRounds, 'qemu'))}` },
    { name: 'stepi: dbg live / QEMU', value: median(liveQemu), unit: 'x', goal: '<= 1x', ok: median(liveQemu) <= 1, baseline: `per round ${list(liveQemu)}; dbg live ${spread(ms(quietRounds, 'live'))} ms` },
    { name: 'stepi: dbg replay, forward / live', value: median(fwdLive), unit: 'x', goal: '<= 1x', ok: median(fwdLive) <= 1, baseline: `per round ${list(fwdLive)}; ${spread(ms(quietRounds, 'replay-forward'))} ms` },
    { name: 'reverse-stepi: dbg replay / live', value: median(revLive), unit: 'x', goal: '<= 1x', ok: median(revLive) <= 1, baseline: `per round ${list(revLive)}; ${spread(ms(quietRounds, 'replay-reverse'))} ms` },
    {
      name: 'CPU per stepi: dbg live main thread / QEMU process',
      value: median(cpuRatio),
      unit: 'x',
      goal: '<= 1x',
      ok: median(cpuRatio) <= 1,
      baseline: `per round ${list(cpuRatio)}; us per command: dbg main thread ${us('live', (s) => s.mainUs)}, whole process ${us('live', (s) => s.allUs)}; QEMU ${us('qemu', (s) => s.allUs)} (I/O thread ${us('qemu', (s) => s.mainUs)})`,
    },
    { name: 'stepi, a CPU hog per core: QEMU gdbstub', value: median(ms(loadedRounds, 'qemu')), unit: 'ms', baseline: `${cpus().length} busy loops: ${spread(ms(loadedRounds, 'qemu'))}` },
    {
      name: 'stepi, a CPU hog per core: dbg live / QEMU',
      value: median(loadedRatio),
      unit: 'x',
      goal: '<= 1.5x',
      ok: median(loadedRatio) <= 1.5,
      baseline: `per round ${list(loadedRatio)}; dbg live ${spread(ms(loadedRounds, 'live'))} ms`,
    },
  ];
}
