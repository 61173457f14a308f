/**
 * A live emulated guest as a dbg target: the dbg machine (machine.ts) with a kernel loaded
 * (loader.ts), its symbols, breakpoints (by address, conditional, deferred until a symbol file
 * defines the name) and watchpoints, execution control, console, and ELF-core snapshots.
 *
 * Threads are vCPUs: thread N (1-based) is vCPU N-1. Virtual addresses go through the thread's
 * page tables (paging off: virtual = physical).
 */

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Arch, Registers } from '../../arch/arch.js';
import { DbgError, errors } from '../../common/errors.js';
import { compressedInput } from '../../common/compressed.js';
import { fileError } from '../../common/file-error.js';
import type { EmulatorRecorder } from '../../store/emulator-recorder.js';
import { ElfFile } from '../../symbols/elf-file.js';
import { SymbolSpace } from '../../symbols/symbol-space.js';
import { symbolTableFor } from '../../symbols/compact-symbol-table.js';
import type {
  CpuDescriptors,
  Breakpoints,
  Capabilities,
  ConsoleLog,
  ExecutionControl,
  History,
  Mapping,
  MemoryWriter,
  PhysicalMemory,
  RegisterWriter,
  ReverseExecution,
  Snapshot,
  StopStatus,
  Target,
  ThreadInfo,
  Translation,
  WatchKind,
} from '../target.js';
import { LiveHistory } from '../replay/live-history.js';
import { elfModule } from '../unwind.js';
import { WATCH_EXEC, WATCH_READ, WATCH_WRITE } from './emu-hooks.js';
import { loadKernel, type LoadedKernel } from './loader.js';
import { Machine, type MachineStop } from './machine.js';
import { writeQemuCore } from '../elfcore/qemu-core-writer.js';
import { cpuArch, readDescriptors, readSegmentCaches } from './x86-64-cpu.js';

export interface EmulatorOptions {
  /** Guest RAM in bytes (default 128 MiB). */
  ramBytes?: number;
  cpus?: number;
  cmdline?: string;
  quantum?: number;
  /** Extra symbol files. */
  symbols?: readonly string[];
  /** ATA disk images on the primary channel: [master, slave] (see devices/ata.ts). */
  disks?: readonly ({ path: string; writable?: boolean } | undefined)[];
}

/** One breakpoint or watchpoint as ::events lists it. */
export interface EventSpec {
  readonly id: number;
  readonly kind: 'breakpoint' | 'watchpoint';
  /** Undefined while a deferred breakpoint waits for its symbol. */
  addr?: bigint;
  readonly symbol?: string;
  readonly length: number;
  readonly access?: WatchKind;
  readonly physical?: boolean;
  /** `addr` is an I/O port (IN/OUT), not memory. */
  readonly io?: boolean;
  /** Stop only when this evaluates non-zero (evaluated by whoever set it, see `condition`). */
  condition?: string;
  hits: number;
  /** True once armed in the machine. */
  armed: boolean;
  /** Removed after its first hit (step over/out). */
  readonly temporary?: boolean;
  /** Stop only when this holds (a step breakpoint: the right thread, the stack unwound). */
  readonly test?: (thread: number) => boolean;
}

export class EmulatorTarget implements Target {
  readonly kind = 'emulator';
  readonly symbols = new SymbolSpace();
  readonly name: string;
  readonly machine: Machine;
  readonly kernel: LoadedKernel;
  /** Gains `reverse` and `history` when a recorder is attached (record()). */
  caps: Capabilities;
  /** Time travel over the recorder's trace (undefined without a recorder). */
  private history: LiveHistory | undefined;
  /** The live stop, kept while the view is in the past. */
  private liveStop: StopStatus | undefined;
  readonly events = new Map<number, EventSpec>();
  private nextId = 1;
  private last: StopStatus;
  /** Decides whether a conditional event's hit stops the run (set by the command layer). */
  conditionCheck: ((ev: EventSpec, thread: number) => boolean) | undefined;

  static open(path: string, opts: EmulatorOptions = {}): EmulatorTarget {
    let image: Buffer;
    try {
      image = readFileSync(path);
    } catch (e) {
      throw fileError(`cannot read kernel "${path}"`, e);
    }
    const compressed = compressedInput(path, image.subarray(0, 8), (plain) => `dbg live --emulate ${plain}`);
    if (compressed) throw compressed;
    if (image.length === 0) throw errors.badInput(`${basename(path)}: the file is empty; expected an ELF or multiboot kernel`);
    return new EmulatorTarget(path, image, opts);
  }

  private constructor(
    readonly path: string,
    image: Buffer,
    opts: EmulatorOptions,
  ) {
    this.name = `emulated guest "${basename(path)}"`;
    this.machine = new Machine({ ramBytes: opts.ramBytes ?? 128 << 20, cpus: opts.cpus ?? 1, quantum: opts.quantum, disks: opts.disks });
    try {
      this.kernel = loadKernel(this.machine, path, image, opts.cmdline ?? '');
    } catch (e) {
      this.machine.close();
      throw e;
    }
    if (this.kernel.elf) {
      // With its ELF and range: types and source lines from its DWARF, stacks from its CFI (i386
      // register numbering for a 32-bit kernel, as gdb's).
      this.symbols.add(elfModule(basename(path), path, this.kernel.elf, symbolTableFor(basename(path), this.kernel.elf, 0n)));
    }
    this.symbols.onAdd(() => this.armDeferred());
    for (const s of opts.symbols ?? []) this.addSymbolFile(s);
    this.last = { reason: { kind: 'none' }, thread: 1, pc: this.machine.pc(0), seq: 0n };
    const self = this;
    const physical: PhysicalMemory = {
      readPhysical: (a, n) => (this.past ? this.past.caps.physical!.readPhysical(a, n) : this.machine.readPhysical(a, n)),
      translate: (a, t) => this.translate(a, t),
      physicalRanges: () => [{ start: 0n, end: BigInt(this.machine.ram.length) }],
    };
    const writeMemory: MemoryWriter = {
      writeVirtual: (a, d) => {
        this.notRunning('write memory');
        this.history?.refuseWriteInPast('writing memory');
        this.machine.writeVirtual(this.vcpuOf(undefined), a, d);
      },
      writePhysical: (a, d) => {
        this.notRunning('write memory');
        this.history?.refuseWriteInPast('writing memory');
        this.machine.writePhysical(a, d);
      },
    };
    const writeRegisters: RegisterWriter = {
      writeRegister: (t, name, v) => {
        this.notRunning('write registers');
        this.history?.refuseWriteInPast(`writing register ${name}`);
        this.machine.writeRegister(this.vcpuOf(t), name, v);
        this.registerWrites++;
        this.last = { ...this.last, pc: this.machine.pc(this.vcpuOf(this.last.thread)) };
      },
    };
    const execution: ExecutionControl = {
      step: (t, n) => this.stepForward(t, n ?? 1),
      resume: (only) => this.resumeForward(only),
      interrupt: () => this.machine.interrupt(),
      get running() {
        return self.machine.running;
      },
    };
    const breakpoints: Breakpoints = {
      addBreakpoint: (a) => this.addBreakpoint(a).id,
      addStepBreakpoint: (a, when) => this.addBreakpoint(a, { temporary: true, test: when }).id,
      removeBreakpoint: (id) => this.deleteEvent(id),
      addWatchpoint: (a, n, k, p) => this.addWatchpoint(a, n, k, p).id,
      addIoWatchpoint: (port, n, k) => this.addIoWatchpoint(port, n, k).id,
      removeWatchpoint: (id) => this.deleteEvent(id),
    };
    const snapshot: Snapshot = {
      writeCore: (file) => {
        if (this.past) throw errors.state(`cannot write a core of the recorded past (seq ${this.history!.now}): ::dump writes the live guest; go back to the present first (::seek ${this.history!.liveSeq})`);
        writeQemuCore(this, file, (thread) => readSegmentCaches(this.machine.vcpu(this.vcpuOf(thread)).engine));
      },
    };
    const consoleLog: ConsoleLog = { consoleText: () => this.machine.console() };
    this.caps = { physical, writeMemory, writeRegisters, execution, breakpoints, snapshot, console: consoleLog };
  }

  addSymbolFile(file: string): void {
    const elf = ElfFile.open(file);
    try {
      this.symbols.add({ name: basename(file), path: file, table: symbolTableFor(basename(file), elf, 0n) });
    } finally {
      elf.close();
    }
  }

  private notRunning(what: string): void {
    if (this.machine.running) throw errors.state(`cannot ${what} while the guest runs: stop it first (Ctrl-C)`);
  }

  private vcpuOf(thread: number | undefined): number {
    const t = thread ?? this.last.thread;
    if (!Number.isInteger(t) || t < 1 || t > this.machine.vcpuCount) {
      throw errors.badInput(`thread ${t} does not exist: the guest has vCPUs 1-${this.machine.vcpuCount}`);
    }
    return t - 1;
  }

  // --- core -----------------------------------------------------------------------------------

  /** The selected vCPU's architecture: i386 until it runs 64-bit code (see arch/x86-mode.ts). */
  get arch(): Arch {
    if (this.past) return this.past.arch;
    const vcpu = this.vcpuOf(undefined);
    const key = `${vcpu}:${this.machine.seq}:${this.registerWrites}`;
    if (this.archAt?.key !== key) this.archAt = { key, arch: cpuArch(this.machine.vcpus[vcpu]!.engine) };
    return this.archAt.arch;
  }

  /** The last answer of `arch`, for the position it was computed at. */
  private archAt: { key: string; arch: Arch } | undefined;
  private registerWrites = 0;

  readVirtual(addr: bigint, length: number, thread?: number): Buffer {
    if (this.past) return this.past.readVirtual(addr, length, thread ?? this.last.thread);
    return this.machine.readVirtual(this.vcpuOf(thread), addr, length);
  }

  translate(addr: bigint, thread?: number): Translation {
    if (this.past) return this.past.translate(addr, thread ?? this.last.thread);
    return this.machine.translate(this.vcpuOf(thread), addr);
  }

  mappings(): readonly Mapping[] {
    const out: Mapping[] = [{ start: 0n, end: BigInt(this.machine.ram.length), perms: 'rwx', name: 'RAM (physical)' }];
    for (const p of this.kernel.elf?.loadSegments() ?? []) {
      const perms = `${p.flags & 4 ? 'r' : '-'}${p.flags & 2 ? 'w' : '-'}${p.flags & 1 ? 'x' : '-'}`;
      out.push({ start: p.vaddr, end: p.vaddr + p.memsz, perms, name: basename(this.path) });
    }
    return out.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  }

  threads(): readonly ThreadInfo[] {
    if (this.past) return this.past.threads().map((t) => ({ ...t, state: `${t.state} (seq ${this.history!.now}, recorded past)` }));
    const running = this.machine.running;
    const vcpus = this.machine.vcpus;
    // The same list object while no vCPU changed state: gdb's server asks for it at every stop and
    // request (threadsXml makes its document once per list), the vCPUs seldom change.
    const last = this.threadList;
    if (last && last.running === running && last.runs.length === vcpus.length && vcpus.every((v, i) => last.runs[i] === v.run)) return last.list;
    const list = vcpus.map((v) => ({
      index: v.index + 1,
      tid: v.index,
      name: `vCPU ${v.index}`,
      state: running ? 'running' : { 'wait-start': 'waiting for start', running: 'stopped', idle: 'idle (hlt)', halted: 'halted' }[v.run],
    }));
    this.threadList = { running, runs: vcpus.map((v) => v.run), list };
    return list;
  }

  /** The last list threads() made, with the states it was made from. */
  private threadList: { running: boolean; runs: readonly string[]; list: readonly ThreadInfo[] } | undefined;

  registers(thread: number, only?: readonly string[]): Registers {
    if (this.past) {
      this.vcpuOf(thread);
      return this.past.registers(thread, only);
    }
    return this.machine.registers(this.vcpuOf(thread), only);
  }

  descriptors(thread: number): CpuDescriptors | undefined {
    if (this.past) {
      this.vcpuOf(thread);
      return this.past.descriptors(thread);
    }
    const v = this.machine.vcpu(this.vcpuOf(thread));
    return readDescriptors(v.engine, v.run === 'halted' || v.run === 'idle');
  }

  status(): StopStatus {
    return this.last;
  }

  describe(): string[] {
    const k = this.kernel;
    return [
      `emulated ${this.arch.name} machine: ${this.machine.ram.length >> 20} MiB RAM, ${this.machine.vcpuCount} vCPU(s), quantum ${this.machine.quantum} instructions`,
      `kernel ${basename(this.path)} loaded as ${k.kind === 'multiboot' ? 'multiboot (32-bit protected-mode entry)' : 'ELF64 (long-mode entry)'} at entry 0x${k.entry.toString(16)}`,
      `engine: ${this.machine.engines()}`,
      `instructions executed: ${this.machine.seq}`,
      ...(this.history
        ? [
            this.machine.seq > this.history.liveSeq
              ? `recording to ${this.history.history.path} stopped at seq ${this.history.liveSeq}: the guest runs beyond the recording (now at seq ${this.machine.seq}, unrecorded)`
              : `recording to ${this.history.history.path}${this.past ? `; viewing the recorded past at seq ${this.history.now} of ${this.history.liveSeq}` : ''}`,
          ]
        : []),
    ];
  }

  close(): void {
    this.history?.close();
    this.history = undefined;
    this.machine.close();
    this.kernel.elf?.close();
  }

  // --- recording and time travel ----------------------------------------------------------------

  /**
   * Record every instruction into `recorder`'s trace and offer time travel over it: `caps.reverse`
   * and `caps.history`. While the view is in the past, reads, registers, threads and status come
   * from the trace; stepping and continuing replay forward to the end of history, then run live.
   */
  record(recorder: EmulatorRecorder): void {
    if (this.history) throw errors.state(`${this.name} already records to ${this.history.history.path}`);
    this.machine.keepDeviceMarks();
    this.machine.setObserver(recorder);
    this.setHistory(new LiveHistory(recorder));
  }

  /** Time travel over a recorder already observing this machine. */
  setHistory(h: LiveHistory): void {
    this.history = h;
    const back = (what: string, op: () => StopStatus | Promise<StopStatus>) => this.goBack(what, op);
    const reverse: ReverseExecution = {
      bounds: () => {
        const b = h.reverse.bounds();
        return this.machine.seq > b.last ? { ...b, beyond: this.machine.seq } : b;
      },
      stepBack: (t) => back('step back', () => h.reverse.stepBack(t)),
      resumeBack: () => back('continue back', () => h.reverse.resumeBack()),
      seek: (seq) => back('seek', () => h.reverse.seek(seq)),
      discard: () => this.discardFuture(h),
    };
    const history: History = h.history;
    this.caps = { ...this.caps, reverse, history };
  }

  /**
   * The view's position in the past becomes the present: the guest is put back in its exact state
   * there (LiveHistory.discard) and the recorded future is deleted. At the live position: nothing.
   */
  private discardFuture(h: LiveHistory): StopStatus {
    this.notRunning('discard the recorded future');
    if (!this.past) return this.last;
    if (this.machine.seq !== h.liveSeq) {
      throw errors.state(`cannot discard the recorded future: recording stopped at seq ${h.liveSeq} (the trace reached its size limit or could not be written) and the guest ran on to ${this.machine.seq} unrecorded`);
    }
    const at = this.last;
    h.discard((seq, contexts, ram, prevPc) => this.machine.rewind(seq, contexts, ram, prevPc));
    this.liveStop = undefined;
    const vcpu = at.thread - 1;
    this.last = { reason: at.reason, thread: at.thread, pc: this.machine.pc(vcpu), seq: this.machine.seq };
    return this.last;
  }

  /** The trace's view while in the past. */
  private get past() {
    return this.history?.past;
  }

  /** The live breakpoints and watchpoints, for reverse and forward replay. */
  private syncEvents(h: LiveHistory): void {
    h.setEvents(
      [...this.events.values()]
        .filter((e) => e.armed && e.addr !== undefined && !e.io) // the trace records no port accesses to watch
        .map((e) => ({ id: e.id, kind: e.kind === 'breakpoint' ? 'breakpoint' : e.access!, addr: e.addr!, length: e.length, physical: e.physical })),
    );
  }

  private async goBack(what: string, op: () => StopStatus | Promise<StopStatus>): Promise<StopStatus> {
    const h = this.history!;
    this.notRunning(what);
    if (this.machine.seq !== h.liveSeq) {
      throw errors.state(`cannot ${what}: recording stopped at seq ${h.liveSeq} (the trace reached its size limit or could not be written) and the guest ran on to ${this.machine.seq} unrecorded`);
    }
    this.syncEvents(h);
    if (!this.past) this.liveStop = this.last;
    const st = await this.eventStop(await op(), () => op());
    this.last = this.past ? st : (this.liveStop ?? st);
    return this.last;
  }

  /**
   * An event stop found in the trace, as a live run treats it: a hit whose condition fails goes
   * on (`again`), a temporary breakpoint (step over/out) ends a step and is deleted.
   */
  private async eventStop(st: StopStatus, again: () => StopStatus | Promise<StopStatus>): Promise<StopStatus> {
    for (let n = 0; n < 100_000; n++) {
      const r = st.reason;
      const ev = r.kind === 'breakpoint' || r.kind === 'watchpoint' ? this.events.get(r.id) : undefined;
      if (!ev) return st; // hits count live stops only: the recorded ones were counted when they happened
      if (!this.stops(ev, st.thread)) {
        if (!this.past) return st;
        st = await again();
        continue;
      }
      if (ev.temporary) {
        this.deleteEvent(ev.id);
        return { ...st, reason: { kind: 'step' } };
      }
      return st;
    }
    return st;
  }

  /**
   * `count` instructions of `thread` alone (replayed first while the view is in the recorded past);
   * the stop itself when the guest took them at once (see ExecutionControl.step).
   */
  private stepForward(thread: number, count: number): StopStatus | Promise<StopStatus> {
    if (!Number.isSafeInteger(count) || count < 1) throw errors.badInput(`step count ${count}: expected a whole number of at least 1`);
    const vcpu = this.vcpuOf(thread);
    if (this.history && this.past) return this.stepThroughPast(this.history, thread, vcpu, count);
    return this.run({ vcpu, count }, vcpu);
  }

  private async stepThroughPast(h: LiveHistory, thread: number, vcpu: number, count: number): Promise<StopStatus> {
    while (this.past && count > 0) {
      this.syncEvents(h);
      const st = await h.stepForward(thread);
      if (st === 'live') break;
      this.last = st;
      if (--count === 0 || st.reason.kind !== 'step') return st;
    }
    return this.run({ vcpu, count }, vcpu);
  }

  private async resumeForward(only?: number): Promise<StopStatus> {
    const h = this.history;
    if (h && this.past) {
      this.notRunning('continue');
      this.syncEvents(h);
      const again = async (): Promise<StopStatus> => {
        const r = await h.resumeForward();
        return r === 'live' ? { reason: { kind: 'history-end' }, thread: this.last.thread, pc: 0n, seq: h.liveSeq } : r;
      };
      const st = await this.eventStop(await again(), again);
      if (st.reason.kind !== 'history-end') return (this.last = st);
      // Replayed to the end of history. A breakpoint the live guest stopped at is hit again there
      // (as going forward over a recorded stop shows it); otherwise the guest runs on live.
      const ls = this.liveStop;
      if (ls && ls.reason.kind === 'breakpoint' && this.events.has(ls.reason.id)) return (this.last = ls);
    }
    return this.run(undefined, only === undefined ? undefined : this.vcpuOf(only));
  }

  // --- running --------------------------------------------------------------------------------

  /**
   * Run the machine (`alone`: that vCPU only) until a stop that the events let through; the stop
   * itself when it came at once (Machine.start).
   */
  private run(step?: { vcpu: number; count: number }, alone?: number): StopStatus | Promise<StopStatus> {
    for (;;) {
      const ran = this.machine.start(step, alone);
      if (ran instanceof Promise) return ran.then((stop) => this.stopAt(stop) ?? this.run(step, alone));
      const st = this.stopAt(ran);
      if (st) return st;
    }
  }

  /** The stop the machine's `stop` is, or undefined when an event there lets the run go on (its test or condition fails). */
  private stopAt(stop: MachineStop): StopStatus | undefined {
    const ev = this.eventOf(stop);
    let reason = stop.reason;
    if (ev) {
      ev.hits++;
      if (!this.stops(ev, stop.vcpu + 1)) return undefined;
      if (ev.temporary) {
        // the breakpoint of a step over / step out: the stop is the end of that step
        this.deleteEvent(ev.id);
        reason = { kind: 'step' };
      }
    }
    this.last = { reason, thread: stop.vcpu + 1, pc: this.machine.pc(stop.vcpu), seq: this.machine.seq };
    return this.last;
  }

  /** Whether a hit of `ev` on `thread` stops the run (its test and condition hold). */
  private stops(ev: EventSpec, thread: number): boolean {
    if (ev.test && !ev.test(thread)) return false;
    return ev.condition === undefined || !this.conditionCheck || this.conditionCheck(ev, thread);
  }

  private eventOf(stop: MachineStop): EventSpec | undefined {
    const r = stop.reason;
    return r.kind === 'breakpoint' || r.kind === 'watchpoint' ? this.events.get(r.id) : undefined;
  }

  // --- breakpoints and watchpoints ------------------------------------------------------------

  addBreakpoint(addr: bigint, opts: { condition?: string; temporary?: boolean; test?: (thread: number) => boolean } = {}): EventSpec {
    const ev: EventSpec = { id: this.nextId++, kind: 'breakpoint', addr, length: 1, hits: 0, armed: false, ...opts };
    this.machine.addPoint(ev.id, addr, addr, 0);
    ev.armed = true;
    this.events.set(ev.id, ev);
    return ev;
  }

  /** A breakpoint on `symbol`, armed now if known, else when a symbol file defines it. */
  addSymbolBreakpoint(symbol: string, opts: { condition?: string } = {}): EventSpec {
    const s = this.symbols.find(symbol);
    if (s) {
      const ev = this.addBreakpoint(s.addr, opts);
      (ev as { symbol?: string }).symbol = symbol;
      return ev;
    }
    const ev: EventSpec = { id: this.nextId++, kind: 'breakpoint', symbol, length: 1, hits: 0, armed: false, ...opts };
    this.events.set(ev.id, ev);
    return ev;
  }

  private armDeferred(): void {
    for (const ev of this.events.values()) {
      if (ev.armed || !ev.symbol) continue;
      const s = this.symbols.find(ev.symbol);
      if (!s) continue;
      ev.addr = s.addr;
      this.machine.addPoint(ev.id, s.addr, s.addr, 0);
      ev.armed = true;
    }
  }

  addWatchpoint(addr: bigint, length: number, access: WatchKind, physical = false, condition?: string): EventSpec {
    if (!Number.isInteger(length) || length < 1) throw errors.badInput(`watchpoint length ${length}: expected at least 1 byte`);
    const bits = access === 'read' ? WATCH_READ : access === 'write' ? WATCH_WRITE : access === 'access' ? WATCH_READ | WATCH_WRITE : WATCH_EXEC;
    const ev: EventSpec = { id: this.nextId++, kind: 'watchpoint', addr, length, access, physical, hits: 0, armed: false, ...(condition !== undefined ? { condition } : {}) };
    let begin = addr;
    let more: bigint[] = [];
    if (physical) {
      // Unicorn's hooks see virtual addresses: watch every virtual range that maps the physical
      // one — where vCPU 0's page tables map it now (paging off: the same addresses) and where
      // the kernel's own segments are linked (kernel data mapped high, before and after the
      // guest turns paging on).
      const aliases = this.virtualAliasesOf(addr);
      if (!aliases.length) throw errors.badInput(`physical 0x${addr.toString(16)}: no virtual address of vCPU 0 maps it, so it cannot be watched yet`);
      [begin, ...more] = aliases as [bigint, ...bigint[]];
    }
    this.machine.addPoint(ev.id, begin, begin + BigInt(length) - 1n, bits, more);
    ev.armed = true;
    this.events.set(ev.id, ev);
    return ev;
  }

  /** A watchpoint on I/O ports [port, port + length): IN is a read, OUT a write. */
  addIoWatchpoint(port: number, length: number, access: 'read' | 'write' | 'access'): EventSpec {
    if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw errors.badInput(`I/O port 0x${port.toString(16)}: expected 0-0xffff`);
    if (!Number.isInteger(length) || length < 1 || port + length > 0x10000) throw errors.badInput(`I/O watchpoint of ${length} port(s) at 0x${port.toString(16)}: expected 1 to 0x${(0x10000 - port).toString(16)}`);
    const bits = access === 'read' ? WATCH_READ : access === 'write' ? WATCH_WRITE : WATCH_READ | WATCH_WRITE;
    const ev: EventSpec = { id: this.nextId++, kind: 'watchpoint', addr: BigInt(port), length, access, io: true, hits: 0, armed: false };
    this.machine.addIoPoint(ev.id, port, port + length - 1, bits);
    ev.armed = true;
    this.events.set(ev.id, ev);
    return ev;
  }

  /** Virtual addresses of physical `pa`: identity when vCPU 0 maps it so, the kernel's segments' links when they cover it. */
  private virtualAliasesOf(pa: bigint): bigint[] {
    const out: bigint[] = [];
    if (this.machine.translate(0, pa).phys === pa) out.push(pa);
    for (const p of this.kernel.elf?.loadSegments() ?? []) {
      if (pa < p.paddr || pa >= p.paddr + p.memsz) continue;
      const va = p.vaddr + (pa - p.paddr);
      if (!out.includes(va)) out.push(va);
    }
    return out;
  }

  deleteEvent(id: number): void {
    const ev = this.events.get(id);
    if (!ev) throw errors.badInput(`no breakpoint or watchpoint with id ${id} (see ::events)`);
    this.machine.removePoint(id);
    this.events.delete(id);
  }
}
