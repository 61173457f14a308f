/**
 * dbg attach to Debian's gdbserver running a gcc-built program: gdbserver's target description
 * (x86-64 with AVX and orig_rax), a breakpoint on a function, ::stack through the program's CFI,
 * registers, a step off the breakpoint, and the exit (W) when the program ends.
 */

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gdbBatch } from '../gdbserver/gdb-batch.js';
import { freePort, runDbg, stop } from './attach-helpers.js';

const SOURCE = `#include <stdio.h>
int counter;
__attribute__((noinline)) int add(int a, int b) {
    counter += a;
    return a + b;
}
int main(void) {
    int s = 0;
    for (int i = 0; i < 3; i++)
        s = add(s, i + 1);
    printf("sum %d\\n", s);
    return 0;
}
`;

const THREADS = `#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
volatile int total;
pthread_barrier_t go;
__attribute__((noinline)) void work(int n) { total += n; }
/* Both threads are let go together, so both usually reach work's breakpoint at once; the sleep
   first leaves main waiting in pthread_join (in libc) by then. */
static void *run(void *arg) { usleep(100000); pthread_barrier_wait(&go); work((int)(long)arg); return NULL; }
int main(void) {
    pthread_t t[2];
    pthread_barrier_init(&go, 0, 2);
    for (long i = 0; i < 2; i++) pthread_create(&t[i], 0, run, (void *)(i + 1));
    for (int i = 0; i < 2; i++) pthread_join(t[i], 0);
    printf("total %d\\n", total);
    return 0;
}
`;

let dir: string;
let prog: string;
let threaded: string;
let pie: string;
let server: ChildProcess | undefined;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dbg-attach-gdbserver-'));
  writeFileSync(join(dir, 'prog.c'), SOURCE);
  prog = join(dir, 'prog');
  // -no-pie: the program runs at its link addresses, so --symbols needs no relocation.
  execFileSync('gcc', ['-g', '-O0', '-no-pie', '-o', prog, join(dir, 'prog.c')]);
  writeFileSync(join(dir, 'threads.c'), THREADS);
  threaded = join(dir, 'threads');
  execFileSync('gcc', ['-g', '-O0', '-no-pie', '-pthread', '-o', threaded, join(dir, 'threads.c')]);
  // The same program position-independent: it runs wherever the loader put it.
  pie = join(dir, 'pie');
  execFileSync('gcc', ['-g', '-O0', '-fPIE', '-pie', '-o', pie, join(dir, 'prog.c')]);
});

afterAll(async () => {
  await stop(server);
  rmSync(dir, { recursive: true, force: true });
});

/**
 * gdbserver --once on a free port, running the program (stopped at its first instruction).
 * `output`: what the program prints, complete when the promise settles (the pipe closes).
 */
async function gdbserver(program = prog, output?: (text: Promise<string>) => void): Promise<number> {
  const port = await freePort();
  server = spawn('gdbserver', ['--once', `127.0.0.1:${port}`, program], { stdio: ['ignore', output ? 'pipe' : 'ignore', 'pipe'] });
  if (output) {
    let text = '';
    server.stdout!.on('data', (b: Buffer) => (text += b.toString()));
    output(new Promise((done) => server!.stdout!.on('close', () => done(text))));
  }
  await new Promise<void>((done, fail) => {
    let text = '';
    server!.stderr!.on('data', (b: Buffer) => {
      text += b.toString();
      if (text.includes('Listening on port')) done();
    });
    server!.once('exit', () => fail(new Error(`gdbserver ended: ${text}`)));
  });
  return port;
}

describe('dbg attach to gdbserver', () => {
  it('a Linux kernel is refused in one line: gdbserver has no physical memory; ::ps says why it has no kernel', async () => {
    // A "vmlinux" of one symbol: linux_banner at a kernel address.
    writeFileSync(join(dir, 'banner.c'), 'const char linux_banner[] = "Linux version 6.1.0-dbg (dbg@test) #1 SMP\\n";\n');
    execFileSync('gcc', ['-c', '-fno-pic', '-mcmodel=kernel', '-o', join(dir, 'banner.o'), join(dir, 'banner.c')]);
    const fake = join(dir, 'vmlinux-banner');
    execFileSync('ld', ['-o', fake, '--section-start=.rodata=0xffffffff82000000', '-e', '0', join(dir, 'banner.o')]);
    let port = await gdbserver();
    const r = await runDbg(['attach', '--gdb', String(port), '--symbols', fake, '-e', '::status']);
    expect(r.stderr).toBe(`dbg: --symbols vmlinux-banner is a Linux kernel, but gdb stub 127.0.0.1:${port} has no physical memory to find one in (QEMU's system stub, -s or -gdb, has; gdbserver debugs a process)\n`);
    expect(r.code).not.toBe(0);
    await stop(server);
    port = await gdbserver();
    const ps = await runDbg(['attach', '--gdb', String(port), '--symbols', prog, '-e', '::ps']);
    expect(ps.stderr).toBe(`dbg: listing tasks needs a Linux kernel: gdb stub 127.0.0.1:${port} has no physical memory: it is no system emulator's stub (QEMU's -s or -gdb is)\n`);
  }, 60_000);

  it('break at a function, continue, registers, ::stack, step, run to the exit', async () => {
    const port = await gdbserver();
    const r = await runDbg(['attach', '--gdb', String(port), '--symbols', prog, '-e', '::status; add::bp; :c; ::stack; ::regs; :s; ::status; :c; :c; ::delete all; :c; ::threads']);
    expect(r.stderr).toBe('');
    const out = r.stdout;
    expect(out).toMatch(/^attached to the gdb stub at 127\.0\.0\.1:\d+: i386:x86-64, \d+ registers, 1 thread\(s\)$/m);
    expect(out).toMatch(/stub offers: PacketSize=[0-9a-f]+, QStartNoAckMode, qXfer:features:read, vContSupported, swbreak, hwbreak; vCont: cs/);
    const add = /^1: breakpoint at (0x[0-9a-f]{16}) add; hits 0$/m.exec(out)?.[1];
    expect(add).toBeDefined();
    expect(out).toContain(`stopped: breakpoint 1 at ${add} add on thread 1\n${add} add\n`);
    expect(out).toMatch(new RegExp(`^${add} add\\n0x[0-9a-f]{16} main\\+0x[0-9a-f]+\\n`, 'm'));
    // The first call: add(0, 1).
    expect(out).toMatch(/^%rdi +=? ?0x0000000000000000$/m);
    expect(out).toMatch(/^%rsi +=? ?0x0000000000000001$/m);
    expect(out).toMatch(/^%orig_rax +=? ?0xffffffffffffffff$/m);
    // One instruction off the breakpoint (push %rbp): the stub never sees the breakpoint again.
    expect(out).toContain(`stopped: step at 0x${(BigInt(add!) + 1n).toString(16).padStart(16, '0')} add+0x1 on thread 1`);
    expect(out.match(/stopped: breakpoint 1 at/g)).toHaveLength(3);
    expect(out).toMatch(/stopped: the guest exited with code 0/);
    expect(out).toMatch(/^\* +1 +\d+ thread [0-9a-f]+ +exited +\?$/m);
    expect(r.code).toBe(0);
  }, 60_000);

  it("a process's threads: the stop names the thread that hit the breakpoint; each thread's registers (Hg)", async () => {
    const r = await runDbg(['attach', '--gdb', String(await gdbserver(threaded)), '--symbols', threaded, '-e', 'work::bp; :c; ::threads; ::stack; <rdi=D; ::delete all; :c']);
    expect(r.stderr).toBe('');
    const out = r.stdout;
    expect(out).toMatch(/^stopped: breakpoint 1 at 0x[0-9a-f]{16} work on thread [23]$/m);
    // The main thread (in pthread_join, in libc) and the thread in work, listed in the stub's order.
    expect(out).toMatch(/^ {4}1 +\d+ thread [0-9a-f]+ +stopped +0x00007f[0-9a-f]{10}/m);
    expect(out).toMatch(/^\* +[23] +\d+ thread [0-9a-f]+ +stopped +0x[0-9a-f]{16} work$/m);
    expect(out).toMatch(/^0x[0-9a-f]{16} work\n0x[0-9a-f]{16} run\+0x[0-9a-f]+\n/m);
    expect(out).toMatch(/^ +[12] +$/m);
    // The other thread's trap at the breakpoint, pending in gdbserver when it was deleted, is
    // not a stop of the program's: the continue runs on to the exit.
    expect(out).toMatch(/stopped: the guest exited with code 0/);
    expect(r.code).toBe(0);
  }, 60_000);

  it("the program's shared libraries from the dynamic linker's list: the main thread's stack unwinds through libc to main", async () => {
    const r = await runDbg(['attach', '--gdb', String(await gdbserver(threaded)), '--symbols', threaded, '-e', 'work::bp; :c; ::status; 1::thread; ::stack']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^mappings: \d+; modules: threads, libc\.so\.6, ld-linux-x86-64\.so\.2$/m);
    // Thread 1 waits in libc (pthread_join or before it): frames in libc, then main.
    const stack = r.stdout.slice(r.stdout.indexOf('thread 1 ('));
    expect(stack).toMatch(/^0x00007f[0-9a-f]{10} .*\n(?:0x[0-9a-f]{16} .*\n)*0x[0-9a-f]{16} main\+0x[0-9a-f]+\n/m);
    expect(r.code).toBe(0);
  }, 60_000);

  it('both threads at one breakpoint: two stops, one on each thread, then the exit', async () => {
    const r = await runDbg(['attach', '--gdb', String(await gdbserver(threaded)), '--symbols', threaded, '-e', 'work::bp; :c; :c; :c']);
    expect(r.stderr).toBe('');
    const stops = [...r.stdout.matchAll(/^stopped: breakpoint 1 at 0x[0-9a-f]{16} work on thread ([23])$/gm)].map((m) => m[1]);
    expect(stops.sort()).toEqual(['2', '3']);
    expect(r.stdout).toMatch(/stopped: the guest exited with code 0/);
  }, 60_000);

  it('detaching at a breakpoint takes it out first: the program runs on to its end', async () => {
    let printed: Promise<string> | undefined;
    const port = await gdbserver(prog, (p) => (printed = p));
    const r = await runDbg(['attach', '--gdb', String(port), '--symbols', prog, '-e', 'add::bp; :c; main+4::bp']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/stopped: breakpoint 1 at 0x[0-9a-f]{16} add on thread 1/);
    expect(await printed).toBe('sum 6\n');
  }, 60_000);

  it('after the program exited, registers are refused in one line', async () => {
    const r = await runDbg(['attach', '--gdb', String(await gdbserver()), '-e', ':c; ::regs']);
    expect(r.stdout).toBe('stopped: the guest exited with code 0 at 0x0000000000000000 on thread 1\n');
    expect(r.stderr).toMatch(/^dbg: no registers: the program under gdb stub 127\.0\.0\.1:\d+ has exited\n$/);
    expect(r.code).toBe(1);
  }, 60_000);

  it('a PIE program: symbols relocated by AT_ENTRY - e_entry, as gdb relocates them (differential)', async () => {
    const r = await runDbg(['attach', '--gdb', String(await gdbserver(pie)), '--symbols', pie, '-e', '::status; main::bp; :c; ::stack; add::bp; :c; ::stack; <rip=K']);
    expect(r.stderr).toBe('');
    const out = r.stdout;
    const bias = /^pie relocated by (0x[0-9a-f]{16}) \(AT_ENTRY of the process's auxiliary vector against e_entry\)$/m.exec(out)?.[1];
    expect(bias).toBeDefined();
    expect(BigInt(bias!)).toBeGreaterThan(0n);
    const main = /^stopped: breakpoint 1 at (0x[0-9a-f]{16}) main on thread 1$/m.exec(out)?.[1];
    expect(main).toBeDefined();
    expect(out).toContain(`\n${main} main\n`);
    const caller = new RegExp(`^(0x[0-9a-f]{16}) main\\+(0x[0-9a-f]+)$`, 'm').exec(out);
    expect(caller).not.toBeNull();
    expect(r.code).toBe(0);
    await stop(server);
    // gdb through gdbserver (address randomization off in both runs): the same main, the same return address into main.
    const g = await gdbBatch(await gdbserver(pie), ['print/x (long)&main', 'break *add', 'continue', 'bt', 'kill'], { file: pie });
    expect(g.stdout, g.stderr).toContain('Breakpoint 1, ');
    expect(BigInt(/^\$1 = (0x[0-9a-f]+)$/m.exec(g.stdout)![1]!)).toBe(BigInt(main!));
    const frame1 = /^#1 +(0x[0-9a-f]+) in main /m.exec(g.stdout)?.[1];
    expect(frame1, g.stdout).toBeDefined();
    expect(BigInt(frame1!)).toBe(BigInt(caller![1]!));
  }, 60_000);

  it('registers and memory equal what gdb reads through gdbserver (a second run: gdbserver turns address randomization off)', async () => {
    const r = await runDbg(['attach', '--gdb', String(await gdbserver()), '--symbols', prog, '-e', 'add::bp; :c; :c; ::regs; main,4/X']);
    expect(r.stderr).toBe('');
    const reg = (name: string): string => new RegExp(`^%${name} += (0x[0-9a-f]+)`, 'm').exec(r.stdout)![1]!;
    await stop(server);
    const g = await gdbBatch(await gdbserver(), ['break *add', 'continue', 'continue', 'info registers rip rsp rdi rsi', 'x/4xw main', 'kill'], { file: prog });
    expect(g.stdout, g.stderr).toContain('Breakpoint 1, ');
    const gdbReg = (name: string): bigint => BigInt(new RegExp(`^${name} +(0x[0-9a-f]+)`, 'm').exec(g.stdout)![1]!);
    expect(gdbReg('rip')).toBe(BigInt(reg('rip')));
    expect(gdbReg('rsp')).toBe(BigInt(reg('rsp')));
    // gdb stopped at the second call: add(1, 2).
    expect(gdbReg('rdi')).toBe(1n);
    const dbgWords = r.stdout.slice(r.stdout.indexOf('main:\n')).split('\n').flatMap((l) => l.replace(/^\S+:/, '').trim().split(/\s+/)).filter(Boolean);
    const gdbWords = g.stdout.split('\n').filter((l) => l.startsWith('0x')).flatMap((l) => l.split('\t').slice(1)).map((w) => BigInt(w));
    expect(dbgWords.map((w) => BigInt(`0x${w}`))).toEqual(gdbWords);
  }, 60_000);
});
