/**
 * The live process target (dbg run / dbg attach PID) against Debian's gdbserver, side by side in
 * one run, both serving the same gcc-built program to the same `gdb -batch`, which times each
 * section itself (its Python clock; start, symbols and connection not counted):
 *
 *   bp hit  HITS breakpoint hits: `break tick`, then `continue` HITS times. Each is a stop reply
 *           (breakpoint hit to reply), gdb's reads of the stop, and a resume that steps over the
 *           breakpoint. Figure: microseconds per hit. Goal: dbg <= gdbserver.
 *   stepi   `stepi STEPS` in the same loop: one RSP round trip per step. Figure: microseconds per
 *           step. Goal: dbg <= gdbserver.
 *   attach  ProcessTarget.attach of a process with 100 threads, each sleeping, until every thread
 *           is stopped and its modules are known; then detach (not timed). In this process, the
 *           median of ROUNDS. Goal: <= 50 ms.
 *
 * dbg: `dbg run --gdb 127.0.0.1:0 PROG`; gdbserver: `gdbserver --once 127.0.0.1:0 PROG`, each
 * started fresh per round, rounds interleaved, after one untimed warm-up; medians of ROUNDS.
 */

import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from './bench-result.js';
import { gdbArgs, median, startServer, stop, timed } from './gdb-bench.js';
import { ProcessTarget } from '../src/targets/process/process-target.js';

const LOOP = String.raw`
#include <stdio.h>
volatile unsigned long n;
void tick(void) { n++; }
int main(void) {
  for (;;) tick();
}
`;

const THREADS = String.raw`
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
void *sleeper(void *p) { for (;;) pause(); return p; }
int main(void) {
  for (int i = 0; i < 99; i++) { pthread_t t; pthread_create(&t, NULL, sleeper, NULL); }
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
}
`;

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, here.endsWith(join('dist', 'bench')) ? '../..' : '..');
const work = join(root, 'bench', '.work', 'process');
const ROUNDS = 5;
const HITS = 500;
const STEPS = 2000;

function build(name: string, src: string): string {
  mkdirSync(work, { recursive: true });
  const c = join(work, `${name}.c`);
  writeFileSync(c, src);
  const exe = join(work, name);
  execFileSync('gcc', ['-O0', '-g', '-pthread', '-o', exe, c]);
  return exe;
}

async function side(server: 'dbg' | 'gdbserver', exe: string): Promise<{ hit: number; step: number }> {
  const s =
    server === 'dbg'
      ? await startServer(process.execPath, [join(root, 'bin', 'dbg'), 'run', '--gdb', '127.0.0.1:0', exe], /listening on 127\.0\.0\.1:(\d+)/)
      : await startServer('gdbserver', ['--once', '127.0.0.1:0', exe], /Listening on port (\d+)/);
  try {
    // One gdb session (gdbserver --once serves one): the hits, then the steps, each timed alone.
    const out = await gdbOutput(gdbArgs(s.port, exe, ['break tick', 'continue', ...timed(`python [gdb.execute('continue', to_string=True) for _ in range(${HITS})]`), 'delete', ...timed(`stepi ${STEPS}`), 'kill']));
    const t = [...out.matchAll(/^TIMED (\d+\.\d+)$/gm)].map((m) => Number(m[1]));
    if (t.length !== 2) throw new Error(`gdb against ${server} did not time both sections: ${out.slice(-500)}`);
    return { hit: (t[0]! / HITS) * 1e6, step: (t[1]! / STEPS) * 1e6 };
  } finally {
    await stop(s.child);
  }
}

function gdbOutput(args: string[]): Promise<string> {
  return new Promise((res) => {
    const child = spawn('gdb', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', () => res(out));
  });
}

export async function run(): Promise<BenchResult[]> {
  const loop = build('loop', LOOP);
  const many = build('threads100', THREADS);
  // Warm-up, untimed.
  await side('dbg', loop);
  await side('gdbserver', loop);
  const ours: { hit: number; step: number }[] = [];
  const theirs: { hit: number; step: number }[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    ours.push(await side('dbg', loop));
    theirs.push(await side('gdbserver', loop));
  }
  const attachMs: number[] = [];
  for (let i = 0; i < ROUNDS + 1; i++) {
    const child = spawn(many, [], { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise<void>((res) => child.stdout!.on('data', (b: Buffer) => b.toString().includes('ready') && res()));
    const t0 = process.hrtime.bigint();
    const t = ProcessTarget.attach(child.pid!);
    const threads = t.threads().length;
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    t.close();
    child.kill('SIGKILL');
    if (threads !== 100) throw new Error(`attach saw ${threads} threads, expected 100`);
    if (i > 0) attachMs.push(ms);
  }
  const list = (xs: number[]) => xs.map((x) => x.toFixed(0)).join('/');
  const hitD = median(ours.map((o) => o.hit));
  const hitG = median(theirs.map((o) => o.hit));
  const stepD = median(ours.map((o) => o.step));
  const stepG = median(theirs.map((o) => o.step));
  const att = median(attachMs);
  return [
    { name: 'bp hit to stop reply (+resume): dbg', value: hitD, unit: 'µs', goal: '<= gdbserver', ok: hitD <= hitG, baseline: `gdbserver ${hitG.toFixed(0)} µs (runs dbg ${list(ours.map((o) => o.hit))}, gdbserver ${list(theirs.map((o) => o.hit))})` },
    { name: 'stepi round trip: dbg', value: stepD, unit: 'µs', goal: '<= gdbserver', ok: stepD <= stepG, baseline: `gdbserver ${stepG.toFixed(0)} µs (runs dbg ${list(ours.map((o) => o.step))}, gdbserver ${list(theirs.map((o) => o.step))})` },
    { name: 'attach to 100 threads', value: att, unit: 'ms', goal: '<= 50 ms', ok: att <= 50, baseline: `runs ${attachMs.map((x) => x.toFixed(1)).join('/')}` },
  ];
}
