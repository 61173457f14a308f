import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import type { ExecutionObserver, InputEvent, SliceStop } from '../../src/targets/emulator/execution-observer.js';
import { KernelDumpTarget } from '../../src/targets/elfcore/kernel-dump-target.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'dbg-emuk-'));
let kernel: string;
const open: { close(): void }[] = [];
afterAll(() => open.forEach((t) => t.close()));

beforeAll(() => {
  // The sample kernel from source (the prebuilt copy when gcc is missing).
  kernel = join(dir, 'kernel.elf');
  try {
    execFileSync('sh', [join(root, 'dumps', 'kernel', 'build.sh'), kernel]);
  } catch {
    kernel = join(root, 'dumps', 'kernel.prebuilt.elf');
  }
});

function boot(path: string, opts: object = {}): EmulatorTarget {
  const t = EmulatorTarget.open(path, opts);
  open.push(t);
  return t;
}

const expectedConsole = [
  'dbg sample kernel: multiboot magic 0x2badb002, info 0x9500',
  'memory: lower 639 KiB, upper 64384 KiB',
  'sched: task pid 1 init on cpu any',
  'sched: task pid 2 logger on cpu 0',
  'sched: task pid 3 worker-a on cpu any',
  'sched: task pid 4 worker-b on cpu 1',
  'sched: task pid 5 kworker on cpu any',
  'cpu1: online',
  'sched: task at 0xffffffff80103080 has magic 0x7461736b3a64726f, expected 0x7461736b6d616763',
  'PANIC: scheduler: task list corrupted (jiffies 33)',
  '',
].join('\n');

describe('the sample kernel', () => {
  it('boots on two vCPUs to its panic with the expected console', async () => {
    const t = boot(kernel, { ramBytes: 64 << 20, cpus: 2 });
    const st = await t.caps.execution!.resume();
    expect(st.reason.kind).toBe('halted');
    expect(t.symbols.resolve(st.pc)?.sym.name).toBe('panic');
    expect(t.caps.console!.consoleText()).toBe(expectedConsole);
    expect(t.threads().map((x) => x.state)).toEqual(expect.arrayContaining(['halted']));
  });

  it('a write watchpoint on tasks[0].magic catches the corrupting store in log_append', async () => {
    const t = boot(kernel, { ramBytes: 64 << 20, cpus: 2 });
    const magic = t.symbols.lookup('tasks');
    t.addWatchpoint(magic, 8, 'write');
    let st = await t.caps.execution!.resume();
    expect(t.symbols.resolve(st.pc)?.sym.name).toBe('task_init'); // the initialisation
    st = await t.caps.execution!.resume();
    expect(st.reason).toMatchObject({ kind: 'watchpoint', access: 'write' });
    expect(t.symbols.resolve(st.pc)?.sym.name).toBe('log_append');
    expect(t.readVirtual(magic, 8).readBigUInt64LE(0)).not.toBe(0x7461736b6d616763n);
    expect(t.caps.console!.consoleText()).not.toMatch(/PANIC/);
  });

  it('a conditional breakpoint and a deferred one', async () => {
    const t = boot(kernel, { ramBytes: 64 << 20, cpus: 1 });
    const pending = t.addSymbolBreakpoint('no_such_function_yet');
    expect(pending.armed).toBe(false);
    const ev = t.addBreakpoint(t.symbols.lookup('timer_tick'), { condition: 'x' });
    let n = 0;
    t.conditionCheck = () => ++n === 3; // stop at the third tick only
    const st = await t.caps.execution!.resume();
    expect(st.reason).toMatchObject({ kind: 'breakpoint', id: ev.id });
    expect(ev.hits).toBe(3);
  });

  it('::dump round trip: the kernel-dump target reads identical registers, memory and translations', async () => {
    const t = boot(kernel, { ramBytes: 64 << 20, cpus: 2 });
    await t.caps.execution!.resume();
    const core = join(dir, 'sample.core');
    t.caps.snapshot!.writeCore(core);
    const d = KernelDumpTarget.open(core, { symbols: [kernel] } as never);
    open.push(d);
    expect(d.threads().length).toBe(2);
    for (const th of [1, 2]) {
      const a = t.registers(th);
      const b = d.registers(th);
      for (const r of ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r15', 'rip', 'eflags', 'cr0', 'cr3', 'cr4']) {
        expect(`${th} ${r} ${b.get(r)?.toString(16)}`).toBe(`${th} ${r} ${a.get(r)!.toString(16)}`);
      }
    }
    const tasks = t.symbols.lookup('tasks');
    expect(d.readVirtual(tasks, 200).equals(t.readVirtual(tasks, 200))).toBe(true);
    expect(d.symbols.lookup('panic')).toBe(t.symbols.lookup('panic'));
    const tr = d.caps.physical!.translate(tasks, 1);
    expect(tr.phys).toBe(t.translate(tasks).phys);
  });
});

describe('a multiboot kernel written here (ELF32, no a.out kludge)', () => {
  it('is entered in 32-bit protected mode with the multiboot registers', async () => {
    const s = join(dir, 'mb.S');
    writeFileSync(s, `
.section .text
.align 4
.long 0x1badb002, 0x00000002, -(0x1badb002 + 0x00000002)
.globl _start
_start:
  mov %eax, saved_eax
  mov %ebx, saved_ebx
  mov $0x3f8, %dx
  mov $'M', %al
  outb %al, %dx
  mov 4(%ebx), %ecx
  mov %ecx, saved_lower
  cli
  hlt
.data
.globl saved_eax, saved_ebx, saved_lower
saved_eax: .long 0
saved_ebx: .long 0
saved_lower: .long 0
`);
    execFileSync('gcc', ['-m32', '-c', '-o', join(dir, 'mb.o'), s]);
    execFileSync('ld', ['-m', 'elf_i386', '-Ttext=0x100000', '-e', '_start', '-o', join(dir, 'mb.elf'), join(dir, 'mb.o')]);
    const t = boot(join(dir, 'mb.elf'), { ramBytes: 4 << 20 });
    expect(t.kernel.kind).toBe('multiboot');
    const st = await t.caps.execution!.resume();
    expect(st.reason.kind).toBe('halted');
    expect(t.caps.console!.consoleText()).toBe('M');
    const rd = (n: string): number => t.readVirtual(t.symbols.lookup(n), 4).readUInt32LE(0);
    expect(rd('saved_eax')).toBe(0x2badb002);
    expect(rd('saved_ebx')).toBe(0x9500);
    expect(rd('saved_lower')).toBe(639);
    expect(t.registers(1).get('efer')).toBe(0n);
  });
});

describe('the execution observer contract', () => {
  it('sees every slice and input, with exact counts, and can restore state', async () => {
    const t = boot(kernel, { ramBytes: 64 << 20, cpus: 2 });
    let total = 0n;
    let seqOk = true;
    const inputs: InputEvent['kind'][] = [];
    const stops: SliceStop['kind'][] = [];
    const obs: ExecutionObserver = {
      attach: (m) => expect(m.vcpuCount).toBe(2),
      beforeSlice: (_v, seq) => {
        if (seq !== total) seqOk = false;
      },
      afterSlice: (_v, n, stop) => {
        total += BigInt(n);
        stops.push(stop.kind);
      },
      onInput: (e) => inputs.push(e.kind),
    };
    t.machine.setObserver(obs);
    const bp = t.addBreakpoint(t.symbols.lookup('ap_main'));
    await t.caps.execution!.resume();
    expect(seqOk).toBe(true);
    expect(total).toBe(t.machine.seq);
    expect(inputs).toEqual(expect.arrayContaining(['port-in', 'cpu-start']));
    // save, run on, restore: the same future happens again
    const saved = t.machine.saveState();
    t.deleteEvent(bp.id);
    const first = await t.caps.execution!.resume();
    const end1 = t.machine.seq;
    const console1 = t.caps.console!.consoleText();
    t.machine.setObserver(undefined);
    t.machine.loadState(saved);
    const second = await t.caps.execution!.resume();
    expect(second.pc).toBe(first.pc);
    expect(t.machine.seq).toBe(end1);
    expect(t.caps.console!.consoleText()).toBe(console1);
    expect(inputs).toContain('interrupt');
    expect(stops).toContain('timer');
  });
});

it('the prebuilt sample kernel exists for machines without gcc', () => {
  expect(existsSync(join(root, 'dumps', 'kernel.prebuilt.elf'))).toBe(true);
});
