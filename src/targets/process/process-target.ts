/**
 * A live Linux process on x86-64 as a dbg target (`dbg run PROG`, `dbg attach PID`), through
 * native/ptrace (ptrace-addon.ts): every thread traced, all-stop.
 *
 *   core         registers (PTRACE_GETREGS, the XSAVE area for x87/SSE/AVX), memory through
 *                /proc/PID/mem (breakpoint bytes shown as the program's), threads in the order they
 *                were first seen, mappings from /proc/PID/maps
 *   modules      as a process core has them: the executable and every mapped ELF file from
 *                /proc/PID/maps, named by the dynamic linker's link_map, the vDSO from memory;
 *                separate debug files by build-id when DWARF is asked for (symbols/dwarf)
 *   execution    continue (all threads, or one), step (one thread), interrupt (SIGSTOP)
 *   breakpoints  int3, stepped over by the tracer (one on an IFUNC's resolver moves to the function
 *                the resolver returns, see followIfunc); watchpoints in DR0-DR3, and write watchpoints
 *                beyond those four in software, by single-stepping (see addWatchpoint)
 *   events       (ProcessControl) thread created/exited, library loaded/unloaded (a breakpoint on
 *                the dynamic linker's r_brk; pending breakpoints arm as their symbol arrives), exec
 *                (modules reloaded), fork/vfork (the child is detached and runs on), signals
 *                (stop/pass per signal), syscall entry/exit, exit
 *   snapshot     `::dump FILE`: an ELF core as gcore writes it (process-core-writer.ts)
 *
 * close() never leaves the process broken: breakpoints and debug registers come out, signals we
 * sent are absorbed, and the process is detached (attached) or killed (started by dbg).
 */

import { closeSync, openSync, readFileSync, readSync, readlinkSync, statSync } from 'node:fs';
import type { Registers } from '../../arch/arch.js';
import { X86_64 } from '../../arch/x86-64.js';
import { X86_64_SYSCALLS } from '../../arch/x86-64-syscalls.js';
import { BufferByteSource } from '../../common/byte-source.js';
import { DbgError, errors } from '../../common/errors.js';
import { hex, hexAddr } from '../../common/format.js';
import { ElfFile } from '../../symbols/elf-file.js';
import { SymbolSpace, type Module } from '../../symbols/symbol-space.js';
import { lazyElfModule } from '../unwind.js';
import { AT_ENTRY, AT_SYSINFO_EHDR, parseAuxv, parseXstate, signalName } from '../elfcore/core-notes.js';
import { readLinkMap } from '../elfcore/process-core-solibs.js';
import type { Breakpoints, Capabilities, ExecutionControl, Mapping, MemoryWriter, ProcessControl, ProcessEvent, RegisterWriter, ServedRequests, StopReason, StopReplyAhead, StopReplyPlan, StopStatus, Target, ThreadInfo, VirtAddr, WatchKind } from '../target.js';
import { decodeStop, ptraceAddon, REGS_GET, REGS_SET, STOP_BYTES, XSTATE_GET, XSTATE_SET, type NativeStop, type PtraceAddon } from './ptrace-addon.js';
import { writeProcessCore } from './process-core-writer.js';
import { dryTracer } from './dry-tracer.js';

export interface ProcessOptions {
  /** Working directory of a started program. */
  readonly cwd?: string;
  /** Keep address-space randomization (default: off, as gdb's `set disable-randomization on`). */
  readonly randomize?: boolean;
}

interface Watch {
  readonly addr: bigint;
  readonly length: number;
  readonly kind: WatchKind;
  /** 0-3: a debug register; SOFT_SLOT + n: the tracer's software watchpoint n. */
  readonly slot: number;
}

/** Software watchpoints are reported as slots from here on (ptrace.c). */
const SOFT_SLOT = 4;
const SOFT_MAX = 16;
const SOFT_BYTES = 4096;
/** What a software watchpoint costs, measured (README: live processes). */
const SOFT_COST = 'thousands of times slower than running free';

const PAGE = 0x1000n;
const XSTATE_BYTES = 16384;
const GP_BYTES = 27 * 8;
const MAX_EVENTS = 1000;
const SEGMENTS = new Set(['cs', 'ss', 'ds', 'es', 'fs', 'gs']);
/** Where each general register is in user_regs_struct (PTRACE_GETREGS), as a core's NT_PRSTATUS has them. */
const GP_OFFSET = new Map(X86_64.prstatusRegisters.map((n, i) => [n, i * 8]));

/** General register `name` from a user_regs_struct (segment selectors are 16 bits). */
function gpValue(gp: Buffer, name: string): bigint {
  const v = gp.readBigUInt64LE(GP_OFFSET.get(name)!);
  return SEGMENTS.has(name) ? v & 0xffffn : v;
}

export class ProcessTarget implements Target {
  readonly kind = 'process';
  readonly arch = X86_64;
  readonly symbols = new SymbolSpace();
  readonly warnings: string[] = [];
  readonly caps: Capabilities;
  name: string;
  readonly pid: number;
  /** The program file (readlink /proc/PID/exe at attach, or PROG). */
  exe: string;

  private readonly numbers = new Map<number, number>();
  private nextNumber = 1;
  private xsaveCache = new Map<number, Buffer>();
  private mapCache?: Mapping[];
  private last: StopStatus;
  private isRunning = false;
  private gone = false;
  private readonly bpIds = new Map<number, bigint>();
  private readonly bpCount = new Map<bigint, number>();
  private readonly watches = new Map<number, Watch>();
  private nextId = 1;
  private readonly stepBps = new Map<number, (thread: number) => boolean>();
  /** Breakpoints on an IFUNC's resolver waiting to move to the function it returns. */
  private readonly ifuncBps = new Set<number>();
  /** Resolvers running now, by the address they return to: the thread, and the breakpoints to move. */
  private readonly ifuncReturns = new Map<bigint, { tid: number; resolver: bigint; ids: number[] }>();
  /** What each resolver returned, for breakpoints set on it later. */
  private readonly ifuncResolved = new Map<bigint, bigint>();
  /** Modules by the path of the mapped file (or '[vdso]'). */
  private readonly loaded = new Map<string, Module>();
  private readonly opened: ElfFile[] = [];
  private rBrk?: bigint;
  private rBrkOwned = false;
  private readonly eventLog: ProcessEvent[] = [];
  private catchExec = false;
  private catchLibraries = false;
  private catchThreads = false;
  private catchFork = false;
  private catchVfork = false;
  private catchVforkDone = false;
  private readonly syscalls = new Map<number, { entry: boolean; exit: boolean }>();
  private readonly signals = new Map<number, { stop: boolean; pass: boolean }>();

  private constructor(
    private readonly native: PtraceAddon,
    pid: number,
    readonly started: boolean,
    /** A rehearsal's double (rehearsalDouble): no modules, nothing of its own to open. */
    dry = false,
  ) {
    this.pid = pid;
    this.exe = safeReadlink(`/proc/${pid}/exe`) ?? '';
    this.name = `process ${pid}${this.exe ? ` (${this.exe.slice(this.exe.lastIndexOf('/') + 1)})` : ''}`;
    for (const tid of native.threads().sort((a, b) => (a === pid ? -1 : b === pid ? 1 : a - b))) this.number(tid);
    this.last = { reason: { kind: started ? 'none' : 'interrupted' }, thread: 1, pc: 0n };
    this.last = { ...this.last, pc: this.registers(1).get('rip') ?? 0n };
    if (!dry) this.loadModules();
    this.caps = this.capabilities();
  }

  /** Starts `prog` with `args`, stopped at its first instruction (the dynamic linker's entry). */
  static run(prog: string, args: readonly string[], opts: ProcessOptions = {}): ProcessTarget {
    const path = checkProgram(prog);
    const native = ptraceAddon();
    let pid: number;
    try {
      pid = native.spawn(path, [prog, ...args], opts.cwd ?? null, !opts.randomize);
    } catch (e) {
      throw new DbgError('bad-input', `cannot run "${prog}": ${(e as Error).message.replace(/^execve: /, '')}`);
    }
    return new ProcessTarget(native, pid, true);
  }

  /** Attaches to every thread of process `pid`, stopping it where it is. */
  static attach(pid: number): ProcessTarget {
    if (!Number.isSafeInteger(pid) || pid <= 0) throw errors.badInput(`attach ${pid}: not a process id`);
    let exists = true;
    try {
      statSync(`/proc/${pid}`);
    } catch {
      exists = false;
    }
    if (!exists) throw errors.notFound(`attach ${pid}: no such process`);
    if (pid === process.pid) throw errors.badInput(`attach ${pid}: that is dbg itself`);
    const native = ptraceAddon();
    try {
      native.attach(pid);
    } catch (e) {
      const n = (e as { errno?: number }).errno;
      if (n === 1) throw new DbgError('denied', `attach ${pid}: ptrace refused (EPERM): ${permissionHint(pid)}`);
      if (n === 3) throw errors.notFound(`attach ${pid}: no such process`);
      throw new DbgError('io', `attach ${pid}: ${(e as Error).message}`);
    }
    return new ProcessTarget(native, pid, false);
  }

  /**
   * This process as it is now over a dry tracer (dry-tracer.ts), for the GDB server's rehearsal:
   * it steps and hits breakpoints without the program running or anything being written to it.
   */
  rehearsalDouble(): ProcessTarget {
    this.stopped('rehearse');
    const tid = this.tidOf(this.last.thread);
    const gp = Buffer.alloc(GP_BYTES);
    this.native.regs(REGS_GET, tid, gp);
    return new ProcessTarget(dryTracer(this.native, this.pid, gp, this.xsave(tid)), this.pid, this.started, true);
  }

  // --- threads and registers ------------------------------------------------------------------

  private number(tid: number): number {
    let n = this.numbers.get(tid);
    if (n === undefined) this.numbers.set(tid, (n = this.nextNumber++));
    return n;
  }

  private tidOf(thread: number): number {
    if (this.gone) throw errors.state(`${this.name} has ended`);
    const th = this.threads().find((t) => t.index === thread);
    if (th) return th.tid;
    throw errors.badInput(`no thread ${thread} in ${this.name}: threads are ${this.threads().map((t) => t.index).join(', ')}`);
  }

  /**
   * A thread's name is read from /proc only when asked for: a stop reply checks that its thread
   * exists (threads()) and needs no name, and a /proc read cost ~50 µs of each stop at load 13.
   */
  threads(): readonly ThreadInfo[] {
    if (this.gone) return [];
    if (this.threadList && !this.isRunning) return this.threadList;
    const state = this.isRunning ? 'running' : 'stopped';
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    const live = this.native.threads();
    if (this.commFds.size > live.length) this.closeComm((tid) => !live.includes(tid));
    const list = live
      .map((tid) => ({
        index: this.number(tid),
        tid,
        get name() {
          return self.comm(tid);
        },
        state,
      }))
      .sort((a, b) => a.index - b.index);
    if (!this.isRunning) this.threadList = list;
    return list;
  }

  /**
   * The list threads() made at this stop (until the next resume: only a resume changes the
   * threads): a stop reply and gdb's requests after it asked for it 4 times.
   */
  private threadList?: readonly ThreadInfo[];

  /**
   * The general registers come from one PTRACE_GETREGS; the x87/SSE/AVX ones from the XSAVE area,
   * read only when asked for (`only` naming none of them skips it: a stop reply needs pc, sp, fp).
   */
  /**
   * Thread names (/proc/PID/task/TID/comm), read once per stop, each through a descriptor kept
   * open (a read at offset 0 sees the name as it is now): gdb asks for the thread list at every
   * breakpoint hit, and readFileSync made that four system calls instead of one.
   */
  private readonly names = new Map<number, string>();
  private readonly commFds = new Map<number, number>();
  private readonly commBytes = Buffer.alloc(64);
  private comm(tid: number): string {
    let n = this.names.get(tid);
    if (n === undefined) this.names.set(tid, (n = this.readComm(tid)));
    return n;
  }

  private readComm(tid: number): string {
    let fd = this.commFds.get(tid);
    try {
      if (fd === undefined) this.commFds.set(tid, (fd = openSync(`/proc/${this.pid}/task/${tid}/comm`, 'r')));
      const n = readSync(fd, this.commBytes, 0, this.commBytes.length, 0);
      return this.commBytes.toString('utf8', 0, n).trim();
    } catch {
      this.closeComm((t) => t === tid);
      return `LWP ${tid}`;
    }
  }

  /** Closes the name descriptors of the threads `which` picks. */
  private closeComm(which: (tid: number) => boolean): void {
    for (const [tid, fd] of this.commFds) {
      if (!which(tid)) continue;
      this.commFds.delete(tid);
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
  }

  registers(thread: number, only?: readonly string[]): Registers {
    this.stopped('read registers');
    const tid = this.tidOf(thread);
    let gp = this.gpCache.get(tid);
    if (!gp) {
      gp = Buffer.alloc(GP_BYTES);
      this.native.regs(REGS_GET, tid, gp);
      this.gpCache.set(tid, gp);
    }
    // Just those (a stop reply's pc, sp, fp), from the bytes: a Map of all 27 per stop, or a copy
    // of every register, was most of a stop's garbage.
    if (only && only.every((n) => GP_OFFSET.has(n))) return new Map(only.map((n) => [n, gpValue(gp!, n)]));
    let r = this.regCache.get(tid);
    if (!r) {
      r = new Map();
      for (const n of this.arch.prstatusRegisters) r.set(n, gpValue(gp, n));
      try {
        for (const [k, v] of parseXstate(this.xsave(tid), `XSAVE area of thread ${tid}`)) r.set(k, v);
      } catch (e) {
        if (!(e instanceof DbgError)) throw e;
      }
      this.regCache.set(tid, r);
    }
    return new Map(r);
  }

  /**
   * Each thread's user_regs_struct as PTRACE_GETREGS gave it, until the next resume: the stopping
   * thread's is the tracer's, read at the stop (a view of stopBytes), the others' read when asked.
   */
  private readonly gpCache = new Map<number, Buffer>();
  /** Every register of a thread (general and x87/SSE/AVX), decoded once something asked for them all. */
  private readonly regCache = new Map<number, Registers>();
  private readonly scratch = Buffer.alloc(XSTATE_BYTES);
  /** Where the tracer writes each stop (decodeStop). */
  private readonly stopBytes = Buffer.alloc(STOP_BYTES);

  /** The plan the next run may send its stop reply by (StopReplyAhead), taken by that run, and the requests it may answer. */
  private aheadPlan?: StopReplyPlan;
  private aheadServe?: ServedRequests;
  /** What the tracer answered itself in the last run (ServedRequests), until the next run. */
  private aheadServed?: { requests: number; parked: boolean[] };
  /** What the tracer holds of the plans: the last one given, its registers as pairs of (number, offset), the plain breakpoints. */
  private aheadLoaded?: { plan: StopReplyPlan; registers: Int32Array | undefined; plain: Set<bigint> };
  /** What the tracer sent for the last stop, until the next run. */
  private aheadSent?: { bytes: Buffer; written: number };

  /** The raw register sets of `thread` (user_regs_struct, XSAVE area), for ::dump. */
  threadState(thread: number): { gp: Buffer; xsave: Buffer } {
    this.stopped('read registers');
    const tid = this.tidOf(thread);
    const gp = Buffer.alloc(GP_BYTES);
    this.native.regs(REGS_GET, tid, gp);
    return { gp, xsave: this.xsave(tid) };
  }

  private xsave(tid: number): Buffer {
    let x = this.xsaveCache.get(tid);
    if (!x) {
      const n = this.native.regs(XSTATE_GET, tid, this.scratch);
      x = Buffer.from(this.scratch.subarray(0, n));
      this.xsaveCache.set(tid, x);
    }
    return x;
  }

  private writeRegister(thread: number, name: string, value: bigint): void {
    this.stopped('write registers');
    const tid = this.tidOf(thread);
    const gi = this.arch.prstatusRegisters.indexOf(name);
    const mask = (bits: number) => (1n << BigInt(bits)) - 1n;
    if (gi >= 0) {
      const gp = Buffer.alloc(GP_BYTES);
      this.native.regs(REGS_GET, tid, gp);
      gp.writeBigUInt64LE(value & mask(64), gi * 8);
      this.native.regs(REGS_SET, tid, gp);
    } else {
      const x = Buffer.from(this.xsave(tid));
      const m = /^(xmm|st|ymm)(\d+)(h?)$/.exec(name);
      const put = (off: number, bytes: number) => {
        let v = value & mask(bytes * 8);
        for (let i = 0; i < bytes; i++, v >>= 8n) x[off + i] = Number(v & 0xffn);
      };
      if (m && m[1] === 'xmm' && Number(m[2]) < 16) put(160 + Number(m[2]) * 16, 16);
      else if (m && m[1] === 'st' && Number(m[2]) < 8) put(32 + Number(m[2]) * 16, 10);
      else if (m && m[1] === 'ymm' && m[3] === 'h' && Number(m[2]) < 16) put(576 + Number(m[2]) * 16, 16);
      else if (name === 'mxcsr') put(24, 4);
      else if (name === 'fctrl') put(0, 2);
      else if (name === 'fstat') put(2, 2);
      else throw errors.badInput(`register "${name}" cannot be written in ${this.name}: expected a general register, st0-7, xmm0-15, ymm0h-15h, mxcsr, fctrl or fstat`);
      // Mark the component in use (XSTATE_BV) so that the kernel loads what was written.
      if (x.length >= 520) x.writeBigUInt64LE(x.readBigUInt64LE(512) | (name.startsWith('ymm') ? 4n : 3n), 512);
      this.native.regs(XSTATE_SET, tid, x);
    }
    this.gpCache.delete(tid);
    this.regCache.delete(tid);
    this.xsaveCache.delete(tid);
  }

  status(): StopStatus {
    return this.last;
  }

  private stopped(what: string): void {
    if (this.isRunning) throw errors.state(`cannot ${what} while ${this.name} runs (interrupt it first)`);
    if (this.gone) throw errors.state(`cannot ${what}: ${this.name} has ended (${describeEnd(this.last.reason)})`);
  }

  // --- memory ---------------------------------------------------------------------------------

  readVirtual(addr: VirtAddr, length: number): Buffer {
    if (!Number.isSafeInteger(length) || length < 0) throw errors.badInput(`read length ${length} is not a byte count`);
    this.stopped('read memory');
    const out = Buffer.alloc(length);
    if (length === 0) return out;
    const n = this.native.readMemory(addr, out);
    if (n < length) {
      const at = addr + BigInt(n);
      throw new DbgError('unmapped', `read of ${length} bytes at ${hexAddr(addr)} failed: ${n ? `${hexAddr(at)} is ` : ''}not mapped in ${this.name}${this.nearest(at)}`);
    }
    return out;
  }

  private writeVirtual(addr: VirtAddr, data: Buffer): void {
    this.stopped('write memory');
    const n = this.native.writeMemory(addr, data);
    this.mapCache = undefined;
    if (n < data.length) throw new DbgError('unmapped', `write of ${data.length} bytes at ${hexAddr(addr)} failed at ${hexAddr(addr + BigInt(n))}: not mapped in ${this.name}${this.nearest(addr + BigInt(n))}`);
  }

  private nearest(at: bigint): string {
    let best: Mapping | undefined;
    let dist = -1n;
    for (const m of this.mappings()) {
      const d = at < m.start ? m.start - at : at >= m.end ? at - m.end + 1n : 0n;
      if (dist < 0n || d < dist) {
        dist = d;
        best = m;
      }
    }
    return best ? ` (nearest ${hex(best.start)}-${hex(best.end - 1n)}${best.name ? ` ${best.name}` : ''})` : '';
  }

  mappings(): readonly Mapping[] {
    if (this.gone) return [];
    this.mapCache ??= readMaps(this.pid);
    return this.mapCache;
  }

  // --- modules --------------------------------------------------------------------------------

  auxv(): Buffer {
    try {
      return readFileSync(`/proc/${this.pid}/auxv`);
    } catch {
      return Buffer.alloc(0);
    }
  }

  /**
   * Adds a module for every ELF file mapped now and not yet known, drops those no longer mapped,
   * and (re)places the r_brk breakpoint. Returns the names added and removed.
   */
  private loadModules(): { added: string[]; removed: string[] } {
    this.mapCache = undefined;
    const maps = this.mappings();
    const auxv = parseAuxv(this.auxv(), this.arch);
    const byPath = new Map<string, Mapping[]>();
    for (const m of maps) {
      if (!m.name.startsWith('/')) continue;
      const list = byPath.get(m.name);
      if (list) list.push(m);
      else byPath.set(m.name, [m]);
    }
    let linkNames = new Map<string, string>();
    let rDebug: bigint | undefined;
    try {
      const lm = readLinkMap((a, n) => this.readVirtual(a, n), auxv);
      rDebug = lm.rDebug;
      for (const e of lm.entries.slice(1)) {
        const m = maps.find((x) => e.dynamic >= x.start && e.dynamic < x.end);
        if (m && e.name) linkNames.set(m.name, e.name);
      }
    } catch (e) {
      if (!(e instanceof DbgError)) throw e;
      linkNames = new Map();
    }
    const added: string[] = [];
    const removed: string[] = [];
    const entry = auxv.get(AT_ENTRY);
    const exePath = entry !== undefined ? maps.find((m) => entry >= m.start && entry < m.end)?.name : undefined;
    const order = [...byPath.keys()].sort((a, b) => (a === exePath ? -1 : b === exePath ? 1 : 0));
    for (const path of order) {
      if (this.loaded.has(path)) continue;
      const list = byPath.get(path)!;
      const base = list.find((m) => m.fileOffset === 0n);
      if (!base) continue;
      let head: Buffer;
      try {
        head = this.readVirtual(base.start, 4);
      } catch {
        continue;
      }
      if (head.toString('latin1') !== '\x7fELF') continue;
      let elf: ElfFile;
      try {
        elf = ElfFile.open(path);
      } catch (e) {
        if (!(e instanceof DbgError)) throw e;
        this.warnings.push(`cannot read symbols of "${path}" mapped at ${hexAddr(base.start)}: ${e.message}`);
        continue;
      }
      const loads = elf.loadSegments();
      if (loads.length === 0) {
        elf.close();
        continue;
      }
      const firstLoad = loads[0]!.vaddr & ~(PAGE - 1n);
      const bias = base.start - firstLoad;
      const end = list.reduce((e, m) => (m.end > e ? m.end : e), base.end);
      this.opened.push(elf);
      const name = linkNames.get(path) ?? path;
      const mod = this.elfModule(elf, path, name.slice(name.lastIndexOf('/') + 1), bias, base.start, end);
      this.loaded.set(path, mod);
      this.symbols.add(mod);
      added.push(mod.name);
    }
    for (const [path, mod] of this.loaded) {
      if (path === '[vdso]' || byPath.has(path)) continue;
      this.loaded.delete(path);
      this.symbols.remove(mod);
      removed.push(mod.name);
    }
    this.addVdso(auxv.get(AT_SYSINFO_EHDR));
    this.placeRBrk(rDebug);
    return { added, removed };
  }

  private elfModule(elf: ElfFile, path: string, name: string, bias: bigint, start: bigint, end: bigint): Module {
    return lazyElfModule(name, path, elf, bias, start, end, this.warnings);
  }

  private addVdso(at: bigint | undefined): void {
    if (at === undefined || at === 0n || this.loaded.has('[vdso]')) return;
    const m = this.mappings().find((x) => x.start === at);
    if (!m) return;
    try {
      const elf = new ElfFile(new BufferByteSource('[vdso]', this.readVirtual(at, Number(m.end - at))));
      const bias = at - ((elf.loadSegments()[0]?.vaddr ?? 0n) & ~(PAGE - 1n));
      const mod = this.elfModule(elf, '[vdso]', '[vdso]', bias, at, m.end);
      this.loaded.set('[vdso]', mod);
      this.symbols.add(mod);
    } catch (e) {
      if (!(e instanceof DbgError)) throw e;
    }
  }

  /** The dynamic linker calls r_debug.r_brk before and after it changes the list: a breakpoint there sees every dlopen and dlclose. */
  private placeRBrk(rDebug: bigint | undefined): void {
    if (this.rBrk !== undefined) return;
    try {
      // Before the dynamic linker has run (dbg run stops at its first instruction) DT_DEBUG is
      // still 0: its _dl_debug_state is where r_brk will point, as gdb's solib-svr4 finds it.
      const b = rDebug !== undefined && rDebug !== 0n ? this.readVirtual(rDebug + 16n, 8).readBigUInt64LE(0) : (this.symbols.find('_dl_debug_state')?.addr ?? 0n);
      if (b === 0n) return;
      this.rBrk = b;
      this.rBrkOwned = this.native.insertBreakpoint(b);
    } catch (e) {
      if (!(e instanceof DbgError)) throw e;
    }
  }

  // --- execution ------------------------------------------------------------------------------

  private capabilities(): Capabilities {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    const execution: ExecutionControl = {
      step: (thread, count = 1) => this.step(thread, count),
      resume: (only) => this.resume(only),
      interrupt: () => {
        if (this.isRunning) this.native.interrupt();
      },
      get running() {
        return self.isRunning;
      },
    };
    const breakpoints: Breakpoints = {
      addBreakpoint: (a, o) => this.addBreakpoint(a, o?.followIfunc === true),
      removeBreakpoint: (id) => this.removeBreakpoint(id),
      addWatchpoint: (a, n, k, p, o) => this.addWatchpoint(a, n, k, p, o),
      removeWatchpoint: (id) => this.removeWatchpoint(id),
      watchpointNote: (id) => this.watchpointNote(id),
      addStepBreakpoint: (a, when) => {
        const id = this.addBreakpoint(a);
        this.stepBps.set(id, when);
        return id;
      },
    };
    const writeMemory: MemoryWriter = { writeVirtual: (a, d) => this.writeVirtual(a, d) };
    const writeRegisters: RegisterWriter = { writeRegister: (t, n, v) => this.writeRegister(t, n, v) };
    const control: ProcessControl = {
      pid: this.pid,
      detach: () => this.detach(),
      kill: () => this.kill(),
      catchSyscall: (nr, entry, exit) => this.catchSyscall(nr, entry, exit),
      syscallCatches: () => new Map(this.syscalls),
      signalPolicy: (sig, stop, pass) => this.signalPolicy(sig, stop, pass),
      signalPolicies: () => new Map(this.signals),
      catchEvents: (c) => {
        if (c.exec !== undefined) this.catchExec = c.exec;
        if (c.libraries !== undefined) this.catchLibraries = c.libraries;
        if (c.threads !== undefined) this.catchThreads = c.threads;
        if (c.fork !== undefined) this.catchFork = c.fork;
        if (c.vfork !== undefined) this.catchVfork = c.vfork;
        if (c.vforkDone !== undefined) this.catchVforkDone = c.vforkDone;
        this.native.catchEvents(this.catchThreads ? 1 : 0, this.catchFork ? 1 : 0, (this.catchVfork ? 1 : 0) | (this.catchVforkDone ? 2 : 0));
      },
      catches: () => ({ exec: this.catchExec, libraries: this.catchLibraries, threads: this.catchThreads, fork: this.catchFork, vfork: this.catchVfork, vforkDone: this.catchVforkDone }),
      tidOf: (index) => {
        for (const [tid, n] of this.numbers) if (n === index) return tid;
        return undefined;
      },
      indexOf: (tid) => this.numbers.get(tid),
      events: () => {
        this.drain();
        return this.eventLog.slice();
      },
      syscallName: (nr) => X86_64_SYSCALLS[nr],
      syscallNumber: (name) => {
        const i = X86_64_SYSCALLS.indexOf(name);
        return i >= 0 ? i : undefined;
      },
    };
    const stopReplyAhead: StopReplyAhead = {
      arm: (plan, serve) => {
        this.aheadPlan = plan;
        this.aheadServe = serve;
      },
      sent: () => this.aheadSent,
      served: () => this.aheadServed,
    };
    return {
      execution,
      breakpoints,
      writeMemory,
      writeRegisters,
      process: { auxv: () => this.auxv() },
      processControl: control,
      snapshot: { writeCore: (path) => writeProcessCore(this, path) },
      stopReplyAhead,
    };
  }

  /**
   * `followIfunc`: at an IFUNC's resolver, the breakpoint waits there for the resolver to run and
   * then moves to the function it returned (read from rax at the return address), so that it
   * stops where calls go rather than in the dynamic linker's call of the resolver. gdb means to do
   * the same (its "STT_GNU_IFUNC resolver" breakpoints); Debian's gdb 13 never stops there for a
   * dlsym'd or PLT-called cos in libm.
   */
  private addBreakpoint(addr: bigint, followIfunc = false): number {
    this.stopped('insert a breakpoint');
    const resolver = followIfunc && this.isIfunc(addr);
    const at = (resolver && this.ifuncResolved.get(addr)) || addr;
    this.armBreakpoint(at);
    const id = this.nextId++;
    this.bpIds.set(id, at);
    if (resolver && at === addr) this.ifuncBps.add(id);
    return id;
  }

  /** One more breakpoint at `addr` (the int3 goes in for the first). */
  private armBreakpoint(addr: bigint): void {
    const n = this.bpCount.get(addr) ?? 0;
    if (n === 0 && addr !== this.rBrk && !this.native.insertBreakpoint(addr)) {
      throw new DbgError('unmapped', `breakpoint at ${hexAddr(addr)}: the byte there cannot be read or written in ${this.name}${this.nearest(addr)}`);
    }
    this.bpCount.set(addr, n + 1);
  }

  /** One breakpoint fewer at `addr` (the int3 comes out with the last). */
  private disarmBreakpoint(addr: bigint): void {
    const n = (this.bpCount.get(addr) ?? 1) - 1;
    if (n > 0) this.bpCount.set(addr, n);
    else {
      this.bpCount.delete(addr);
      if (!this.gone && addr !== this.rBrk && !this.ifuncReturns.has(addr)) this.native.removeBreakpoint(addr);
    }
  }

  private isIfunc(addr: bigint): boolean {
    const r = this.symbols.resolve(addr);
    return r !== undefined && r.offset === 0n && r.sym.ifunc === true;
  }

  /** A resolver with breakpoints waiting on it was called: catch its return on this thread. */
  private ifuncEntered(tid: number, thread: number, resolver: bigint, ids: number[]): void {
    const rsp = this.registers(thread, ['rsp']).get('rsp')!;
    const ret = this.readVirtual(rsp, 8).readBigUInt64LE(0);
    if (this.ifuncReturns.has(ret)) return;
    if (!this.bpCount.has(ret) && ret !== this.rBrk && !this.native.insertBreakpoint(ret)) return;
    this.ifuncReturns.set(ret, { tid, resolver, ids });
  }

  /** The resolver returned: its breakpoints move to the function it chose (rax). */
  private ifuncReturned(ret: bigint, thread: number): void {
    const r = this.ifuncReturns.get(ret)!;
    this.ifuncReturns.delete(ret);
    if (!this.bpCount.has(ret) && ret !== this.rBrk) this.native.removeBreakpoint(ret);
    const fn = this.registers(thread, ['rax']).get('rax')!;
    this.ifuncResolved.set(r.resolver, fn);
    for (const id of r.ids) {
      const from = this.bpIds.get(id);
      if (from === undefined || !this.ifuncBps.delete(id)) continue;
      this.armBreakpoint(fn);
      this.bpIds.set(id, fn);
      this.disarmBreakpoint(from);
    }
  }

  private removeBreakpoint(id: number): void {
    const addr = this.bpIds.get(id);
    if (addr === undefined) throw errors.badInput(`no breakpoint ${id} in ${this.name}`);
    this.bpIds.delete(id);
    this.stepBps.delete(id);
    this.ifuncBps.delete(id);
    this.disarmBreakpoint(addr);
  }

  /**
   * x86's debug registers watch 1, 2, 4 or 8 aligned bytes each, four at most. A range is split
   * into aligned pieces, one register each. A write watchpoint that needs more registers than are
   * free is, when the caller allows it (`emulate`: the MDB session, which prints watchpointNote),
   * watched in software as gdb does: a continue single-steps the thread it was asked for and the
   * tracer compares the bytes after each instruction, a thousand times slower or so. Read and
   * access watchpoints cannot be done that way (a read changes nothing to compare) and are refused,
   * as is every watchpoint beyond the registers for gdb's Z2 (gdb then watches in software itself).
   */
  private addWatchpoint(addr: bigint, length: number, kind: WatchKind, physical?: boolean, options?: { emulate?: boolean }): number {
    this.stopped('set a watchpoint');
    if (physical) throw errors.unsupported(this.name, 'physical-address watchpoints');
    const pieces: { addr: bigint; len: number }[] = [];
    let a = addr;
    let left = length;
    while (left > 0) {
      let len = 8;
      while (len > 1 && (a % BigInt(len) !== 0n || len > left)) len >>= 1;
      pieces.push({ addr: a, len });
      a += BigInt(len);
      left -= len;
    }
    if (kind === 'exec') pieces.splice(1);
    const used = new Set([...this.watches.values()].map((w) => w.slot));
    const free = [0, 1, 2, 3].filter((s) => !used.has(s));
    if (pieces.length > free.length) {
      const short = `watchpoint on ${length} bytes at ${hexAddr(addr)} needs ${pieces.length} debug register(s), ${free.length} of x86's 4 are free`;
      if (kind === 'write' && options?.emulate) return this.addSoftWatchpoint(addr, length, short);
      const why = kind === 'read' || kind === 'access' ? ` (a ${kind} watchpoint cannot be emulated by single-stepping: a read leaves nothing to compare)` : '';
      throw new DbgError('unsupported', `${short}${why}: delete a watchpoint (::events, ::delete) or watch fewer, aligned bytes`);
    }
    const id = this.nextId++;
    pieces.forEach((p, i) => {
      this.watches.set(i === 0 ? id : -(id * 4 + i), { addr: p.addr, length: p.len, kind, slot: free[i]! });
    });
    this.watchInfo.set(id, { addr, length, kind });
    this.applyDebugRegs();
    return id;
  }

  private readonly watchInfo = new Map<number, { addr: bigint; length: number; kind: WatchKind }>();

  /** A write watchpoint the tracer checks by single-stepping (see addWatchpoint). */
  private addSoftWatchpoint(addr: bigint, length: number, short: string): number {
    if (length > SOFT_BYTES) throw new DbgError('unsupported', `${short}, and a software watchpoint covers at most ${SOFT_BYTES} bytes: watch fewer bytes`);
    const used = new Set([...this.watches.values()].map((w) => w.slot));
    const slot = [...Array(SOFT_MAX).keys()].map((n) => SOFT_SLOT + n).find((s) => !used.has(s));
    if (slot === undefined) throw new DbgError('unsupported', `${short}, and all ${SOFT_MAX} software watchpoints are in use: delete a watchpoint (::events, ::delete)`);
    this.native.softWatch(slot - SOFT_SLOT, addr, length);
    const id = this.nextId++;
    this.watches.set(id, { addr, length, kind: 'write', slot });
    this.watchInfo.set(id, { addr, length, kind: 'write' });
    return id;
  }

  private watchpointNote(id: number): string | undefined {
    const w = this.watches.get(id);
    if (!w || w.slot < SOFT_SLOT) return undefined;
    return (
      `watched in software: x86's 4 debug registers are taken, so each :c single-steps the thread it continues and compares ` +
      `the ${w.length} byte(s) after every instruction (some ${SOFT_COST}; other threads run freely, their writes are seen at that thread's next step)`
    );
  }

  private removeWatchpoint(id: number): void {
    if (!this.watchInfo.has(id)) throw errors.badInput(`no watchpoint ${id} in ${this.name}`);
    this.watchInfo.delete(id);
    for (const k of [...this.watches.keys()]) {
      if (k !== id && !(k < 0 && Math.floor(-k / 4) === id)) continue;
      const slot = this.watches.get(k)!.slot;
      this.watches.delete(k);
      if (slot >= SOFT_SLOT && !this.gone) this.native.softWatch(slot - SOFT_SLOT, 0n, 0);
    }
    if (!this.gone) this.applyDebugRegs();
  }

  private applyDebugRegs(): void {
    let dr7 = 0n;
    const rw = { exec: 0n, write: 1n, read: 3n, access: 3n } as const;
    const ln: Record<number, bigint> = { 1: 0n, 2: 1n, 4: 3n, 8: 2n };
    const addrs: bigint[] = [0n, 0n, 0n, 0n];
    for (const w of this.watches.values()) {
      if (w.slot >= SOFT_SLOT) continue;
      dr7 |= 1n << BigInt(2 * w.slot);
      dr7 |= (rw[w.kind] | ((w.kind === 'exec' ? 0n : ln[w.length]!) << 2n)) << BigInt(16 + 4 * w.slot);
      addrs[w.slot] = w.addr;
    }
    for (let s = 0; s < 4; s++) this.native.setDebugRegs(s, addrs[s]!, dr7);
  }

  private watchOfSlot(slot: number): { id: number; addr: bigint; length: number; kind: WatchKind } | undefined {
    for (const [k, w] of this.watches) {
      if (w.slot !== slot) continue;
      const id = k > 0 ? k : Math.floor(-k / 4);
      const info = this.watchInfo.get(id);
      if (info) return { id, ...info };
    }
    return undefined;
  }

  private catchSyscall(nr: number, entry: boolean, exit: boolean): void {
    if (!Number.isInteger(nr) || nr < 0 || nr >= 1024) throw errors.badInput(`system call number ${nr}: expected 0 to 1023`);
    if (entry || exit) this.syscalls.set(nr, { entry, exit });
    else this.syscalls.delete(nr);
    this.native.catchSyscall(nr, (entry ? 1 : 0) | (exit ? 2 : 0));
  }

  private signalPolicy(sig: number, stop: boolean, pass: boolean): void {
    if (!Number.isInteger(sig) || sig < 1 || sig > 64) throw errors.badInput(`signal ${sig}: expected 1 to 64`);
    this.signals.set(sig, { stop, pass });
    this.native.signalPolicy(sig, stop ? 1 : 0, pass ? 1 : 0);
  }

  private async step(thread: number, count: number): Promise<StopStatus> {
    let st = this.last;
    for (let i = 0; i < count; i++) {
      // only a step of one instruction ends where its reply may be sent ahead
      st = await this.run(2, thread, count === 1);
      if (st.reason.kind !== 'step') break;
    }
    return st;
  }

  private async resume(only?: number): Promise<StopStatus> {
    return this.run(only !== undefined ? 1 : 0, only ?? this.last.thread, true);
  }

  /**
   * One resume of the tracer, repeated past the stops the user did not ask to see. `ahead`: the
   * armed plan (StopReplyAhead) applies to it; any other run drops it.
   */
  private async run(mode: number, thread: number, ahead = false): Promise<StopStatus> {
    const plan = this.aheadPlan;
    const serve = this.aheadServe;
    this.aheadPlan = undefined;
    this.aheadServe = undefined;
    this.aheadSent = undefined;
    this.aheadServed = undefined;
    this.stopped(mode === 2 ? 'step' : 'continue');
    let tid = this.tidOf(thread);
    let requests = 0;
    this.isRunning = true;
    try {
      for (;;) {
        this.invalidate();
        // again after each stop not reported: a library event may have armed breakpoints
        const now = this.native.resume(mode, tid, -1, this.stopBytes, ahead && plan !== undefined && this.loadAhead(plan, serve));
        if (now !== true) await now;
        const ns = decodeStop(this.stopBytes);
        if (ns.served > 0) {
          // The tracer answered requests after the stop it sent: this stop ended the last resume
          // among them, which any resume again (a stop not reported) repeats.
          const n = Math.min(serve?.points.length ?? 0, ns.parked.length);
          requests += ns.served;
          this.aheadServed = { requests, parked: Array.from({ length: n }, (_, i) => ns.parked[i] !== 0) };
          mode = ns.run.mode;
          tid = ns.run.tid;
        }
        this.isRunning = false;
        if (ns.regs) this.gpCache.set(ns.tid, ns.regs);
        const st = this.stopOf(ns);
        // The tracer sends only what stopOf reports as it is (see loadAhead); anything else is a bug.
        if (ns.ahead && st?.reason.kind !== (ns.kind === 'step' ? 'step' : 'breakpoint')) {
          throw new Error(`the tracer sent a stop reply for a ${ns.kind} stop reported as ${st?.reason.kind ?? 'nothing'}`);
        }
        this.aheadSent = ns.ahead;
        if (st) return (this.last = st);
        this.isRunning = true;
      }
    } finally {
      // What was read at the stop (the stopping thread's registers) stays valid until the next run.
      this.isRunning = false;
    }
  }

  /**
   * Gives the tracer `plan` with the breakpoints whose hits stopOf reports as they are: a user's,
   * with no step breakpoint, IFUNC resolver or resolver return at the address, and not r_brk (a
   * library event). False when the plan names a register the tracer does not have at the stop.
   */
  private loadAhead(plan: StopReplyPlan, serve: ServedRequests | undefined): boolean {
    const fresh = this.aheadLoaded?.plan !== plan;
    if (fresh) {
      const offsets = plan.registers.map((r) => (SEGMENTS.has(r.name) ? undefined : GP_OFFSET.get(r.name)));
      const registers = offsets.every((o) => o !== undefined) ? Int32Array.from(plan.registers.flatMap((r, i) => [r.number, offsets[i]!])) : undefined;
      this.aheadLoaded = { plan, registers, plain: new Set() };
    }
    const loaded = this.aheadLoaded!;
    if (!loaded.registers) return false;
    const plain = new Set<bigint>();
    for (const addr of this.bpIds.values()) if (addr !== this.rBrk && !this.ifuncReturns.has(addr)) plain.add(addr);
    for (const id of this.stepBps.keys()) plain.delete(this.bpIds.get(id)!);
    for (const id of this.ifuncBps) plain.delete(this.bpIds.get(id)!);
    const was = loaded.plain;
    if (fresh || plain.size !== was.size || [...plain].some((a) => !was.has(a))) {
      this.native.replyAhead(plan.fd, plan.step, plan.breakpoint ?? '', loaded.registers, BigUint64Array.from(plain));
      loaded.plain = plain;
    }
    const points = serve?.points ?? [];
    this.native.serveAhead(serve !== undefined, BigUint64Array.from(points, (p) => p.addr), Int32Array.from(points, (p) => p.kind), serve?.threads?.doc ?? '', Int32Array.from(serve?.threads?.tids ?? []));
    return true;
  }

  private invalidate(): void {
    this.threadList = undefined;
    this.names.clear();
    this.gpCache.clear();
    this.regCache.clear();
    this.xsaveCache.clear();
    this.mapCache = undefined;
  }

  /** The stop to report for the tracer's `ns`, or undefined to run on (an event not caught). */
  private stopOf(ns: NativeStop): StopStatus | undefined {
    this.drain();
    if (ns.kind === 'error') throw errors.state(`${this.name}: ${ns.err}`);
    if (ns.kind === 'exited' || ns.kind === 'killed') {
      this.gone = true;
      const reason: StopReason = ns.kind === 'exited' ? { kind: 'exited', code: ns.code } : { kind: 'killed', signal: ns.sig, name: signalName(ns.sig) };
      this.log({ kind: ns.kind === 'exited' ? 'exit' : 'killed', tid: ns.tid, detail: ns.kind === 'exited' ? `status ${ns.code}` : signalName(ns.sig) });
      return { reason, thread: this.numbers.get(ns.tid) ?? 1, pc: 0n };
    }
    const thread = this.number(ns.tid);
    const pc = (): bigint => this.registers(thread, ['rip']).get('rip') ?? 0n;
    const at = (reason: StopReason): StopStatus => ({ reason, thread, pc: pc() });
    switch (ns.kind) {
      case 'breakpoint': {
        // The dynamic linker's r_brk is a library event whoever else has a breakpoint there (a
        // user's at _dl_debug_state): the modules, the log and pending breakpoints follow it first.
        const library = ns.addr === this.rBrk ? this.libraryEvent(ns.tid) : undefined;
        if (this.ifuncReturns.get(ns.addr)?.tid === ns.tid) this.ifuncReturned(ns.addr, thread);
        if (!this.bpCount.has(ns.addr)) return library && this.catchLibraries ? at(library) : undefined;
        const ids = [...this.bpIds].filter(([, a]) => a === ns.addr).map(([id]) => id);
        const waiting = ids.filter((id) => this.ifuncBps.has(id));
        if (waiting.length) this.ifuncEntered(ns.tid, thread, ns.addr, waiting);
        const user = ids.find((id) => !this.stepBps.has(id) && !this.ifuncBps.has(id));
        const stepId = ids.find((id) => this.stepBps.has(id));
        if (stepId !== undefined && this.stepBps.get(stepId)!(thread)) return at({ kind: 'breakpoint', id: stepId, addr: ns.addr });
        if (user === undefined) return undefined;
        return at({ kind: 'breakpoint', id: user, addr: ns.addr });
      }
      case 'step':
        return at({ kind: 'step' });
      case 'watchpoint': {
        const w = this.watchOfSlot(ns.slot);
        if (!w) return undefined;
        return at({ kind: 'watchpoint', id: w.id, addr: w.addr, access: w.kind, length: w.length });
      }
      case 'signal':
        return at({ kind: 'signal', signal: ns.sig, name: signalName(ns.sig) });
      case 'interrupted':
        return at({ kind: 'interrupted' });
      case 'syscall-entry':
      case 'syscall-exit': {
        const name = X86_64_SYSCALLS[ns.nr] ?? `syscall ${ns.nr}`;
        const entry = ns.kind === 'syscall-entry';
        this.log({ kind: ns.kind, tid: ns.tid, detail: name });
        return at({ kind: 'syscall', nr: ns.nr, name, entry, ...(entry ? { args: [...ns.args] } : { rval: BigInt(ns.rval) }) });
      }
      case 'thread-created':
        return at({ kind: 'thread-created', tid: ns.tid });
      case 'thread-exited':
        return at({ kind: 'thread-exited', tid: ns.msg, code: ns.code });
      case 'vfork-done':
        return at({ kind: 'vfork-done' });
      case 'fork':
      case 'vfork':
        return at({ kind: 'fork', child: ns.msg, vfork: ns.kind === 'vfork' });
      case 'exec': {
        this.afterExec();
        if (!this.catchExec) return undefined;
        return at({ kind: 'exec', path: this.exe });
      }
      default:
        return at({ kind: 'signal', signal: ns.sig, name: signalName(ns.sig) });
    }
  }

  /** r_brk was hit: the link map changed. The library stop to report, if anything was added or removed. */
  private libraryEvent(tid: number): Extract<StopReason, { kind: 'library' }> | undefined {
    const { added, removed } = this.loadModules();
    if (!added.length && !removed.length) return undefined;
    this.log({ kind: 'library', tid, detail: [...added.map((n) => `+${n}`), ...removed.map((n) => `-${n}`)].join(' ') });
    return { kind: 'library', loaded: added, unloaded: removed };
  }

  /** A new image: old modules and breakpoints are gone; pending ones arm again by symbol. */
  private afterExec(): void {
    this.exe = safeReadlink(`/proc/${this.pid}/exe`) ?? this.exe;
    this.name = `process ${this.pid} (${this.exe.slice(this.exe.lastIndexOf('/') + 1)})`;
    for (const m of this.loaded.values()) this.symbols.remove(m);
    this.loaded.clear();
    this.rBrk = undefined;
    this.bpIds.clear();
    this.ifuncBps.clear();
    this.ifuncReturns.clear();
    this.ifuncResolved.clear();
    this.bpCount.clear();
    this.watches.clear();
    this.watchInfo.clear();
    this.numbers.clear();
    this.closeComm(() => true);
    this.nextNumber = 1;
    this.number(this.pid);
    this.invalidate();
    this.loadModules();
  }

  private drain(): void {
    for (const e of this.native.drainEvents()) {
      const detail =
        e.kind === 'thread-created' ? `by thread ${e.arg}` : e.kind === 'thread-exited' ? (e.arg >= 0 ? `status ${e.arg}` : signalName(-e.arg)) : e.kind === 'fork' || e.kind === 'vfork' ? `child ${e.arg} detached, runs on` : e.kind === 'signal' ? `${signalName(e.arg)} passed` : e.kind === 'exec' ? `former thread ${e.arg}` : String(e.arg);
      this.log({ kind: e.kind, tid: e.tid, detail });
    }
  }

  private log(e: Omit<ProcessEvent, 'seq'>): void {
    this.eventLog.push({ ...e, seq: this.eventLog.length ? this.eventLog[this.eventLog.length - 1]!.seq + 1 : 1 });
    if (this.eventLog.length > MAX_EVENTS) this.eventLog.shift();
  }

  // --- leaving ----------------------------------------------------------------------------------

  /** Takes every breakpoint and watchpoint out and lets the process run on. */
  detach(): void {
    if (this.gone) return;
    if (this.isRunning) {
      throw errors.state(`cannot detach while ${this.name} runs (interrupt it first)`);
    }
    this.native.detach();
    this.gone = true;
    this.last = { reason: { kind: 'detached' }, thread: 1, pc: 0n };
  }

  kill(): void {
    if (this.gone) return;
    this.native.kill();
    this.gone = true;
    this.last = { reason: { kind: 'killed', signal: 9, name: 'SIGKILL' }, thread: 1, pc: 0n };
  }

  describe(): string[] {
    return [`${this.started ? 'started by dbg' : 'attached'}: pid ${this.pid}, ${this.exe}`, `threads: ${this.threads().length}`];
  }

  /**
   * Leaves the process as it was found: an attached one detached (running on), a started one
   * killed (as gdb does at quit). Idempotent.
   */
  close(): void {
    if (!this.gone) {
      if (this.isRunning) {
        // A resume is waiting in the tracer: stop it first, synchronously enough for an exit path.
        this.native.interrupt();
      }
      try {
        if (this.started) this.native.kill();
        else this.native.detach();
      } catch {
        // nothing more can be done from here
      }
      this.gone = true;
    }
    for (const e of this.opened) e.close();
    this.opened.length = 0;
    this.closeComm(() => true);
  }
}

function checkProgram(prog: string): string {
  let path = prog;
  if (!prog.includes('/')) {
    const dirs = (process.env.PATH ?? '').split(':').filter((d) => d);
    const found = dirs.map((d) => `${d}/${prog}`).find((p) => isExecutableFile(p));
    if (!found) throw errors.notFound(`cannot run "${prog}": not found in PATH`);
    path = found;
  }
  let st;
  try {
    st = statSync(path);
  } catch {
    throw errors.notFound(`cannot run "${prog}": no such file`);
  }
  if (st.isDirectory()) throw errors.badInput(`cannot run "${prog}": it is a directory`);
  if (!isExecutableFile(path)) throw errors.badInput(`cannot run "${prog}": not executable (chmod +x, or give the interpreter: dbg run -- sh ${prog})`);
  return path;
}

function isExecutableFile(p: string): boolean {
  try {
    const st = statSync(p);
    return st.isFile() && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

function safeReadlink(p: string): string | undefined {
  try {
    return readlinkSync(p);
  } catch {
    return undefined;
  }
}

/** Why ptrace refused: Yama's ptrace_scope, a tracer already there, or another user's process. */
function permissionHint(pid: number): string {
  let scope: string | undefined;
  try {
    scope = readFileSync('/proc/sys/kernel/yama/ptrace_scope', 'utf8').trim();
  } catch {
    scope = undefined;
  }
  let tracer = 0;
  let uid: string | undefined;
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    tracer = Number(/^TracerPid:\s*(\d+)/m.exec(s)?.[1] ?? 0);
    uid = /^Uid:\s*(\d+)/m.exec(s)?.[1];
  } catch {
    // unreadable status: another user's process
  }
  if (tracer) return `it is already traced by process ${tracer} (one tracer at a time: detach that debugger first)`;
  const other = uid !== undefined && process.getuid && Number(uid) !== process.getuid() ? ` it belongs to uid ${uid};` : '';
  const yama = scope !== undefined ? ` kernel.yama.ptrace_scope is ${scope}${scope === '0' ? '' : ' (1: only descendants; 2: admin only; 3: no attach)'};` : '';
  return `${other}${yama} attaching needs the same user and ptrace_scope 0, or CAP_SYS_PTRACE (run as root, or sudo sysctl kernel.yama.ptrace_scope=0)`.trim();
}

function describeEnd(r: StopReason): string {
  if (r.kind === 'exited') return `exit status ${r.code}`;
  if (r.kind === 'killed') return `killed by ${r.name}`;
  if (r.kind === 'detached') return 'detached';
  return r.kind;
}

/** /proc/PID/maps as Mappings. */
export function readMaps(pid: number): Mapping[] {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch {
    return [];
  }
  const out: Mapping[] = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) \S+ \d+\s*(.*)$/.exec(line);
    if (!m) continue;
    const perms = m[3]!.slice(0, 3);
    out.push({ start: BigInt(`0x${m[1]}`), end: BigInt(`0x${m[2]}`), perms, name: m[5]!.replace(/ \(deleted\)$/, ''), fileOffset: BigInt(`0x${m[4]}`), present: perms !== '---' });
  }
  return out;
}
