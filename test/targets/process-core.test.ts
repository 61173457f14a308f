/**
 * Differential tests of the process-core target and the unwinder against gdb.
 *
 * A multi-threaded C program (test/fixtures-src/threads.c) is built by gcc, run until it says it
 * is ready, dumped by gcore and then by the kernel (SIGABRT), and the same questions are put to
 * `gdb -batch` and to ProcessCoreTarget + unwind: threads, every thread's registers, every
 * thread's backtrace, globals, a heap linked list, and bytes of a code page the core left out.
 */

import { beforeAll, describe, expect, it } from 'vitest';
import { ElfFile } from '../../src/symbols/elf-file.js';
import { ProcessCoreTarget } from '../../src/targets/elfcore/process-core-target.js';
import { readPointer } from '../../src/targets/target.js';
import { unwind } from '../../src/targets/unwind.js';
import { debuggee, gdbBatch, kernelCoreUnavailable, skipReason, type Debuggee } from '../helpers/debuggee.js';

const THREADS = 4;
const scalars: [name: string, bytes: 1 | 2 | 4 | 8][] = [
  ['global_int', 4],
  ['global_ulong', 8],
  ['global_short', 2],
  ['global_byte', 1],
  ['global_double', 8],
  ['global_ptr', 8],
  ['static_counter', 4],
  ['list_head', 8],
];
const LIST_LEN = 6;

/** gdb's output split at the `echo @@key\n` markers the commands carry. */
function askGdb(d: Debuggee, core: string): Map<string, string> {
  const cmds: string[] = ['echo @@threads\\n', 'info threads'];
  for (let i = 1; i <= THREADS; i++) {
    cmds.push(`thread ${i}`, `echo @@regs ${i}\\n`, 'info registers', `echo @@bases ${i}\\n`, 'p/x $fs_base', 'p/x $gs_base', 'p/x $orig_rax');
  }
  cmds.push('echo @@bt\\n', 'thread apply all bt -frame-info location-and-address');
  for (const [name] of scalars) cmds.push(`echo @@p ${name}\\n`, `p/x ${name}`, `echo @@addr ${name}\\n`, `p/x &${name}`);
  cmds.push('echo @@string\\n', 'p/x global_string', 'echo @@point\\n', 'p/x global_point', 'echo @@array\\n', 'p/x global_array');
  for (let i = 0; i <= LIST_LEN; i++) cmds.push(`echo @@list ${i}\\n`, `p/x list_head${'->next'.repeat(i)}`);
  for (const fn of ['main', 'read', 'pthread_cond_wait']) cmds.push(`echo @@code ${fn}\\n`, `x/32xb ${fn}`);
  const out = gdbBatch(d.exe, core, cmds);
  const sections = new Map<string, string>();
  let key = '';
  for (const line of out.split('\n')) {
    if (line.startsWith('@@')) {
      key = line.slice(2);
      sections.set(key, '');
    } else if (key) sections.set(key, sections.get(key)! + line + '\n');
  }
  return sections;
}

/** `$1 = 0x1f` -> 0x1fn */
function gdbValue(text: string | undefined): bigint {
  const m = /\$\d+ = (?:\([^)]*\) )?(0x[0-9a-f]+)/.exec(text ?? '');
  if (!m) throw new Error(`no value in gdb output: ${text}`);
  return BigInt(m[1]!);
}

/** `x/32xb` output -> bytes */
function gdbBytes(text: string | undefined): Buffer {
  const bytes = [...(text ?? '').matchAll(/\t0x([0-9a-f]{2})/g)].map((m) => parseInt(m[1]!, 16));
  return Buffer.from(bytes);
}

interface GdbFrame {
  level: number;
  pc: bigint;
  name?: string;
}

function gdbBacktraces(text: string): Map<number, GdbFrame[]> {
  const out = new Map<number, GdbFrame[]>();
  let cur: GdbFrame[] | undefined;
  for (const line of text.split('\n')) {
    const t = /^Thread (\d+) /.exec(line);
    if (t) out.set(Number(t[1]), (cur = []));
    const f = /^#(\d+)\s+(0x[0-9a-f]+) in (\S+) \(/.exec(line);
    if (f && cur) cur.push({ level: Number(f[1]), pc: BigInt(f[2]!), ...(f[3] !== '??' ? { name: f[3]! } : {}) });
  }
  return out;
}

// Kernel-written cores need a kernel that writes them into the working directory.
const noKernelCore = kernelCoreUnavailable();
const cores: [label: string, pick: (d: Debuggee) => string | undefined][] = [['gcore', (d) => d.core]];
if (!skipReason('the kernel-written core tests', noKernelCore)) cores.push(['kernel-written', (d) => d.kernelCore]);

let d: Debuggee;
beforeAll(async () => {
  d = await debuggee('threads', { kernelCore: true });
});

describe.each(cores)('%s core of a multi-threaded program, compared with gdb', (label, pick) => {
  let t: ProcessCoreTarget;
  let gdb: Map<string, string>;
  let core: string;

  beforeAll(() => {
    const c = pick(d);
    if (!c) throw new Error(`no ${label} core: ${d.kernelCoreProblem}`);
    core = c;
    t = ProcessCoreTarget.open(core);
    gdb = askGdb(d, core);
    return () => t.close();
  });

  it('finds the executable and libraries through NT_FILE, without warnings', () => {
    expect(t.warnings).toEqual([]);
    const names = t.symbols.modules.map((m) => m.name);
    expect(names[0]).toBe('threads');
    expect(names).toContain('libc.so.6');
    expect(names).toContain('ld-linux-x86-64.so.2');
    expect(t.process?.fname).toBe('threads');
    expect(t.process?.pid).toBe(d.pid);
  });

  it('lists the threads gdb lists, in the same order', () => {
    const lwps = [...gdb.get('threads')!.matchAll(/^\*?\s+(\d+)\s+.*?LWP (\d+)\)/gm)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(lwps.length).toBe(THREADS);
    expect(t.threads().map((x) => [x.index, x.tid])).toEqual(lwps);
    expect(t.threads()[0]!.tid).toBe(d.pid);
  });

  it('gives every thread the registers gdb gives, fs_base, gs_base and orig_rax included', () => {
    for (let i = 1; i <= THREADS; i++) {
      const regs = t.registers(i);
      const theirs = new Map([...gdb.get(`regs ${i}`)!.matchAll(/^(\w+)\s+(0x[0-9a-f]+)/gm)].map((m) => [m[1]!, BigInt(m[2]!)]));
      const names = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'eflags', 'cs', 'ss', 'ds', 'es', 'fs', 'gs'];
      for (const n of names) expect([i, n, regs.get(n)]).toEqual([i, n, theirs.get(n)]);
      const bases = gdb.get(`bases ${i}`)!.split('\n');
      expect(regs.get('fs_base')).toBe(gdbValue(bases[0]));
      expect(regs.get('gs_base')).toBe(gdbValue(bases[1]));
      expect(regs.get('orig_rax')).toBe(BigInt.asUintN(64, gdbValue(bases[2])));
      expect(regs.get('fs_base')).not.toBe(0n);
    }
  });

  it('unwinds every thread to the frames gdb shows, with the same pcs and names', () => {
    const theirs = gdbBacktraces(gdb.get('bt')!);
    expect(theirs.size).toBe(THREADS);
    const calls = new Set<string>();
    for (let i = 1; i <= THREADS; i++) {
      const ours = unwind(t, i).map((f) => {
        const name = t.symbols.describe(f.pc - (f.level > 0 ? 1n : 0n))?.replace(/\+0x[0-9a-f]+$/, '');
        return { level: f.level, pc: f.pc, name };
      });
      const want = theirs.get(i)!;
      expect(ours.map((f) => f.pc)).toEqual(want.map((f) => f.pc));
      for (const [k, f] of want.entries()) if (f.name) expect([i, k, ours[k]!.name]).toEqual([i, k, f.name]);
      for (const f of ours) if (f.name) calls.add(f.name);
    }
    // The program's own frames and the libc calls it blocks in are all named.
    for (const fn of ['main', 'cond_waiter', 'pthread_cond_wait', 'sleeper', 'sleep_deeply', 'nanosleep', 'reader', 'read']) expect(calls).toContain(fn);
  });

  it('gets out of libc (built without frame pointers) by CFI', () => {
    const frames = unwind(t, 2);
    expect(frames[0]!.how).toBe('registers');
    expect(frames.slice(1).every((f) => f.how === 'cfi')).toBe(true);
    expect(frames[0]!.cfa).toBeGreaterThan(frames[0]!.sp);
  });

  it('reads globals with the values and addresses gdb prints', () => {
    for (const [name, bytes] of scalars) {
      const addr = t.symbols.lookup(name);
      expect([name, addr]).toEqual([name, gdbValue(gdb.get(`addr ${name}`))]);
      const b = t.readVirtual(addr, bytes);
      const v = bytes === 8 ? b.readBigUInt64LE(0) : BigInt(b.readUIntLE(0, bytes));
      expect([name, v]).toEqual([name, gdbValue(gdb.get(`p ${name}`))]);
    }
    const gdbList = (key: string) => [...gdb.get(key)!.matchAll(/0x[0-9a-f]+/g)].map((m) => BigInt(m[0]));
    expect([...t.readVirtual(t.symbols.lookup('global_string'), 16)].map(BigInt)).toEqual(gdbList('string'));
    const arr = t.readVirtual(t.symbols.lookup('global_array'), 20);
    expect([0, 1, 2, 3, 4].map((i) => BigInt(arr.readUInt32LE(i * 4)))).toEqual(gdbList('array'));
    const pt = t.readVirtual(t.symbols.lookup('global_point'), 8);
    expect([BigInt(pt.readUInt32LE(0)), BigInt(pt.readUInt16LE(4)), BigInt(pt[6]!)]).toEqual(gdbList('point'));
  });

  it('walks the heap linked list through the same node addresses as gdb', () => {
    const ours: bigint[] = [];
    let p = readPointer(t, t.symbols.lookup('list_head'));
    ours.push(p);
    while (p !== 0n && ours.length <= LIST_LEN) {
      p = readPointer(t, p + 8n);
      ours.push(p);
    }
    const theirs = Array.from({ length: LIST_LEN + 1 }, (_, i) => gdbValue(gdb.get(`list ${i}`)));
    expect(ours).toEqual(theirs);
    expect(ours[LIST_LEN]).toBe(0n);
    expect(t.readVirtual(ours[0]!, 8).readBigInt64LE(0)).toBe(BigInt((LIST_LEN - 1) * 11));
  });

  it('reads code pages the core left out from the mapped files, as gdb does', () => {
    const elf = ElfFile.open(core);
    try {
      for (const fn of ['main', 'read', 'pthread_cond_wait']) {
        const addr = t.symbols.lookup(fn);
        const inCore = elf.loadSegments().some((p) => addr >= p.vaddr && addr < p.vaddr + BigInt(p.filesz));
        expect([fn, inCore]).toEqual([fn, false]);
        const want = gdbBytes(gdb.get(`code ${fn}`));
        expect(want.length).toBe(32);
        expect(t.readVirtual(addr, 32)).toEqual(want);
      }
    } finally {
      elf.close();
    }
  });

  it('maps memory with names from NT_FILE and permissions from p_flags', () => {
    const maps = t.mappings();
    const main = t.symbols.lookup('main');
    const code = maps.find((m) => main >= m.start && main < m.end)!;
    expect(code.name).toBe(d.exe);
    expect(code.perms).toBe('r-x');
    expect(code.present).toBe(true);
    const libc = maps.filter((m) => m.name.endsWith('/libc.so.6'));
    expect(libc.map((m) => m.perms)).toEqual(expect.arrayContaining(['r--', 'r-x', 'rw-']));
    const sp = t.registers(1).get('rsp')!;
    const stack = maps.find((m) => sp >= m.start && sp < m.end)!;
    expect(stack.name).toBe('');
    expect(stack.perms).toBe('rw-');
    for (let i = 1; i < maps.length; i++) expect(maps[i]!.start).toBeGreaterThanOrEqual(maps[i - 1]!.end);
    const vdso = t.symbols.modules.find((m) => m.name === '[vdso]')!;
    expect(maps.find((m) => m.start === vdso.start)?.name).toBe('[vdso]');
  });

  it('reports the signal gdb reports', () => {
    const banner = gdbBatch(d.exe, core, []);
    const m = /Program terminated with signal (SIG\w+)/.exec(banner);
    const st = t.status();
    if (m) expect(st.reason).toMatchObject({ kind: 'signal', name: m[1] });
    else expect(st.reason.kind).toBe('none');
    if (label === 'kernel-written') expect(st.reason).toMatchObject({ kind: 'signal', signal: 6, name: 'SIGABRT' });
  });
});

describe('frame-pointer unwinding where the program has no CFI', () => {
  it('walks the program frames by rbp and still equals gdb', async () => {
    // -g0 too: with -g, gcc moves the CFI to .debug_frame rather than dropping it.
    const nocfi = await debuggee('threads', { cflags: ['-O0', '-g0', '-fno-omit-frame-pointer', '-pthread', '-fno-asynchronous-unwind-tables', '-fno-unwind-tables'] });
    const t = ProcessCoreTarget.open(nocfi.core);
    try {
      const theirs = gdbBacktraces(gdbBatch(nocfi.exe, nocfi.core, ['thread apply all bt -frame-info location-and-address']));
      const hows = new Set<string>();
      for (let i = 1; i <= THREADS; i++) {
        const frames = unwind(t, i);
        // gdb's own CFI-less unwinder (prologue analysis) may stop earlier or later in the C
        // runtime; the frames it shows down to the program's thread entry or main must match.
        const want = theirs.get(i)!;
        const upTo = want.findIndex((f) => f.name === 'main' || f.name === 'cond_waiter' || f.name === 'sleeper' || f.name === 'reader');
        expect(upTo).toBeGreaterThan(0);
        expect(frames.slice(0, upTo + 1).map((f) => f.pc)).toEqual(want.slice(0, upTo + 1).map((f) => f.pc));
        for (const f of frames.slice(0, upTo + 1)) hows.add(f.how);
        const named = frames.slice(0, upTo + 1).map((f) => t.symbols.describe(f.pc - (f.level ? 1n : 0n))?.replace(/\+0x[0-9a-f]+$/, ''));
        for (const [k, f] of want.slice(0, upTo + 1).entries()) if (f.name) expect(named[k]).toBe(f.name);
      }
      expect(hows).toContain('frame-pointer');
      expect(unwind(t, 3).filter((f) => f.how === 'frame-pointer').length).toBeGreaterThanOrEqual(4); // sleep_deeply x3, sleeper
    } finally {
      t.close();
    }
  });
});

describe('unwinding through a signal handler', () => {
  it("crosses the kernel's signal frame by __restore_rt's CFI expressions, as gdb does", async () => {
    const sig = await debuggee('signals');
    const t = ProcessCoreTarget.open(sig.core);
    try {
      expect(t.warnings).toEqual([]);
      const bt = gdbBatch(sig.exe, sig.core, ['thread 2', 'bt -frame-info location-and-address']);
      const levels = [...bt.matchAll(/^#(\d+)\s+(.*)$/gm)].filter((m) => m[1] !== '0' || !/^\[/.test(m[2]!));
      const frameCount = Math.max(...levels.map((m) => Number(m[1]))) + 1;
      const probe = gdbBatch(sig.exe, sig.core, ['thread 2', ...Array.from({ length: frameCount }, (_, k) => [`frame ${k}`, `echo @@pc\\n`, 'p/x $pc']).flat()]);
      const pcs = [...probe.matchAll(/@@pc\n\$\d+ = (0x[0-9a-f]+)/g)].map((m) => BigInt(m[1]!));
      expect(pcs.length).toBe(frameCount);
      expect(bt).toContain('<signal handler called>');
      const ours = unwind(t, 2);
      expect(ours.map((f) => f.pc)).toEqual(pcs);
      const names = ours.map((f) => t.symbols.describe(f.pc - (f.level ? 1n : 0n))?.replace(/\+0x[0-9a-f]+$/, ''));
      expect(names).toEqual(expect.arrayContaining(['wait_in_handler', 'on_usr1', 'interrupted_work', 'signalled']));
      expect(names.indexOf('interrupted_work')).toBeGreaterThan(names.indexOf('on_usr1'));
    } finally {
      t.close();
    }
  });
});

describe.skipIf(noKernelCore)('the core of a real crash (a call through a NULL function pointer)', () => {
  it('reports SIGSEGV and unwinds the crashed thread from pc 0 as gdb does', async () => {
    const crash = await debuggee('crash', { kernelCore: true, kernelCoreBy: 'stdin' });
    if (!crash.kernelCore) throw new Error(`no kernel-written core: ${crash.kernelCoreProblem}`);
    const t = ProcessCoreTarget.open(crash.kernelCore);
    try {
      const out = gdbBatch(crash.exe, crash.kernelCore, ['thread apply all bt -frame-info location-and-address']);
      expect(out).toContain('Program terminated with signal SIGSEGV, Segmentation fault.');
      expect(t.status()).toEqual({ reason: { kind: 'signal', signal: 11, name: 'SIGSEGV' }, thread: 1, pc: 0n });
      expect(t.siginfo).toMatchObject({ signo: 11, addr: 0n });
      const theirs = gdbBacktraces(out);
      expect(theirs.size).toBe(t.threads().length);
      for (const th of t.threads()) {
        const frames = unwind(t, th.index);
        expect(frames.map((f) => f.pc)).toEqual(theirs.get(th.index)!.map((f) => f.pc));
        for (const [k, f] of theirs.get(th.index)!.entries()) {
          if (f.name) expect(t.symbols.describe(frames[k]!.pc - (k ? 1n : 0n))?.replace(/\+0x[0-9a-f]+$/, '')).toBe(f.name);
        }
      }
      const crashed = unwind(t, 1);
      expect(crashed[0]!.pc).toBe(0n);
      expect(crashed[1]!.how).toBe('return-address');
      expect(t.symbols.describe(crashed[1]!.pc - 1n)).toMatch(/^dispatch\+/);
    } finally {
      t.close();
    }
  });
});
