/**
 * The dcmds every target gets: ::status ::threads ::thread ::regs ::stack ::nm ::mappings ::dis
 * ::list ::walk ::help ::formats ::load ::quit, and the `list` walker.
 *
 * Text output follows MDB's layout where MDB has the dcmd; --json output (out.json) carries the
 * same facts with addresses as `0x` hex strings, since JSON numbers cannot hold 64 bits.
 */

import type { Registers } from '../../arch/arch.js';
import { DbgError, errors } from '../../common/errors.js';
import { hex, hexAddr } from '../../common/format.js';
import type { Sym } from '../../symbols/symbol-table.js';
import type { Module } from '../../symbols/symbol-space.js';
import { historyBounds, type StopReason, type StopStatus, type Target } from '../../targets/target.js';
import { unwind, type Frame } from '../../targets/unwind.js';
import type { Dcmd, DcmdModule, Output, SessionView, Walker } from '../dcmd.js';
import { formatInstruction } from '../disasm.js';
import { formatHelp, readUpTo } from '../formats.js';
import { jsonCount } from '../json.js';
import { objectName, symbolName, threadName } from '../names.js';
import { parseFlags } from '../parse-flags.js';
import type { Session } from '../session.js';
import { sourceAnnotator, sourceRowJson, sourceRowLines, sourceRows, withTailCalls } from '../source-frames.js';
import { typedList } from './types.js';
import { symbolText } from '../../symbols/symbol-text.js';
import { looksLikeCxx } from '../../symbols/cxx-names.js';

/** Core dcmds need the full session (registry, disassembler), not only the SessionView. */
function full(s: SessionView): Session {
  return s as Session;
}

function noArgs(d: Dcmd, args: readonly string[]): void {
  parseFlags(d.name, d.usage, args, {});
  if (args.length > 0) throw errors.badInput(`::${d.name}: unexpected argument "${args[0]}" (usage: ${d.usage})`);
}

/**
 * What the target is doing, in words: why it stopped, or that it never ran (a dump, a file, a live
 * guest waiting at its first instruction), and whether the view is in the recorded past.
 */
function reasonText(t: Target, st: StopStatus): string {
  const r = st.reason;
  const b = historyBounds(t);
  const past = b && b.now < b.last ? `in the recorded past at seq ${b.now} (history ends at seq ${b.last}; ::seek ${b.last} returns)` : undefined;
  const why = stopText(t, r, st);
  return past ? `${past}; ${why}` : why;
}

function atEnd(t: Target): boolean {
  const b = historyBounds(t);
  return b !== undefined && b.now === b.last;
}

function stopText(t: Target, r: StopReason, st: StopStatus): string {
  const at = st.pc !== 0n && t.kind !== 'file' ? ` at ${hexAddr(st.pc, t.arch)}${symbolOf(t, st.pc) ? ` ${symbolOf(t, st.pc)}` : ''} on ${threadName(t, st.thread)}` : '';
  switch (r.kind) {
    case 'none':
      if (t.kind === 'emulator') return `waiting at its first instruction${at} (nothing has run yet: :c runs, :s steps)`;
      if (t.kind === 'replay') return `at seq ${st.seq ?? '?'}${at}${atEnd(t) ? ' (the end of the recorded history)' : ''}`;
      if (t.kind === 'file') return 'not running (a file: nothing runs)';
      if (t.kind === 'remote') return `stopped${at}, as the stub was when dbg attached`;
      return 'not running (a dump: nothing ran)';
    case 'signal':
      if (t.kind === 'remote') return `stopped by signal ${r.signal} (${r.name})${at}`;
      return `killed by signal ${r.signal} (${r.name})`;
    case 'panic':
      return `panic: ${r.message}`;
    case 'breakpoint':
      return `stopped at breakpoint ${r.id}${at}`;
    case 'watchpoint':
      return `stopped at ${r.access} watchpoint ${r.id} (${hex(r.addr)}, ${r.length} bytes)${at}`;
    case 'step':
      return `stopped after a step${at}`;
    case 'interrupted':
      return `stopped by an interrupt (Ctrl-C)${at}`;
    case 'halted':
      return `halted (hlt with interrupts off)${at}`;
    case 'guest-breakpoint':
      return `stopped by the guest (${r.how === 'int3' ? 'int3' : `debug port, value 0x${(r.code ?? 0).toString(16)}`})${at}`;
    case 'fault':
      return `fault: ${r.fault} at ${hex(r.pc)}${r.addr !== undefined ? `, address ${hex(r.addr)}` : ''}${at}`;
    case 'exited':
      return `exited with status ${r.code}`;
    case 'history-begin':
      return `at the beginning of the recorded history${at}`;
    case 'history-end':
      return `at the end of the recorded history${at}`;
    default:
      return (r as { kind: string }).kind;
  }
}

function symbolOf(target: Target, addr: bigint): string | undefined {
  return symbolName(target, addr);
}

/**
 * A frame's name: the symbol of pc - 1 for callers (the call may be the last instruction of its
 * function), printed with the offset of the real pc, as MDB and gdb print return addresses.
 */
export function frameName(target: Target, f: Frame): string | undefined {
  return symbolName(target, f.pc, f.level > 0 ? f.pc - 1n : f.pc);
}

const status: Dcmd = {
  name: 'status',
  usage: '::status',
  help: 'what is being debugged and why it stopped',
  run(s, inv, out) {
    noArgs(this, inv.args);
    const t = s.target;
    const st = t.status();
    const threads = t.threads();
    const pcName = st.pc !== 0n ? symbolOf(t, st.pc) : undefined;
    if (out.jsonMode) {
      out.json({
        target: t.name,
        kind: t.kind,
        arch: t.arch.name,
        reason: st.reason,
        reasonText: reasonText(t, st),
        seq: jsonCount(st.seq),
        thread: st.thread,
        selectedThread: s.thread,
        pc: hexAddr(st.pc, t.arch),
        pcSymbol: pcName ?? null,
        threads: threads.length,
        mappings: t.mappings().length,
        modules: t.symbols.modules.map((m) => m.name),
        details: t.describe?.() ?? [],
        warnings: t.warnings ?? [],
      });
      return;
    }
    out.line(`debugging ${t.name} (${t.arch.name}, ${t.kind})`);
    out.line(`status: ${reasonText(t, st)}`);
    if (threads.length > 0) {
      const vcpu = t.kind === 'emulator' || t.kind === 'replay' ? ` (${threadName(t, st.thread)})` : '';
      out.line(`thread: ${st.thread} of ${threads.length}${vcpu}${st.pc !== 0n ? `, pc ${hexAddr(st.pc, t.arch)}${pcName ? ` ${pcName}` : ''}` : ''}`);
    }
    if (st.seq !== undefined) out.line(`seq: ${st.seq}`);
    out.line(`mappings: ${t.mappings().length}; modules: ${t.symbols.modules.map((m) => m.name).join(', ') || 'none'}`);
    for (const l of t.describe?.() ?? []) out.line(l);
  },
};

const threadsDcmd: Dcmd = {
  name: 'threads',
  usage: '::threads [-k]',
  help:
    'list the threads (vCPUs of a kernel or guest); * marks the selected one\n\n' +
    "-k: a Linux kernel's tasks too, each a thread beside the CPUs (as ::task -a makes them)",
  async run(s, inv, out) {
    const { flags, rest } = parseFlags(this.name, this.usage, inv.args, { booleans: 'k' });
    if (rest.length > 0) throw errors.badInput(`::threads: unexpected argument "${rest[0]}" (usage: ${this.usage})`);
    if (flags.has('k')) {
      // ::task -a (the linux module's) adopts every task; its count line is not this listing's
      const quiet: Output = { jsonMode: false, line() {}, json() {}, ...(out.warn ? { warn: out.warn.bind(out) } : {}) };
      await s.execute('::task -a', quiet);
    }
    const t = s.target;
    const rows = t.threads().map((th) => {
      let pc: bigint | undefined;
      try {
        pc = t.registers(th.index).get(t.arch.pc);
      } catch {
        pc = undefined;
      }
      return { th, pc, sym: pc !== undefined ? symbolOf(t, pc) : undefined };
    });
    if (out.jsonMode) {
      out.json(rows.map((r) => ({ ...r.th, selected: r.th.index === s.thread, pc: r.pc !== undefined ? hexAddr(r.pc, t.arch) : null, symbol: r.sym ?? null })));
      return;
    }
    if (rows.length === 0) {
      out.line(`${t.name} has no threads`);
      return;
    }
    out.line(`${'  ID'.padEnd(6)} ${'TID'.padStart(8)} ${'NAME'.padEnd(16)} ${'STATE'.padEnd(10)} PC`);
    for (const r of rows) {
      const mark = r.th.index === s.thread ? '*' : ' ';
      const pc = r.pc !== undefined ? `${hexAddr(r.pc, t.arch)}${r.sym ? ' ' + r.sym : ''}` : '?';
      out.line(`${mark} ${String(r.th.index).padStart(3)}  ${String(r.th.tid).padStart(8)} ${r.th.name.padEnd(16)} ${r.th.state.padEnd(10)} ${pc}`);
    }
  },
};

const thread: Dcmd = {
  name: 'thread',
  usage: '[N]::thread',
  help: 'select thread N (1-based, as ::threads numbers them; N is hex unless written 0t10), or show the selected one',
  run(s, inv, out) {
    noArgs(this, inv.args);
    const list = s.target.threads();
    if (inv.addr !== undefined) {
      const n = Number(inv.addr);
      const found = list.find((th) => BigInt(th.index) === inv.addr);
      if (!found) {
        const range = list.length === 0 ? `${s.target.name} has no threads` : `threads are ${numberRanges(list.map((th) => th.index))} (hex by default: 0t${n} is decimal ${n})`;
        throw errors.badInput(`no thread ${inv.addr} (0t${inv.addr}): ${range}`);
      }
      s.thread = found.index;
    }
    const cur = list.find((th) => th.index === s.thread);
    if (out.jsonMode) out.json(cur ? { ...cur, selected: true } : null);
    else out.line(cur ? `thread ${cur.index} (${cur.name}, tid ${cur.tid}) selected` : `${s.target.name} has no threads`);
  },
};

const FP_KINDS = new Set(['float', 'vector']);

const regs: Dcmd = {
  name: 'regs',
  usage: '::regs',
  help: "the selected thread's registers, every one the target knows, in the architecture's order ($r); x87/SSE/AVX: ::fpregs",
  run(s, inv, out) {
    noArgs(this, inv.args);
    const t = s.target;
    const values = t.registers(s.thread);
    const fp = new Set(t.arch.registers.filter((r) => FP_KINDS.has(r.kind)).map((r) => r.name));
    const order: { name: string; bits: number }[] = [];
    for (const r of t.arch.registers) if (!fp.has(r.name) && values.has(r.name)) order.push({ name: r.name, bits: r.bits });
    const aliases = new Set(t.arch.aliases);
    for (const name of values.keys()) if (!aliases.has(name) && !fp.has(name) && !order.some((o) => o.name === name)) order.push({ name, bits: t.arch.pointerBytes * 8 });
    printRegisters(t, out, s.thread, values, order);
  },
};

function printRegisters(t: Target, out: Output, thread: number, values: Registers, order: readonly { name: string; bits: number }[], note?: (name: string, v: bigint) => string | undefined): void {
  if (out.jsonMode) {
    out.json({ thread, registers: Object.fromEntries(order.map((o) => [o.name, hexWide(values.get(o.name)!, o.bits)])) });
    return;
  }
  const w = Math.max(...order.map((o) => o.name.length)) + 1;
  for (const o of order) {
    const v = values.get(o.name)!;
    const sym = o.name === t.arch.pc ? symbolOf(t, v) : note?.(o.name, v);
    out.line(`${('%' + o.name).padEnd(w)} = ${hexWide(v, o.bits)}${sym ? ' ' + sym : ''}`);
  }
}

/** A register of any width (80-bit x87, 128-bit XMM) in hex, zero-padded to its width. */
function hexWide(v: bigint, bits: number): string {
  return bits <= 64 ? hexAddr(v, Math.ceil(bits / 4)) : '0x' + BigInt.asUintN(bits, v).toString(16).padStart(Math.ceil(bits / 4), '0');
}

const fpregs: Dcmd = {
  name: 'fpregs',
  usage: '::fpregs',
  help:
    "the selected thread's x87, SSE and AVX registers as gdb names them: st0-st7 (ST(i) order, with their value),\n" +
    'fctrl fstat (TOP) ftag fiseg fioff foseg fooff fop, xmm0-xmm15, mxcsr (its flags), ymm0h-ymm15h (the AVX upper halves)',
  run(s, inv, out) {
    noArgs(this, inv.args);
    const t = s.target;
    const values = t.registers(s.thread);
    const order = t.arch.registers.filter((r) => FP_KINDS.has(r.kind) && values.has(r.name)).map((r) => ({ name: r.name, bits: r.bits }));
    if (order.length === 0) throw errors.unsupported(t.name, `x87/SSE registers (${fpSourceMissing(t)})`);
    printRegisters(t, out, s.thread, values, order, fpNote);
  },
};

/** Why a target has no FP registers, for the ::fpregs message. */
function fpSourceMissing(t: Target): string {
  switch (t.kind) {
    case 'process-core':
      return 'the core has no NT_FPREGSET or NT_X86_XSTATE note';
    case 'kernel-dump':
      return "kernel dumps hold only NT_PRSTATUS and QEMU's CPU state, no FPU state";
    default:
      return `a ${t.kind} target has no threads with FPU state`;
  }
}

const MXCSR_FLAGS: [string, number][] = [['IE', 0], ['DE', 1], ['ZE', 2], ['OE', 3], ['UE', 4], ['PE', 5], ['DAZ', 6], ['IM', 7], ['DM', 8], ['ZM', 9], ['OM', 10], ['UM', 11], ['PM', 12], ['FZ', 15]];

/** What ::fpregs adds after a value: an x87 register's number, TOP, MXCSR's flags. */
function fpNote(name: string, v: bigint): string | undefined {
  if (/^st\d$/.test(name)) return x87Value(v);
  if (name === 'fstat') return `(TOP ${Number((v >> 11n) & 7n)})`;
  if (name === 'mxcsr') return `[ ${MXCSR_FLAGS.filter(([, b]) => (v >> BigInt(b)) & 1n).map(([n]) => n).join(' ')} ]`;
  return undefined;
}

/** An 80-bit x87 register's value, to double precision. */
export function x87Value(v: bigint): string {
  const sign = (v >> 79n) & 1n ? '-' : '';
  const exp = Number((v >> 64n) & 0x7fffn);
  const mant = v & 0xffff_ffff_ffff_ffffn;
  if (exp === 0x7fff) return (mant << 1n) & 0xffff_ffff_ffff_ffffn ? 'nan' : `${sign}inf`;
  if (exp === 0 && mant === 0n) return `${sign}0`;
  // value = mantissa (with its explicit integer bit) * 2^(exp - 16383 - 63)
  const e = (exp === 0 ? 1 : exp) - 16383 - 63;
  const top = Number(mant >> 11n) * 2 ** 11 + Number(mant & 0x7ffn);
  return `${sign}${top * 2 ** e}`;
}

/** `1..4`, or with gaps (a remote stub's threads that ended, a kernel's tasks) `1..3, 5, 8..9`. */
function numberRanges(ns: readonly number[]): string {
  const sorted = [...ns].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(j === i ? `${sorted[i]}` : `${sorted[i]}..${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(', ');
}

const stack: Dcmd = {
  name: 'stack',
  aliases: ['stacks'],
  usage: '::stack [-a] [-s] [-v]',
  help:
    "the selected thread's call stack ($c); -a every thread; -s file:line and inlined calls from DWARF;\n" +
    '-v ($C) stack pointers, and with DWARF the arguments and locals of each frame (<optimized out> where the code kept none)',
  run(s, inv, out) {
    const { flags, rest } = parseFlags(this.name, this.usage, inv.args, { booleans: 'asv' });
    if (rest.length > 0) throw errors.badInput(`::stack: unexpected argument "${rest[0]}" (usage: ${this.usage})`);
    if (inv.addr !== undefined && !inv.piped) {
      throw errors.badInput('::stack starts from the registers of a thread: select it with N::thread instead of giving an address');
    }
    const t = s.target;
    const all = t.threads();
    if (all.length === 0) throw errors.unsupported(t.name, 'stacks (it has no threads)');
    const which = flags.has('a') ? all : all.filter((th) => th.index === s.thread);
    const result = which.map((th) => ({ th, frames: unwind(t, th.index) }));
    if (flags.has('s') || flags.has('v')) {
      const verbose = flags.has('v');
      const rows = result.map((r) => {
        const frames = withTailCalls(t, r.frames);
        return { r, rows: frames.flatMap((f) => sourceRows(t, f, r.th.index, verbose, frames)) };
      });
      if (out.jsonMode) out.json(rows.map(({ r, rows }) => ({ thread: r.th.index, tid: r.th.tid, frames: rows.map((row) => sourceRowJson(row, t.arch)) })));
      else
        rows.forEach(({ r, rows }, i) => {
          if (flags.has('a')) {
            if (i > 0) out.line('');
            out.line(`thread ${r.th.index} (${r.th.name}):`);
          }
          for (const row of rows) for (const l of sourceRowLines(row, verbose, t.arch)) out.line(l);
        });
      for (const { rows: rs } of rows) for (const row of rs) if (row.error) warnOut(out, `frame at ${hexAddr(row.pc, t.arch)}: ${row.error}`);
      return;
    }
    if (out.jsonMode) {
      out.json(
        result.map((r) => ({
          thread: r.th.index,
          tid: r.th.tid,
          frames: r.frames.map((f) => ({ level: f.level, pc: hexAddr(f.pc, t.arch), sp: hexAddr(f.sp, t.arch), symbol: frameName(t, f) ?? null, how: f.how })),
        })),
      );
      return;
    }
    result.forEach((r, i) => {
      if (flags.has('a')) {
        if (i > 0) out.line('');
        out.line(`thread ${r.th.index} (${r.th.name}):`);
      }
      for (const f of r.frames) {
        const name = frameName(t, f) ?? '?';
        out.line(flags.has('v') ? `${hexAddr(f.sp, t.arch)} ${hexAddr(f.pc, t.arch)} ${name}` : `${hexAddr(f.pc, t.arch)} ${name}`);
      }
    });
  },
};

function symRow(m: Module, sym: Sym) {
  return { name: sym.name, module: m.name, addr: sym.addr, size: sym.size, kind: sym.kind, bind: sym.global ? 'GLOB' : 'LOCL' };
}

/** A 64-bit value held as two 32-bit words, as `0x` + 16 hex digits. */
const hexWords = (hi: number, lo: number): string => '0x' + hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
/** The same, unpadded (hex()). */
const hexWordsShort = (hi: number, lo: number): string => (hi === 0 ? '0x' + lo.toString(16) : '0x' + hi.toString(16) + lo.toString(16).padStart(8, '0'));
const nmType = (kind: Sym['kind']): string => (kind === 'func' ? 'FUNC  ' : kind === 'object' ? 'OBJT  ' : 'NOTY  ');

const nm: Dcmd = {
  name: 'nm',
  usage: '[addr]::nm [-m] [-M module] [name | addr]',
  help: 'symbols: all of them, those of one module (-M), the ones called NAME (a C++ name as written: ns::Foo::bar), or the one holding an address; C++ names demangled, as the symbol table has them with -m',
  run(s, inv, out) {
    const { flags, rest } = parseFlags(this.name, this.usage, inv.args, { strings: 'M', booleans: 'm' });
    if (rest.length > 1) throw errors.badInput(`::nm: one name or address at most (usage: ${this.usage})`);
    const t = s.target;
    t.symbols.loadDeferred(); // a listing names every module's symbols
    const shown = flags.has('m') ? (name: string) => name : symbolText;
    let rows: ReturnType<typeof symRow>[];
    const modName = flags.get('M');
    const mods = t.symbols.modules.filter((m) => typeof modName !== 'string' || m.name === modName || m.path === modName);
    if (typeof modName === 'string' && mods.length === 0) {
      throw errors.badInput(`::nm: no module "${modName}" (modules: ${t.symbols.modules.map((m) => m.name).join(', ') || 'none'})`);
    }
    const main = t.symbols.modules[0]?.name;
    const arg = rest[0];
    const exact = arg !== undefined ? t.symbols.find(arg) : undefined;
    const cxx = arg !== undefined && !/^[0-9]/.test(arg) && (!exact || looksLikeCxx(arg)) ? t.symbols.findCxx(arg, true) : [];
    if (exact && cxx.length <= 1) {
      rows = [symRow(exact.module, exact)];
    } else if (cxx.length > 0) {
      rows = cxx.map((c) => symRow(c.module, c.sym)); // an overload set, every instantiation of a template
    } else if (arg !== undefined || (inv.addr !== undefined && !inv.piped) || inv.piped) {
      const addr = arg !== undefined ? s.evaluate(arg) : inv.addr!;
      const r = t.symbols.resolve(addr);
      if (!r || !r.inside) throw new DbgError('no-symbol', `no symbol holds address ${hex(addr)}`);
      rows = [symRow(r.module, r.sym)];
    } else {
      // Every symbol: streamed from the tables' rows, never a Sym (bigints, objects) per symbol.
      if (out.jsonMode) {
        const all = [];
        for (const m of mods) {
          for (const r of m.table.rows()) all.push({ name: shown(r.name), module: m.name, addr: hexWords(r.addrHi, r.addrLo), size: hexWordsShort(r.sizeHi, r.sizeLo), kind: r.kind, bind: r.global ? 'GLOB' : 'LOCL' });
        }
        out.json(all);
        return;
      }
      out.line(`${'Value'.padEnd(18)} ${'Size'.padEnd(18)} ${'Type'.padEnd(6)} ${'Bind'.padEnd(4)} Name`);
      for (const m of mods) {
        const prefix = m.name !== main ? `${m.name}\`` : '';
        for (const r of m.table.rows()) {
          out.line(`${hexWords(r.addrHi, r.addrLo)}|${hexWords(r.sizeHi, r.sizeLo)}|${nmType(r.kind)}|${r.global ? 'GLOB' : 'LOCL'}|${prefix}${shown(r.name)}`);
        }
      }
      return;
    }
    if (out.jsonMode) {
      out.json(rows.map((r) => ({ ...r, name: shown(r.name), addr: hexAddr(r.addr, t.arch), size: hex(r.size) })));
      return;
    }
    out.line(`${'Value'.padEnd(18)} ${'Size'.padEnd(18)} ${'Type'.padEnd(6)} ${'Bind'.padEnd(4)} Name`);
    for (const r of rows) {
      out.line(`${hexAddr(r.addr, t.arch)}|${hexAddr(r.size, t.arch)}|${nmType(r.kind)}|${r.bind}|${r.module !== main ? `${r.module}\`` : ''}${shown(r.name)}`);
    }
  },
};

const mappings: Dcmd = {
  name: 'mappings',
  usage: '::mappings',
  help: "the target's address ranges and what backs them ($m)",
  run(s, inv, out) {
    noArgs(this, inv.args);
    const maps = s.target.mappings();
    if (out.jsonMode) {
      out.json(maps.map((m) => ({ start: hexAddr(m.start, s.target.arch), end: hexAddr(m.end, s.target.arch), size: hex(m.end - m.start), perms: m.perms, name: m.name, fileOffset: m.fileOffset !== undefined ? hex(m.fileOffset) : null, present: m.present ?? true })));
      return;
    }
    const w = 2 + s.target.arch.pointerBytes * 2;
    out.line(`${'BASE'.padStart(w)} ${'LIMIT'.padStart(w)} ${'SIZE'.padStart(12)} PERM NAME`);
    for (const m of maps) {
      out.line(`${hexAddr(m.start, s.target.arch)} ${hexAddr(m.end, s.target.arch)} ${hex(m.end - m.start).padStart(12)} ${m.perms.padEnd(4)} ${m.name}${m.present === false ? ' (not in dump)' : ''}`);
    }
  },
};

/** Functions up to this size are disassembled whole by `addr::dis`. */
const WHOLE_FUNCTION_MAX = 8192n;

const dis: Dcmd = {
  name: 'dis',
  usage: '[addr]::dis [-s] [-n count] [ADDR]',
  help: "disassemble: the function holding addr (default: the selected thread's pc, else dot), or count instructions from addr",
  async run(s, inv, out) {
    const { flags, rest } = parseFlags(this.name, this.usage, inv.args, { strings: 'n', booleans: 's' });
    if (rest.length > 1) throw errors.badInput(`::dis: unexpected argument "${rest[1]}" (usage: ${this.usage})`);
    const session = full(s);
    const t = s.target;
    // `::dis ADDR` is `ADDR::dis`, as in MDB.
    let addr = rest.length === 1 ? s.evaluate(rest[0]!) : inv.addr;
    if (addr === undefined) {
      addr = s.dot;
      if (t.threads().length > 0) addr = t.registers(s.thread).get(t.arch.pc) ?? addr;
    }
    let start = addr;
    let count = 16;
    let limit: bigint | undefined;
    const n = flags.get('n');
    if (typeof n === 'string') {
      const v = s.evaluate(n);
      if (v === 0n || v > 4096n) throw errors.badInput(`::dis: -n ${n} is out of range (1 to 0t4096 instructions)`);
      count = Number(v);
    } else {
      const r = t.symbols.resolve(addr);
      if (r && r.inside && r.sym.kind === 'func' && r.sym.size > 0n && r.sym.size <= WHOLE_FUNCTION_MAX) {
        start = r.sym.addr;
        limit = r.sym.addr + r.sym.size;
        count = 4096;
      }
    }
    const dis = await session.disasm();
    const ctx = session.formatContext();
    const rows: { addr: bigint; label: string; bytes: string; text: string }[] = [];
    let at = start;
    while (rows.length < count && (limit === undefined || at < limit)) {
      const want = limit !== undefined ? Number(limit - at) : count * 15;
      const bytes = readUpTo(ctx, at, Math.min(Math.max(want, 16), 4096));
      const insns = dis.decode(bytes, at, count - rows.length);
      if (insns.length === 0) {
        if (rows.length === 0) throw errors.badInput(`no valid instruction at ${hex(at)} (bytes ${bytes.subarray(0, 8).toString('hex')})`);
        break;
      }
      for (const i of insns) {
        if (limit !== undefined && i.addr >= limit) break;
        rows.push({ addr: i.addr, label: symbolOf(t, i.addr) ?? hex(i.addr), bytes: i.bytes.toString('hex'), text: formatInstruction(i, (a) => symbolOf(t, a), (a) => objectName(t, a)) });
        at = i.addr + BigInt(i.size);
        if (rows.length >= count) break;
      }
      if (insns.length > 0 && at === start) break;
    }
    s.dot = start;
    if (out.jsonMode) {
      out.json(rows.map((r) => ({ addr: hexAddr(r.addr, t.arch), symbol: r.label, bytes: r.bytes, text: r.text, current: r.addr === addr })));
      return;
    }
    // When the function is shown whole, `>` marks the instruction at the address asked for.
    const marked = start !== addr;
    const w = Math.max(16, ...rows.map((r) => r.label.length + 2));
    // -s: the source line (file:line and its text, from the DWARF line table) before its code.
    const source = flags.has('s') ? sourceAnnotator(t) : undefined;
    for (const r of rows) {
      for (const l of source?.(r.addr) ?? []) out.line(l);
      out.line(`${marked ? (r.addr === addr ? '> ' : '  ') : ''}${(r.label + ':').padEnd(w)}${r.text}`);
    }
  },
};

/** The most nodes ::list and the list walker follow before giving up. */
const MAX_NODES = 1_000_000;

function* followList(s: SessionView, head: bigint, offset: bigint, onCycle: (at: bigint, n: number) => void, onStop: (why: string) => void): Generator<bigint> {
  const seen = new Set<bigint>();
  let node = head;
  while (node !== 0n) {
    if (seen.has(node)) {
      onCycle(node, seen.size);
      return;
    }
    if (seen.size >= MAX_NODES) {
      onStop(`stopped after ${MAX_NODES} nodes`);
      return;
    }
    seen.add(node);
    yield node;
    const b = s.target.readVirtual(node + offset, s.target.arch.pointerBytes, s.thread || undefined);
    node = s.target.arch.littleEndian ? (b.length === 8 ? b.readBigUInt64LE(0) : BigInt(b.readUInt32LE(0))) : b.length === 8 ? b.readBigUInt64BE(0) : BigInt(b.readUInt32BE(0));
  }
}

function warnOut(out: Output, text: string): void {
  if (out.warn) out.warn(text);
  else if (!out.jsonMode) out.line(`(${text})`);
}

const list: Dcmd = {
  name: 'list',
  usage: 'addr::list OFFSET | addr::list TYPE MEMBER',
  help:
    'follow a linked list from addr: the next pointer is OFFSET bytes into each node (OFFSET is an expression, hex by default); prints each node, stops at NULL or a cycle.\n' +
    'With TYPE MEMBER (DWARF): MEMBER points at the next TYPE, or is an embedded list_head-style node; prints each containing object',
  run(s, inv, out) {
    const { rest } = parseFlags(this.name, this.usage, inv.args, {});
    if (inv.addr === undefined) throw errors.badInput(`::list needs the address of the first node (usage: ${this.usage})`);
    if (rest.length >= 2) {
      const objs = [...typedList(s, inv.addr, rest)];
      if (out.piping && out.value) for (const o of objs) out.value(o);
      else if (out.jsonMode) out.json(objs.map((o) => hex(o)));
      else for (const o of objs) out.line(hex(o));
      return;
    }
    if (rest.length !== 1) throw errors.badInput(`::list needs exactly one OFFSET argument (usage: ${this.usage})`);
    const offset = s.evaluate(rest[0]!);
    const nodes: string[] = [];
    let cycle: { at: bigint; after: number } | undefined;
    let stopped: string | undefined;
    let failure: unknown;
    try {
      for (const n of followList(s, inv.addr, offset, (at, after) => (cycle = { at, after }), (why) => (stopped = why))) {
        if (out.piping && out.value) out.value(n);
        else if (out.jsonMode) nodes.push(hex(n));
        else out.line(hex(n));
      }
    } catch (e) {
      failure = e;
    }
    if (out.jsonMode) out.json({ head: hex(inv.addr), offset: hex(offset), nodes, cycle: cycle ? { to: hex(cycle.at), after: cycle.after } : null, truncated: stopped ?? null });
    if (cycle) warnOut(out, `the list cycles: node ${cycle.after} points back to ${hex(cycle.at)}`);
    if (stopped) warnOut(out, stopped);
    if (failure) throw failure;
  },
};

const listWalker: Walker = {
  name: 'list',
  help: 'a singly linked list whose next pointer is the first word of each node (::list OFFSET for other offsets)',
  *walk(s, addr) {
    if (addr === undefined) throw errors.badInput('the list walker needs the address of the first node: addr::walk list');
    yield* followList(
      s,
      addr,
      0n,
      () => {},
      () => {},
    );
  },
};

const walk: Dcmd = {
  name: 'walk',
  usage: '[addr]::walk NAME',
  help: 'run walker NAME from addr and print each address it yields (pipe them on with |)',
  run(s, inv, out) {
    const { rest } = parseFlags(this.name, this.usage, inv.args, {});
    if (rest.length !== 1) throw errors.badInput(`::walk needs one walker name (usage: ${this.usage}; ::help lists walkers)`);
    const w = full(s).findWalker(rest[0]!);
    const addrs: string[] = [];
    for (const a of w.walk(s, inv.addr)) {
      if (out.piping && out.value) out.value(a);
      else if (out.jsonMode) addrs.push(hex(a));
      else out.line(hex(a));
    }
    if (out.jsonMode) out.json(addrs);
  },
};

const help: Dcmd = {
  name: 'help',
  usage: '::help [dcmd]',
  help: 'list the dcmds (those the target cannot run are marked), or describe one',
  run(s, inv, out) {
    const { rest } = parseFlags(this.name, this.usage, inv.args, {});
    const session = full(s);
    if (rest.length > 0) {
      const name = rest[0]!.replace(/^::/, '');
      const d = session.findDcmd(name);
      if (!d) throw errors.badInput(`unknown dcmd '${name}' (::help lists the dcmds)`);
      const missing = session.missingCaps(d);
      if (out.jsonMode) {
        out.json({ name: d.name, aliases: d.aliases ?? [], usage: d.usage, help: d.help, needs: d.needs ?? [], available: missing.length === 0 });
        return;
      }
      out.line('NAME');
      out.line(`  ${d.name} - ${d.help.split('\n')[0]}${d.aliases?.length ? ` (also ::${d.aliases.join(' ::')})` : ''}`);
      out.line('SYNOPSIS');
      out.line(`  ${d.usage}`);
      const more = d.help.split('\n').slice(1).join('\n').trim();
      if (more) {
        out.line('DESCRIPTION');
        for (const l of more.split('\n')) out.line(`  ${l}`);
      }
      if (missing.length) {
        out.line('NOTE');
        out.line(`  not available: ${s.target.name} lacks ${missing.join(', ')}`);
      }
      return;
    }
    const all = session.dcmds();
    if (out.jsonMode) {
      out.json({
        dcmds: all.map((r) => ({ name: r.item.name, module: r.module, usage: r.item.usage, help: r.item.help.split('\n')[0], available: session.missingCaps(r.item).length === 0, needs: r.item.needs ?? [] })),
        walkers: session.walkers().map((r) => ({ name: r.item.name, module: r.module, help: r.item.help })),
      });
      return;
    }
    out.line('Each dcmd runs as [addr][,count]::name [args]; formats as addr/fmt (::formats lists them).');
    out.line(`Marked * : not available on ${s.target.name}.`);
    out.line('');
    const w = Math.max(...all.map((r) => r.item.name.length)) + 2;
    for (const r of all) {
      const missing = session.missingCaps(r.item);
      out.line(`${missing.length ? '*' : ' '} ${r.item.name.padEnd(w)} - ${r.item.help.split('\n')[0]}${missing.length ? ` (needs ${missing.join(', ')})` : ''}`);
    }
    const walkers = session.walkers();
    if (walkers.length) {
      out.line('');
      out.line('Walkers (addr::walk NAME):');
      for (const r of walkers) out.line(`  ${r.item.name.padEnd(w)} - ${r.item.help}`);
    }
  },
};

const formats: Dcmd = {
  name: 'formats',
  usage: '::formats',
  help: 'list the format characters of addr/fmt and expr=fmt',
  run(_s, inv, out) {
    noArgs(this, inv.args);
    for (const l of formatHelp()) out.line(l);
  },
};

const load: Dcmd = {
  name: 'load',
  usage: '::load FILE',
  help: 'load a dmod: an ES module file exporting a DcmdModule (name, dcmds, walkers)',
  host: 'loads-code',
  async run(s, inv, out) {
    const { rest } = parseFlags(this.name, this.usage, inv.args, {});
    if (rest.length !== 1) throw errors.badInput(`::load needs one file (usage: ${this.usage})`);
    const m = await full(s).load(rest[0]!);
    if (out.jsonMode) out.json({ loaded: m.name, dcmds: m.dcmds.map((d) => d.name), walkers: (m.walkers ?? []).map((w) => w.name) });
    else out.line(`loaded ${m.name}: ${m.dcmds.map((d) => '::' + d.name).join(' ')}`);
  },
};

const quit: Dcmd = {
  name: 'quit',
  aliases: ['q'],
  usage: '::quit',
  help: 'leave dbg ($q)',
  run(s, inv) {
    noArgs(this, inv.args);
    full(s).quitRequested = true;
  },
};

export const coreModule: DcmdModule = {
  name: 'core',
  dcmds: [status, threadsDcmd, thread, regs, fpregs, stack, nm, mappings, dis, list, walk, help, formats, load, quit],
  walkers: [listWalker],
};
