/**
 * The target ops vector: what every consumer of a debug target (the command language, the GDB
 * server, the control protocol) may ask of it.
 *
 * Modelled on illumos MDB's mdb_tgt_ops_t and the gdbstub crate's extensions: a small required
 * core that every target fills, plus optional capabilities under `target.caps`. A consumer asks for
 * a capability with `need(target, 'reverse')` and gets either the implementation or a DbgError
 * ('unsupported') that names the target and the operation; it never probes with `typeof`.
 *
 * Units:
 *   - virtual addresses, physical addresses and register values are bigint;
 *   - lengths are numbers (a single read is never larger than memory can hold);
 *   - `Seq` is a position in a recorded history: the 0-based count of instructions executed.
 *
 * Errors: every operation throws DbgError for expected failures (unmapped, unsupported, bad-input,
 * corrupt, state), never anything else.
 *
 * Threading: the core operations are synchronous (reads of files, of emulator memory and of SQLite
 * are all synchronous and fast). Only operations that run the guest return promises, so that a
 * running guest yields to the event loop between bounded slices and can be interrupted.
 */

import type { Arch, Registers } from '../arch/arch.js';
import { errors } from '../common/errors.js';
import type { SymbolSpace } from '../symbols/symbol-space.js';

export type VirtAddr = bigint;
export type PhysAddr = bigint;
export type Seq = bigint;

/** A range of the target's virtual address space and where its bytes come from. */
export interface Mapping {
  readonly start: VirtAddr;
  /** Exclusive. */
  readonly end: VirtAddr;
  /** 'r', 'w', 'x' letters, '-' for absent, e.g. 'r-x'. */
  readonly perms: string;
  /** The mapped file's path, a segment name, or '' for anonymous memory. */
  readonly name: string;
  /** For file-backed mappings: the offset of `start` in that file. */
  readonly fileOffset?: bigint;
  /** False where the dump records the range but holds none of its bytes (reads give zeros or fail). */
  readonly present?: boolean;
}

/**
 * A thread of the target: a process thread of a core, a vCPU of a kernel dump or emulated guest.
 * `index` is dbg's 1-based number (as in gdb's `info threads` and `N::thread`); `tid` is the
 * operating system's LWP id or the CPU number.
 */
export interface ThreadInfo {
  readonly index: number;
  readonly tid: number;
  readonly name: string;
  /** A short state for listings: 'stopped', 'halted', 'running', a signal name... */
  readonly state: string;
}

/** Why the target is where it is. */
export type StopReason =
  | { kind: 'none' } // a dump: nothing ever ran
  | { kind: 'signal'; signal: number; name: string } // the signal a core died of
  | { kind: 'panic'; message: string }
  | { kind: 'step' }
  | { kind: 'breakpoint'; id: number; addr: VirtAddr }
  | { kind: 'watchpoint'; id: number; addr: VirtAddr; access: WatchKind; length: number; io?: boolean } // io: addr is an I/O port
  | { kind: 'interrupted' } // Ctrl-C, the GDB 0x03 byte, Target.interrupt()
  | { kind: 'halted' } // hlt with interrupts off
  // KMDB's deliberate entry: the guest asked for the debugger, by an int3 it has no handler for
  // (pc after the int3) or by writing `code` to the dbg machine's debug port (0x520)
  | { kind: 'guest-breakpoint'; how: 'int3' | 'port'; code?: number }
  | { kind: 'fault'; fault: string; pc: VirtAddr; addr?: VirtAddr } // invalid opcode, unmapped fetch, triple fault...
  | { kind: 'exited'; code: number }
  // a live process (ProcessControl): what ptrace reports
  | { kind: 'killed'; signal: number; name: string } // ended by a signal
  | { kind: 'detached' } // dbg let it go; it runs on
  | { kind: 'syscall'; nr: number; name: string; entry: boolean; args?: bigint[]; rval?: bigint }
  | { kind: 'thread-created'; tid: number }
  | { kind: 'thread-exited'; tid: number; code?: number }
  | { kind: 'fork'; child: number; vfork: boolean } // the child was detached and runs on
  | { kind: 'vfork-done' } // the vfork child exec'd or exited: the parent runs again, breakpoints back in
  | { kind: 'exec'; path: string }
  | { kind: 'library'; loaded: string[]; unloaded: string[] }
  | { kind: 'history-begin' } // reverse execution reached the start of the recording
  | { kind: 'history-end' }; // replay reached the end of the recording

export interface StopStatus {
  readonly reason: StopReason;
  /** The thread the stop belongs to (1-based index). */
  readonly thread: number;
  readonly pc: VirtAddr;
  /** Position in history, for targets that have one. */
  readonly seq?: Seq;
}

// ---------------------------------------------------------------------------------------------
// Optional capabilities
// ---------------------------------------------------------------------------------------------

/** One level of a page-table walk, for `::vtop`. */
export interface TranslationStep {
  readonly level: string; // 'PML4', 'PDPT', 'PD', 'PT'
  readonly index: number;
  readonly entryAddr: PhysAddr;
  readonly entry: bigint;
}

export interface Translation {
  readonly virt: VirtAddr;
  /** Undefined when the walk ended at a non-present entry. */
  readonly phys?: PhysAddr;
  readonly pageSize?: number;
  readonly steps: readonly TranslationStep[];
  /** Why there is no physical address, e.g. 'PTE[13] = 0, not present'. */
  readonly fault?: string;
  /** Access rights of the page, when the walk reached one (all levels combined, as the MMU does). */
  readonly writable?: boolean;
  readonly user?: boolean;
  readonly executable?: boolean;
}

export interface PhysicalMemory {
  readPhysical(addr: PhysAddr, length: number): Buffer;
  /** Translate through the page tables of `thread` (default: the selected thread). */
  translate(addr: VirtAddr, thread?: number): Translation;
  /** Ranges of physical memory the target holds. */
  physicalRanges(): readonly { start: PhysAddr; end: PhysAddr }[];
}

export interface MemoryWriter {
  writeVirtual(addr: VirtAddr, data: Buffer): void;
  writePhysical?(addr: PhysAddr, data: Buffer): void;
}

export interface RegisterWriter {
  writeRegister(thread: number, name: string, value: bigint): void;
}

export type WatchKind = 'read' | 'write' | 'access' | 'exec';

/** Running the guest forward. Every promise settles with the stop that ended the run. */
export interface ExecutionControl {
  /**
   * Execute `count` (default 1) instructions of `thread` alone, as KMDB steps one CPU: the other
   * threads stay where they stopped. A trace, whose interleaving is fixed, steps through its
   * history instead. Stops earlier at a breakpoint, watchpoint, fault or interrupt. A target that
   * took the step at once may return the stop itself rather than a promise (the GDB server then
   * answers a stepi without a trip through the microtask queue); it may then also throw rather
   * than reject.
   */
  step(thread: number, count?: number): StopStatus | Promise<StopStatus>;
  /**
   * Run until a breakpoint, watchpoint, fault, halt or interrupt. `only`: run that thread alone
   * (the others stay stopped) where the target can — a live guest; a trace replays as recorded.
   */
  resume(only?: number): Promise<StopStatus>;
  /** Ask a running resume() to stop soon (within 10 ms); harmless when stopped. */
  interrupt(): void;
  readonly running: boolean;
}

export interface BreakpointSpec {
  /** Virtual address; for deferred breakpoints, undefined until the symbol resolves. */
  readonly addr?: VirtAddr;
  readonly symbol?: string;
}

export interface Breakpoints {
  /**
   * Returns the breakpoint's id. `followIfunc`: at an IFUNC's resolver (a live process), the
   * breakpoint moves to the function the resolver returns when it next runs, as gdb means to do;
   * without it (gdb's Z0: gdb follows IFUNCs itself) it stays on the resolver.
   */
  addBreakpoint(addr: VirtAddr, options?: { followIfunc?: boolean }): number;
  removeBreakpoint(id: number): void;
  /**
   * `emulate`: a target with few hardware watchpoints (a live process: x86's four debug registers)
   * may watch writes beyond them in software, at a cost watchpointNote() states; without it, such
   * a watchpoint is refused (gdb's Z2, which gdb answers with its own software watchpoints).
   */
  addWatchpoint(addr: bigint, length: number, kind: WatchKind, physical?: boolean, options?: { emulate?: boolean }): number;
  /** Optional: how watchpoint `id` is watched, when that costs more than hardware does (undefined: nothing to say). */
  watchpointNote?(id: number): string | undefined;
  /** Optional: a watchpoint on I/O ports [port, port + length) (x86 IN = read, OUT = write). */
  addIoWatchpoint?(port: number, length: number, kind: 'read' | 'write' | 'access'): number;
  removeWatchpoint(id: number): void;
  /**
   * Optional: a breakpoint for a step over / step out. It stops only when `when(thread)` holds,
   * goes at its first stop, and that stop is reported as the end of a step (reason 'step').
   * Removable with removeBreakpoint until then.
   */
  addStepBreakpoint?(addr: VirtAddr, when: (thread: number) => boolean): number;
}

/** Going back in a recorded history (live with recording, replay). */
export interface ReverseExecution {
  /**
   * First and last seq the history holds; `now` is where the view is. `beyond`: the live guest's
   * seq when it ran on past the end of its recording (recording stopped at a size limit or a failed write).
   */
  bounds(): { first: Seq; last: Seq; now: Seq; beyond?: Seq };
  /** One instruction back; the stop itself (or a throw) when the target took it at once, as ExecutionControl.step may. */
  stepBack(thread: number): StopStatus | Promise<StopStatus>;
  /** Run backwards to the last breakpoint or watchpoint hit before now, or the start of history. */
  resumeBack(): Promise<StopStatus>;
  seek(seq: Seq): Promise<StopStatus>;
  /**
   * False for a GDB stub's reverse execution (QEMU record/replay, rr, dbg's own server): it runs
   * backwards but has no positions dbg can name, so bounds() and seek() throw 'unsupported'.
   */
  readonly positions?: false;
  /**
   * A live recorded target only: make the current position the present — the guest is put back
   * in its exact state there and the recorded history after it is deleted (then writes are allowed).
   */
  discard?(): StopStatus;
}

/** One memory write of a recorded history. */
export interface HistoryWrite {
  /** The writing instruction (or, for a host write, the instruction it came before). */
  readonly seq: Seq;
  /** True for writes not made by a guest instruction (interrupt delivery, debugger writes). */
  readonly host: boolean;
  readonly vcpu?: number;
  /** pc of the writing instruction (guest writes). */
  readonly pc?: VirtAddr;
  readonly phys: PhysAddr;
  readonly old: Buffer;
  readonly data: Buffer;
}

/**
 * One call of a recorded history: a frame entered by a call instruction or by an interrupt, on
 * one vCPU (how calls are found: src/store/call-walker.ts).
 */
export interface HistoryCall {
  /** The callee's first instruction (an interrupt handler's). */
  readonly callSeq: Seq;
  /** The ret/iret that left it; undefined when the history ends inside it. */
  readonly returnSeq?: Seq;
  /** 0-based vCPU. */
  readonly vcpu: number;
  /** Frames of the vCPU open below this one. */
  readonly depth: number;
  /** The call instruction, or the interrupted pc. */
  readonly callerPc: VirtAddr;
  /** symbol+offset of callerPc; undefined without symbols. */
  readonly caller?: string;
  readonly calleePc: VirtAddr;
  /** The callee's symbol (+offset when not at its start); undefined without symbols. */
  readonly callee?: string;
  /** Instructions the vCPU ran from the entry through the return (or to the end of the history). */
  readonly instructions: number;
  /** The vector of a frame an interrupt opened. */
  readonly vector?: number;
}

/** Questions about a recorded history that need no re-execution (replay, live with recording). */
export interface History {
  /** The last write to any byte of [addr, addr + length) before the current position. */
  whoWrote(addr: VirtAddr, length: number, thread?: number): HistoryWrite | undefined;
  /**
   * Every write to [addr, addr + length) in [from, to) (default: the whole history), oldest first,
   * at most `limit` of them: the cost is that of the writes returned (and the chunks holding
   * them), not that of the range's whole history.
   */
  writes(addr: VirtAddr, length: number, thread?: number, from?: Seq, to?: Seq, limit?: number): HistoryWrite[];
  /**
   * The first `limit` seqs (default 100) at which an instruction at `pc` ran, oldest first, and
   * whether it ran more often; `count` (how many times in all) only when asked for, since it costs
   * a scan of the whole history.
   */
  when(pc: VirtAddr, limit?: number, opts?: { count?: boolean }): { seqs: Seq[]; more: boolean; count?: number };
  /** A summary of the recording (for ::traceinfo). */
  summary(): Record<string, string | number>;
  /**
   * Every call of the history in the order frames opened (derived on first use, then cached):
   * what ::calls lists and the `calls` table of sql() holds.
   */
  calls(): readonly HistoryCall[];
  /**
   * Instructions per pc in each of `buckets` equal slices of the history (the last may be
   * shorter): [bucket, pc, count] triples, for ::timeline. `width` is the slice length.
   */
  activity(buckets: number): { width: number; first: Seq; end: Seq; rows: [number, VirtAddr, number][] };
  /** Run read-only SQL over the trace's documented views. */
  sql(query: string): { columns: string[]; rows: unknown[][]; truncated?: boolean };
  /** The same on another thread, so that `signal` (Ctrl-C) stops it: DbgError('interrupted'). */
  sqlInterruptible(query: string, signal?: AbortSignal): Promise<{ columns: string[]; rows: unknown[][]; truncated?: boolean }>;
  /** The trace file. */
  readonly path: string;
}

/** What a user-space process target knows of the process beyond its memory. */
export interface ProcessImage {
  /** The auxiliary vector as the kernel laid it out (NT_AUXV): (type, value) words up to AT_NULL. */
  auxv(): Buffer;
}

/** One thing that happened in a live process, as ::evlog lists it (oldest first). */
export interface ProcessEvent {
  readonly seq: number;
  /** 'thread-created', 'thread-exited', 'library', 'exec', 'fork', 'vfork', 'signal', 'syscall-entry', 'syscall-exit', 'exit', 'killed'. */
  readonly kind: string;
  /** The OS thread id it happened on. */
  readonly tid: number;
  readonly detail: string;
}

/** What to stop on for events of a live process (all false at start). */
export interface ProcessCatches {
  readonly exec?: boolean;
  readonly libraries?: boolean;
  readonly threads?: boolean;
  readonly fork?: boolean;
  readonly vfork?: boolean;
  /** Stop when a vfork child has exec'd or exited and the parent goes on (gdb's vforkdone). */
  readonly vforkDone?: boolean;
}

/**
 * A stop reply the target sends itself, from where it sees the stop (a live process: its tracer
 * thread), before the server has run: for the end of a step and for a breakpoint hit with nothing
 * more to it (no step-over or IFUNC logic on it, not the dynamic linker's). A GDB server arms it
 * for the next step() or resume(), and of a reply that went this way sends only what did not go out.
 */
export interface StopReplyAhead {
  /** For the next step() (of one instruction) or resume() only; `serve`: see ServedRequests. */
  arm(plan: StopReplyPlan, serve?: ServedRequests): void;
  /** The reply sent for the last stop (its framing included) and how many of its bytes went; undefined: none. */
  sent(): { readonly bytes: Buffer; readonly written: number } | undefined;
  /**
   * The requests the target answered itself during the last run (ServedRequests): how many, and
   * which of the points it was given are parked now (z0 answered last), in their order. The run's
   * stop is then the stop of the last resume among them. Undefined: it answered none.
   */
  served(): { readonly requests: number; readonly parked: readonly boolean[] } | undefined;
}

/**
 * The client's next requests, which a target that sent a stop reply ahead may answer itself while
 * its run is not over for the server (a live process: its tracer thread, while the JS thread
 * waits), as the server would: memory reads (m), the client's software breakpoints taken out and
 * put back (z0/Z0, lazily as the server does: out at the next resume), qXfer:threads, a step of
 * the stopped thread, and a continue while none of those points is out. Anything else, in any other
 * form, is left to the server. Armed only while the client is in no-ack mode and the server has
 * read and answered everything it sent.
 */
export interface ServedRequests {
  /** The client's software breakpoints (Z0,ADDR,KIND), none of them parked. */
  readonly points: readonly { readonly addr: bigint; readonly kind: number }[];
  /**
   * qXfer:threads' document as the server renders it now, with a NUL where each thread's name goes
   * (the target reads the names at the stop, as the server would), and the OS ids of the threads
   * named, in that order. Undefined: the target leaves qXfer:threads to the server.
   */
  readonly threads?: { readonly doc: string; readonly tids: readonly number[] };
}

export interface StopReplyPlan {
  /** The socket to write to, which nothing else writes to until the run ends. */
  readonly fd: number;
  /** A step's reply up to the stopping thread's wire id, its OS id (LWP) in hex: `T05thread:p1f.`. */
  readonly step: string;
  /** A breakpoint hit's, e.g. `T05swbreak:;thread:p1f.`; undefined: hits are not sent ahead. */
  readonly breakpoint?: string;
  /** Registers after the thread id, each as `NN:<value in target byte order, hex>;` (64-bit ones only). */
  readonly registers: readonly { readonly number: number; readonly name: string }[];
}

/**
 * A live process's own controls: leave it, end it, and choose the events that stop it. Events
 * that do not stop are still logged (events()).
 */
export interface ProcessControl {
  readonly pid: number;
  /** The OS thread id (LWP) of thread `index`, also of one that has ended; undefined if never seen. */
  tidOf(index: number): number | undefined;
  /** The thread index of OS thread `tid`, if it was ever seen. */
  indexOf(tid: number): number | undefined;
  /** Breakpoints and watchpoints out, the process runs on; the target is then closed for use. */
  detach(): void;
  kill(): void;
  /** Stop at entry and/or exit of system call `nr` (both false: no longer). */
  catchSyscall(nr: number, entry: boolean, exit: boolean): void;
  syscallCatches(): ReadonlyMap<number, { entry: boolean; exit: boolean }>;
  /** gdb's `handle SIG [no]stop [no]pass`. Default: stop and pass, except SIGALRM, SIGURG, SIGCHLD, SIGWINCH, SIGPROF, SIGVTALRM, SIGIO (pass quietly). */
  signalPolicy(signal: number, stop: boolean, pass: boolean): void;
  signalPolicies(): ReadonlyMap<number, { stop: boolean; pass: boolean }>;
  catchEvents(c: ProcessCatches): void;
  catches(): Required<ProcessCatches>;
  events(): readonly ProcessEvent[];
  syscallName(nr: number): string | undefined;
  syscallNumber(name: string): number | undefined;
}

/** Write the target's state as an ELF core that `dbg open` reads back. */
export interface Snapshot {
  writeCore(path: string): void;
}

/** Text the guest wrote to its console. */
export interface ConsoleLog {
  consoleText(): string;
}

/** A segment register's (or LDT's, TR's, GDT's, IDT's) descriptor cache, as an x86 CPU holds it. */
export interface DescriptorCache {
  readonly selector: number;
  readonly base: bigint;
  readonly limit: number;
  /** The descriptor's attribute bits in QEMU's layout (type, S, DPL, P at 8-15; AVL, L, D/B, G at 20-23). */
  readonly flags: number;
}

/** See Target.descriptors. */
export interface CpuDescriptors {
  /** es cs ss ds fs gs ldt tr gdt idt. */
  readonly segments: Readonly<Record<string, DescriptorCache>>;
  /** QEMU's hflags (CPL in bits 0-1, the interrupt shadow in bit 3, SMM in bit 19), when known. */
  readonly hflags?: number;
  /** The vCPU waits in hlt, when known. */
  readonly halted?: boolean;
  /** DR0-DR3, DR6, DR7, when known. */
  readonly debug?: readonly bigint[];
}

export interface Capabilities {
  readonly physical?: PhysicalMemory;
  readonly writeMemory?: MemoryWriter;
  readonly writeRegisters?: RegisterWriter;
  readonly execution?: ExecutionControl;
  readonly breakpoints?: Breakpoints;
  readonly reverse?: ReverseExecution;
  readonly snapshot?: Snapshot;
  readonly console?: ConsoleLog;
  readonly history?: History;
  readonly process?: ProcessImage;
  readonly processControl?: ProcessControl;
  readonly stopReplyAhead?: StopReplyAhead;
}

export type CapabilityName = keyof Capabilities;

/** Human names for the "not supported" message. */
const capabilityWhat: Record<CapabilityName, string> = {
  physical: 'physical memory and address translation',
  writeMemory: 'writing memory',
  writeRegisters: 'writing registers',
  execution: 'execution control',
  breakpoints: 'breakpoints and watchpoints',
  reverse: 'reverse execution',
  snapshot: 'writing a core snapshot',
  console: 'a console log',
  history: 'history queries (a recorded trace)',
  process: 'a process image (auxiliary vector)',
  processControl: 'live process control (detach, kill, syscall and signal catching)',
  stopReplyAhead: 'stop replies sent from where the stop is seen',
};

// ---------------------------------------------------------------------------------------------
// The required core
// ---------------------------------------------------------------------------------------------

export interface Target {
  /** For messages: 'core "a.core"', 'kernel dump "vmcore.0"', 'emulated guest "kernel.elf"'. */
  readonly name: string;
  /** 'file' | 'process-core' | 'kernel-dump' | 'emulator' | 'replay'. */
  readonly kind: string;
  readonly arch: Arch;
  readonly caps: Capabilities;

  /**
   * `length` bytes at virtual address `addr` as the selected thread sees them. Throws
   * DbgError('unmapped') naming the first address that has no bytes; never returns short.
   */
  readVirtual(addr: VirtAddr, length: number, thread?: number): Buffer;

  /** The virtual address ranges the target knows, sorted by start. */
  mappings(): readonly Mapping[];

  threads(): readonly ThreadInfo[];

  /**
   * All registers of `thread` (1-based index). Throws bad-input for an unknown thread. `only`:
   * the caller needs just these (a GDB stop reply: pc, sp, fp); a target may then read only them,
   * or ignore it and return them all.
   */
  registers(thread: number, only?: readonly string[]): Registers;

  /**
   * x86 state beyond the register file, as QEMU's `info registers` shows it: the descriptor
   * caches, hidden flags, debug registers. Undefined (or absent) where the source does not hold it.
   */
  descriptors?(thread: number): CpuDescriptors | undefined;

  /** Symbols of every module the target knows (executable, libraries, kernel). */
  readonly symbols: SymbolSpace;

  status(): StopStatus;

  /**
   * A target's own way to find a frame's caller (a Linux kernel dump: its ORC tables), tried
   * before CFI and frame pointers. `regs` by register name; `signal`: the frame was interrupted,
   * so its pc is not a return address. 'end': the bottom of the stack; undefined: no answer here.
   */
  unwindStep?(
    thread: number,
    regs: ReadonlyMap<string, bigint>,
    signal: boolean,
  ): { readonly regs: Map<string, bigint> | 'end'; readonly signal: boolean; readonly user: boolean } | undefined;

  /** Problems met while opening (a library not found, a note that lies), printed once at open. */
  readonly warnings?: readonly string[];

  /** Extra lines for `::status` about what the target is (dump flavour, process, memory). */
  describe?(): string[];

  /** Release files, emulator instances, database handles. Idempotent. */
  close(): void;
}

/** The capability `name` of `target`, or DbgError('unsupported') naming both. */
export function need<K extends CapabilityName>(target: Target, name: K): NonNullable<Capabilities[K]> {
  const cap = target.caps[name];
  if (!cap) throw errors.unsupported(target.name, capabilityWhat[name]);
  return cap as NonNullable<Capabilities[K]>;
}

/** Where a target's recorded history is, or undefined for a target without positions in one. */
export function historyBounds(target: Target): ReturnType<ReverseExecution['bounds']> | undefined {
  const r = target.caps.reverse;
  return r && r.positions !== false ? r.bounds() : undefined;
}

/** Read a little- or big-endian unsigned integer of `size` bytes at `addr`. */
export function readUint(target: Target, addr: VirtAddr, size: 1 | 2 | 4 | 8, thread?: number): bigint {
  const b = target.readVirtual(addr, size, thread);
  const le = target.arch.littleEndian;
  switch (size) {
    case 1:
      return BigInt(b[0]!);
    case 2:
      return BigInt(le ? b.readUInt16LE(0) : b.readUInt16BE(0));
    case 4:
      return BigInt(le ? b.readUInt32LE(0) : b.readUInt32BE(0));
    case 8:
      return le ? b.readBigUInt64LE(0) : b.readBigUInt64BE(0);
  }
}

export function readPointer(target: Target, addr: VirtAddr, thread?: number): bigint {
  return readUint(target, addr, target.arch.pointerBytes as 4 | 8, thread);
}
