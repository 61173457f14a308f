/**
 * Dcmds of a live emulated guest (EmulatorTarget): running, stepping, breakpoints, watchpoints,
 * register writes, the console and snapshots.
 *
 *   :c / ::cont                     continue until a breakpoint, watchpoint, fault, halt or Ctrl-C
 *   :s / ::step [over|out]          one instruction (into calls), over a call, out of the function
 *   addr::bp [-c EXPR] | ::bp SYM   breakpoint; a SYM not yet known stays pending until ::symbols adds it
 *   addr::wp -r|-w|-x|-a|-rw [-p] -L len   watchpoint (read, write, exec, access), -p: physical address
 *   ::events                        list breakpoints and watchpoints;  ::delete N | all
 *   value::setreg NAME              write a register of the selected thread (e.g. 0x10::setreg rax)
 *   ::console                       the guest's serial console so far
 *   ::input TEXT                    queue a line for the guest to read from COM1
 *   ::symbols FILE                  add a symbol file (arms pending breakpoints it defines)
 *   ::dump FILE                     write an ELF core in QEMU's dump-guest-memory layout
 */

import { basename } from 'node:path';
import { hexAddr } from '../../common/format.js';
import { errors } from '../../common/errors.js';
import { EmulatorTarget, type EventSpec } from '../../targets/emulator/emulator-target.js';
import type { StopReason, StopStatus, WatchKind } from '../../targets/target.js';
import type { Dcmd, DcmdModule, Output, SessionView } from '../dcmd.js';
import { parseFlags } from '../parse-flags.js';

function emu(s: SessionView): EmulatorTarget {
  if (!(s.target instanceof EmulatorTarget)) throw errors.unsupported(s.target.name, 'running a guest');
  const t = s.target;
  // Conditions are MDB expressions, evaluated in the session with the stopped thread selected.
  t.conditionCheck ??= (ev, thread) => {
    const saved = s.thread;
    s.thread = thread;
    try {
      return s.evaluate(ev.condition!) !== 0n;
    } catch {
      return true; // a condition that cannot be evaluated stops, so the user sees it
    } finally {
      s.thread = saved;
    }
  };
  return t;
}

function where(t: EmulatorTarget, addr: bigint): string {
  const r = t.symbols.resolve(addr);
  const name = r && r.inside ? ` ${r.sym.name}${r.offset ? `+0x${r.offset.toString(16)}` : ''}` : '';
  return `${hexAddr(addr)}${name}`;
}

export function describeStop(t: EmulatorTarget, st: StopStatus): string {
  const r: StopReason = st.reason;
  const at = `at ${where(t, st.pc)} on vCPU ${st.thread - 1}`;
  switch (r.kind) {
    case 'breakpoint':
      return `stopped: breakpoint ${r.id} ${at}`;
    case 'watchpoint':
      return `stopped: watchpoint ${r.id} (${r.access} of ${hexAddr(r.addr)}) ${at}`;
    case 'step':
      return `stopped: step ${at}`;
    case 'halted':
      return `stopped: halted (hlt with interrupts off) ${at}`;
    case 'interrupted':
      return `stopped: interrupted ${at}`;
    case 'fault':
      return `stopped: fault: ${r.fault}; pc ${where(t, r.pc)}${r.addr !== undefined ? `, address ${hexAddr(r.addr)}` : ''} on vCPU ${st.thread - 1}`;
    case 'exited':
      return `stopped: the guest exited with code ${r.code} ${at}`;
    default:
      return `stopped: ${r.kind} ${at}`;
  }
}

function report(s: SessionView, t: EmulatorTarget, st: StopStatus, out: Output): void {
  s.thread = st.thread;
  s.dot = st.pc;
  if (out.jsonMode) out.json({ stop: st.reason.kind, thread: st.thread, pc: hexAddr(st.pc), seq: String(st.seq ?? 0n), reason: jsonable(st.reason) });
  else out.line(describeStop(t, st));
}

function jsonable(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `0x${x.toString(16)}` : x)));
}

const cont: Dcmd = {
  name: 'cont',
  usage: ':c',
  help: 'continue the guest until a breakpoint, watchpoint, fault, halt or Ctrl-C',
  needs: ['execution'],
  async run(s, _inv, out) {
    const t = emu(s);
    report(s, t, await t.caps.execution!.resume(), out);
  },
};

/** Length of the instruction at `pc` and whether it is a call (enough decoding for ::step over). */
function decodeCall(b: Buffer): number | undefined {
  let i = 0;
  while (i < b.length && [0x66, 0x67, 0xf2, 0xf3, 0x2e, 0x3e, 0x26, 0x36, 0x64, 0x65].includes(b[i]!)) i++;
  if (i < b.length && (b[i]! & 0xf0) === 0x40) i++; // REX
  const op = b[i];
  if (op === 0xe8) return i + 5;
  if (op === 0xff && i + 1 < b.length && ((b[i + 1]! >> 3) & 7) === 2) {
    const modrm = b[i + 1]!;
    const mod = modrm >> 6;
    const rm = modrm & 7;
    let len = i + 2;
    if (mod !== 3 && rm === 4) {
      const sib = b[len]!;
      len++;
      if (mod === 0 && (sib & 7) === 5) len += 4;
    }
    if (mod === 0 && rm === 5) len += 4;
    else if (mod === 1) len += 1;
    else if (mod === 2) len += 4;
    return len;
  }
  return undefined;
}

const step: Dcmd = {
  name: 'step',
  usage: '::step [over|out]',
  help: 'execute one instruction of the selected vCPU (into calls); over: step over a call; out: run until the function returns',
  needs: ['execution'],
  async run(s, inv, out) {
    const t = emu(s);
    const mode = inv.args[0] ?? 'into';
    const thread = s.thread;
    const regs = t.registers(thread);
    const pc = regs.get('rip')!;
    const rsp = regs.get('rsp')!;
    let target: bigint | undefined;
    if (mode === 'over') {
      const len = decodeCall(t.readVirtual(pc, 16, thread));
      if (len !== undefined) target = pc + BigInt(len);
    } else if (mode === 'out') {
      // The return address: [rsp] at a function's first instruction, else the frame's [rbp+8].
      const sym = t.symbols.resolve(pc);
      const atEntry = sym !== undefined && sym.offset === 0n;
      const slot = atEntry ? rsp : regs.get('rbp')! + 8n;
      target = t.readVirtual(slot, 8, thread).readBigUInt64LE(0);
    } else if (mode !== 'into') {
      throw errors.badInput(`::step ${mode}: expected over, out or nothing (usage: ${this.usage})`);
    }
    if (target === undefined) {
      report(s, t, await t.caps.execution!.step(thread), out);
      return;
    }
    // A temporary breakpoint that fires only on this thread, with the stack unwound past here.
    const ev = t.addBreakpoint(target, { temporary: true });
    const prev = t.conditionCheck;
    t.conditionCheck = (e, th) => (e.id === ev.id ? th === thread && t.registers(th).get('rsp')! >= rsp : (prev?.(e, th) ?? true));
    ev.condition = '(step)';
    try {
      report(s, t, await t.caps.execution!.resume(), out);
    } finally {
      t.conditionCheck = prev;
      if (t.events.has(ev.id)) t.deleteEvent(ev.id);
    }
  },
};

const bp: Dcmd = {
  name: 'bp',
  usage: 'addr::bp [-c EXPR] | ::bp [-c EXPR] SYMBOL',
  help: 'set a breakpoint at addr or SYMBOL (pending until a symbol file defines SYMBOL); -c: stop only when EXPR is non-zero',
  needs: ['breakpoints'],
  run(s, inv, out) {
    const t = emu(s);
    const { flags, rest } = parseFlags(this.name, this.usage, inv.args, { strings: 'c' });
    const cond = flags.get('c');
    const opts = typeof cond === 'string' ? { condition: cond } : {};
    let ev: EventSpec;
    if (rest.length > 0) {
      if (inv.addr !== undefined) throw errors.badInput(`::bp takes an address or a symbol, not both (usage: ${this.usage})`);
      ev = t.addSymbolBreakpoint(rest[0]!, opts);
    } else if (inv.addr !== undefined) {
      ev = t.addBreakpoint(inv.addr, opts);
    } else throw errors.badInput(`::bp needs an address or a symbol (usage: ${this.usage})`);
    if (out.jsonMode) out.json(eventJson(t, ev));
    else out.line(eventLine(t, ev));
  },
};

const wp: Dcmd = {
  name: 'wp',
  usage: 'addr::wp -r|-w|-x|-a|-rw [-p] [-L len]',
  help: 'set a watchpoint on len bytes at addr (default 1): -r read, -w write, -x execute, -a or -rw access; -p: addr is physical',
  needs: ['breakpoints'],
  run(s, inv, out) {
    const t = emu(s);
    const { flags, rest } = parseFlags(this.name, this.usage, inv.args, { booleans: 'rwxap', strings: 'Lc' });
    if (inv.addr === undefined) throw errors.badInput(`::wp needs an address (usage: ${this.usage})`);
    if (rest.length > 0) throw errors.badInput(`::wp: unexpected "${rest[0]}" (usage: ${this.usage})`);
    const r = flags.has('r');
    const w = flags.has('w');
    const kinds: WatchKind[] = [];
    if (flags.has('a') || (r && w)) kinds.push('access');
    else if (r) kinds.push('read');
    else if (w) kinds.push('write');
    if (flags.has('x')) kinds.push('exec');
    if (kinds.length !== 1) throw errors.badInput(`::wp needs exactly one of -r, -w, -x, -a (usage: ${this.usage})`);
    const lenFlag = flags.get('L');
    const len = typeof lenFlag === 'string' ? Number(s.evaluate(lenFlag)) : 1;
    const cond = flags.get('c');
    const ev = t.addWatchpoint(inv.addr, len, kinds[0]!, flags.has('p'), typeof cond === 'string' ? cond : undefined);
    if (out.jsonMode) out.json(eventJson(t, ev));
    else out.line(eventLine(t, ev));
  },
};

function eventLine(t: EmulatorTarget, ev: EventSpec): string {
  const at = ev.addr !== undefined ? where(t, ev.addr) : `${ev.symbol} (pending: no symbol file defines it yet)`;
  const what = ev.kind === 'breakpoint' ? 'breakpoint' : `watchpoint ${ev.access} ${ev.length} byte${ev.length === 1 ? '' : 's'}${ev.physical ? ' physical' : ''}`;
  return `${ev.id}: ${what} at ${at}${ev.condition && ev.condition !== '(step)' ? ` if ${ev.condition}` : ''}; hits ${ev.hits}`;
}

function eventJson(t: EmulatorTarget, ev: EventSpec): unknown {
  return {
    id: ev.id,
    kind: ev.kind,
    addr: ev.addr !== undefined ? hexAddr(ev.addr) : null,
    symbol: ev.symbol ?? (ev.addr !== undefined ? (t.symbols.resolve(ev.addr)?.sym.name ?? null) : null),
    length: ev.length,
    access: ev.access ?? null,
    physical: ev.physical ?? false,
    condition: ev.condition ?? null,
    pending: !ev.armed,
    hits: ev.hits,
  };
}

const events: Dcmd = {
  name: 'events',
  usage: '::events',
  help: 'list breakpoints and watchpoints',
  needs: ['breakpoints'],
  run(s, _inv, out) {
    const t = emu(s);
    const list = [...t.events.values()].filter((e) => !e.temporary);
    if (out.jsonMode) out.json(list.map((e) => eventJson(t, e)));
    else if (list.length === 0) out.line('no breakpoints or watchpoints');
    else for (const e of list) out.line(eventLine(t, e));
  },
};

const del: Dcmd = {
  name: 'delete',
  usage: '::delete N | all',
  help: 'delete breakpoint or watchpoint N (see ::events), or all of them',
  needs: ['breakpoints'],
  run(s, inv, out) {
    const t = emu(s);
    const a = inv.args[0] ?? (inv.addr !== undefined ? String(inv.addr) : undefined);
    if (a === undefined) throw errors.badInput(`::delete needs an id or "all" (usage: ${this.usage})`);
    const ids = a === 'all' ? [...t.events.keys()] : [Number(a.startsWith('0x') ? BigInt(a) : a)];
    if (ids.some((i) => !Number.isInteger(i))) throw errors.badInput(`::delete: "${a}" is not an event id (usage: ${this.usage})`);
    for (const id of ids) t.deleteEvent(id);
    if (!out.jsonMode) out.line(a === 'all' ? `deleted ${ids.length} event(s)` : `deleted ${a}`);
    else out.json({ deleted: ids });
  },
};

const setreg: Dcmd = {
  name: 'setreg',
  usage: 'value::setreg NAME',
  help: 'write a register of the selected vCPU: 0x1000::setreg rip',
  needs: ['writeRegisters'],
  run(s, inv, out) {
    const t = emu(s);
    const name = inv.args[0];
    if (!name || inv.addr === undefined) throw errors.badInput(`::setreg needs a value and a register name (usage: ${this.usage})`);
    t.caps.writeRegisters!.writeRegister(s.thread, name, inv.addr);
    if (out.jsonMode) out.json({ register: name, value: hexAddr(inv.addr) });
    else out.line(`${name} = ${hexAddr(inv.addr)}`);
  },
};

const consoleCmd: Dcmd = {
  name: 'console',
  usage: '::console',
  help: "the guest's COM1 serial console output so far",
  needs: ['console'],
  run(s, _inv, out) {
    const text = emu(s).caps.console!.consoleText();
    if (out.jsonMode) out.json({ console: text });
    else for (const l of text.replace(/\n$/, '').split('\n')) out.line(l);
  },
};

const input: Dcmd = {
  name: 'input',
  usage: '::input TEXT...',
  help: "queue TEXT (words joined by spaces, then a newline; \\n and \\t escapes) for the guest to read from COM1",
  needs: ['console'],
  run(s, inv, out) {
    const t = emu(s);
    const text = inv.args.join(' ').replace(/\\n/g, '\n').replace(/\\t/g, '\t') + '\n';
    t.machine.consoleInput(Buffer.from(text, 'latin1'));
    if (out.jsonMode) out.json({ queued: text.length });
    else out.line(`queued ${text.length} byte(s) for COM1`);
  },
};

const symbols: Dcmd = {
  name: 'symbols',
  usage: '::symbols FILE',
  help: 'add the symbols of an ELF file (pending breakpoints on its names arm)',
  run(s, inv, out) {
    const t = emu(s);
    if (inv.args.length !== 1) throw errors.badInput(`::symbols needs one file (usage: ${this.usage})`);
    const before = [...t.events.values()].filter((e) => !e.armed).length;
    t.addSymbolFile(inv.args[0]!);
    const armed = before - [...t.events.values()].filter((e) => !e.armed).length;
    if (out.jsonMode) out.json({ added: basename(inv.args[0]!), armed });
    else out.line(`added symbols of ${basename(inv.args[0]!)}${armed ? `; ${armed} pending breakpoint(s) armed` : ''}`);
  },
};

const dump: Dcmd = {
  name: 'dump',
  usage: '::dump FILE',
  help: "write the guest as an ELF core in QEMU's dump-guest-memory layout (dbg open reads it)",
  needs: ['snapshot'],
  run(s, inv, out) {
    const t = emu(s);
    if (inv.args.length !== 1) throw errors.badInput(`::dump needs one file (usage: ${this.usage})`);
    t.caps.snapshot!.writeCore(inv.args[0]!);
    if (out.jsonMode) out.json({ dumped: inv.args[0] });
    else out.line(`wrote ${inv.args[0]} (${t.machine.ram.length >> 20} MiB RAM, ${t.machine.vcpuCount} vCPU(s))`);
  },
};

export const emulatorModule: DcmdModule = {
  name: 'emulator',
  dcmds: [cont, step, bp, wp, events, del, setreg, consoleCmd, input, symbols, dump],
};
