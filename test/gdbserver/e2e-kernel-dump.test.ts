// A real gdb 13 attached through dbg's GDB server to the QEMU kernel-dump fixture, compared with
// the fixture's facts (QEMU's monitor, a page walk) and with gdb reading the dump itself where
// gdb can (registers: gdb reads NT_PRSTATUS right; memory: gdb reads PT_LOAD p_vaddr, which QEMU
// fills with physical addresses, so through dbg's page walk gdb sees the kernel's real data).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveGdb, type GdbServerHandle } from '../../src/gdbserver/gdb-server.js';
import { KernelDumpTarget } from '../../src/targets/elfcore/kernel-dump-target.js';
import { qemuSample } from '../helpers/repo.js';
import { gdbBatch } from './gdb-batch.js';
import { expectGolden } from './golden.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const facts: any = JSON.parse(readFileSync(qemuSample('facts.json'), 'utf8'));
const kernel = qemuSample('kernel.elf');

let dir: string;
let dump: string;
let target: KernelDumpTarget;
let server: GdbServerHandle;
const logs: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dbg-gdb-kdump-'));
  dump = join(dir, 'vmcore.elf');
  writeFileSync(dump, execFileSync('xz', ['-dc', qemuSample('vmcore.elf.xz')], { maxBuffer: 64 << 20 }));
  target = KernelDumpTarget.open(dump, { symbols: [kernel] });
  server = await serveGdb(target, undefined, { port: 0, log: (m) => logs.push(m) });
});

afterAll(async () => {
  await server?.close();
  target?.close();
  rmSync(dir, { recursive: true, force: true });
});

const regNames = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'eflags', 'cs', 'ss', 'ds', 'es', 'fs', 'gs'];

function regLines(text: string): string[] {
  return text.split('\n').filter((l) => regNames.includes(l.split(/\s+/)[0]!));
}

describe('gdb on the QEMU kernel dump through dbg', () => {
  it('shows the registers gdb reads from the dump itself, for both CPUs', async () => {
    const cmds = ['info registers', 'thread 2', 'info registers'];
    const viaDbg = await gdbBatch(server.port, cmds, { file: kernel });
    const direct = execFileSync(
      'gdb',
      ['-nx', '-batch', '-iex', 'set debug-file-directory /nonexistent', '-iex', 'set sysroot /', kernel, dump, ...cmds.flatMap((c) => ['-ex', c])],
      { encoding: 'utf8' },
    );
    expect(regLines(viaDbg.stdout)).toEqual(regLines(direct));
    expect(regLines(viaDbg.stdout)).toHaveLength(48);
  });

  it('reads kernel memory through the page tables: x/, symbols, bt, info threads (golden)', async () => {
    const r = await gdbBatch(
      server.port,
      ['info threads', 'bt', 'x/4gx $rsp', 'p jiffies', 'p procs[1].comm', 'x/s panic_msg', 'p/x $cr3', 'p/x $cr0', 'thread 2', 'bt', 'info threads'],
      { file: kernel },
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`$1 = ${facts.memory.jiffies.value}`);
    expect(r.stdout).toContain(`"${facts.memory.panic.message}"`);
    expect(r.stdout).toContain(`$3 = ${facts.cpus[0].cr3}`);
    expect(r.stdout).toContain(`$4 = ${facts.cpus[0].cr0}`);
    expect(r.stdout).toMatch(/#1  0x[0-9a-f]+ in check_runqueue \(\) at \.\/kernel\.c:\d+/);
    expectGolden('kernel-dump', r.stdout);
  });

  it('refuses to run a dump, and keeps serving', async () => {
    const r = await gdbBatch(server.port, ['stepi', 'continue', 'info registers rip'], { file: kernel });
    expect(r.stdout + r.stderr).toContain('kernel dump "vmcore.elf" cannot run: execution control is not supported by this target');
    expect(r.stdout).toMatch(/rip\s+0xffffffffc00016c0\s+0xffffffffc00016c0 <panic\+61>/);
  });
});

describe('gdb is told the true reason when it asks a dump to do what a dump cannot', () => {
  it('break + continue and watch + continue say the dump cannot run; a register write says why it is refused', async () => {
    const r = await gdbBatch(server.port, ['break check_runqueue', 'continue', 'watch jiffies', 'continue', 'set $rax = 1', 'bt 1'], { file: kernel });
    const all = r.stdout + r.stderr;
    expect(all.match(/^dbg: kernel dump "vmcore\.elf" cannot run: execution control is not supported by this target$/gm)).toHaveLength(2);
    expect(all).toContain('Could not write register "rax"; remote failure reply \'E.writing registers is not supported by kernel dump "vmcore.elf"\'');
    expect(all).not.toContain('Cannot access memory');
    expect(all).not.toContain('too many hardware breakpoints');
    // the session goes on where the dump stopped
    expect(r.stdout).toContain('#0  panic (msg=msg@entry=0xffffffffc000202a "fixture: run queue corrupted") at ./kernel.c:247');
  });
});
