/**
 * dbg attach to Debian's QEMU stub (-S -gdb): the QEMU sample kernel on qemu-system-x86_64 and
 * the i386 test guest on qemu-system-i386. Registers come from QEMU's own target description;
 * breakpoints, watchpoints, steps and the 0x03 interrupt go through QEMU; memory read by dbg
 * equals what gdb reads through the same stub.
 */

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { gdbBatch } from '../gdbserver/gdb-batch.js';
import { i386Guest, qemuGdbstub } from '../helpers/i386-guest.js';
import { qemuSample, repoRoot } from '../helpers/repo.js';
import { dbg, runDbg } from './attach-helpers.js';

const kernel = qemuSample('kernel.elf');
let q: { port: number; stop: () => void } | undefined;
afterEach(() => {
  q?.stop();
  q = undefined;
});

/** The 32-bit words of MDB's `/X` output (address labels left out). */
function words(text: string): string[] {
  return text
    .split('\n')
    .flatMap((l) => l.replace(/^\S+:/, '').trim().split(/\s+/))
    .filter((w) => w !== '')
    .map((w) => w.padStart(8, '0'));
}

describe('dbg attach to QEMU', () => {
  it('x86-64: registers, a breakpoint on a kernel symbol, ::stack, a watchpoint, steps; memory as gdb reads it', async () => {
    q = await qemuGdbstub('x86_64', kernel);
    const r = await runDbg(['attach', '--gdb', String(q.port), '--symbols', kernel, '-e', '::status; ::regs; kmain::bp; :c; ::stack; <rip=K; kmain,10/X; jiffies::wp -w -L 8; :c; ::delete all; :s; ::step over; ::threads']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.stdout;
    // At QEMU's reset vector, described by QEMU's i386-64bit.xml (with its system registers).
    expect(out).toContain(`attached to the gdb stub at 127.0.0.1:${q.port}: i386:x86-64, 66 registers, 1 thread(s)`);
    expect(out).toMatch(/^status: stopped at 0x000000000000fff0 on thread 1, as the stub was when dbg attached$/m);
    expect(out).toMatch(/^%cr0 += 0x0000000060000010$/m);
    expect(out).toContain('stopped: breakpoint 1 at 0xffffffffc0001711 kmain on thread 1\n0xffffffffc0001711 kmain\n0xffffffffc0001015 kstart+0x15\n');
    expect(out).toContain('stopped: watchpoint 2 (write of 0xffffffffc0004030) at 0xffffffffc00019e3 kmain+0x2d2 on thread 1');
    expect(out).toContain('stopped: step at 0xffffffffc00019ea kmain+0x2d9 on thread 1\nstopped: step at 0xffffffffc00019ef kmain+0x2de on thread 1\n');
    expect(out).toMatch(/\* +1 +1 CPU#0 \[[a-z ]+\] +stopped +0xffffffffc00019ef/);
    // dbg detached and the guest ran on; gdb stops it again and reads the same kernel text.
    const dbgWords = words(out.slice(out.indexOf('kmain:\n'), out.indexOf('2: watchpoint')));
    expect(dbgWords).toHaveLength(16);
    const g = await gdbBatch(q.port, ['x/16xw kmain'], { file: kernel });
    const gdbWords = g.stdout.split('\n').filter((l) => l.startsWith('0x')).flatMap((l) => l.split('\t').slice(1)).map((w) => w.replace(/^0x/, ''));
    expect(gdbWords).toEqual(dbgWords);
  }, 90_000);

  it('x86-64: Ctrl-C during :c sends 0x03 and QEMU stops the guest', async () => {
    q = await qemuGdbstub('x86_64', kernel);
    const child = spawn(process.execPath, [dbg, 'attach', '--gdb', String(q.port), '--symbols', kernel, '-e', '::threads; :c; ::status'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      // Attached (::threads answered): the sample kernel panics and halts within a second, and
      // :c then waits until interrupted.
      timer ??= setTimeout(() => child.kill('SIGINT'), 2000);
    });
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const code = await new Promise<number | null>((done) => child.on('close', done));
    clearTimeout(timer);
    expect(stderr).toMatch(/^dbg: interrupted/);
    expect(stdout).toMatch(/^stopped: interrupted at 0x[0-9a-f]{16} \S+ on thread 1$/m);
    expect(code).toBe(130);
  }, 60_000);

  it('x86-64: Ctrl-C during a long counted step (repeated by the connection thread) ends it at a step', async () => {
    q = await qemuGdbstub('x86_64', kernel);
    const child = spawn(process.execPath, [dbg, 'attach', '--gdb', String(q.port), '--symbols', kernel, '-e', 'kmain::bp; :c; ::delete all; ,0t10000000::step; ::status'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      if (stdout.includes('deleted 1 event(s)')) timer ??= setTimeout(() => child.kill('SIGINT'), 1500);
    });
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const code = await new Promise<number | null>((done) => child.on('close', done));
    clearTimeout(timer);
    expect(stdout).toMatch(/^stopped: step at 0x[0-9a-f]{16} \S+ on thread 1$/m);
    expect(stderr).toBe('dbg: interrupted: the rest of the line from "::status" was not run\n');
    expect(code).toBe(130);
  }, 60_000);

  it('x86-64: attaching again to a guest that runs on (QEMU stops it and sends a stop reply unasked)', async () => {
    q = await qemuGdbstub('x86_64', kernel);
    const first = await runDbg(['attach', '--gdb', String(q.port), '--symbols', kernel, '-e', 'kmain::bp; :c']);
    expect(first.stderr).toBe('');
    // dbg detached and removed its breakpoint: the kernel runs on to its panic.
    await new Promise((r) => setTimeout(r, 1000));
    const again = await runDbg(['attach', '--gdb', String(q.port), '--symbols', kernel, '-e', '::stack']);
    expect(again.stderr).toBe('');
    expect(again.stdout).toMatch(/^0x[0-9a-f]{16} panic\+0x[0-9a-f]+\n0x[0-9a-f]{16} check_runqueue\+0x[0-9a-f]+\n0x[0-9a-f]{16} kmain\+0x[0-9a-f]+\n0xffffffffc0001015 kstart\+0x15\n$/);
    expect(again.code).toBe(0);
  }, 60_000);

  it('i386: QEMU describes a 32-bit CPU, dbg reads its registers and memory in that layout', async () => {
    const guest = i386Guest();
    q = await qemuGdbstub('i386', guest);
    const r = await runDbg(['attach', '--gdb', String(q.port), '--symbols', guest, '-e', 'stop_here::bp; :c; ::regs; ::stack; words,4/X']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^stopped: breakpoint 1 at 0x001000[0-9a-f]{2} stop_here on thread 1$/m);
    expect(r.stdout).toMatch(/^%eip += 0x001000[0-9a-f]{2} stop_here$/m);
    expect(r.stdout).toMatch(/^%cr0 += 0x00000013$/m);
    expect(r.stdout).not.toMatch(/%rip/);
    expect(r.stdout).toMatch(/level3/);
    expect(r.stdout).toMatch(/words:\s+11223344\s+55667788\s+99aabbcc\s+ddeeff00/);
    expect(r.code).toBe(0);
  }, 90_000);
});

/** `%name = 0x…` lines of ::regs, by name. */
function regLines(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^%(\w+) += (0x[0-9a-f]+)/gm)].map((m) => [m[1]!, m[2]!]));
}

describe('::dump of a QEMU guest under dbg attach', () => {
  const sample = join(repoRoot, 'dumps', 'kernel.elf');
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('writes a vmcore that dbg open reads back with the registers and memory dbg attach read', async () => {
    q = await qemuGdbstub('x86_64', sample);
    dir = mkdtempSync(join(tmpdir(), 'dbg-attach-dump-'));
    const core = join(dir, 'guest.core');
    // Memory: kernel text, the stack, identity-mapped low memory and a page above 16 MiB.
    const reads = 'kmain,0t64/X; <rsp,0t32/X; 0x100000,0t64/X; 0x1200000,0t16/X';
    const live = await runDbg(['attach', '--gdb', String(q.port), '--symbols', sample, '-e', `kmain::bp; :c; ::regs; ::dump ${core}; kmain::vtop; ${reads}`]);
    expect(live.stderr).toBe('');
    expect(live.code).toBe(0);
    expect(live.stdout).toContain(`wrote ${core} (64 MiB RAM, 1 vCPU(s))`);
    const back = await runDbg(['open', core, '--symbols', sample, '-e', `::regs; ::stack; kmain::vtop; ${reads}`]);
    expect(back.stderr).toBe('');
    expect(back.code).toBe(0);
    const a = regLines(live.stdout);
    const b = regLines(back.stdout);
    const names = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'eflags', 'cs', 'ss', 'ds', 'es', 'fs', 'gs', 'fs_base', 'gs_base', 'k_gs_base', 'cr0', 'cr2', 'cr3', 'cr4'];
    for (const n of names) expect([n, b.get(n)]).toEqual([n, a.get(n)]);
    expect(live.stdout).toMatch(/^%rip += 0x[0-9a-f]{16} kmain$/m);
    // The page tables walked through the stub's physical reads and in the dump agree.
    const vtop = (text: string): string | undefined => /^virtual 0x[0-9a-f]+ mapped to physical 0x[0-9a-f]+ .*$/m.exec(text)?.[0];
    expect(vtop(live.stdout)).toBeDefined();
    expect(vtop(back.stdout)).toBe(vtop(live.stdout));
    // The same words of memory (labels differ: the kernel-dump target names no absolute symbols).
    const memory = (text: string): string[] => words(text.slice(text.indexOf('kmain:\n')));
    expect(memory(live.stdout)).toHaveLength(64 + 32 + 64 + 16);
    expect(memory(back.stdout)).toEqual(memory(live.stdout));
    expect(back.stdout).toMatch(/^0x[0-9a-f]{16} kmain\n0x[0-9a-f]{16} kstart\+0x[0-9a-f]+\n/m);
  }, 120_000);

  it('::dump without a file, and to a directory that does not exist: one line each', async () => {
    q = await qemuGdbstub('x86_64', sample);
    let r = await runDbg(['attach', '--gdb', String(q.port), '-e', '::dump']);
    expect(r.stderr).toBe('dbg: ::dump needs one file (usage: ::dump FILE)\n');
    expect(r.code).toBe(1);
    r = await runDbg(['attach', '--gdb', String(q.port), '-e', '::dump /nonexistent-dir/guest.core']);
    expect(r.stderr).toBe('dbg: cannot write core "/nonexistent-dir/guest.core": ENOENT\n');
    expect(r.code).toBe(1);
  }, 60_000);
});
