/**
 * Running, stepping, breakpoints and watchpoints on any target that can run (the `execution` and
 * `breakpoints` capabilities: a live emulated guest, a recorded trace replayed forward), and the
 * live guest's register writes, console and snapshots.
 *
 *   :c / ::cont                     continue until a breakpoint, watchpoint, fault, halt or Ctrl-C
 *                                   (a trace: replay forward to the next event or the end of history)
 *   :s / ::step [over|out]          one instruction (into calls), over a call, out of the function
 *   addr::bp [-c EXPR] | ::bp SYM   breakpoint; a SYM not yet known stays pending until ::symbols adds it
 *   addr::wp -r|-w|-x|-a|-rw|-rwx… [-p] -L len   watchpoint (read, write, exec, access, or several
 *                                   at once: one event), -p: physical address
 *   ::events                        list breakpoints and watchpoints;  ::delete N | all
 *   value::setreg NAME              write a register of the selected thread (e.g. 0x10::setreg rax)
 *   ::console                       the guest's serial console so far
 *   ::input TEXT                    queue a line for the guest to read from COM1
 *   ::symbols FILE                  add a symbol file (arms pending breakpoints it defines)
 *   ::dump FILE                     write an ELF core in QEMU's dump-guest-memory layout
 *
 * The session keeps the events it set (ids, conditions, hits, pending symbols, the temporary
 * breakpoint of a step over/out) and arms them in the target through `caps.breakpoints`, as MDB's
 * debugger layer keeps event specifiers over the target's armed points.
 */

import { basename } from 'node:path';
import { hexAddr } from '../../common/format.js';
import { DbgError, errors } from '../../common/errors.js';
import { jsonable, stopJson } from '../json.js';
import { threadName } from '../names.js';
import { symbolOffsetText, symbolText } from '../../symbols/symbol-text.js';
// Types only: importing the emulator (koffi, Unicorn, SQLite) would cost every `dbg open` ~40 ms.
import { scanCodes } from '../../targets/emulator/devices/i8042.js';
import type { EmulatorTarget, EventSpec } from '../../targets/emulator/emulator-target.js';
import { need, type StopReason, type StopStatus, type Target, type WatchKind } from '../../targets/target.js';
import type { Dcmd, DcmdModule, Output, SessionView } from '../dcmd.js';
import { parseFlags } from '../parse-flags.js';
import { FILE_LINE, lineAddresses } from '../../types/frame-source.js';
import { unwind } from '../../targets/unwind.js';
import { decodeSyscall, processEventLines } from './process.js';

/** The live guest, for the dcmds that only it has (::symbols, ::input, ::dump). */
function emu(s: SessionView): EmulatorTarget {
  if (s.target.kind !== 'emulator') throw errors.unsupported(s.target.name, 'running a guest');
  return s.target as EmulatorTarget;
}

function where(t: Target, addr: bigint): string {
  const r = t.symbols.resolve(addr);
  const name = r && r.inside ? ` ${symbolOffsetText(r.sym.name, r.offset)}` : '';
  return `${hexAddr(addr, t.arch)}${name}`;
}

export function describeStop(t: Target, st: StopStatus): string {
  const r: StopReason = st.reason;
  const at = `at ${where(t, st.pc)} on ${threadName(t, st.thread)}`;
  switch (r.kind) {
    case 'breakpoint':
      return `stopped: breakpoint ${r.id} ${at}`;
    case 'watchpoint':
      if (r.io) return `stopped: watchpoint ${r.id} (${r.access === 'read' ? 'IN from' : 'OUT to'} I/O port 0x${r.addr.toString(16)}) ${at}`;
      return `stopped: watchpoint ${r.id} (${r.access} of ${hexAddr(r.addr, t.arch)}) ${at}`;
    case 'step':
      return `stopped: step ${at}`;
    case 'halted':
      return `stopped: halted (hlt with interrupts off) ${at}`;
    case 'guest-breakpoint':
      return `stopped: guest breakpoint (${r.how === 'int3' ? 'int3 with no guest handler' : `debug port 0x520, value 0x${(r.code ?? 0).toString(16)}`}) ${at}`;
    case 'interrupted':
      return `stopped: interrupted ${at}`;
    case 'fault':
      return `stopped: fault: ${r.fault}; pc ${where(t, r.pc)}${r.addr !== undefined ? `, address ${hexAddr(r.addr, t.arch)}` : ''} on ${threadName(t, st.thread)}`;
    case 'exited':
      return t.kind === 'process' ? `stopped: the process exited with status ${r.code}` : `stopped: the guest exited with code ${r.code} ${at}`;
    case 'signal':
      return `stopped: signal ${r.name} ${at}`;
    case 'killed':
      return `stopped: the process was killed by ${r.name}`;
    case 'detached':
      return 'detached: the process runs on';
    case 'syscall':
      return `stopped: syscall ${r.entry ? 'entry' : 'exit'} ${decodeSyscall(t, r)} ${at}`;
    case 'thread-created':
      return `stopped: thread created (LWP ${r.tid}) ${at}`;
    case 'thread-exited':
      return `stopped: thread LWP ${r.tid} exited; ${at}`;
    case 'fork':
      return `stopped: ${r.vfork ? 'vfork' : 'fork'}: child process ${r.child} (detached, runs on) ${at}`;
    case 'vfork-done':
      return `stopped: vfork done (the child exec'd or exited; breakpoints are back in) ${at}`;
    case 'exec':
      return `stopped: exec of ${r.path} ${at}`;
    case 'library':
      return `stopped: libraries ${[...r.loaded.map((n) => `loaded ${n}`), ...r.unloaded.map((n) => `unloaded ${n}`)].join(', ')} ${at}`;
    case 'history-end':
      return `stopped: end of the recorded history (seq ${st.seq ?? '?'}) ${at}`;
    case 'history-begin':
      return `stopped: start of the recorded history ${at}`;
    default:
      return `stopped: ${r.kind} ${at}`;
  }
}

function report(s: SessionView, st: StopStatus, out: Output): void {
  s.thread = st.thread;
  s.dot = st.pc;
  if (out.jsonMode) out.json(stopJson(s.target, st));
  else out.line(describeStop(s.target, st));
}


// ---------------------------------------------------------------------------------------------
// The session's events
// ---------------------------------------------------------------------------------------------

/** One breakpoint or watchpoint of the session, as ::events lists it (`id`: the session's number). */
export interface SessionEvent extends Omit<EventSpec, 'armed'> {
  /** The target's id, once armed (undefined while a pending breakpoint waits for its symbol, or disabled). */
  tid?: number;
  /**
   * A watchpoint on several kinds of access at once (`::wp -rwx`, as MDB holds it: one event):
   * every kind, `access` being the first. The target arms one watchpoint per kind; `tids` holds
   * them all (`tid` the first), and a hit of any is a hit of this event.
   */
  accesses?: readonly WatchKind[];
  tids?: number[];
  /** ::disable took it out of the target; ::enable arms it again. */
  disabled?: boolean;
}

class EventBook {
  readonly list: SessionEvent[] = [];
  private nextId = 1;

  constructor(private readonly s: SessionView) {
    s.target.symbols.onAdd(() => this.armPending());
  }

  static of(s: SessionView): EventBook {
    let b = s.state.get('events') as EventBook | undefined;
    if (!b) s.state.set('events', (b = new EventBook(s)));
    return b;
  }

  add(spec: Omit<SessionEvent, 'id' | 'hits'>): SessionEvent {
    const ev: SessionEvent = { ...spec, id: this.nextId++, hits: 0 };
    if (ev.addr !== undefined) this.arm(ev);
    this.list.push(ev);
    return ev;
  }

  private arm(ev: SessionEvent): void {
    const b = need(this.s.target, 'breakpoints');
    if (ev.io) {
      if (!b.addIoWatchpoint || ev.access === 'exec') throw errors.unsupported(this.s.target.name, ev.access === 'exec' ? 'execute watchpoints on I/O ports' : 'I/O-port watchpoints');
      ev.tid = b.addIoWatchpoint(Number(ev.addr!), ev.length, ev.access!);
    } else if (ev.kind === 'watchpoint' && ev.accesses && ev.accesses.length > 1) {
      const tids: number[] = [];
      try {
        for (const k of ev.accesses) tids.push(b.addWatchpoint(ev.addr!, ev.length, k, ev.physical, { emulate: true }));
      } catch (e) {
        for (const id of tids) b.removeWatchpoint(id); // all of the event or none of it
        throw e;
      }
      ev.tids = tids;
      ev.tid = tids[0];
    } else if (ev.kind === 'watchpoint') ev.tid = b.addWatchpoint(ev.addr!, ev.length, ev.access!, ev.physical, { emulate: true });
    else if (ev.temporary && ev.test && b.addStepBreakpoint) ev.tid = b.addStepBreakpoint(ev.addr!, ev.test);
    else ev.tid = b.addBreakpoint(ev.addr!, { followIfunc: true });
  }

  /** Pending breakpoints whose symbol is known now get armed; returns how many. */
  armPending(): number {
    let n = 0;
    for (const ev of this.list) {
      if (ev.tid !== undefined || !ev.symbol || ev.disabled) continue;
      const sym = this.s.target.symbols.find(ev.symbol);
      if (!sym) continue;
      ev.addr = sym.addr;
      this.arm(ev);
      n++;
    }
    return n;
  }

  get(id: number): SessionEvent {
    const ev = this.list.find((e) => e.id === id);
    if (!ev) throw errors.badInput(`no breakpoint or watchpoint with id ${id} (see ::events)`);
    return ev;
  }

  /** Take `ev` out of the target (kept in the list, its id and hits too) or put it back. */
  setEnabled(ev: SessionEvent, on: boolean): void {
    if (on === !ev.disabled) return;
    if (on) {
      ev.disabled = false;
      if (ev.addr !== undefined) this.arm(ev);
      else this.armPending();
    } else {
      this.disarm(ev);
      ev.disabled = true;
    }
  }

  remove(ev: SessionEvent): void {
    this.disarm(ev);
    this.list.splice(this.list.indexOf(ev), 1);
  }

  private disarm(ev: SessionEvent): void {
    if (ev.tid !== undefined) {
      const b = need(this.s.target, 'breakpoints');
      for (const tid of ev.tids ?? [ev.tid]) {
        try {
          if (ev.kind === 'breakpoint') b.removeBreakpoint(tid);
          else b.removeWatchpoint(tid);
        } catch (e) {
          if (!(e instanceof DbgError && e.code === 'bad-input')) throw e; // already gone from the target
        }
      }
      ev.tid = undefined;
      ev.tids = undefined;
    }
  }

  byTarget(tid: number): SessionEvent | undefined {
    return this.list.find((e) => e.tid === tid || e.tids?.includes(tid));
  }

  /** Whether a hit of `ev` on `thread` stops (its condition holds; one that cannot be evaluated stops). */
  stops(ev: SessionEvent, thread: number): boolean {
    if (ev.test && !ev.test(thread)) return false;
    if (ev.condition === undefined) return true;
    const saved = this.s.thread;
    this.s.thread = thread;
    try {
      return this.s.evaluate(ev.condition) !== 0n;
    } catch {
      return true;
    } finally {
      this.s.thread = saved;
    }
  }
}

/** A stop with the session's event id in place of the target's (stop reasons of other events unchanged). */
export function sessionStop(s: SessionView, st: StopStatus): StopStatus {
  const r = st.reason;
  if (r.kind !== 'breakpoint' && r.kind !== 'watchpoint') return st;
  const ev = EventBook.of(s).byTarget(r.id);
  return ev ? { ...st, reason: { ...r, id: ev.id } } : st;
}

/**
 * Run `op` (resume) until a stop the session keeps: a hit whose condition fails runs on, the
 * temporary breakpoint of a step ends the step (and goes), other hits count.
 */
async function runEvents(s: SessionView, op: () => Promise<StopStatus>): Promise<StopStatus> {
  const book = EventBook.of(s);
  for (;;) {
    const st = await op();
    const r = st.reason;
    const ev = r.kind === 'breakpoint' || r.kind === 'watchpoint' ? book.byTarget(r.id) : undefined;
    if (!ev) return st;
    if (!book.stops(ev, st.thread)) continue;
    if (ev.temporary) {
      book.remove(ev);
      return { ...st, reason: { kind: 'step' } };
    }
    ev.hits++;
    return sessionStop(s, st);
  }
}

/**
 * For a server that sets breakpoints in a session's name (the control contract): a breakpoint at
 * `addr`, listed by ::events with the session's others. Returns its session id.
 */
export function addSessionBreakpoint(s: SessionView, addr: bigint, symbol?: string): number {
  return EventBook.of(s).add({ kind: 'breakpoint', addr, length: 1, ...(symbol !== undefined ? { symbol } : {}) }).id;
}

/** Delete event `id` of the session if it is still there (::delete may have taken it). */
export function deleteSessionEvent(s: SessionView, id: number): void {
  const book = EventBook.of(s);
  const ev = book.list.find((e) => e.id === id);
  if (ev) book.remove(ev);
}

/** :c as a server runs it: until a stop the session keeps, with the session's event ids. */
export function continueSession(s: SessionView): Promise<StopStatus> {
  const x = need(s.target, 'execution');
  return runEvents(s, () => x.resume());
}

const cont: Dcmd = {
  name: 'cont',
  usage: ':c',
  help: 'continue until a breakpoint, watchpoint, fault, halt or Ctrl-C (a recorded past or a trace: replay forward to the next event; at the end of the history a live guest runs on)',
  needs: ['execution'],
  async run(s, inv, out) {
    if (inv.args.length) throw errors.badInput(`::cont: unexpected argument "${inv.args[0]}" (usage: ${this.usage})`);
    const x = need(s.target, 'execution');
    report(s, await runEvents(s, () => x.resume()), out);
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
  usage: '[,count]::step [over|out]',
  help:
    'execute one instruction of the selected thread (into calls); over: step over a call; out: run until the function returns; a count repeats the step\n\n' +
    'Only the selected vCPU runs, as KMDB steps one CPU: the others stay where they stopped (:c runs them all). ' +
    'On a trace the recorded order is fixed: a step is the next instruction of the history.',
  needs: ['execution'],
  async run(s, inv, out) {
    if (inv.args.length > 1) throw errors.badInput(`::step: unexpected "${inv.args[1]}" (usage: ${this.usage})`);
    const count = inv.count ?? 1n;
    if (count < 1n || count > BigInt(Number.MAX_SAFE_INTEGER)) throw errors.badInput(`::step: count ${count} must be at least 1 (usage: ${this.usage})`);
    const mode = inv.args[0] ?? 'into';
    if (mode !== 'into' && mode !== 'over' && mode !== 'out') throw errors.badInput(`::step ${mode}: expected over, out or nothing (usage: ${this.usage})`);
    const x = need(s.target, 'execution');
    if (mode === 'into') {
      report(s, sessionStop(s, await x.step(s.thread, Number(count))), out);
      return;
    }
    let st: StopStatus | undefined;
    for (let n = 0n; n < count; n++) {
      st = await stepOnce(s, mode);
      if (st.reason.kind !== 'step' || s.signal.aborted) break;
    }
    report(s, st!, out);
  },
};

/** One step over or out on the selected thread, that thread alone. */
async function stepOnce(s: SessionView, mode: 'over' | 'out'): Promise<StopStatus> {
  const t = s.target;
  const x = need(t, 'execution');
  const thread = s.thread;
  const regs = t.registers(thread);
  const pc = regs.get('rip')!;
  const rsp = regs.get('rsp')!;
  let target: bigint | undefined;
  // Stop at `target` only once the stack is unwound to this sp (a recursive call passes it deeper).
  let outSp = rsp;
  if (mode === 'over') {
    const len = decodeCall(t.readVirtual(pc, 16, thread));
    if (len !== undefined) target = pc + BigInt(len);
  } else if (mode === 'out') {
    // The caller's pc and sp as ::stack finds them (CFI, else the prologue or the rbp chain),
    // so a function without a frame pointer returns to its real caller.
    const caller = unwind(t, thread, { maxFrames: 2 })[1];
    if (!caller) throw errors.state(`::step out: no caller found for ${where(t, pc)} on ${threadName(t, thread)} (::stack shows how far the unwinder gets)`);
    target = caller.pc;
    outSp = caller.sp;
  }
  if (target === undefined) return sessionStop(s, await x.step(thread));
  // A temporary breakpoint that stops only on this thread, with the stack unwound past here
  // (the target's own step breakpoint where it has one, so that its status says 'step' too).
  const book = EventBook.of(s);
  const test = (th: number): boolean => th === thread && t.registers(th).get('rsp')! >= outSp;
  const ev = book.add({ kind: 'breakpoint', addr: target, length: 1, temporary: true, test });
  try {
    return await runEvents(s, () => x.resume(thread));
  } finally {
    if (book.list.includes(ev)) book.remove(ev);
  }
}

const bp: Dcmd = {
  name: 'bp',
  usage: 'addr::bp [-c EXPR] | ::bp [-c EXPR] SYMBOL|FILE:LINE',
  help: 'set a breakpoint at addr, SYMBOL (pending until a symbol file defines SYMBOL) or FILE:LINE (each function the line has code in, from the DWARF line tables); -c: stop only when EXPR is non-zero',
  needs: ['breakpoints'],
  run(s, inv, out) {
    const { flags, rest } = parseFlags(this.name, this.usage, inv.args, { strings: 'c' });
    const cond = flags.get('c');
    const opts = typeof cond === 'string' ? { condition: cond } : {};
    const book = EventBook.of(s);
    let ev: SessionEvent;
    if (rest.length > 0) {
      if (inv.addr !== undefined) throw errors.badInput(`::bp takes an address or a symbol, not both (usage: ${this.usage})`);
      const name = rest[0]!;
      if (FILE_LINE.test(name)) {
        // A source line: one breakpoint on each function the line has code in, as gdb places them.
        const evs = lineAddresses(s.target.symbols, name).addrs.map((a) => book.add({ kind: 'breakpoint', addr: a.addr, length: 1, ...opts }));
        if (out.jsonMode) out.json(evs.length === 1 ? eventJson(s.target, evs[0]!) : evs.map((e) => eventJson(s.target, e)));
        else for (const e of evs) out.line(eventLine(s.target, e));
        return;
      }
      let addr: bigint | undefined;
      try {
        addr = s.evaluate(name);
      } catch (e) {
        // a plain name that no symbol file defines yet: pending
        if (!(e instanceof DbgError && e.code === 'no-symbol' && /^[A-Za-z_.$][\w.$`]*$/.test(name))) throw e;
      }
      ev = book.add({ kind: 'breakpoint', addr, symbol: name, length: 1, ...opts });
    } else if (inv.addr !== undefined) {
      ev = book.add({ kind: 'breakpoint', addr: inv.addr, length: 1, ...opts });
    } else throw errors.badInput(`::bp needs an address or a symbol (usage: ${this.usage})`);
    if (out.jsonMode) out.json(eventJson(s.target, ev));
    else out.line(eventLine(s.target, ev));
  },
};

const wp: Dcmd = {
  name: 'wp',
  usage: 'addr::wp -r|-w|-x|-a|-rw|-rwx… [-p|-i] [-L len] [-c EXPR]',
  help: 'set a watchpoint on len bytes at addr (default 1): -r read, -w write, -x execute, -a or -rw access, flags together for several kinds in one event (-rwx, -wx); -p: addr is physical; -i: addr is an I/O port (read = IN, write = OUT; a live guest); -c: stop only when EXPR is non-zero\n\n' +
    'On a trace, write and exec watchpoints are found by index lookups; a trace keeps writes, not reads, so read and access watchpoints re-execute checkpoint windows with a watch hook.',
  needs: ['breakpoints'],
  run(s, inv, out) {
    const { flags, rest } = parseFlags(this.name, this.usage, inv.args, { booleans: 'rwxapi', strings: 'Lc' });
    if (flags.has('p') && flags.has('i')) throw errors.badInput(`::wp: -p (physical memory) and -i (I/O port) exclude each other (usage: ${this.usage})`);
    if (inv.addr === undefined) throw errors.badInput(`::wp needs an address (usage: ${this.usage})`);
    if (rest.length > 0) throw errors.badInput(`::wp: unexpected "${rest[0]}" (usage: ${this.usage})`);
    const r = flags.has('r');
    const w = flags.has('w');
    const kinds: WatchKind[] = [];
    if (flags.has('a') || (r && w)) kinds.push('access');
    else if (r) kinds.push('read');
    else if (w) kinds.push('write');
    if (flags.has('x')) kinds.push('exec');
    if (kinds.length === 0) throw errors.badInput(`::wp needs at least one of -r, -w, -x, -a (usage: ${this.usage})`);
    if (kinds.length > 1 && flags.has('i')) throw errors.badInput(`::wp -i: an I/O-port watchpoint is read, write or both (-r, -w, -rw), not execute (usage: ${this.usage})`);
    const lenFlag = flags.get('L');
    const len = typeof lenFlag === 'string' ? Number(s.evaluate(lenFlag)) : 1;
    if (!Number.isInteger(len) || len < 1) throw errors.badInput(`watchpoint length ${len}: expected at least 1 byte`);
    const cond = flags.get('c');
    const io = flags.has('i') ? { io: true } : {};
    const several = kinds.length > 1 ? { accesses: kinds } : {};
    const ev = EventBook.of(s).add({ kind: 'watchpoint', addr: inv.addr, length: len, access: kinds[0]!, ...several, physical: flags.has('p'), ...io, ...(typeof cond === 'string' ? { condition: cond } : {}) });
    if (out.jsonMode) out.json(eventJson(s.target, ev));
    else out.line(eventLine(s.target, ev));
    const note = ev.tid !== undefined ? s.target.caps.breakpoints?.watchpointNote?.(ev.tid) : undefined;
    if (note !== undefined && !out.jsonMode) out.line(`   ${note}`);
  },
};

function eventLine(t: Target, ev: SessionEvent): string {
  const at = ev.addr !== undefined && (ev.tid !== undefined || ev.disabled) ? where(t, ev.addr) : `${symbolText(ev.symbol ?? '?')} (pending: no symbol file defines it yet)`;
  const what =
    ev.kind === 'breakpoint'
      ? 'breakpoint'
      : ev.io
        ? `watchpoint ${ev.access} ${ev.length} I/O port${ev.length === 1 ? '' : 's'}`
        : `watchpoint ${accessText(ev)} ${ev.length} byte${ev.length === 1 ? '' : 's'}${ev.physical ? ' physical' : ''}`;
  if (ev.io) return `${ev.id}: ${what} at 0x${ev.addr!.toString(16)}${ev.condition !== undefined ? ` if ${ev.condition}` : ''}; hits ${ev.hits}${ev.disabled ? ' (disabled)' : ''}`;
  return `${ev.id}: ${what} at ${at}${ev.condition !== undefined ? ` if ${ev.condition}` : ''}; hits ${ev.hits}${ev.disabled ? ' (disabled)' : ''}`;
}

/** `write`, or for an event of several kinds MDB's flags: `rwx` (access and exec), `wx`. */
function accessText(ev: SessionEvent): string | undefined {
  if (!ev.accesses || ev.accesses.length < 2) return ev.access;
  const has = (k: WatchKind) => ev.accesses!.includes(k);
  return `${has('read') || has('access') ? 'r' : ''}${has('write') || has('access') ? 'w' : ''}${has('exec') ? 'x' : ''}`;
}

const symbolOr = (name: string | undefined): string | null => (name === undefined ? null : symbolText(name));

function eventJson(t: Target, ev: SessionEvent): unknown {
  return {
    id: ev.id,
    kind: ev.kind,
    addr: ev.addr !== undefined ? hexAddr(ev.addr, t.arch) : null,
    symbol: ev.symbol !== undefined ? symbolText(ev.symbol) : (ev.addr !== undefined ? symbolOr(t.symbols.resolve(ev.addr)?.sym.name) : null),
    length: ev.length,
    access: ev.access ?? null,
    accesses: ev.accesses ?? (ev.access ? [ev.access] : []),
    physical: ev.physical ?? false,
    io: ev.io ?? false,
    condition: ev.condition ?? null,
    pending: ev.tid === undefined && !ev.disabled,
    enabled: !ev.disabled,
    hits: ev.hits,
  };
}

const events: Dcmd = {
  name: 'events',
  usage: '::events',
  help: 'list breakpoints and watchpoints',
  needs: ['breakpoints'],
  run(s, _inv, out) {
    const list = EventBook.of(s).list.filter((e) => !e.temporary);
    const pc = s.target.caps.processControl;
    const extra = pc ? processEventLines(pc) : [];
    if (out.jsonMode) out.json(pc ? [...list.map((e) => eventJson(s.target, e)), ...extra.map((text) => ({ kind: 'process', text }))] : list.map((e) => eventJson(s.target, e)));
    else if (list.length === 0 && extra.length === 0) out.line('no breakpoints or watchpoints');
    else {
      for (const e of list) out.line(eventLine(s.target, e));
      for (const l of extra) out.line(l);
    }
  },
};

const del: Dcmd = {
  name: 'delete',
  usage: '::delete N | all',
  help: 'delete breakpoint or watchpoint N (see ::events), or all of them',
  needs: ['breakpoints'],
  run(s, inv, out) {
    const book = EventBook.of(s);
    const a = inv.args[0] ?? (inv.addr !== undefined ? String(inv.addr) : undefined);
    if (a === undefined) throw errors.badInput(`::delete needs an id or "all" (usage: ${this.usage})`);
    const ids = a === 'all' ? book.list.filter((e) => !e.temporary).map((e) => e.id) : [Number(/^0x/i.test(a) ? BigInt(a) : a)];
    if (ids.some((i) => !Number.isInteger(i))) throw errors.badInput(`::delete: "${a}" is not an event id (usage: ${this.usage})`);
    for (const ev of ids.map((id) => book.get(id))) book.remove(ev);
    if (!out.jsonMode) out.line(a === 'all' ? `deleted ${ids.length} event(s)` : `deleted ${a}`);
    else out.json({ deleted: ids });
  },
};

/** ::enable and ::disable: MDB's, on the ids ::events lists. */
function enabler(on: boolean): Dcmd {
  const name = on ? 'enable' : 'disable';
  return {
    name,
    usage: `::${name} -a | N... | N::${name}`,
    help: on
      ? 'arm again the breakpoints and watchpoints ::disable took out (-a: all of them); ids, hits and conditions are kept'
      : 'take breakpoints and watchpoints out of the target without deleting them (-a: all); ::events shows them "(disabled)", ::enable puts them back',
    needs: ['breakpoints'],
    run(s, inv, out) {
      const book = EventBook.of(s);
      const { flags, rest } = parseFlags(name, this.usage, inv.args, { booleans: 'a' });
      const words = [...rest, ...(inv.addr !== undefined ? [`0x${inv.addr.toString(16)}`] : [])];
      if (flags.has('a') === (words.length > 0)) throw errors.badInput(`::${name} needs event ids or -a (usage: ${this.usage})`);
      const evs = flags.has('a')
        ? book.list.filter((e) => !e.temporary)
        : words.map((w) => {
            const id = /^(0x[0-9a-f]+|0t\d+|\d+)$/i.test(w) ? Number(BigInt(w.replace(/^0t/i, ''))) : NaN;
            if (!Number.isSafeInteger(id)) throw errors.badInput(`::${name}: "${w}" is not an event id (see ::events)`);
            return book.get(id);
          });
      for (const ev of evs) book.setEnabled(ev, on);
      if (out.jsonMode) out.json(evs.map((e) => eventJson(s.target, e)));
      else for (const ev of evs) out.line(eventLine(s.target, ev));
    },
  };
}

/** The thread of CPU `cpu` on a target whose threads are CPUs (a kernel: live, recorded or dumped). */
function cpuThread(s: SessionView, cpu: bigint, dcmd: string): number {
  const t = s.target;
  if (t.kind !== 'emulator' && t.kind !== 'replay' && t.kind !== 'kernel-dump') {
    throw errors.unsupported(t.name, `::${dcmd} (its threads are not CPUs: select one with N::thread)`);
  }
  const list = t.threads();
  const th = list.find((x) => BigInt(x.tid) === cpu);
  if (!th) throw errors.badInput(`::${dcmd}: no CPU ${cpu}: ${t.name} has CPUs ${list.map((x) => x.tid).join(', ')}`);
  return th.index;
}

const cpuregs: Dcmd = {
  name: 'cpuregs',
  usage: '::cpuregs [-c CPU]',
  help: "KMDB's: the registers of the selected CPU, or of CPU (its number, as ::threads shows it in TID) without selecting it",
  async run(s, inv, out) {
    const { flags, rest } = parseFlags(this.name, this.usage, inv.args, { strings: 'c' });
    if (rest.length > 0) throw errors.badInput(`::cpuregs: unexpected "${rest[0]}" (usage: ${this.usage})`);
    const c = flags.get('c');
    const saved = s.thread;
    if (typeof c === 'string') s.thread = cpuThread(s, s.evaluate(c), this.name);
    try {
      await s.execute('::regs', out);
    } finally {
      s.thread = saved;
    }
  },
};

const switchCpu: Dcmd = {
  name: 'switch',
  usage: 'CPU::switch | ::switch CPU',
  help: "KMDB's: make CPU (its number, as ::threads shows it in TID) the selected one, as N::thread selects a thread",
  async run(s, inv, out) {
    if (inv.args.length > 1 || (inv.args.length === 1) === (inv.addr !== undefined)) throw errors.badInput(`::switch needs one CPU number (usage: ${this.usage})`);
    const cpu = inv.addr ?? s.evaluate(inv.args[0]!);
    s.thread = cpuThread(s, cpu, this.name);
    await s.execute('::thread', out);
  },
};

const setreg: Dcmd = {
  name: 'setreg',
  usage: 'value::setreg NAME',
  help: 'write a register of the selected vCPU: 0x1000::setreg rip',
  needs: ['writeRegisters'],
  run(s, inv, out) {
    const name = inv.args[0];
    if (!name || inv.addr === undefined) throw errors.badInput(`::setreg needs a value and a register name (usage: ${this.usage})`);
    need(s.target, 'writeRegisters').writeRegister(s.thread, name, inv.addr);
    // At the register's width; a name outside the architecture's list (r15 on i386) is 64-bit.
    const bits = s.target.arch.registers.find((r) => r.name === name.toLowerCase().replace(/^%/, ''))?.bits ?? 64;
    const value = hexAddr(inv.addr, Math.min(bits, 64) / 4);
    if (out.jsonMode) out.json({ register: name, value });
    else out.line(`${name} = ${value}`);
  },
};

const consoleCmd: Dcmd = {
  name: 'console',
  usage: '::console',
  help: "the guest's COM1 serial console output so far",
  needs: ['console'],
  run(s, _inv, out) {
    const text = need(s.target, 'console').consoleText();
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

const keys: Dcmd = {
  name: 'keys',
  usage: '::keys TEXT...',
  help: "type TEXT (words joined by spaces, then Enter; \\n, \\t, \\b and \\e escapes) on the guest's PS/2 keyboard (i8042, scan code set 1)",
  run(s, inv, out) {
    const t = emu(s);
    const text = inv.args.join(' ').replace(/\\n/g, '\n').replace(/\\t/g, '\t').replace(/\\b/g, '\b').replace(/\\e/g, '\x1b') + '\n';
    const codes = scanCodes(text);
    if (!Array.isArray(codes)) throw errors.badInput(`::keys: no key on the US keyboard types ${JSON.stringify(codes.bad)}`);
    t.machine.keyboardInput(codes);
    if (out.jsonMode) out.json({ scanCodes: codes.length });
    else out.line(`queued ${codes.length} scan code(s) for the keyboard`);
  },
};

const screen: Dcmd = {
  name: 'screen',
  usage: '::screen',
  help: "the guest's 80x25 text screen (the CGA buffer at 0xb8000) and the cursor's row and column",
  run(s, _inv, out) {
    const t = emu(s);
    const { lines, cursor } = t.machine.screen();
    const row = Math.floor(cursor / 80);
    const col = cursor % 80;
    if (out.jsonMode) out.json({ lines, cursor: { row, col } });
    else {
      for (const l of lines) out.line(l.trimEnd());
      out.line(`(cursor at row ${row}, column ${col})`);
    }
  },
};

const symbols: Dcmd = {
  name: 'symbols',
  usage: '::symbols FILE',
  help: 'add the symbols of an ELF file (pending breakpoints on its names arm)',
  host: 'reads-files',
  run(s, inv, out) {
    const t = emu(s);
    if (inv.args.length !== 1) throw errors.badInput(`::symbols needs one file (usage: ${this.usage})`);
    const book = EventBook.of(s);
    const pending = (): number => book.list.filter((e) => e.tid === undefined).length;
    const before = pending();
    t.addSymbolFile(inv.args[0]!); // the session's pending breakpoints arm as the symbols arrive
    const armed = before - pending();
    if (out.jsonMode) out.json({ added: basename(inv.args[0]!), armed });
    else out.line(`added symbols of ${basename(inv.args[0]!)}${armed ? `; ${armed} pending breakpoint(s) armed` : ''}`);
  },
};

const dump: Dcmd = {
  name: 'dump',
  usage: '::dump FILE',
  help: "write the guest (emulated, or QEMU's under dbg attach) as an ELF core in QEMU's dump-guest-memory layout (dbg open reads it)",
  needs: ['snapshot'],
  host: 'writes-files',
  run(s, inv, out) {
    const t = s.target;
    if (inv.args.length !== 1) throw errors.badInput(`::dump needs one file (usage: ${this.usage})`);
    need(t, 'snapshot').writeCore(inv.args[0]!);
    if (t.kind === 'process') {
      if (out.jsonMode) out.json({ dumped: inv.args[0] });
      else out.line(`wrote ${inv.args[0]} (a process core of ${t.threads().length} thread(s); dbg open and gdb read it)`);
      return;
    }
    const ram = need(t, 'physical').physicalRanges().reduce((n, r) => n + (r.end - r.start), 0n);
    if (out.jsonMode) out.json({ dumped: inv.args[0] });
    else out.line(`wrote ${inv.args[0]} (${ram >> 20n} MiB RAM, ${t.threads().length} vCPU(s))`);
  },
};

export const emulatorModule: DcmdModule = {
  name: 'emulator',
  dcmds: [cont, step, bp, wp, events, del, enabler(true), enabler(false), cpuregs, switchCpu, setreg, consoleCmd, input, keys, screen, symbols, dump],
};
