/**
 * A target's StopStatus as a stop reply packet.
 *
 *   T <signal:2 hex> [reason ;] thread:p<pid>.<tid>; 06:<rbp>;07:<rsp>;10:<rip>;
 *   W <code:2 hex> ;process:<pid>        the process exited
 *   X <signal:2 hex> ;process:<pid>      killed by a signal
 *   w <code:2 hex> ;p<pid>.<tid>         a thread exited (only after QThreadEvents:1)
 *
 * reasons: swbreak: / hwbreak: (a breakpoint), watch:/rwatch:/awatch:<data address> (a watchpoint),
 * replaylog:begin / replaylog:end (reverse or forward execution reached an end of the history), and
 * for a live process: syscall_entry:NR / syscall_return:NR (a caught system call), fork:p<c>.<c> /
 * vfork:p<c>.<c> and vforkdone: (with fork-events+ / vfork-events+), create: (a new thread, after
 * QThreadEvents:1), library: (the dynamic linker's list changed: gdb reads qXfer:libraries-svr4).
 * Ids are a live process's own pid and LWP ids, as gdbserver sends them; other targets' are pid 1
 * and thread indexes. The expedited registers let gdb show where it stopped without a `g` round trip:
 * pc, sp and fp after a single step, where gdb shows a pc and a line; every integer register after
 * any other stop, where it shows a frame with its arguments (`expediteEvent`).
 */

import type { Registers } from '../arch/arch.js';
import type { StopReplyPlan, StopStatus } from '../targets/target.js';
import { encodeRegister, type TargetDescription } from './target-description.js';

/** gdb's own signal numbers (include/gdb/signals.def), which differ from Linux's above 6. */
export const GDB_SIGNAL: Record<string, number> = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGEMT: 7, SIGFPE: 8, SIGKILL: 9,
  SIGBUS: 10, SIGSEGV: 11, SIGSYS: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15, SIGURG: 16, SIGSTOP: 17,
  SIGTSTP: 18, SIGCONT: 19, SIGCHLD: 20, SIGTTIN: 21, SIGTTOU: 22, SIGIO: 23, SIGXCPU: 24, SIGXFSZ: 25,
  SIGVTALRM: 26, SIGPROF: 27, SIGWINCH: 28, SIGUSR1: 30, SIGUSR2: 31,
};

/** How the process and its threads are named on the wire. */
export interface WireIds {
  /** A live process's pid; 1 for every other target. */
  readonly pid: number;
  /** The wire number of thread `index`: a live process's LWP id, else the index itself. */
  tid(index: number): number;
}

export const INDEX_IDS: WireIds = { pid: 1, tid: (index) => index };

/**
 * What the client negotiated, the same for every stop until it negotiates again: the client keeps
 * one object and passes it as it is (a copy spread with a stop's own fields each time made V8 build
 * the object's shape again at every stop, ~15 µs of a stepi's).
 */
export interface StopReplyOptions {
  readonly desc: TargetDescription;
  readonly ids?: WireIds;
  /** The client asked for fork events: a fork stop is `fork:pCHILD.CHILD;` (else a plain SIGTRAP). */
  readonly forkEvents?: boolean;
  /** vfork-events+: `vfork:pCHILD.CHILD;` and, once the child let go of the memory, `vforkdone:;`. */
  readonly vforkEvents?: boolean;
  /** QThreadEvents:1: `create:;` for a new thread, `w` for one that exited. */
  readonly threadEvents?: boolean;
  readonly multiprocess: boolean;
  /** The client said swbreak+/hwbreak+ in qSupported. */
  readonly swbreak: boolean;
  readonly hwbreak: boolean;
  /** Breakpoint ids inserted with Z1 (reported as hwbreak rather than swbreak). */
  readonly hardwareIds: ReadonlySet<number>;
}

/** What one stop's reply says beyond the stop itself and the client's options. */
export interface StopReplyExtras {
  /** The thread to name instead of the stop's own (one the client can select). */
  readonly thread?: number;
  /** The registers to send (desc.expedite's or desc.expediteEvent's); default desc.expedite. */
  readonly expedite?: readonly number[];
  /** The signal to report instead of the one the reason implies (0: "stopped", nothing happened). */
  readonly signal?: number;
  /**
   * For lldb: why the target stopped, sent as `reason:exception;description:HEX;`. lldb resumes
   * again at once after a stop that has neither a signal nor a reason (a core answering `c` with
   * T00 had lldb send `c` thousands of times a second); an exception stops it and shows the text.
   * gdb skips keys it does not know, but is never sent one.
   */
  readonly description?: string;
}

const NO_EXTRAS: StopReplyExtras = {};

export function threadIdText(index: number, multiprocess: boolean, ids: WireIds = INDEX_IDS): string {
  return lwpText(ids.pid, ids.tid(index), multiprocess);
}

/** `p<pid>.<tid>` with multiprocess, else `<tid>`. */
function lwpText(pid: number, tid: number, multiprocess: boolean): string {
  return multiprocess ? `p${pid.toString(16)}.${tid.toString(16)}` : tid.toString(16);
}

export function stopReply(stop: StopStatus, regs: Registers | undefined, o: StopReplyOptions, x: StopReplyExtras = NO_EXTRAS): string {
  const r = stop.reason;
  const ids = o.ids ?? INDEX_IDS;
  const proc = o.multiprocess ? `;process:${ids.pid.toString(16)}` : '';
  let signal = 5;
  let reason = '';
  switch (r.kind) {
    case 'exited':
      return `W${hex2(r.code & 0xff)}${proc}`;
    case 'signal':
      signal = GDB_SIGNAL[r.name] ?? 5;
      break;
    case 'interrupted':
      signal = 2;
      break;
    case 'halted':
      // QEMU's stub says nothing when a guest halts: the vCPU waits, and its user presses Ctrl-C
      // and reads "SIGINT, Interrupt" at the instruction after the hlt. dbg stops the run at once
      // (nothing could wake the CPU) and reports it the same way, with a console note saying why.
      signal = 2;
      break;
    case 'fault':
      signal = /opcode|instruction/i.test(r.fault) ? 4 : 11;
      break;
    case 'breakpoint':
      if (o.hardwareIds.has(r.id)) reason = o.hwbreak ? 'hwbreak:;' : '';
      else reason = o.swbreak ? 'swbreak:;' : '';
      break;
    case 'watchpoint': {
      const key = r.access === 'read' ? 'rwatch' : r.access === 'access' ? 'awatch' : 'watch';
      reason = `${key}:${r.addr.toString(16)};`;
      break;
    }
    case 'fork':
      if ((r.vfork ? o.vforkEvents : o.forkEvents) && o.multiprocess) reason = `${r.vfork ? 'vfork' : 'fork'}:${lwpText(r.child, r.child, true)};`;
      break;
    case 'vfork-done':
      if (o.vforkEvents) reason = 'vforkdone:;';
      break;
    case 'thread-created':
      if (o.threadEvents) reason = 'create:;';
      break;
    case 'thread-exited':
      if (o.threadEvents) return `w${hex2((r.code ?? 0) & 0xff)};${lwpText(ids.pid, r.tid, o.multiprocess)}`;
      break;
    case 'library':
      reason = 'library:;';
      break;
    case 'syscall':
      reason = `${r.entry ? 'syscall_entry' : 'syscall_return'}:${r.nr.toString(16)};`;
      break;
    case 'killed':
      return `X${hex2(GDB_SIGNAL[r.name] ?? 9)}${proc}`;
    case 'history-begin':
      reason = 'replaylog:begin;';
      break;
    case 'history-end':
      reason = 'replaylog:end;';
      break;
    default:
      break;
  }
  if (x.signal !== undefined) signal = x.signal;
  if (x.description !== undefined) reason += `reason:exception;description:${Buffer.from(x.description, 'utf8').toString('hex')};`;
  let text = `T${hex2(signal)}${reason}thread:${threadIdText(x.thread ?? stop.thread, o.multiprocess, ids)};`;
  if (regs) {
    for (const n of x.expedite ?? o.desc.expedite) {
      const reg = o.desc.registers[n]!;
      if (regs.has(reg.name)) text += `${hex2(n)}:${encodeRegister(reg, regs)};`;
    }
  }
  return text;
}

/**
 * What stopReply writes for a step and for a breakpoint hit, in the parts a target that sends them
 * itself takes (StopReplyAhead): the text before the thread's id and the expedited registers after
 * it. Undefined when a reply would carry a register that is not 64 bits wide.
 */
export function stopReplyPlan(fd: number, o: StopReplyOptions): StopReplyPlan | undefined {
  const registers = o.desc.expedite.map((number) => ({ number, name: o.desc.registers[number]!.name, bits: o.desc.registers[number]!.bits }));
  if (registers.some((r) => r.bits !== 64)) return undefined;
  const thread = `thread:${o.multiprocess ? `p${(o.ids ?? INDEX_IDS).pid.toString(16)}.` : ''}`;
  return {
    fd,
    step: `T${hex2(5)}${thread}`,
    breakpoint: o.hardwareIds.size > 0 ? undefined : `T${hex2(5)}${o.swbreak ? 'swbreak:;' : ''}${thread}`,
    registers: registers.map(({ number, name }) => ({ number, name })),
  };
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/**
 * A console line for stops gdb has no words for (it would only say SIGTRAP or SIGSEGV), sent as
 * an O packet before the stop reply. Undefined for stops gdb describes itself.
 */
export function stopNote(stop: StopStatus): string | undefined {
  const r = stop.reason;
  const at = `0x${stop.pc.toString(16)}`;
  switch (r.kind) {
    case 'halted':
      return `dbg: the guest halted at ${at} (hlt with interrupts off)\n`;
    case 'fault':
      return `dbg: the guest stopped on a fault at 0x${r.pc.toString(16)}: ${r.fault}${r.addr !== undefined ? ` (address 0x${r.addr.toString(16)})` : ''}\n`;
    case 'panic':
      return `dbg: the guest panicked: ${r.message}\n`;
    case 'guest-breakpoint':
      return `dbg: the guest entered the debugger at ${at} (${r.how === 'int3' ? 'int3 with no guest handler' : `debug port 0x520, value 0x${(r.code ?? 0).toString(16)}`})\n`;
    default:
      return undefined;
  }
}
