/**
 * The GDB server against Debian's gdbserver, side by side in one run, both driven by the same
 * `gdb -batch` (each figure is the wall time of that gdb process, connection included):
 *
 * Each figure is the median of 5 runs of each side, interleaved, after one untimed warm-up round
 * (all runs are listed in the baseline column).
 *
 *   dump   `dump binary memory` of a 16 MiB anonymous mapping of a live process.
 *          gdbserver: attached to the process (reads /proc/PID/mem).
 *          dbg:       `dbg open CORE --gdb` on a gcore core of that same process, taken first
 *                     (dbg serves a process only post mortem). Both dumps must be identical.
 *          Goal: dbg at least as fast (ratio <= 1).
 *   stepi  `stepi 10000`, timed alone inside gdb (its Python clock), connection not counted.
 *          gdbserver: the same attached process, stepping its busy loop (ptrace single-steps).
 *          dbg:       `dbg live --emulate dumps/kernel.elf --cmdline nobug --gdb`, stepping the
 *                     sample kernel's task_logger delay loop in the emulator (no recording).
 *          Goal: dbg no slower (ratio <= 1).
 *
 * Both servers run as separate processes started fresh; gdb runs with -nx and sysroot /.
 * The program is built under bench/.work/ (git-ignored).
 */

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from './bench-result.js';
import { median, startServer, stop, timed, timeGdb } from './gdb-bench.js';

const SOURCE = String.raw`
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
#define SIZE (16UL << 20)
volatile unsigned long counter;
int main(void) {
  unsigned char *buf = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  for (unsigned long i = 0; i < SIZE; i++) buf[i] = (unsigned char)(i * 7 + (i >> 12));
  printf("ready %p\n", (void *)buf);
  fflush(stdout);
  for (;;) {
    for (int i = 0; i < 1000000; i++) counter++;
    usleep(1000);
  }
}
`;

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, here.endsWith(join('dist', 'bench')) ? '../..' : '..');
const work = join(root, 'bench', '.work', 'gdbserver');
const MIB16 = 16 << 20;
/** Each figure is the median of this many runs, dbg and gdbserver alike (the machine is shared). */
const RUNS = 5;

function ratioResult(name: string, dbgRuns: number[], baseRuns: number[], what: string): BenchResult[] {
  const dbg = median(dbgRuns);
  const base = median(baseRuns);
  const list = (xs: number[]) => xs.map((x) => x.toFixed(2)).join('/');
  return [
    { name: `${name}: dbg`, value: dbg, unit: 's', baseline: `gdbserver ${base.toFixed(2)} s (${what}; runs dbg ${list(dbgRuns)}, gdbserver ${list(baseRuns)})` },
    { name: `${name}: dbg / gdbserver`, value: dbg / base, unit: 'x', goal: '<= 1.0x gdbserver', ok: dbg <= base },
  ];
}

export async function run(): Promise<BenchResult[]> {
  for (const tool of ['gcc', 'gdb', 'gdbserver']) {
    if (spawnSync('which', [tool]).status !== 0) throw new Error(`${tool} is not installed (the setup script installs it)`);
  }
  mkdirSync(work, { recursive: true });
  const prog = join(work, 'busy');
  const src = join(work, 'busy.c');
  if (!existsSync(prog) || readFileSync(src, 'utf8') !== SOURCE) {
    writeFileSync(src, SOURCE);
    execFileSync('gcc', ['-O0', '-g', '-o', prog, src]);
  }
  const dbg = join(root, 'bin', 'dbg');
  // The emulated kernel is stepped without recording: recording is dbg live's default, but the
  // comparison is with gdbserver stepping, which records nothing.
  const kernel = join(root, 'dumps', 'kernel.elf');
  const results: BenchResult[] = [];

  const proc = spawn(prog, [], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const addr = await new Promise<bigint>((res, rej) => {
      let out = '';
      proc.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /ready (0x[0-9a-f]+)/.exec(out);
        if (m) res(BigInt(m[1]!));
      });
      proc.on('exit', (c) => rej(new Error(`busy exited (${c})`)));
    });
    const range = `0x${addr.toString(16)} 0x${(addr + BigInt(MIB16)).toString(16)}`;

    // The core first (gdb detaches and the process runs on), then gdbserver attaches.
    const core = join(work, 'busy.core');
    rmSync(core, { force: true });
    execFileSync('gdb', ['-nx', '-batch', '-p', String(proc.pid), '-ex', `gcore ${core}`], { stdio: 'ignore' });
    if (!existsSync(core)) throw new Error('gcore made no core');

    // gdbserver --attach serves one gdb and exits when it detaches: attach afresh for each figure.
    const viaGdbserver = async (cmds: string[]): Promise<number> => {
      const gs = await startServer('gdbserver', ['--attach', '127.0.0.1:0', String(proc.pid)], /Listening on port (\d+)/);
      try {
        return await timeGdb(gs.port, prog, cmds);
      } finally {
        await stop(gs.child);
      }
    };
    const outGs = join(work, 'dump-gdbserver.bin');
    const outDbg = join(work, 'dump-dbg.bin');
    const open = await startServer(process.execPath, [dbg, 'open', core, '--exe', prog, '--gdb', '127.0.0.1:0'], /listening on 127\.0\.0\.1:(\d+)/);
    const live = await startServer(process.execPath, [dbg, 'live', '--emulate', kernel, '--cmdline', 'nobug', '--wait', '-q', '--no-record', '--gdb', '127.0.0.1:0'], /listening on 127\.0\.0\.1:(\d+)/);
    const gsDump: number[] = [];
    const gsStep: number[] = [];
    const dbgDump: number[] = [];
    const dbgStep: number[] = [];
    try {
      // Interleaved, so that both sides see the same load on a shared machine. The busy loop is
      // stopped (SIGSTOP) while dbg runs: gdbserver's runs have it stopped by ptrace too.
      // One untimed round first: page cache, JIT and gdb's own caches warm for both sides alike.
      for (let i = -1; i < RUNS; i++) {
        const keep = <T>(xs: T[], x: T): void => {
          if (i >= 0) xs.push(x);
        };
        proc.kill('SIGCONT');
        keep(gsDump, await viaGdbserver([`dump binary memory ${outGs} ${range}`]));
        keep(gsStep, await viaGdbserver(timed('stepi 10000')));
        proc.kill('SIGSTOP');
        keep(dbgDump, await timeGdb(open.port, prog, [`dump binary memory ${outDbg} ${range}`]));
        // The same kind of code as the busy loop: task_logger's delay loop (2000 turns, ~10000
        // instructions), reached by a breakpoint that is deleted before the timed stepi.
        keep(dbgStep, await timeGdb(live.port, kernel, ['break task_logger', 'continue', 'delete', ...timed('stepi 10000')]));
      }
    } finally {
      await stop(open.child);
      await stop(live.child);
    }
    if (statSync(outDbg).size !== MIB16 || !readFileSync(outDbg).equals(readFileSync(outGs))) {
      throw new Error('the 16 MiB dumps through dbg and gdbserver differ');
    }
    results.push(...ratioResult('dump binary memory 16 MiB', dbgDump, gsDump, 'attached to the live process; dbg serves its gcore core'));
    results.push(...ratioResult('stepi 10000', dbgStep, gsStep, 'ptrace steps of a live process\'s loop; dbg steps a loop of the emulated sample kernel'));
    rmSync(outGs, { force: true });
    rmSync(outDbg, { force: true });
  } finally {
    proc.kill('SIGCONT');
    proc.kill('SIGKILL');
  }
  return results;
}
