/**
 * Linux tasks, the printk ring and panic discovery on a miniature kernel (mini-linux.c, built by
 * gcc with DWARF) laid out as a kdump without VMCOREINFO, so every structure is read through
 * types; then on hand-corrupted copies: task lists that cycle or leave the dump, a ring buffer cut
 * short, a task address that is none. Runs in `npm test`; the real kernel is in real-dumps.test.ts.
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaptureOutput, Session } from '../../../src/mdb/session.js';
import { builtinModules } from '../../../src/mdb/modules/index.js';
import { symbolName } from '../../../src/mdb/names.js';
import { ElfFile } from '../../../src/symbols/elf-file.js';
import { KernelDumpTarget } from '../../../src/targets/elfcore/kernel-dump-target.js';
import { placeText } from '../../../src/types/frame-source.js';
import { writeVmcore } from '../../../src/targets/elfcore/kernel-vmcore-writer.js';
import { runDbg } from '../../gdb-client/attach-helpers.js';
import { repoRoot } from '../../helpers/repo.js';

let dir: string;
let vmlinux: string;
let garbageOrc: string;

function build(name: string, src: string, defines: string[] = []): string {
  const obj = join(dir, `${name}.o`);
  execFileSync('gcc', ['-g', '-O0', '-c', '-mcmodel=kernel', '-fno-pic', '-ffreestanding', '-fno-stack-protector', ...defines, '-o', obj, src]);
  const out = join(dir, name);
  execFileSync('ld', ['-static', '-nostdlib', '-e', '_text', '-Ttext=0xffffffff81000000', '-Tdata=0xffffffff81200000', '--section-start=.ring=0xffffffff81300000', '--section-start=percpu=0', '-o', out, obj]);
  return out;
}
let sym: Map<string, bigint>;
let offTasks: bigint;
const KERNEL_MAP = 0xffffffff80000000n;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dbg-mini-linux-'));
  const src = join(repoRoot, 'test', 'os', 'linux', 'mini-linux.c');
  vmlinux = build('vmlinux', src);
  garbageOrc = build('vmlinux-garbage-orc', src, ['-DGARBAGE_ORC']);
  const elf = ElfFile.open(vmlinux);
  sym = new Map(elf.symbols().map((s) => [s.name, s.value]));
  offTasks = elf.readLoaded(sym.get('off_tasks')!, 8)!.readBigUInt64LE(0);
  elf.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A kdump of the mini kernel: each PT_LOAD at physical vaddr - __START_KERNEL_map; patches applied. */
function dump(name: string, opts: { patch?: [bigint, bigint | Buffer][]; ringBytes?: number; cpu1?: Record<string, bigint>; from?: string } = {}): string {
  const elf = ElfFile.open(opts.from ?? vmlinux);
  // The per-CPU segment is linked at 0 and has no place of its own in memory.
  const segments = elf.loadSegments().filter((p) => p.vaddr >= KERNEL_MAP).map((p) => {
    const bytes = Buffer.from(elf.readLoaded(p.vaddr, p.filesz)!);
    for (const [at, value] of opts.patch ?? []) {
      if (at < p.vaddr || at >= p.vaddr + BigInt(p.filesz)) continue;
      if (typeof value === 'bigint') bytes.writeBigUInt64LE(value, Number(at - p.vaddr));
      else value.copy(bytes, Number(at - p.vaddr));
    }
    const size = p.vaddr === 0xffffffff81300000n && opts.ringBytes ? opts.ringBytes : p.filesz;
    return { paddr: p.vaddr - KERNEL_MAP, vaddr: p.vaddr, size, chunks: [{ offset: 0, bytes: bytes.subarray(0, size) }] };
  });
  elf.close();
  const p = join(dir, name);
  const regs = { rip: sym.get('_text')!, rsp: sym.get('sleeper_stack')! + 0x40n };
  writeVmcore(p, { cpus: [{ regs, pid: 1 }, { regs: opts.cpu1 ?? regs, pid: 4 }], segments });
  return p;
}

async function run(t: KernelDumpTarget, line: string): Promise<{ lines: string[]; warnings: string[] }> {
  const out = new CaptureOutput(false);
  const warnings: string[] = [];
  (out as { warn?: (t: string) => void }).warn = (w) => warnings.push(w);
  await new Session(t, builtinModules).execute(line, out);
  return { lines: out.lines, warnings };
}

async function failure(t: KernelDumpTarget, line: string): Promise<string> {
  try {
    await new Session(t, builtinModules).execute(line, new CaptureOutput(false));
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error(`${line} did not fail`);
}

/** task_sleeper's stack as ::stack -j gives it: [symbol, how each frame was found]. */
async function sleeperFrames(t: KernelDumpTarget): Promise<[string, string][]> {
  const s = new Session(t, builtinModules);
  await s.execute(`${sym.get('task_sleeper')!.toString(16)}::task`, new CaptureOutput(false));
  const out = new CaptureOutput(true);
  await s.execute('::stack', out);
  const frames = (out.values[0] as { frames: { symbol: string; how: string }[] }[])[0]!.frames;
  return frames.map((f) => [f.symbol, f.how]);
}

const hex = (a: bigint) => `0x${a.toString(16).padStart(16, '0')}`;

describe('a kdump of the mini kernel, read through its types', () => {
  let t: KernelDumpTarget;
  beforeAll(() => {
    t = KernelDumpTarget.open(dump('good.vmcore'), { symbols: [vmlinux] });
  });
  afterAll(() => t.close());

  it('::ps lists the processes, ::ps -t their threads', async () => {
    const row = (state: string, pid: number, ppid: number, name: string, comm: string) => `${state} ${String(pid).padStart(6)} ${String(ppid).padStart(6)}   0 ${hex(sym.get(name)!)} ${comm}`;
    const head = 'S    PID   PPID CPU TASK               COMM';
    const procs = [row('R', 0, 0, 'init_task', '[swapper/0]'), row('S', 1, 0, 'task_init', 'init'), row('I', 2, 0, 'task_kthreadd', '[kthreadd]'), row('S', 3, 1, 'task_sleeper', 'sleeper')];
    expect((await run(t, '::ps')).lines).toEqual([head, ...procs]);
    expect((await run(t, '::ps -t')).lines).toEqual([head, ...procs, row('D', 4, 1, 'task_sleeper2', 'sleeper-worker')]);
  });

  it('walkers task and thread, ::pid2task, ::list_head over init_task.tasks', async () => {
    const addr = (n: string) => `${sym.get(n)!.toString(16)}`;
    expect((await run(t, '::walk task')).lines).toEqual(['init_task', 'task_init', 'task_kthreadd', 'task_sleeper'].map(addr).map((a) => `0x${a}`));
    expect((await run(t, '::walk thread')).lines).toHaveLength(5);
    expect((await run(t, '0t4::pid2task')).lines).toEqual([hex(sym.get('task_sleeper2')!)]);
    expect(await failure(t, '0t99::pid2task')).toBe('no task has pid 99 (0t99)');
    const head = sym.get('init_task')! + offTasks;
    expect((await run(t, `${head.toString(16)}::list_head task_struct tasks`)).lines).toEqual(['task_init', 'task_kthreadd', 'task_sleeper'].map((n) => `0x${addr(n)}`));
  });

  it('::threads -k lists every task as a thread beside the CPUs; a task without a readable context is left out in one line', async () => {
    const k = KernelDumpTarget.open(dump('threads.vmcore'), { symbols: [vmlinux] });
    try {
      const r = await run(k, '::threads -k');
      expect(r.lines[0]).toBe('  ID        TID NAME             STATE      PC');
      expect(r.lines.slice(1).map((l) => /^[* ]\s+\d+\s+\d+ (.*?)\s+(?:stopped|sleeping) /.exec(l)?.[1])).toEqual(['CPU 0 (pid 1)', 'CPU 1 (pid 4)', 'pid 3 sleeper', 'pid 4 sleeper-worker']);
      // init_task, init and kthreadd have no switched-out context in the mini kernel (thread.sp 0): one line each, the rest go on
      expect(r.warnings.map((w) => w.replace(/: read .*/, ''))).toEqual(['init_task', 'task_init', 'task_kthreadd'].map((n) => `task ${hex(sym.get(n)!)} is left out`));
      expect(await failure(k, '::threads -x')).toMatch(/^::threads: unknown option -x/);
    } finally {
      k.close();
    }
  });

  it('ADDR::task selects a sleeping task; ::stack unwinds from its inactive_task_frame', async () => {
    const a = sym.get('task_sleeper')!;
    const r = await run(t, `${a.toString(16)}::task; ::stack; ::regs`);
    expect(r.lines.slice(0, 3)).toEqual([`thread 3: task ${hex(a)} (pid 3 sleeper), from its saved context`, `${hex(sym.get('__schedule')! + 4n)} __schedule+0x4`, `${hex(sym.get('schedule')! + 9n)} schedule+0x9`]);
    const stack = sym.get('sleeper_stack')!;
    expect(r.lines.slice(3)).toEqual([
      '%rbx = 0x00000000000000b0',
      `%rbp = ${hex(stack + 0x40n)}`,
      `%rsp = ${hex(stack + 0x38n)}`, // just above the 7-word frame
      '%r12 = 0x0000000000000f12',
      '%r13 = 0x0000000000000f13',
      '%r14 = 0x0000000000000f14',
      '%r15 = 0x0000000000000f15',
      `%rip = ${hex(sym.get('__schedule')! + 4n)} __schedule+0x4`,
    ]);
    expect(t.threads().map((x) => x.name)).toEqual(['CPU 0 (pid 1)', 'CPU 1 (pid 4)', 'pid 3 sleeper']);
  });

  it("the caller comes from the kernel's ORC tables, which end the stack at schedule", async () => {
    expect(await sleeperFrames(t)).toEqual([['__schedule+0x4', 'registers'], ['schedule+0x9', 'orc']]);
  });

  it('::stacks groups the tasks by stack, with counts', async () => {
    const r = await run(t, '::stacks -c __schedule');
    expect(r.lines[0]).toBe('TASK               STATE COUNT');
    expect(r.lines[1]).toBe(`${hex(sym.get('task_sleeper')!)} S         2`); // sleeper and its worker share the saved stack
    expect(r.lines.slice(2, 4).map((l) => l.trim())).toEqual(['__schedule+0x4', 'schedule+0x9']);
  });

  it('::dmesg from the types (no VMCOREINFO): stamps, levels, -l, -n', async () => {
    expect((await run(t, '::dmesg')).lines).toEqual([
      '[    0.001000] Linux version 6.1.0-mini',
      '[    2.500000] a warning',
      '[    3.000001] Kernel panic - not syncing: mini panic',
      '[    3.000002] CPU: 1 PID: 3 Comm: sleeper',
    ]);
    expect((await run(t, '::dmesg -l emerg,warn -n 2')).lines).toEqual(['[    3.000001] Kernel panic - not syncing: mini panic', '[    3.000002] CPU: 1 PID: 3 Comm: sleeper']);
    expect(await failure(t, '::dmesg -l loud')).toBe('::dmesg: -l takes levels emerg, alert, crit, err, warn, notice, info, debug or 0..7, not "loud"');
  });

  it('::status and ::panicinfo: CPU 1 from panic_cpu, the message from the log', async () => {
    expect(t.status()).toMatchObject({ reason: { kind: 'panic', message: 'mini panic' }, thread: 2 });
    const pi = (await run(t, '::panicinfo')).lines;
    expect(pi.slice(0, 2)).toEqual(['       cpu 1 (thread 2)', '   message mini panic']);
    expect(pi).toContain('  found by panic_cpu');
  });

  it('::percpu: each CPU\'s copy at __per_cpu_offset[cpu] + the offset', async () => {
    const area = sym.get('percpu_area')!;
    expect((await run(t, '::percpu current_task')).lines).toEqual([`cpu 0: ${hex(area)}`, `cpu 1: ${hex(area + 16n)}`]);
    expect((await run(t, '::percpu current_task 1 | ::print -a void *')).lines).toEqual([`${(area + 16n).toString(16)} task_sleeper`]);
    expect(await failure(t, '::percpu init_task')).toBe(`init_task is not a per-CPU variable: its value ${hex(sym.get('init_task')!)} is an address, not an offset in .data..percpu`);
    expect(await failure(t, '::percpu current_task 2')).toBe('no CPU 2: the dump has CPUs 0..1');
  });

  it('addresses outside the image are no symbol+offset (the per-CPU segment at 0 does not stretch it)', async () => {
    expect(await failure(t, 'ffff888000001000::nm')).toBe('no symbol holds address 0xffff888000001000');
  });

  it('an address that is no task_struct is refused in one line', async () => {
    expect(await failure(t, `${sym.get('ring_data')!.toString(16)}::task`)).toMatch(/^0x[0-9a-f]{16} is not a readable task_struct: read of 4 bytes at 0x35 failed: 0x35 is in no PT_LOAD of /);
    expect(await failure(t, 'ffff888000001000::task')).toMatch(/^0xffff888000001000 is not a readable task_struct: read of 4 bytes at 0xffff888000001010 failed: /);
  });
});

describe('the panicking CPU without panic_cpu (-1: an older kernel, or a dump taken before panic)', () => {
  const noPanicCpu = (): [bigint, Buffer] => [sym.get('panic_cpu')!, Buffer.from([0xff, 0xff, 0xff, 0xff])];

  it('a CPU with panic() among its first frames, not only at its pc', () => {
    const stack = sym.get('panic_stack')!;
    const cpu1 = { rip: sym.get('delay_loop')! + 4n, rsp: stack, rbp: stack };
    const t = KernelDumpTarget.open(dump('frames.vmcore', { patch: [noPanicCpu()], cpu1 }), { symbols: [vmlinux] });
    expect(t.status()).toMatchObject({ reason: { kind: 'panic', message: 'mini panic' }, thread: 2 });
    expect(t.panicSource()).toBe('frame 1 of CPU 1');
    t.close();
  });

  it('else the CPU that the log names after its panic record', () => {
    const t = KernelDumpTarget.open(dump('log.vmcore', { patch: [noPanicCpu()] }), { symbols: [vmlinux] });
    expect(t.status()).toMatchObject({ reason: { kind: 'panic', message: 'mini panic' }, thread: 2 });
    expect(t.panicSource()).toBe('the kernel log');
    t.close();
  });
});

describe('hand-corrupted copies', () => {
  it('a task list that cycles: ::ps shows the tasks before the cycle and says where it closed', async () => {
    const at = sym.get('task_kthreadd')! + offTasks;
    const t = KernelDumpTarget.open(dump('cycle.vmcore', { patch: [[at, sym.get('task_init')! + offTasks]] }), { symbols: [vmlinux] });
    const r = await run(t, '::ps');
    expect(r.lines).toHaveLength(4); // header, swapper, init, kthreadd
    expect(r.warnings).toEqual([`the task list (init_task.tasks): cycles back to ${hex(sym.get('task_init')!)} after 2 without returning to the head`]);
    const w = await failure(t, '::walk task');
    expect(w).toBe(`the task list (init_task.tasks): cycles back to ${hex(sym.get('task_init')!)} after 2 without returning to the head (3 yielded)`);
    t.close();
  });

  it('a task list that leaves the dump stops there, with the count so far', async () => {
    const at = sym.get('task_kthreadd')! + offTasks;
    const t = KernelDumpTarget.open(dump('outside.vmcore', { patch: [[at, 0xffff888012345000n]] }), { symbols: [vmlinux] });
    const r = await run(t, '::ps -t');
    expect(r.lines).toHaveLength(4);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatch(/^the task list \(init_task\.tasks\): the node at 0xffff888012345000 cannot be read \(read of 8 bytes at 0xffff888012345000 failed: .*\); stopped after 2$/);
    expect((await run(t, '::stacks')).warnings).toContain(r.warnings[0]);
    t.close();
  });

  it('a ring buffer cut short: the records before the cut, and where it was cut', async () => {
    const t = KernelDumpTarget.open(dump('ring.vmcore', { ringBytes: 4096 }), { symbols: [vmlinux] });
    const r = await run(t, '::dmesg');
    expect(r.lines).toEqual(['[    0.001000] Linux version 6.1.0-mini', '[    2.500000] a warning']);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatch(/^the printk ring buffer is cut short at record id 2 \(after 2 records\): read of \d+ bytes at 0x[0-9a-f]+ failed: /);
    t.close();
  });

  it('a garbage ORC entry (a register ORC has not) is not followed: CFI finds the caller', async () => {
    const t = KernelDumpTarget.open(dump('orc.vmcore', { from: garbageOrc }), { symbols: [garbageOrc] });
    expect(await sleeperFrames(t)).toEqual([['__schedule+0x4', 'registers'], ['schedule+0x9', 'cfi']]);
    t.close();
  });

  it('tasks without vmlinux: one line saying what to give', async () => {
    const t = KernelDumpTarget.open(dump('nosyms.vmcore'));
    expect(await failure(t, '::ps')).toBe('the task list needs the kernel\'s types: open the dump "nosyms.vmcore" with --symbols vmlinux (a vmlinux with DWARF, e.g. Debian\'s linux-image-*-dbg)');
    expect(await failure(t, '::dmesg')).toBe('kernel dump "nosyms.vmcore" has no VMCOREINFO note and no vmlinux types (--symbols vmlinux): the kernel log\'s layout is unknown');
    t.close();
  });
});

/**
 * mini_mod's .ko as an assembler writes one: mini_func at .text+0x10 (where the module's kallsyms
 * put it), mini_helper at .text+0x20 (which kallsyms do not name), mini_data at .data+0x80. With
 * `otherBuild`, mini_data sits in .text at 0x30: a .ko of other sources that kallsyms contradict.
 */
/** The module's .ko, as gcc assembles it: `otherBuild` moves mini_data; `debug` gives it DWARF (gcc -g; its functions hold nops). */
function miniKo(name: string, otherBuild = false, debug = false): string {
  const d = join(dir, name);
  execFileSync('mkdir', ['-p', d]);
  const s = join(d, 'mini_mod.s');
  const body = debug ? '\n.rept 16\nnop\n.endr' : '.skip 0x10';
  const data = otherBuild ? '.org 0x30\n.globl mini_data\nmini_data: .quad 0\n' : '.data\n.org 0x80\n.globl mini_data\n.type mini_data,@object\nmini_data: .quad 0\n.size mini_data,8\n';
  writeFileSync(
    s,
    `.text\n.org 0x10\n.globl mini_func\n.type mini_func,@function\nmini_func: ${body}\n.size mini_func,0x10\n` +
      `.type mini_helper,@function\nmini_helper: ${body}\n.size mini_helper,0x10\n` +
      data +
      '.section .modinfo,"a"\n.asciz "name=mini_mod"\n',
  );
  execFileSync('gcc', ['-c', ...(debug ? ['-g'] : []), '-o', join(d, 'mini-mod.ko'), s]);
  return d;
}

describe('kernel modules: names from their kallsyms, or from a .ko placed where kallsyms put it', () => {
  const text = () => sym.get('mini_mod_text')!;

  it('::modules lists state and where names come from; module text is named module`symbol+off', async () => {
    const t = KernelDumpTarget.open(dump('modules.vmcore'), { symbols: [vmlinux] });
    try {
      // nothing of the modules is read at open: they load on first use
      expect(t.symbols.modules.map((m) => m.name)).not.toContain('mini_mod');
      expect(t.warnings).toEqual([]);
      expect((await run(t, '::modules')).lines).toEqual([
        'MODULE             NAME                 BASE               SIZE     STATE  SYMBOLS',
        `${hex(sym.get('mod_fw')!)} qemu_fw_cfg          0xffffffffc0456000 0x5000   live   none`,
        `${hex(sym.get('mod_mini')!)} mini_mod             ${hex(text())} 0x100    live   kallsyms`,
      ]);
      expect(symbolName(t, text() + 0x14n)).toBe('mini_mod`mini_func+0x4');
      expect(symbolName(t, text() + 0x80n)).toBe('mini_mod`mini_data');
      expect(symbolName(t, 0xffffffffc0001004n)).toBeUndefined(); // kallsyms outside the module's memory name nothing
      expect(t.symbols.lookup('mini_mod`mini_func')).toBe(text() + 0x10n);
    } finally {
      t.close();
    }
  });

  it('--modules DIR: the .ko placed by kallsyms names what kallsyms do not', async () => {
    const d = miniKo('ko-good');
    const t = KernelDumpTarget.open(dump('modules.vmcore'), { symbols: [vmlinux], modules: d });
    try {
      // The modules load on first use: here, a name vmlinux lacks. (An address above the kernel
      // image loads them too; the mini kernel keeps its module's memory inside its image.)
      expect(t.warnings).toEqual([]);
      expect(t.symbols.lookup('mini_mod`mini_helper')).toBe(text() + 0x20n);
      expect(symbolName(t, text() + 0x24n)).toBe('mini_mod`mini_helper+0x4');
      expect(t.warnings).toEqual([`--modules ${d}: no .ko for 1 of 2 modules (qemu_fw_cfg); their names come from their kallsyms`]);
      expect((await run(t, '::modules')).lines[2]).toBe(`${hex(sym.get('mod_mini')!)} mini_mod             ${hex(text())} 0x100    live   ${join(d, 'mini-mod.ko')}`);
    } finally {
      t.close();
    }
  });

  it('dbg open prints the warnings the modules bring when a command first loads them', async () => {
    const d = miniKo('ko-cli');
    const r = await runDbg(['open', dump('modules.vmcore'), '--symbols', vmlinux, '--modules', d, '-e', '::modules']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${join(d, 'mini-mod.ko')}`);
    expect(r.stderr).toBe(`dbg: warning: --modules ${d}: no .ko for 1 of 2 modules (qemu_fw_cfg); their names come from their kallsyms\n`);
  }, 60_000);

  it("a .ko with DWARF gives module frames file:line, relocated to where kallsyms put its sections; relocations that lie cost one warning and the lines only", () => {
    const d = miniKo('ko-dwarf', false, true);
    const t = KernelDumpTarget.open(dump('modules.vmcore'), { symbols: [vmlinux], modules: d });
    try {
      expect(t.symbols.lookup('mini_mod`mini_helper')).toBe(text() + 0x20n);
      expect(placeText(t.symbols, text() + 0x14n, false)).toMatch(/mini_mod\.s:\d+$/);
      expect(t.warnings).toEqual([`--modules ${d}: no .ko for 1 of 2 modules (qemu_fw_cfg); their names come from their kallsyms`]);
    } finally {
      t.close();
    }
    const bad = miniKo('ko-dwarf-bad', false, true);
    const bytes = readFileSync(join(bad, 'mini-mod.ko'));
    const elf = ElfFile.open(join(bad, 'mini-mod.ko'));
    const rela = elf.section('.rela.debug_info')!;
    elf.close();
    bytes.writeUInt32LE(99, rela.offset + 8); // the first relocation's type
    writeFileSync(join(bad, 'mini-mod.ko'), bytes);
    const u = KernelDumpTarget.open(dump('modules.vmcore'), { symbols: [vmlinux], modules: bad });
    try {
      expect(u.symbols.lookup('mini_mod`mini_helper')).toBe(text() + 0x20n); // the .ko still names it
      expect(symbolName(u, text() + 0x24n)).toBe('mini_mod`mini_helper+0x4');
      expect(placeText(u.symbols, text() + 0x14n, false)).toBeUndefined();
      expect(u.warnings[0]).toBe(
        `${join(bad, 'mini-mod.ko')}: .rela.debug_info entry 0: relocation type 99, which dbg does not apply to debug sections (64, PC32, 32, 32S): the DWARF of module mini_mod cannot be placed, its frames show no file:line`,
      );
    } finally {
      u.close();
    }
  });

  it('a .ko that is not the loaded module is left out in one line; kallsyms name the module', () => {
    const d = miniKo('ko-other', true);
    const t = KernelDumpTarget.open(dump('modules.vmcore'), { symbols: [vmlinux], modules: d });
    try {
      expect(t.symbols.lookup('mini_mod`mini_func')).toBe(text() + 0x10n);
      expect(symbolName(t, text() + 0x24n)).toBe('mini_mod`mini_func+0x14');
      expect(t.warnings[0]).toBe(
        `${join(d, 'mini-mod.ko')}: not the loaded module: mini_data would be at ${hex(text() + 0x30n)}, the module's kallsyms have it at ${hex(text() + 0x80n)} (1 symbol disagrees); the names of module mini_mod come from its kallsyms`,
      );
    } finally {
      t.close();
    }
  });

  it('a module list that loops: the walk stops with the count so far, the session goes on', async () => {
    // mod_mini.list.next (struct module: int state, then the list) back to mod_fw's list
    const cyc = dump('modules-cycle.vmcore', { patch: [[sym.get('mod_mini')! + 8n, sym.get('mod_fw')! + 8n]] });
    const t = KernelDumpTarget.open(cyc, { symbols: [vmlinux] });
    try {
      const loop = `the module list: cycles back to ${hex(sym.get('mod_fw')!)} after 2 without returning to the head`;
      expect(t.kernelModules).toHaveLength(2);
      expect(t.warnings).toEqual([loop]);
      const r = await run(t, '::modules');
      expect(r.lines).toHaveLength(3);
      expect(r.warnings).toEqual([loop]);
      expect(symbolName(t, text() + 0x14n)).toBe('mini_mod`mini_func+0x4');
    } finally {
      t.close();
    }
  });

  it("kallsyms that lie (a count past belief, a table outside the dump): one line, the module unnamed, the rest goes on", () => {
    const k = sym.get('mini_kallsyms')!; // struct mod_kallsyms { symtab; num_symtab; strtab; typetab }
    for (const [patch, why] of [
      [[k + 8n, 0x7fffffffn], 'num_symtab says 2147483647 symbols; dbg reads at most 1000000'],
      [[k, 0x10n], 'read of 96 bytes at 0x10 failed: '],
    ] as const) {
      const t = KernelDumpTarget.open(dump('modules-lying.vmcore', { patch: [patch as [bigint, bigint]] }), { symbols: [vmlinux] });
      try {
        expect(t.symbols.find('mini_mod`mini_func')).toBeUndefined();
        expect(t.warnings).toHaveLength(1);
        expect(t.warnings[0]).toContain(`module mini_mod (struct module ${hex(sym.get('mod_mini')!)}): its kallsyms: ${why}`);
        expect(t.warnings[0]).toMatch(/; names come from its \.ko only$/);
        expect(t.kernelModules.map((m) => [m.name, m.symbols])).toEqual([['qemu_fw_cfg', 'none'], ['mini_mod', 'none']]);
      } finally {
        t.close();
      }
    }
  });

  it('--modules that is no directory, or without vmlinux, is refused in one line', () => {
    const p = dump('modules.vmcore');
    expect(() => KernelDumpTarget.open(p, { symbols: [vmlinux], modules: join(dir, 'no-such-dir') })).toThrow(`--modules ${join(dir, 'no-such-dir')}: no such directory`);
    expect(() => KernelDumpTarget.open(p, { symbols: [vmlinux], modules: vmlinux })).toThrow(`--modules ${vmlinux}: not a directory (give the directory that holds the .ko files)`);
    expect(() => KernelDumpTarget.open(p, { modules: dir })).toThrow(`--modules ${dir}: the module list is read with the kernel's types; give --symbols vmlinux too`);
  });
});
