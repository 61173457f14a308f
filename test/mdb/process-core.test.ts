/**
 * The MDB layer on a real core: a gcc-built multi-threaded program dumped by gcore, asked the
 * same questions through dcmds and formats as through `gdb -batch`.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Session } from '../../src/mdb/session.js';
import { openTarget } from '../../src/targets/open-target.js';
import { debuggee, gdbBatch, type Debuggee } from '../helpers/debuggee.js';
import { failure, run, runJson, sessionOn } from './helpers.js';

let d: Debuggee;
let s: Session;
let gdb: Map<string, string>;

/** gdb's output split at `echo @@key\n` markers. */
function sections(out: string): Map<string, string> {
  const m = new Map<string, string>();
  let key = '';
  for (const line of out.split('\n')) {
    if (line.startsWith('@@')) {
      key = line.slice(2);
      m.set(key, '');
    } else if (key) m.set(key, m.get(key)! + line + '\n');
  }
  return m;
}

const value = (text: string | undefined) => {
  const m = /\$\d+ = (?:\([^)]*\) )?(-?[0-9a-fx.]+)/.exec(text ?? '');
  if (!m) throw new Error(`no value in gdb output: ${text}`);
  return m[1]!;
};

beforeAll(async () => {
  d = await debuggee('threads', { kernelCore: true });
  s = sessionOn(openTarget(d.core, {}));
  const cmds = ['echo @@bt\\n', 'thread apply all bt -frame-info location-and-address', 'echo @@regs\\n', 'thread apply all info registers rip rsp rbp rax'];
  for (const g of ['global_int', 'global_short', 'global_byte', 'global_double', 'static_counter']) cmds.push(`echo @@${g}\\n`, `p ${g}`);
  cmds.push('echo @@global_ulong\\n', 'p/x global_ulong', 'echo @@main\\n', 'p/x &main', 'echo @@x3i\\n', 'x/3i main');
  for (let i = 0; i <= 6; i++) cmds.push(`echo @@list${i}\\n`, `p/x list_head${'->next'.repeat(i)}`);
  gdb = sections(gdbBatch(d.exe, d.core, cmds));
});
afterAll(() => s?.target.close());

/** gdb's `thread apply all` output, by LWP: [header, body]. */
function byLwp(text: string): Map<number, string> {
  const m = new Map<number, string>();
  for (const part of text.split(/\n(?=Thread \d+ )/)) {
    const lwp = /\(LWP (\d+)\)/.exec(part);
    if (lwp) m.set(Number(lwp[1]), part);
  }
  return m;
}

describe('dcmds on a gcore core agree with gdb', () => {
  it('::stack -a names every frame gdb names, at the same pcs', async () => {
    const gdbStacks = byLwp(gdb.get('bt')!);
    const ours = (await runJson(s, '::stack -a'))[0] as { tid: number; frames: { pc: string; symbol: string | null }[] }[];
    expect(ours.length).toBe(gdbStacks.size);
    for (const t of ours) {
      const g = [...gdbStacks.get(t.tid)!.matchAll(/^#(\d+)\s+(0x[0-9a-f]+) in (\S+) \(/gm)].map((m) => ({ pc: BigInt(m[2]!), name: m[3]! }));
      expect(t.frames.map((f) => BigInt(f.pc))).toEqual(g.map((f) => f.pc));
      // gdb prints "??" where no symbol holds the pc; dbg prints "?" and names the rest module`sym+off.
      const names = t.frames.map((f) => (f.symbol === null ? '??' : f.symbol.replace(/^.*`/, '').replace(/\+0x[0-9a-f]+$/, '')));
      expect(names).toEqual(g.map((f) => f.name));
    }
  });

  it('$c prints "pc name" lines for the selected thread; N::thread selects', async () => {
    const threads = (await runJson(s, '::threads'))[0] as { index: number; tid: number }[];
    const reader = threads.find((t) => /in read \(\)/.test(byLwp(gdb.get('bt')!).get(t.tid)!))!;
    await run(s, `0t${reader.index}::thread`);
    const lines = await run(s, '$c');
    expect(lines[0]).toMatch(/^0x[0-9a-f]{16} libc\.so\.6`read\+0x[0-9a-f]+$/);
    expect(lines[1]).toMatch(/^0x[0-9a-f]{16} reader\+0x[0-9a-f]+$/);
    await run(s, '1::thread');
  });

  it('::regs prints the registers gdb has, with the same values', async () => {
    const g = byLwp(gdb.get('regs')!);
    for (const t of (await runJson(s, '::threads'))[0] as { index: number; tid: number }[]) {
      await run(s, `0t${t.index}::thread`);
      const regs = ((await runJson(s, '::regs'))[0] as { registers: Record<string, string> }).registers;
      for (const r of ['rip', 'rsp', 'rbp', 'rax']) {
        const m = new RegExp(`^${r}\\s+(0x[0-9a-f]+)`, 'm').exec(g.get(t.tid)!);
        expect(BigInt(regs[r]!), `${r} of LWP ${t.tid}`).toBe(BigInt(m![1]!));
      }
      expect(Object.keys(regs).slice(0, 4)).toEqual(['rax', 'rbx', 'rcx', 'rdx']);
    }
    await run(s, '1::thread');
    const text = await run(s, '$r');
    expect(text).toContainEqual(expect.stringMatching(/^%rip +0x[0-9a-f]{16}|^%rip += 0x[0-9a-f]{16}/));
    expect(text).toContainEqual(expect.stringMatching(/^%fs_base += 0x[0-9a-f]{16}$/));
  });

  it('formats read globals as gdb prints them', async () => {
    const pad = (l: string) => l.padEnd(16);
    expect(await run(s, 'global_int/D')).toEqual(['global_int:', pad('global_int:') + value(gdb.get('global_int'))]);
    expect((await run(s, 'global_ulong/J'))[1]).toBe(pad('global_ulong:') + value(gdb.get('global_ulong')).slice(2));
    expect((await run(s, 'global_short/d'))[1]).toBe(pad('global_short:') + value(gdb.get('global_short')));
    expect((await run(s, 'global_byte/V'))[1]).toBe(pad('global_byte:') + value(gdb.get('global_byte')));
    expect((await run(s, 'global_double/F'))[1]).toBe(pad('global_double:') + value(gdb.get('global_double')));
    expect((await run(s, 'static_counter/D'))[1]).toBe(pad('static_counter:') + value(gdb.get('static_counter')));
    expect((await run(s, 'global_string/s'))[1]).toBe(pad('global_string:') + 'hello, core');
    expect((await run(s, '*global_ptr/s'))[1]).toBe(pad('global_string:') + 'hello, core');
    expect((await run(s, 'global_ptr/p'))[1]).toBe(pad('global_ptr:') + 'global_string');
    expect(await run(s, 'global_array,5/D')).toEqual(['global_array:', pad('global_array:') + '1               2               3               5', ' '.repeat(16) + '8']);
  });

  it('*list_head::list 8 visits the nodes gdb reaches through ->next', async () => {
    const want: string[] = [];
    for (let i = 0; i <= 6; i++) {
      const v = BigInt(value(gdb.get(`list${i}`)));
      if (v === 0n) break;
      want.push('0x' + v.toString(16));
    }
    expect(want.length).toBe(6);
    expect(await run(s, '*list_head::list 8')).toEqual(want);
    // Each node's value field (offset 0), through a pipe: build_list stores i * 11, newest first.
    const values = (await run(s, '*list_head::list 8 | /E')).map((l) => l.split(/\s+/)[1]);
    expect(values).toEqual(['55', '44', '33', '22', '11', '0']);
  });

  it('::nm and ::dis agree with gdb on main', async () => {
    const main = BigInt(value(gdb.get('main')));
    const [sym] = (await runJson(s, '::nm main'))[0] as { addr: string; kind: string }[];
    expect(BigInt(sym!.addr)).toBe(main);
    expect(sym!.kind).toBe('func');
    const gdbAddrs = [...gdb.get('x3i')!.matchAll(/(0x[0-9a-f]+) <main(?:\+\d+)?>:/g)].map((m) => BigInt(m[1]!));
    const ours = ((await runJson(s, 'main::dis -n 3'))[0] as { addr: string }[]).map((r) => BigInt(r.addr));
    expect(ours).toEqual(gdbAddrs);
    const text = await run(s, 'main::dis -n 2');
    expect(text).toEqual(['main:           pushq  %rbp', 'main+0x1:       movq   %rsp,%rbp']);
    expect((await run(s, 'main+1::dis'))[1]).toBe('> main+0x1:       movq   %rsp,%rbp');
    expect((await run(s, 'main/i'))[1]).toBe('main:           pushq  %rbp');
  });

  it('bad thread numbers and unmapped addresses fail cleanly', async () => {
    expect((await failure(s, '0t9::thread')).message).toBe('no thread 9 (0t9): threads are 1..4 (hex by default: 0t9 is decimal 9)');
    const e = await failure(s, '0/K');
    expect(e.code).toBe('unmapped');
    expect(e.message).toMatch(/^read of 8 bytes at 0x0/);
  });
});
