/**
 * The calls of a recorded history (src/store/call-walker.ts), as the `calls` table of
 * `dbg query` and `::calls` show them, against an oracle built here independently: the trace's
 * own steps() rows (seq, vCPU, pc) and interrupt inputs, with each pc decoded by objdump (not by
 * dbg's x86-64-branch.ts), replayed per vCPU with BigInt stacks. The replayed machine state
 * checks the other side: at a call's entry the stack holds the return address, and the vCPU's
 * instruction after the return is there.
 *
 * Also ::timeline (its counts against the steps() rows and objdump's symbol ranges, its width)
 * and every bad input of ::calls and ::timeline with its message.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { x86_64Branch } from '../../src/arch/x86-64-branch.js';
import { TraceReader } from '../../src/store/trace-reader.js';
import { ElfFile } from '../../src/symbols/elf-file.js';
import { ReplayTarget } from '../../src/targets/replay/replay-target.js';
import { repoRoot } from '../helpers/repo.js';

const dbg = join(repoRoot, 'bin', 'dbg');
const kernel = existsSync(join(repoRoot, 'dumps', 'kernel.elf')) ? join(repoRoot, 'dumps', 'kernel.elf') : join(repoRoot, 'dumps', 'kernel.prebuilt.elf');
const dir = mkdtempSync(join(tmpdir(), 'dbg-calls-test-'));
const trace = join(dir, 'k.trace');

interface Insn {
  readonly mnemonic: string;
  readonly next: bigint;
}
interface Frame {
  call: number;
  ret: number | null;
  vcpu: number;
  depth: number;
  callerPc: bigint;
  calleePc: bigint;
  retAddr: bigint;
  vector: number | null;
}

function run(args: string[], timeout = 120_000) {
  return spawnSync(dbg, args, { encoding: 'utf8', timeout, env: { ...process.env, DBG_HISTORY: '/dev/null' } });
}

/** objdump's view of the kernel: each instruction's mnemonic and the address after it; symbols' ranges. */
function objdump(elf: string): { insns: Map<bigint, Insn>; syms: { name: string; start: bigint; end: bigint }[] } {
  const r = spawnSync('objdump', ['-d', '-w', elf], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`objdump failed: ${r.stderr}`);
  const insns = new Map<bigint, Insn>();
  const syms: { name: string; start: bigint; end: bigint }[] = [];
  const prefixes = new Set(['rep', 'repz', 'repe', 'repnz', 'repne', 'bnd', 'notrack', 'lock', 'data16', 'addr32', 'cs', 'ds']);
  for (const line of r.stdout.split('\n')) {
    const sym = /^([0-9a-f]+) <([^>]+)>:$/.exec(line);
    if (sym) {
      if (syms.length) syms[syms.length - 1]!.end = BigInt('0x' + sym[1]);
      syms.push({ name: sym[2]!, start: BigInt('0x' + sym[1]), end: 0n });
      continue;
    }
    // addr:\tbytes\tmnemonic operands (-w: one line per instruction, its bytes give its length)
    const m = /^\s*([0-9a-f]+):\t([0-9a-f ]+)\t(.*)$/.exec(line);
    if (!m) continue;
    const addr = BigInt('0x' + m[1]);
    const size = m[2]!.trim().split(/\s+/).length;
    insns.set(addr, { mnemonic: m[3]!.trim().split(/\s+/).find((w) => !prefixes.has(w)) ?? '', next: addr + BigInt(size) });
  }
  return { insns, syms };
}

/**
 * The oracle: frames from the steps() rows, interrupts (their seq and vCPU from the inputs, the
 * interrupted rip from the replayed machine's stack at the handler's entry) and objdump's decoding.
 */
async function oracle(reader: TraceReader, insns: Map<bigint, Insn>): Promise<{ frames: Frame[]; steps: { vcpu: Uint8Array; pc: bigint[] } }> {
  const n = reader.end - reader.first;
  const rows = reader.sql(`SELECT seq, vcpu, pc FROM steps(${reader.first}, ${n})`, n + 1).rows as [bigint, bigint, bigint][];
  expect(rows.length).toBe(n);
  const vcpu = new Uint8Array(n);
  const pc: bigint[] = new Array(n);
  rows.forEach(([, v, p], i) => {
    vcpu[i] = Number(v);
    pc[i] = BigInt.asUintN(64, p);
  });
  const irqs = new Map<string, { rip: bigint; vector: number }>();
  const t = ReplayTarget.open(reader.path);
  try {
    for (const [seq, v, detail] of reader.sql("SELECT seq, vcpu, detail FROM inputs WHERE kind = 'interrupt'").rows as [bigint, bigint, string][]) {
      await t.caps.reverse!.seek(seq);
      const rsp = t.registers(Number(v) + 1).get('rsp')!;
      irqs.set(`${seq}:${v}`, { rip: t.readVirtual(rsp, 8, Number(v) + 1).readBigUInt64LE(0), vector: (JSON.parse(detail) as { vector: number }).vector });
    }
  } finally {
    t.close();
  }
  const frames: Frame[] = [];
  const stacks = new Map<number, Frame[]>();
  const last = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const seq = reader.first + i;
    const v = vcpu[i]!;
    const st = stacks.get(v) ?? [];
    stacks.set(v, st);
    const irq = irqs.get(`${seq}:${v}`);
    const went = irq ? irq.rip : pc[i]!;
    const p = last.get(v);
    if (p !== undefined) {
      const insn = insns.get(pc[p]!);
      const m = insn?.mnemonic ?? '';
      if (/^call/.test(m) && went !== insn!.next) {
        const f: Frame = { call: seq, ret: null, vcpu: v, depth: st.length, callerPc: pc[p]!, calleePc: went, retAddr: insn!.next, vector: null };
        frames.push(f);
        st.push(f);
      } else if (/^(ret|iret)/.test(m)) {
        const j = st.map((f) => f.retAddr).lastIndexOf(went);
        if (j >= 0) for (const f of st.splice(j)) f.ret = reader.first + p;
      }
    }
    if (irq) {
      const f: Frame = { call: seq, ret: null, vcpu: v, depth: st.length, callerPc: irq.rip, calleePc: pc[i]!, retAddr: irq.rip, vector: irq.vector };
      frames.push(f);
      st.push(f);
    }
    last.set(v, i);
  }
  return { frames, steps: { vcpu, pc } };
}

let dump: ReturnType<typeof objdump>;
let want: Awaited<ReturnType<typeof oracle>>;
let reader: TraceReader;
const addrOf = (name: string): bigint => dump.syms.find((s) => s.name === name)!.start;

beforeAll(async () => {
  const r = run(['live', '--emulate', kernel, '--cpus', '2', '--wait', '-q', '--record', trace, '-e', ':c']);
  expect(r.status, r.stderr).toBe(0);
  dump = objdump(kernel);
  reader = TraceReader.open(trace);
  want = await oracle(reader, dump.insns);
});
afterAll(() => {
  reader?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('x86-64 branch classification', () => {
  it('agrees with objdump on every instruction of the kernel: call (and its length), ret, iret, other', () => {
    const elf = ElfFile.open(kernel);
    let calls = 0;
    for (const [addr, insn] of dump.insns) {
      const bytes = elf.readLoaded(addr, 16) ?? elf.readLoaded(addr, Number(insn.next - addr));
      if (!bytes) continue;
      const b = x86_64Branch(bytes);
      const want = /^(call|syscall)/.test(insn.mnemonic) ? 'call' : /^iret/.test(insn.mnemonic) ? 'iret' : /^(ret|sysret)/.test(insn.mnemonic) ? 'ret' : 'other';
      expect(`0x${addr.toString(16)} ${insn.mnemonic}: ${b.kind}`).toBe(`0x${addr.toString(16)} ${insn.mnemonic}: ${want}`);
      if (b.kind === 'call') {
        calls++;
        expect(addr + BigInt(b.size)).toBe(insn.next);
      }
    }
    expect(calls).toBeGreaterThan(20);
  });
});

describe('x86 branch bytes the kernel does not hold', () => {
  it('syscall is a call of 2 bytes, sysret a ret; a call read through 40-4F says so (an inc/dec in 32-bit code)', () => {
    const b = (...bytes: number[]) => x86_64Branch(Uint8Array.from(bytes));
    expect(b(0x0f, 0x05)).toEqual({ kind: 'call', size: 2 });
    expect(b(0x48, 0x0f, 0x07)).toEqual({ kind: 'ret', size: 0 });
    expect(b(0xe8, 0, 0, 0, 0)).toEqual({ kind: 'call', size: 5 });
    expect(b(0x48, 0xe8, 0, 0, 0, 0)).toEqual({ kind: 'call', size: 6, rex: true });
    expect(b(0x41, 0xff, 0xd0)).toEqual({ kind: 'call', size: 3, rex: true });
    expect(b(0x49, 0xc3)).toEqual({ kind: 'ret', size: 0 });
  });
});

describe('32-bit code: calls after one-byte inc/dec (test/fixtures-src/incdec)', () => {
  it('the calls table holds the real calls only, as the oracle from objdump', async () => {
    const src = join(repoRoot, 'test', 'fixtures-src');
    const elf = join(dir, 'incdec.elf');
    const obj = join(dir, 'incdec.o');
    expect(spawnSync('gcc', ['-m32', '-c', join(src, 'incdec', 'start.S'), '-o', obj]).status).toBe(0);
    expect(spawnSync('ld', ['-m', 'elf_i386', '--no-warn-rwx-segments', '-z', 'noexecstack', '-T', join(src, 'i386', 'link.ld'), '-o', elf, obj]).status).toBe(0);
    const t = join(dir, 'incdec.trace');
    const r = run(['live', '--emulate', elf, '--wait', '-q', '--record', t, '-e', ':c']);
    expect(r.status, r.stderr).toBe(0);
    const rd = TraceReader.open(t);
    try {
      const frames = (await oracle(rd, objdump(elf).insns)).frames;
      // dec %eax; call twice (48 e8 ...) three times, each with inc %ecx; call leaf (41 e8 ...)
      expect(frames.map((f) => `${f.depth} 0x${f.calleePc.toString(16)}`)).toEqual(Array.from({ length: 3 }, () => ['0 0x100024', '1 0x10002b']).flat());
      const q = run(['query', t, '--json', 'SELECT call_seq, return_seq, depth, hex64(caller_pc) AS caller_pc, callee FROM calls ORDER BY rowid']);
      expect(q.stderr).toBe('');
      const got = q.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(got.map((c) => [c.call_seq, c.return_seq, c.depth, c.caller_pc])).toEqual(frames.map((f) => [f.call, f.ret, f.depth, `0x${f.callerPc.toString(16)}`]));
      expect(got.map((c) => c.callee)).toEqual(Array.from({ length: 3 }, () => ['twice', 'leaf']).flat());
    } finally {
      rd.close();
    }
  });
});

describe('the calls of a recorded history', () => {
  it('dbg query: the calls table is the oracle, row for row', () => {
    const r = run(['query', trace, '--json', 'SELECT call_seq, return_seq, vcpu, depth, kind, vector, hex64(caller_pc) AS caller_pc, caller, hex64(callee_pc) AS callee_pc, callee, instructions FROM calls ORDER BY rowid']);
    expect(r.stderr).toBe('');
    const got = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    // The sample kernel calls, is interrupted by its timer on both vCPUs, and returns.
    expect(want.frames.length).toBeGreaterThan(500);
    expect(want.frames.some((f) => f.vector === 32 && f.vcpu === 1)).toBe(true);
    expect(want.frames.some((f) => f.depth >= 3)).toBe(true);
    expect(got.map((c) => [c.call_seq, c.return_seq, c.vcpu, c.depth, c.kind, c.vector, c.caller_pc, c.callee_pc])).toEqual(
      want.frames.map((f) => [f.call, f.ret, f.vcpu, f.depth, f.vector === null ? 'call' : 'interrupt', f.vector, `0x${f.callerPc.toString(16)}`, `0x${f.calleePc.toString(16)}`]),
    );
    const kmain = got.find((c) => c.callee === 'kmain')!;
    expect(kmain).toMatchObject({ return_seq: null, depth: 0, callee_pc: `0x${addrOf('kmain').toString(16)}` });
    expect(String(kmain.caller)).toMatch(/^kstart\+0x[0-9a-f]+$/);
    // Instructions inside: the vCPU's steps from the entry through the return.
    for (const c of got.filter((x) => x.return_seq !== null).slice(0, 200)) {
      let n = 0;
      for (let s = c.call_seq as number; s <= (c.return_seq as number); s++) if (want.steps.vcpu[s - reader.first] === c.vcpu) n++;
      expect(c.instructions).toBe(n);
    }
  });

  it('the replayed machine agrees: the stack holds the return address at entry, the vCPU goes there after the return', async () => {
    const t = ReplayTarget.open(trace);
    try {
      const calls = want.frames.filter((f) => f.vector === null && f.ret !== null && f.calleePc === want.steps.pc[f.call - reader.first]);
      const irqs = want.frames.filter((f) => f.vector !== null && f.ret !== null);
      expect(calls.length).toBeGreaterThan(100);
      expect(irqs.length).toBeGreaterThan(10);
      const sample = [...calls.filter((_, i) => i % Math.ceil(calls.length / 12) === 0), ...irqs.filter((_, i) => i % Math.ceil(irqs.length / 6) === 0)];
      for (const f of sample) {
        await t.caps.reverse!.seek(BigInt(f.call));
        const rsp = t.registers(f.vcpu + 1).get('rsp')!;
        expect(t.readVirtual(rsp, 8, f.vcpu + 1).readBigUInt64LE(0), `frame at seq ${f.call}`).toBe(f.retAddr);
        // The vCPU's next instruction after the return.
        let s = f.ret! + 1;
        while (want.steps.vcpu[s - reader.first] !== f.vcpu) s++;
        expect(want.steps.pc[s - reader.first]).toBe(f.retAddr);
      }
    } finally {
      t.close();
    }
  });

  it('::calls lists them: seq ranges, vCPU, callee by depth, caller, instructions', () => {
    const tick = want.frames.filter((f) => f.calleePc === addrOf('timer_tick'));
    expect(tick.length).toBeGreaterThan(10);
    const r = run(['replay', trace, '-e', '::calls -f timer_tick -n 3']);
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(4);
    tick.slice(0, 3).forEach((f, i) => {
      expect(lines[i]).toMatch(new RegExp(`^${f.call}-${f.ret} +vCPU ${f.vcpu}  ${'  '.repeat(f.depth)}timer_tick  <- timer_isr\\+0x[0-9a-f]+  \\d+ insns$`));
    });
    expect(lines[3]).toBe(`... ${tick.length - 3} more of ${tick.length} calls (-n ${tick.length} shows all)`);
    // addr::calls is the same question.
    const a = run(['replay', trace, '-e', `0x${addrOf('timer_tick').toString(16)}::calls -n 3`]);
    expect(a.stdout).toBe(r.stdout);
    // -v: one vCPU's calls only.
    const v1 = run(['replay', trace, '-e', '::calls -v 1 -n 5']);
    const ones = want.frames.filter((f) => f.vcpu === 1);
    expect(v1.stdout.trim().split('\n').slice(0, 5).map((l) => Number(l.split('-')[0]))).toEqual(ones.slice(0, 5).map((f) => f.call));
    expect(v1.stdout).toContain(`more of ${ones.length} calls`);
  });

  it('bad input: one line each, with its code, and the session goes on', () => {
    const cases: [string, string, string][] = [
      ['::calls -f no_such_function', 'no-symbol', 'dbg: ::calls: unknown function "no_such_function": no symbol table defines it (kernel.elf)'],
      ['::calls -n 0', 'bad-input', 'dbg: ::calls: -n 0 is not a positive count (usage: [addr]::calls [-f FUNC] [-n N] [-v CPU])'],
      ['::calls -n many', 'bad-input', 'dbg: ::calls: -n many is not a positive count (usage: [addr]::calls [-f FUNC] [-n N] [-v CPU])'],
      ['::calls -v 2', 'bad-input', 'dbg: ::calls: -v 2: no such vCPU (the history has 2: 0-1)'],
      ['::calls -v x', 'bad-input', 'dbg: ::calls: -v x: no such vCPU (the history has 2: 0-1)'],
      ['::calls kmain', 'bad-input', 'dbg: ::calls: unexpected argument "kmain" (usage: [addr]::calls [-f FUNC] [-n N] [-v CPU])'],
      ['kmain::calls -f kmain', 'bad-input', 'dbg: ::calls: give a function either as an address or with -f, not both (usage: [addr]::calls [-f FUNC] [-n N] [-v CPU])'],
      ['::timeline -w 10', 'bad-input', 'dbg: ::timeline: -w 10 is too narrow: the picture needs at least 40 columns (usage: ::timeline [-w WIDTH] [-n N])'],
      ['::timeline -w wide', 'bad-input', 'dbg: ::timeline: -w wide is not a count in [1, 10000] (usage: ::timeline [-w WIDTH] [-n N])'],
      ['::timeline -n 0', 'bad-input', 'dbg: ::timeline: -n 0 is not a count in [1, 1000] (usage: ::timeline [-w WIDTH] [-n N])'],
      ['::timeline now', 'bad-input', 'dbg: ::timeline: unexpected argument "now" (usage: ::timeline [-w WIDTH] [-n N])'],
      ['::traceinfo -v', 'bad-input', 'dbg: ::traceinfo: unexpected argument "-v" (usage: ::traceinfo)'],
    ];
    // A script on stdin goes on after an error: every message in order, then ::now still answers.
    const script = cases.map(([cmd]) => cmd).join('\n') + '\n::now\n';
    const r = spawnSync(dbg, ['replay', trace], { input: script, encoding: 'utf8', timeout: 120_000, env: { ...process.env, DBG_HISTORY: '/dev/null' } });
    expect(r.stderr.trim().split('\n')).toEqual(cases.map(([, , message]) => message));
    expect(r.stdout).toMatch(/^seq \d+ of \[0, \d+\]/);
    expect(r.status).toBe(1);
    const j = spawnSync(dbg, ['replay', trace, '--json'], { input: script, encoding: 'utf8', timeout: 120_000, env: { ...process.env, DBG_HISTORY: '/dev/null' } });
    const errs = j.stdout.trim().split('\n').slice(0, cases.length).map((l) => (JSON.parse(l) as { error: { code: string; message: string } }).error);
    expect(errs).toEqual(cases.map(([, code, message]) => ({ code, message: message.replace(/^dbg: /, '') })));
  });

  it('a function never called: said so', () => {
    const called = new Set(want.frames.map((f) => f.calleePc));
    const never = dump.syms.find((s) => !called.has(s.start) && /^[a-z_]+$/.test(s.name))!;
    const r = run(['replay', trace, '-e', `::calls -f ${never.name}`]);
    expect(r.stdout.trim()).toBe(`0x${never.start.toString(16)}: never called in the recorded history`);
  });

  it('a trace without symbols lists addresses; -f needs symbols', () => {
    const elf = join(dir, 'gone.elf');
    const t2 = join(dir, 'nosyms.trace');
    copyFileSync(kernel, elf);
    expect(run(['live', '--emulate', elf, '--cpus', '2', '--wait', '-q', '--record', t2, '-e', ':c']).status).toBe(0);
    rmSync(elf);
    const r = run(['replay', t2, '-e', '::calls -n 2']);
    const kmain = want.frames.find((f) => f.calleePc === addrOf('kmain'))!;
    expect(r.stdout.split('\n')[0]).toMatch(new RegExp(`^${kmain.call}-\\.\\.\\. +vCPU 0  0x${kmain.calleePc.toString(16)}  <- 0x${kmain.callerPc.toString(16)}  \\d+ insns \\(never returned\\)$`));
    const f = run(['replay', t2, '-e', '::calls -f kmain']);
    expect(f.stderr).toContain('dbg: ::calls: unknown function "kmain": the trace has no symbols (pass --symbols FILE, or give the address: ADDR::calls)');
    const q = run(['query', t2, 'SELECT count(*), count(callee) FROM calls']);
    expect(q.stdout.trim().split('\n')[1]!.split(/\s+/)).toEqual([String(want.frames.length), '0']);
  });

  it('::calls on a live recording: the calls up to the stop', () => {
    const t3 = join(dir, 'live.trace');
    const r = run(['live', '--emulate', kernel, '--cpus', '2', '--wait', '-q', '--record', t3, '-e', 'timer_tick::bp; :c; :c; ::calls -f timer_tick; ::sql SELECT count(*) FROM calls']);
    expect(r.status, r.stderr).toBe(0);
    const first = want.frames.find((f) => f.calleePc === addrOf('timer_tick'))!;
    expect(r.stdout).toMatch(new RegExp(`^${first.call}-${first.ret} +vCPU ${first.vcpu} +timer_tick  <- timer_isr\\+0x[0-9a-f]+  \\d+ insns$`, 'm'));
    // Before the second call's entry ran: one call of timer_tick so far, and the calls table holds what ::calls does.
    const stop = Number(/^seq (\d+)/m.exec(run(['replay', t3, '-e', '::now']).stdout)![1]);
    expect(r.stdout).toContain(`count(*)\n${want.frames.filter((f) => f.call < stop).length}\n`);
  });
});

describe('::timeline', () => {
  it('a row per function with its instruction count, fitted to the width, the seq axis labelled', () => {
    const r = run(['replay', trace, '-e', '::timeline -w 100 -n 5']);
    expect(r.stderr).toBe('');
    const lines = r.stdout.trimEnd().split('\n');
    for (const l of lines) expect([...l].length).toBeLessThanOrEqual(100);
    // task_worker ran most: its count is that of the steps whose pc lies in its symbol.
    const tw = dump.syms.find((s) => s.name === 'task_worker')!;
    const n = want.steps.pc.filter((pc) => pc >= tw.start && pc < tw.end).length;
    expect(lines[0]).toMatch(new RegExp(`^task_worker +[ ▁▂▃▄▅▆▇█]+ +${n}$`));
    expect(lines).toHaveLength(5 + 4);
    expect(lines[5]).toMatch(/^ +┴─+┴─+┴$/);
    expect(lines[6]).toMatch(new RegExp(`^seq +${reader.first} +\\d+ +${reader.end - 1}$`));
    expect(lines[7]).toMatch(new RegExp(`^ +${reader.end - reader.first} instructions, \\d+ per column$`));
    expect(lines[8]).toMatch(/^ +\d+ more functions not shown \(-n\)$/);
  });

  it('80 columns when stdout is not a terminal; --json sums to the history', () => {
    const r = run(['replay', trace, '-e', '::timeline']);
    const lines = r.stdout.trimEnd().split('\n');
    expect(Math.max(...lines.map((l) => [...l].length))).toBe(80);
    const j = JSON.parse(run(['replay', trace, '--json', '-e', '::timeline -n 1000']).stdout) as { functions: { instructions: number; buckets: number[] }[] };
    expect(j.functions.reduce((a, f) => a + f.instructions, 0)).toBe(reader.end - reader.first);
    for (const f of j.functions) expect(f.buckets.reduce((a, b) => a + b, 0)).toBe(f.instructions);
  });
});
