/**
 * The dbg machine: guest RAM, vCPUs (one Unicorn engine each), devices, and the deterministic
 * execution loop. The x86 specifics live in x86-64-cpu.ts; loading in loader.ts; the debugger's
 * view (Target) in emulator-target.ts.
 *
 *   guest-physical layout                       ports
 *   0x00000000 .. RAM size   RAM (one host buffer)   0x3f8-0x3ff  COM1 16550 UART (console)
 *   top 128 KiB of RAM       reserved for dbg's boot  0x510 out32  timer period (instructions) of
 *                            structures (GDT, page                 the executing vCPU; 0 = off
 *                            tables, boot stack)      0x514 in32   the executing vCPU's number
 *   0x9000 / 0x9500          multiboot memory map /   0x518 out32  start a secondary vCPU: the
 *                            multiboot info                        physical address of a start block
 *                                                     0x51c in32   the number of vCPUs
 *                                                     0x520 out32  enter the debugger: the run
 *                                                                  stops after the OUT, a 'guest
 *                                                                  breakpoint' with the value
 *                                                     0xf4  out    exit (isa-debug-exit): stops the
 *                                                                  run, 'exited' with (value<<1)|1
 *   Other ports read as all ones and ignore writes. Guest-physical addresses past RAM where no
 *   device is are open bus (native/emu/emu.c): reads give all ones, writes go nowhere, and code
 *   fetched there stops the run with a fault.
 *
 * The timer: each vCPU has an instruction-count timer (port 0x510). When the vCPU has executed
 * `period` instructions since the last tick, vector 0x20 is delivered through its IDT (64-bit
 * interrupt gate) at the next slice boundary where RFLAGS.IF = 1. A vCPU idle in `hlt` with IF = 1
 * gets its next tick at once when its turn comes (idle time costs no instructions).
 *
 * Secondary CPUs start in 'wait-start' and run nothing until a running vCPU writes to port 0x518
 * the physical address of a start block:
 *     +0  u32 cpu number (1 .. N-1)     +8  u64 rip     +16 u64 rsp     +24 u64 rdi (argument)
 * The started vCPU takes the starter's processor mode (CR0, CR3, CR4, EFER, GDTR, IDTR, segment
 * selectors), rip, rsp and rdi, and runs from its next turn. Starting a CPU twice is ignored.
 *
 * `hlt` with RFLAGS.IF = 0 halts the vCPU for good and stops the run ('halted'); with IF = 1 the
 * vCPU idles until its timer fires. When no vCPU can run, the run stops 'halted'.
 *
 * Scheduling: see execution-observer.ts (round-robin by instruction quantum, seq = instructions).
 */

import { DbgError, errors } from '../../common/errors.js';
import { X86_64Paging, cr3Root, type Walk } from '../../arch/x86-64-paging.js';
import type { Registers } from '../../arch/arch.js';
import type { PhysAddr, StopReason, Translation, TranslationStep, VirtAddr } from '../target.js';
import { SpinSnapshots } from './spin-snapshots.js';
import { emuHooks, hookResult, HookStop, SPIN_NONE, SPIN_WORDS, WATCH_EXEC, WATCH_READ, WATCH_WRITE, type HookCtx } from './emu-hooks.js';
import type { ExecutionObserver, InputEvent, MachineState, ObservedMachine, SliceStop } from './execution-observer.js';
import { DeviceMarks, type SliceMark } from './device-marks.js';
import { makeFastEngine } from './fast-engine.js';
import { unicornVersion, UnicornEngine, UC, X86_REG } from './unicorn.js';
import { Disk, type DiskOptions } from './devices/ata.js';
import { IOAPIC_BASE, LAPIC_BASE, LAPIC_ID, StandardPc } from './devices/pc.js';
import { translate32 } from './paging32.js';
import { deliverInterrupt32, enterRealMode } from './protected-mode.js';
import {
  copyMode,
  deliverInterrupt,
  hasErrorCode,
  isTrap,
  pagingState,
  powerOn,
  readRegisters,
  RFLAGS_IF,
  vectorName,
  writeRegister,
  type GuestMemory,
} from './x86-64-cpu.js';

export const PORT_TIMER = 0x510;
export const PORT_CPU_ID = 0x514;
export const PORT_CPU_START = 0x518;
export const PORT_CPU_COUNT = 0x51c;
export const PORT_EXIT = 0xf4;
export const PORT_DEBUG_ENTRY = 0x520;
export const COM1 = 0x3f8;
export const TIMER_VECTOR = 0x20;
export const RESERVED_TOP = 0x20000;
const UNTIL_NEVER = 0xffff_ffff_ffff_ffffn;
/**
 * A quantum looks for a spin (emu.c, "Spin detection") in its first this many instructions: a
 * loop of up to half of it is found (xv6's idle scheduler gave up its quantum after ~900
 * instructions on average, 6.8 M in 7,600 turns to the prompt). Past it the detector costs
 * nothing; before it, a call per block.
 */
const SPIN_WINDOW = 4096;
/** A slice that looks for no spin (a vCPU run alone, outside the round-robin). */
const SPIN_OFF = new BigUint64Array(SPIN_WORDS);
/** A detector that looks no more, as saved (one array that every mark shares). */
const SPIN_IDLE = new BigUint64Array(SPIN_WORDS);

export type VcpuRun = 'wait-start' | 'running' | 'idle' | 'halted';

export interface MachineOptions {
  /** Guest RAM in bytes (a multiple of 4 KiB, at least 2 MiB). */
  ramBytes: number;
  cpus: number;
  /** Instructions per scheduling quantum (default 10,000). */
  quantum?: number;
  /**
   * Benchmarks only: engines without the instruction-counting hook, runnable only with
   * runUncounted() (no slices, no exact seq, no stepping). Measures Unicorn's own speed.
   */
  uncounted?: boolean;
  /** ATA disks on the primary channel: [master, slave]. */
  disks?: readonly (DiskOptions | undefined)[];
}

/** A stop of the machine, with the vCPU it belongs to (0-based). */
export interface MachineStop {
  reason: StopReason;
  vcpu: number;
}

export class Vcpu {
  run: VcpuRun;
  executed = 0n;
  timerPeriod = 0;
  timerNext = 0n;
  /** CR2 as the guest last set it (see the CR2 note in slice()). */
  cr2 = 0n;
  /** Resuming from a breakpoint at this pc: let the first instruction pass once. */
  skipPc: bigint | undefined;
  /** An INIT IPI reached this waiting vCPU: a start-up IPI starts it. */
  initSeen = false;
  /** The observer hears of the fast engine's blocks (fastEngine().recordTo): observed slices may run there. */
  fastRecorded = false;
  /** Its engine's spin detector may be on (emuHooks().spin): a slice that looks for none turns it off. */
  spinArmed = false;
  constructor(
    readonly index: number,
    /** The exact engine: counts every instruction; holds the vCPU's state between slices. */
    readonly engine: UnicornEngine,
    readonly hooks: HookCtx,
    /** The fast engine (native/emu/emu.c, "Fast engine"), when this Unicorn build allows one. */
    readonly fast?: { engine: UnicornEngine; hooks: HookCtx },
  ) {
    this.run = index === 0 ? 'running' : 'wait-start';
  }

  /** Both engines' hook contexts: breakpoints, watchpoints and code drops go to each. */
  get contexts(): HookCtx[] {
    return this.fast ? [this.hooks, this.fast.hooks] : [this.hooks];
  }

  /**
   * The paging registers or the whole CPU state were written from outside the guest: drop both
   * engines' TLB entries (they lead virtual pages to physical RAM as the old tables had it).
   */
  flushTlb(): void {
    for (const h of this.contexts) emuHooks().flushTlb(h);
  }
}

interface Point {
  id: number;
  begin: bigint;
  end: bigint;
  bits: number;
}

/** The words of `a` and `b` are equal, but for words `i` and `j`. */
function sameBut(a: Uint32Array, b: Uint32Array, i: number, j: number): boolean {
  for (let k = 0; k < a.length; k++) if (k !== i && k !== j && a[k] !== b[k]) return false;
  return true;
}

export class Machine implements ObservedMachine {
  readonly ram: Buffer;
  readonly ramBase = 0n;
  readonly vcpus: Vcpu[] = [];
  readonly quantum: number;
  /** Why the vCPUs have no fast engine (makeFastEngine), when they have none. */
  private fastOff: string | undefined;
  private seqNow = 0n;
  private current = 0;
  private left: number;
  /** The standard-PC devices (devices/pc.ts). */
  readonly board: StandardPc;
  /** Virtual time skipped while every vCPU idled (see vnow). */
  private idleNs = 0n;
  private pendingSipis: { vcpu: number; vector: number; by: number }[] = [];
  private ioBy = 0;
  private consoleBytes: number[] = [];
  private consoleText = '';
  private readonly consoleListeners: ((text: string) => void)[] = [];
  private readonly points = new Map<number, Point>();
  private observer: ExecutionObserver | undefined;
  private readonly pendingInputs: InputEvent[] = [];
  private pendingStarts: { block: bigint; by: number }[] = [];
  private pendingExit: number | undefined;
  /** The value a vCPU wrote to PORT_DEBUG_ENTRY in this slice. */
  private pendingEntry: number | undefined;
  /** I/O-port watchpoints (IN = read, OUT = write), and the first one an access hit in this slice. */
  private readonly ioPoints = new Map<number, Point>();
  private ioHit: { id: number; port: number; access: 'read' | 'write'; length: number } | undefined;
  private interruptFlag = false;
  private runningNow = false;
  /** The vCPU whose slice runs (or ran last): `current`, or the one a run of one vCPU alone runs. */
  private active = 0;
  private readonly paging = new X86_64Paging((a) => this.readPhysU64(a));
  /** [0] is 1 once closed: an element, for the reason UnicornEngine's `shut` is one. */
  private readonly shut = new Uint8Array(1);
  private marks: DeviceMarks | undefined;
  /** RIP, RFLAGS, CR2 of the vCPU whose slice starts (emuHooks().state). */
  private readonly regs = new BigUint64Array(3);
  /** The current quantum's spin detector (emu-hooks.ts, SPIN_WORDS), from slice to slice. */
  private readonly spin = new BigUint64Array(SPIN_WORDS);
  /** `spin` as 32-bit words: read without making a BigInt of each word. */
  private readonly spinWords = new Uint32Array(this.spin.buffer);
  /**
   * The last canonical copy spinCanonical made, and its words: handed out again while the detector
   * is the same (a recorded 2-vCPU guest asks at every slice, and each copy is an ArrayBuffer).
   */
  private spinCopy: { spin: BigUint64Array; words: Uint32Array } | undefined;
  /** The current quantum has not run yet: its first slice sets the detector up (spinStart). */
  private spinFresh = true;

  constructor(opts: MachineOptions) {
    if (!Number.isSafeInteger(opts.ramBytes) || opts.ramBytes < 2 << 20 || opts.ramBytes % 4096 !== 0) {
      throw errors.badInput(`guest RAM of ${opts.ramBytes} bytes: expected a multiple of 4 KiB, at least 2 MiB`);
    }
    if (!Number.isInteger(opts.cpus) || opts.cpus < 1 || opts.cpus > 64) {
      throw errors.badInput(`${opts.cpus} vCPUs: expected 1 to 64`);
    }
    this.quantum = opts.quantum ?? 10_000;
    this.left = this.quantum;
    this.ram = emuHooks().allocRam(opts.ramBytes);
    const disks = (opts.disks ?? []).map((d) => (d ? new Disk(d) : undefined));
    this.board = new StandardPc(opts.cpus, opts.ramBytes, disks, {
      emit: (b) => this.emitConsole(b),
      init: (n) => {
        const t = this.vcpus[n];
        if (t && t.run === 'wait-start') t.initSeen = true;
      },
      startup: (n, vector) => this.pendingSipis.push({ vcpu: n, vector, by: this.ioBy }),
    });
    const addon = emuHooks();
    for (let i = 0; i < opts.cpus; i++) {
      const engine = new UnicornEngine('x86-64', UC.CPU_X86_SKYLAKE_SERVER);
      powerOn(engine);
      engine.mapHost(0n, this.ram);
      const hooks = addon.create(engine.address, this.ram, !opts.uncounted);
      engine.hookPorts({
        in: (port, size) => this.portIn(i, port, size),
        out: (port, size, value) => this.portOut(i, port, size, value),
      });
      if (opts.ramBytes <= IOAPIC_BASE) {
        engine.mapMmio(BigInt(LAPIC_BASE), 0x1000, {
          read: (off, size) => this.mmioRead(i, LAPIC_BASE + off, size, () => this.board.lapicRead(i, off, size, this.vnow(i))),
          write: (off, size, value) =>
            this.mmio(
              i,
              () => {
                this.board.lapicWrite(i, off, size, value, this.vnow(i));
                if ((off & 0xff0) === 0x20) this.publishLapicId(i, this.seqNow + emuHooks().counter(this.vcpus[i]!.hooks));
              },
              true,
            ),
        });
        engine.mapMmio(BigInt(IOAPIC_BASE), 0x1000, {
          read: (off, size) => this.mmioRead(i, IOAPIC_BASE + off, size, () => this.board.ioapicRead(i, off, size)),
          write: (off, size, value) => this.mmio(i, () => this.board.ioapicWrite(i, off, size, value), true),
        });
        // device registers, not open bus (emu.c)
        addon.guard(hooks, BigInt(LAPIC_BASE), 0x1000n);
        addon.guard(hooks, BigInt(IOAPIC_BASE), 0x1000n);
      }
      const made = opts.uncounted ? { off: 'an uncounted machine (bare Unicorn, for measuring)' } : makeFastEngine(this.ram);
      const fast = 'off' in made ? undefined : made;
      if ('off' in made) this.fastOff ??= made.off;
      if (fast && opts.ramBytes <= IOAPIC_BASE) {
        addon.guard(fast.hooks, BigInt(LAPIC_BASE), 0x1000n);
        addon.guard(fast.hooks, BigInt(IOAPIC_BASE), 0x1000n);
      }
      this.vcpus.push(new Vcpu(i, engine, hooks, fast));
      this.publishLapicId(i);
    }
  }

  /**
   * A kernel reads its local APIC's ID at every lock (xv6's mycpu()): the fast engine answers that
   * read itself (emu.c, guardValue) instead of handing the instruction to the exact engine, and
   * an observer is told the value (a 'lapic-id' input) instead of every read: at `seq` (default:
   * the present; a write of the register inside a slice gives the instruction after it).
   */
  private publishLapicId(i: number, seq = this.seqNow): void {
    if (this.ram.length > IOAPIC_BASE) return;
    const value = this.board.lapicIdRegister(i);
    const fast = this.vcpus[i]?.fast;
    if (fast) emuHooks().guardValue(fast.hooks, BigInt(LAPIC_ID), 4n, BigInt(value));
    if (this.observer && this.idsTold[i] !== value) {
      this.idsTold[i] = value;
      this.pendingInputs.push({ kind: 'lapic-id', seq, vcpu: i, value });
    }
  }

  /** The local APIC IDs the observer was told (publishLapicId), by vCPU. */
  private idsTold: number[] = [];

  // --- ObservedMachine ------------------------------------------------------------------------

  get vcpuCount(): number {
    return this.vcpus.length;
  }
  engineAddress(vcpu: number): bigint {
    return this.vcpu(vcpu).engine.address;
  }
  fastEngine(vcpu: number): { readonly address: bigint; recordTo(sink: bigint | undefined): void } | undefined {
    const v = this.vcpu(vcpu);
    const fast = v.fast;
    if (!fast) return undefined;
    return {
      address: fast.engine.address,
      recordTo: (sink) => {
        emuHooks().recordTo(fast.hooks, sink ?? null);
        v.fastRecorded = sink !== undefined;
      },
    };
  }
  get seq(): bigint {
    return this.seqNow;
  }
  get running(): boolean {
    return this.runningNow;
  }

  /** Which engines run the guest, and why the fast one does not when it does not (::status). */
  engines(): string {
    const why = emuHooks().physical(this.vcpus[0]!.hooks);
    const base = `Unicorn ${unicornVersion()}${why === null ? '' : ` (TLB entries virtual = physical: ${why}; a virtual page below the end of RAM reaches only the RAM at its own address)`}`;
    if (this.fastOff !== undefined) return `${base}; exact engine only (per-instruction counting): no fast engine: ${this.fastOff}`;
    if (this.observer?.hearsInstructions === false) return `${base}; fast engine (per-block counting), recorded by slices (no pc kept: replay re-executes); the exact engine at breakpoints, watchpoints, port I/O and faults`;
    if (this.observer && !this.vcpus.every((v) => v.fastRecorded)) return `${base}; exact engine (per-instruction counting) while recording: the recorder takes every instruction's pc`;
    if (this.observer) return `${base}; fast engine (per-block counting), recorded block by block; the exact engine at breakpoints, watchpoints, port I/O and faults`;
    return `${base}; fast engine (per-block counting), the exact engine at breakpoints, watchpoints, port I/O and faults`;
  }

  setObserver(o: ExecutionObserver | undefined): void {
    this.observer?.detach?.();
    // a sink the old observer left connected belongs to it: never call into it again
    for (const v of this.vcpus) if (v.fastRecorded) this.fastEngine(v.index)?.recordTo(undefined);
    this.observer = o;
    this.idsTold = [];
    this.vcpus.forEach((v) => this.publishLapicId(v.index));
    o?.attach(this);
  }

  vcpu(i: number): Vcpu {
    const v = this.vcpus[i];
    if (!v) throw errors.badInput(`vCPU ${i} does not exist: the machine has ${this.vcpus.length}`);
    return v;
  }

  // --- console --------------------------------------------------------------------------------

  private emitConsole(byte: number): void {
    this.consoleBytes.push(byte);
    if (byte === 0x0a || this.consoleBytes.length >= 256) this.flushConsole();
  }

  private flushConsole(): void {
    if (this.consoleBytes.length === 0) return;
    const text = Buffer.from(this.consoleBytes).toString('latin1');
    this.consoleBytes = [];
    this.consoleText += text;
    for (const l of this.consoleListeners) l(text);
  }

  onConsole(listener: (text: string) => void): void {
    this.consoleListeners.push(listener);
  }

  console(): string {
    this.flushConsole();
    return this.consoleText;
  }

  /** Queue bytes for the guest to read from COM1. */
  consoleInput(bytes: Buffer): void {
    this.board.advance(this.vnow());
    this.board.receive(bytes);
    this.marks?.push(this.seqNow, this.boardState(), this.consoleLength());
  }

  /** Queue PS/2 scan codes (set 1) for the guest's keyboard controller. */
  keyboardInput(codes: readonly number[]): void {
    this.board.advance(this.vnow());
    this.board.keys(codes);
    this.marks?.push(this.seqNow, this.boardState(), this.consoleLength());
  }

  /** The 80x25 text screen (CGA buffer at 0xb8000) and the CRTC's cursor (cell index). */
  screen(): { lines: string[]; cursor: number } {
    return { lines: this.board.cga.screen(this.ram), cursor: this.board.cga.cursor };
  }

  /**
   * Virtual time (ns) of the devices: one instruction is one nanosecond, plus the time skipped
   * while every vCPU idled. Inside a slice, `vcpu` is the running one: its current instruction.
   */
  private vnow(vcpu?: number): bigint {
    const inSlice = vcpu !== undefined && this.runningNow ? emuHooks().counter(this.vcpus[vcpu]!.hooks) : 0n;
    return this.seqNow + (inSlice > 0n ? inSlice - 1n : 0n) + this.idleNs;
  }

  /** A device register access by `vcpu`'s current instruction; a write ends the slice after it. */
  private mmio<T>(vcpu: number, access: () => T, write = false): T {
    this.ioBy = vcpu;
    const r = access();
    if (write || this.board.problem) emuHooks().requestStop(this.vcpus[vcpu]!.hooks);
    return r;
  }

  /**
   * A device register read by `vcpu`'s current instruction: an input of the recording (replay
   * engines map no devices and are given the value back), like a port read.
   */
  private mmioRead(vcpu: number, phys: number, size: number, access: () => number): number {
    const value = this.mmio(vcpu, access) >>> 0;
    if (phys === LAPIC_ID && size === 4) return value; // told as 'lapic-id' (publishLapicId)
    const counter = Number(emuHooks().counter(this.vcpus[vcpu]!.hooks));
    this.pendingInputs.push({ kind: 'mmio-read', seq: this.seqNow + BigInt(counter - 1), vcpu, phys, size, value });
    return value;
  }

  private consoleLength(): number {
    return this.consoleText.length + this.consoleBytes.length;
  }

  /** A serial access by the current instruction of `vcpu` (inside a slice): the UART after it. */
  private markDevice(vcpu: number): void {
    if (!this.marks) return;
    const counter = emuHooks().counter(this.vcpus[vcpu]!.hooks);
    this.marks.push(this.seqNow + counter, this.boardState(), this.consoleLength());
  }

  /**
   * The devices' state for a mark: the mark before's when no call that may change it came since
   * (StandardPc.version; most slices), so that marks share it: a recorded machine keeps a mark at
   * every slice start for as long as it runs.
   */
  private boardState(): unknown {
    if (this.lastBoard?.version !== this.board.version) this.lastBoard = { version: this.board.version, state: this.board.save() };
    return this.lastBoard.state;
  }

  private lastBoard: { version: number; state: unknown } | undefined;

  /**
   * Marks kept at most (the newest: `::discard` reaches back this many slices and serial
   * accesses, ~500 M instructions of a booting xv6); each costs ~0.6 KB of heap (a recorded xv6
   * idling at its prompt: 40,000 marks in 373 M instructions, +23 MB), and a long recording must
   * not grow without bound. Older positions are refused with the range that is kept.
   */
  private marksKept = 1 << 16;

  /** Drop the oldest marks when there are more than marksKept: the first kept is a slice's (rewind starts from one). */
  private trimMarks(): void {
    const marks = this.marks!;
    if (marks.length <= this.marksKept) return;
    let from = marks.length - Math.floor(this.marksKept * 0.75);
    while (from > 0 && !marks.isSlice(from)) from--;
    if (from > 0) {
      marks.dropBefore(from);
      this.marksTrimmed = true;
      this.spinMarks.dropBefore(marks.seqAt(0));
    }
  }

  /** Whether trimMarks dropped marks (older positions cannot be put back). */
  private marksTrimmed = false;

  /** The snapshots the spin detector took inside slices, while marks are kept (see rewind). */
  private readonly spinMarks = new SpinSnapshots();

  /** A slice starts (or the marks start): the whole device and scheduler state. */
  private markSlice(skip?: { vcpu: number; pc: bigint }, alone?: number, spinBefore = this.spinSaved(), spinRun?: BigUint64Array, spinLooked = false): void {
    if (!this.marks) return;
    this.trimMarks();
    this.marks.pushSlice(this.seqNow, this.current, this.left, alone, this.vcpus, skip, spinBefore, spinRun, spinLooked, this.boardState(), this.consoleLength());
  }

  /**
   * Keep the device and scheduler state of every position from now on (a recorded machine: see
   * `rewind`), the newest `most` marks (default marksKept). Costs one small record per slice and
   * per serial access.
   */
  keepDeviceMarks(most?: number): void {
    if (most !== undefined) this.marksKept = Math.max(2, most);
    if (this.marks) return;
    this.marks = new DeviceMarks(this.vcpus.length);
    this.markSlice();
  }

  /**
   * Put the machine back at position `seq` (at or after `keepDeviceMarks`, at or before now), with
   * RAM and every vCPU's CPU context as they were there (from the recorded history: `contexts` as
   * saveContext gives them). The scheduler, timers, run states, UART and console length come from
   * the device marks. Translated code of the RAM pages that differ is dropped.
   */
  rewind(seq: bigint, contexts: readonly Buffer[], ram: Buffer, prevPc: (vcpu: number) => bigint): void {
    const marks = this.marks;
    if (!marks) throw errors.state('cannot go back: the machine kept no device state (not recording)');
    const oldest = marks.seqAt(0);
    if (seq > this.seqNow || seq < oldest) {
      const kept = this.marksTrimmed ? ` (the newest ${this.marksKept} slices and serial accesses of the recording)` : '';
      throw errors.badInput(`cannot put the machine back at seq ${seq}: its device state is kept for [${oldest}, ${this.seqNow}]${kept}`);
    }
    if (ram.length !== this.ram.length || contexts.length !== this.vcpus.length) throw errors.badInput('rewind: RAM or vCPU count does not fit this machine');
    const n = marks.countUpTo(seq);
    let si = n - 1;
    while (!marks.isSlice(si)) si--;
    const smSeq = marks.seqAt(si);
    const sl = marks.sliceAt(si);
    const d = seq - smSeq;
    const runner = sl.alone ?? sl.current;
    const state: MachineState = {
      version: 1,
      seq,
      vcpus: sl.vcpus.map((v, i) => ({
        context: contexts[i]!,
        run: v.run,
        executed: i === runner ? v.executed + d : v.executed,
        timerPeriod: v.timerPeriod,
        timerNext: v.timerNext,
        skipPc: i === runner && d > 0n ? undefined : v.skipPc,
      })),
      scheduler: { current: sl.current, left: sl.alone === undefined ? sl.left - Number(d) : sl.left, spin: d === 0n ? sl.spinBefore : this.spinInside(smSeq, seq, sl) },
      devices: { pc: marks.uartAt(n - 1), idleNs: this.idleNs, console: this.console().slice(0, marks.consoleLengthAt(n - 1)) },
    };
    // Code the guest rewrote after `seq` must be translated again: drop the changed pages. Only
    // those are copied: a page written is one a lazy-rows recording stores again (emulator-recorder.ts).
    const changed: bigint[] = [];
    for (let off = 0; off < ram.length; off += 4096) {
      if (!ram.subarray(off, off + 4096).equals(this.ram.subarray(off, off + 4096))) changed.push(BigInt(off));
    }
    this.loadState(state);
    for (const p of changed) ram.copy(this.ram, Number(p), Number(p), Number(p) + 4096);
    this.paging.flush();
    for (const p of changed) for (const v of this.vcpus) for (const h of v.contexts) emuHooks().invalidate(h, this.ramBase + p, this.ramBase + p + 4096n);
    if (d > 0n && sl.spinLooked && this.spin[0] !== 0n) {
      // the detector's previous instruction, S - 1, ran on the vCPU of the slice (`prevPc`)
      const pc = prevPc(runner);
      this.spin[2] = emuHooks().insnEnd(this.vcpus[runner]!.hooks, pc);
      this.spin[3] = pc;
    }
    marks.truncate(n);
    this.spinMarks.dropFrom(seq);
    this.markSlice();
  }

  /**
   * The spin detector at `seq` inside the slice that began at `from` (its mark `sl`): as the slice
   * began, with the last snapshot it took before `seq`; its previous instruction is put in by rewind.
   */
  private spinInside(from: bigint, seq: bigint, sl: SliceMark): BigUint64Array | undefined {
    const run = sl.spinRun ?? sl.spinBefore;
    if (!run || !sl.spinLooked) return run;
    const s = run.slice();
    const last = this.spinMarks.lastIn(from, seq);
    if (last) {
      s[4] = last[1]!;
      s[5] = last[2]!;
      s.set(last.subarray(3), 7);
    }
    return this.spinCanonical(s, sl.left - Number(seq - from));
  }

  // --- ports (called inside uc_emu_start: no throwing) ------------------------------------------

  private portIn(vcpu: number, port: number, size: number): number {
    let value: number;
    this.ioBy = vcpu;
    if (port === PORT_CPU_ID) value = vcpu;
    else if (port === PORT_CPU_COUNT) value = this.vcpus.length;
    else if (port === PORT_TIMER) value = this.vcpus[vcpu]!.timerPeriod;
    else {
      const now = this.vnow(vcpu);
      this.board.advance(now);
      value = this.board.portIn(port, size, now) ?? (size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff);
      if (port === COM1) this.markDevice(vcpu);
    }
    const v = this.vcpus[vcpu]!;
    // The IN instruction is the current one: its number in the slice is the hook counter.
    const counter = Number(emuHooks().counter(v.hooks));
    this.pendingInputs.push({ kind: 'port-in', seq: this.seqNow + BigInt(counter - 1), vcpu, port, size, value });
    this.watchPort(vcpu, port, size, WATCH_READ);
    return value;
  }

  private portOut(vcpu: number, port: number, size: number, value: number): void {
    const v = this.vcpus[vcpu]!;
    this.ioBy = vcpu;
    this.watchPort(vcpu, port, size, WATCH_WRITE);
    if (port === PORT_TIMER) {
      v.timerPeriod = value >>> 0;
      // The tick counts from the OUT instruction (the current one) on.
      v.timerNext = v.executed + emuHooks().counter(v.hooks) + BigInt(v.timerPeriod);
      if (v.timerPeriod) emuHooks().requestStop(v.hooks);
    } else if (port === PORT_CPU_START) {
      this.pendingStarts.push({ block: BigInt(value >>> 0), by: vcpu });
      emuHooks().requestStop(v.hooks);
    } else if (port === PORT_EXIT) {
      this.pendingExit = ((value & 0xff) << 1) | 1;
      emuHooks().requestStop(v.hooks);
    } else if (port === PORT_DEBUG_ENTRY) {
      this.pendingEntry = value >>> 0;
      emuHooks().requestStop(v.hooks);
    } else {
      const now = this.vnow(vcpu);
      this.board.advance(now);
      if (this.board.portOut(port, size, value, now)) {
        if (port >= COM1 && port < COM1 + 8) this.markDevice(vcpu);
        // the write may raise an interrupt or start a transfer: the next slice looks at it
        else emuHooks().requestStop(v.hooks);
      }
    }
  }

  // --- memory ---------------------------------------------------------------------------------

  /** A page-table entry for the walker: read in place (readPhysical copies, for its callers to keep). */
  private readPhysU64(addr: bigint): bigint {
    return this.ram.readBigUInt64LE(this.physRange(addr, 8, 'read'));
  }

  private physRange(addr: bigint, length: number, what: string): number {
    const end = addr + BigInt(length);
    if (addr < 0n || end > BigInt(this.ram.length)) {
      throw new DbgError(
        'unmapped',
        `${what} of ${length} bytes at physical 0x${addr.toString(16)} failed: outside guest RAM (0x0-0x${this.ram.length.toString(16)})`,
      );
    }
    return Number(addr);
  }

  readPhysical(addr: bigint, length: number): Buffer {
    const off = this.physRange(addr, length, 'read');
    return Buffer.from(this.ram.subarray(off, off + length));
  }

  /** `virt`: the virtual address the debugger wrote through, when it did (for the code cache). */
  writePhysical(addr: bigint, data: Buffer, byDebugger = true, virt?: bigint): void {
    const off = this.physRange(addr, data.length, 'write');
    const old = Buffer.from(this.ram.subarray(off, off + data.length));
    data.copy(this.ram, off);
    this.paging.flush();
    if (byDebugger) {
      // Code written there must be translated again. Unicorn's code cache is keyed by the address
      // the vCPU fetches (virtual): drop the written range as a physical and as a virtual address.
      const n = BigInt(data.length);
      for (const v of this.vcpus) {
        for (const h of v.contexts) {
          emuHooks().invalidate(h, addr, addr + n);
          if (virt !== undefined && virt !== addr) emuHooks().invalidate(h, virt, virt + n);
        }
      }
      this.observer?.onInput({ kind: 'memory-write', seq: this.seqNow, phys: addr, data: Buffer.from(data), old });
    }
  }

  /** Virtual -> physical through vCPU `vcpu`'s paging state. */
  translate(vcpu: number, virt: bigint): Translation {
    const e = this.vcpu(vcpu).engine;
    const ps = pagingState(e);
    if (!ps.paging) {
      const phys = ps.longMode ? virt : virt & 0xffff_ffffn;
      return { virt, phys, pageSize: 4096, steps: [] };
    }
    if (!ps.longMode) return translate32((a, n) => this.readPhysical(a, n), virt & 0xffff_ffffn, ps.cr3, e.readReg(X86_REG.CR4));
    const w = this.paging.translate(cr3Root(ps.cr3), virt);
    if (w.fault !== undefined) return { virt, steps: w.steps, fault: w.fault };
    return new WalkedTranslation(virt, w);
  }

  private physOf(vcpu: number, virt: bigint, length: number, what: string): bigint {
    const t = this.translate(vcpu, virt);
    if (t.phys === undefined) {
      throw new DbgError('unmapped', `${what} of ${length} bytes at 0x${virt.toString(16)} failed: not mapped by vCPU ${vcpu}'s page tables (${t.fault})`);
    }
    return t.phys;
  }

  /** Read through vCPU `vcpu`'s page tables, page by page. */
  readVirtual(vcpu: number, addr: bigint, length: number): Buffer {
    const out = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const va = BigInt.asUintN(64, addr + BigInt(done));
      const n = Math.min(length - done, 4096 - Number(va & 0xfffn));
      const pa = this.physOf(vcpu, va, length, 'read');
      this.readPhysicalInto(pa, out, done, n, va);
      done += n;
    }
    return out;
  }

  private readPhysicalInto(pa: bigint, out: Buffer, at: number, n: number, va: bigint): void {
    if (pa + BigInt(n) > BigInt(this.ram.length)) {
      throw new DbgError('unmapped', `read at 0x${va.toString(16)} failed: it maps to physical 0x${pa.toString(16)}, outside guest RAM (0x0-0x${this.ram.length.toString(16)})`);
    }
    this.ram.copy(out, at, Number(pa), Number(pa) + n);
  }

  /** Write through vCPU `vcpu`'s page tables; returns the physical address of the first byte. */
  writeVirtual(vcpu: number, addr: bigint, data: Buffer, byDebugger = true): bigint {
    let done = 0;
    let first = -1n;
    // Translate every page first, so that a failure writes nothing.
    const parts: { pa: bigint; va: bigint; at: number; n: number }[] = [];
    while (done < data.length) {
      const va = BigInt.asUintN(64, addr + BigInt(done));
      const n = Math.min(data.length - done, 4096 - Number(va & 0xfffn));
      const pa = this.physOf(vcpu, va, data.length, 'write');
      this.physRange(pa, n, 'write');
      parts.push({ pa, va, at: done, n });
      if (first < 0n) first = pa;
      done += n;
    }
    for (const p of parts) this.writePhysical(p.pa, data.subarray(p.at, p.at + p.n), byDebugger, p.va);
    return first;
  }

  private guestMemory(vcpu: number): GuestMemory {
    return {
      readVirt: (a, n) => this.readVirtual(vcpu, a, n),
      writeVirt: (a, d) => this.writeVirtual(vcpu, a, d, false),
    };
  }

  // --- registers ------------------------------------------------------------------------------

  registers(vcpu: number, only?: readonly string[]): Registers {
    return readRegisters(this.vcpu(vcpu).engine, only);
  }

  writeRegister(vcpu: number, name: string, value: bigint): void {
    const v = this.vcpu(vcpu);
    writeRegister(v.engine, name, value);
    if (/^(cr[034]|efer)$/.test(name)) {
      this.paging.flush();
      v.flushTlb();
    }
    this.observer?.onInput({ kind: 'register-write', seq: this.seqNow, vcpu, name, value });
  }

  pc(vcpu: number): bigint {
    return this.vcpu(vcpu).engine.readReg(X86_REG.RIP);
  }

  // --- breakpoints and watchpoints ------------------------------------------------------------

  /** A breakpoint (bits 0) or watchpoint over [begin, end] (inclusive), on every vCPU. */
  addPoint(id: number, begin: bigint, end: bigint, bits: number, aliases: readonly bigint[] = []): void {
    if (this.points.has(id)) throw errors.state(`breakpoint id ${id} is in use`);
    const addon = emuHooks();
    // `aliases`: more first addresses of the same range (virtual addresses mapping one watched
    // physical range): the native points share the id, a hit on any is this point's.
    for (const v of this.vcpus) for (const h of v.contexts) for (const b of [begin, ...aliases]) addon.add(h, id, b, b + (end - begin), bits);
    this.points.set(id, { id, begin, end, bits });
  }

  /**
   * A watchpoint on I/O ports [begin, end] (`bits`: WATCH_READ for IN, WATCH_WRITE for OUT): the
   * run stops after the IN or OUT that touched one, as a watchpoint stop whose address is the port.
   */
  addIoPoint(id: number, begin: number, end: number, bits: number): void {
    if (this.points.has(id) || this.ioPoints.has(id)) throw errors.state(`breakpoint id ${id} is in use`);
    this.ioPoints.set(id, { id, begin: BigInt(begin), end: BigInt(end), bits });
  }

  /** An IN or OUT of `size` bytes at `port` by `vcpu`: a watched port stops the slice after it. */
  private watchPort(vcpu: number, port: number, size: number, bit: number): void {
    if (this.ioPoints.size === 0 || this.ioHit) return;
    for (const p of this.ioPoints.values()) {
      if ((p.bits & bit) === 0 || BigInt(port + size - 1) < p.begin || BigInt(port) > p.end) continue;
      this.ioHit = { id: p.id, port, access: bit === WATCH_READ ? 'read' : 'write', length: Number(p.end - p.begin + 1n) };
      emuHooks().requestStop(this.vcpus[vcpu]!.hooks);
      return;
    }
  }

  removePoint(id: number): void {
    if (this.ioPoints.delete(id)) return;
    if (!this.points.delete(id)) return;
    for (const v of this.vcpus) for (const h of v.contexts) emuHooks().remove(h, id);
  }

  // --- running --------------------------------------------------------------------------------

  /** Ask a run to stop at the next slice boundary (within one slice: well under 10 ms). */
  interrupt(): void {
    this.interruptFlag = true;
    this.vcpus[this.active]?.engine.stop();
  }

  /**
   * Run until something stops the machine. `step` = { vcpu, count }: stop with 'step' once that
   * vCPU has executed `count` more instructions (other vCPUs run their quanta in between, as they
   * would without the step). Runs in bounded slices and yields to the event loop every few ms.
   *
   * `alone` = a vCPU: run only that one (KMDB's single-step: "only resumes execution on the
   * processor being stepped"); the others stay where they are and the round-robin position and
   * quantum are left as they were, so a later run goes on with the same vCPU. Its timer still
   * ticks by its own instruction count. A vCPU that cannot run (waiting for start-up, halted, idle
   * without a timer) is refused with a state error.
   */
  async run(step?: { vcpu: number; count: number }, alone?: number): Promise<MachineStop> {
    return this.start(step, alone);
  }

  /**
   * run(), but the stop itself when it came within the first few milliseconds' slices, as a single
   * step's does: no promise, and no trip through the microtask queue for its caller either (the
   * GDB server answers a stepi in the data event that brought it). Throws what run() rejects with.
   */
  start(step?: { vcpu: number; count: number }, alone?: number): MachineStop | Promise<MachineStop> {
    if (this.runningNow) throw errors.state('the guest is already running');
    if (this.shut[0]) throw errors.state('the machine is closed');
    if (alone !== undefined) this.canRunAlone(alone);
    this.runningNow = true;
    this.interruptFlag = false;
    const stepLeft = step ? { vcpu: step.vcpu, left: step.count } : undefined;
    let stop: MachineStop | undefined;
    try {
      stop = this.slices(stepLeft, alone);
    } catch (e) {
      this.runningNow = false;
      throw e;
    }
    if (!stop) return this.runOn(stepLeft, alone);
    this.runningNow = false;
    return stop;
  }

  /** Slices for ~4 ms; the stop if one came. */
  private slices(stepLeft: { vcpu: number; left: number } | undefined, alone: number | undefined): MachineStop | undefined {
    const until = performance.now() + 4;
    while (performance.now() < until) {
      if (this.interruptFlag) return this.finish({ reason: { kind: 'interrupted' }, vcpu: alone ?? this.current });
      const stop = this.slice(stepLeft, undefined, alone);
      if (stop) return this.finish(stop);
    }
    return undefined;
  }

  /** The rest of a run that start() began: the event loop gets a turn every few milliseconds. */
  private async runOn(stepLeft: { vcpu: number; left: number } | undefined, alone: number | undefined): Promise<MachineStop> {
    try {
      for (;;) {
        await new Promise<void>((r) => setImmediate(r));
        const stop = this.slices(stepLeft, alone);
        if (stop) return stop;
      }
    } finally {
      this.runningNow = false;
    }
  }

  /** Run synchronously (no yielding) for at most `maxInstructions`, for benches and tests. */
  runSync(maxInstructions: bigint): MachineStop | undefined {
    const end = this.seqNow + maxInstructions;
    this.runningNow = true;
    try {
      // a guest idling through device timers makes no instructions: bound the slices too
      for (let slices = 0; this.seqNow < end && slices < 1_000_000; slices++) {
        const stop = this.slice(undefined, end - this.seqNow);
        if (stop) return this.finish(stop);
      }
      return undefined;
    } finally {
      this.runningNow = false;
    }
  }

  /**
   * Benchmarks only (a machine made with `uncounted`): run vCPU 0 in one uc_emu_start until it
   * stops by itself (hlt) or faults. Returns the uc_err. Timer interrupts and CPU start-ups are
   * not served.
   */
  runUncounted(): number {
    const e = this.vcpus[0]!.engine;
    emuHooks().arm(this.vcpus[0]!.hooks, 0xffff_ffff_ffff_ffffn, UNTIL_NEVER);
    return e.start(e.readReg(X86_REG.RIP), UNTIL_NEVER);
  }

  private finish(stop: MachineStop): MachineStop {
    this.flushConsole();
    this.paging.flush();
    this.observer?.onStop?.(this.seqNow, stop.vcpu, stop.reason);
    return stop;
  }

  private nextVcpu(): void {
    this.current = (this.current + 1) % this.vcpus.length;
    this.left = this.quantum;
    this.spinFresh = true;
  }

  /**
   * The first slice of `v`'s quantum: look for a spin only when another vCPU could run now (the
   * quantum's rest goes to it; alone, a vCPU that spins has nothing better to do, and a guest of
   * one vCPU pays nothing). Run states at a quantum's start follow from instruction counts.
   */
  private spinStart(v: Vcpu): void {
    const others = this.vcpus.some((o) => o !== v && (o.run === 'running' || (o.run === 'idle' && (o.timerPeriod > 0 || this.board.hasInterrupt(o.index)))));
    this.spin.fill(0n);
    this.spin[0] = others ? 1n : 0n;
    this.spin[3] = SPIN_NONE;
    this.spin[4] = SPIN_NONE;
    this.spin[6] = BigInt(Math.min(SPIN_WINDOW, this.quantum));
  }

  /**
   * The current vCPU was moved by something other than its own instructions (an interrupt or
   * exception delivered, a fault, a run of it alone): what it did before is no evidence of a spin,
   * and its next instruction is no branch target. Both engines see the same from here on.
   */
  private spinMoved(): void {
    this.spin[3] = SPIN_NONE;
    this.spin[4] = SPIN_NONE;
    this.spin[5] = BigInt(this.quantum - this.left);
  }

  /** The detector between slices, as saveState and the marks keep it (undefined: a quantum not begun). */
  private spinSaved(): BigUint64Array | undefined {
    return this.spinFresh ? undefined : this.spinCanonical(this.spin, this.left);
  }

  /**
   * One form for detectors that act alike, so that states compare equal: one that looks no more
   * (off, or past its window: it turns off at its next branch target) is all zeros, and the
   * slice's base is left out (it follows from `left`).
   */
  private spinCanonical(spin: BigUint64Array, left: number): BigUint64Array {
    const w = spin === this.spin ? this.spinWords : new Uint32Array(spin.buffer, spin.byteOffset, 2 * SPIN_WORDS);
    // (word 0: on or off; word 6: the end of the window, within a quantum: both small)
    if ((w[0] === 0 && w[1] === 0) || this.quantum - left >= w[12]! + w[13]! * 2 ** 32) return SPIN_IDLE;
    const copy = this.spinCopy;
    if (copy && sameBut(w, copy.words, 2, 3)) return copy.spin;
    const s = spin.slice();
    s[1] = 0n;
    this.spinCopy = { spin: s, words: new Uint32Array(s.buffer) };
    return s;
  }


  private canRunAlone(i: number): void {
    const v = this.vcpus[i];
    if (!v) throw errors.badInput(`vCPU ${i} does not exist: the guest has vCPUs 0-${this.vcpus.length - 1}`);
    const why = { 'wait-start': 'is waiting to be started (port 0x518)', halted: 'is halted (hlt with interrupts off)', idle: v.timerPeriod > 0 ? undefined : 'is idle in hlt with no timer to wake it', running: undefined }[v.run];
    if (why) throw errors.state(`vCPU ${i} ${why}: it has no instruction to run on its own (:c runs every vCPU)`);
  }

  /** One slice on the current vCPU (or on `alone`); a MachineStop when the run must stop. */
  private slice(step?: { vcpu: number; left: number }, maxInsns?: bigint, alone?: number): MachineStop | undefined {
    // Find a vCPU that can run; if none can, the machine is halted.
    let tried = 0;
    this.board.advance(this.vnow());
    for (;;) {
      if (alone !== undefined) {
        const v = this.vcpus[alone]!;
        if (v.run === 'idle' && v.timerPeriod > 0) v.timerNext = v.executed;
        else if (v.run !== 'running' && !(v.run === 'idle' && this.board.hasInterrupt(alone))) return { reason: { kind: 'halted' }, vcpu: alone };
        break;
      }
      const v = this.vcpus[this.current]!;
      if (v.run === 'running') break;
      if (v.run === 'idle' && v.timerPeriod > 0) {
        v.timerNext = v.executed; // idle time costs nothing: the tick is due now
        break;
      }
      if (v.run === 'idle' && this.board.hasInterrupt(v.index)) break;
      this.nextVcpu();
      if (++tried > this.vcpus.length) {
        // Every vCPU waits: idle time costs nothing, the next device timer is due now.
        const next = this.board.nextEvent();
        if (next !== undefined && this.vcpus.some((x) => x.run === 'idle')) {
          const now = this.vnow();
          if (next > now) this.idleNs += next - now;
          this.board.advance(this.vnow());
          return undefined; // the next slice looks again (a run stays interruptible while the guest idles)
        }
        const halted = this.vcpus.find((x) => x.run === 'halted') ?? this.vcpus[0]!;
        return { reason: { kind: 'halted' }, vcpu: halted.index };
      }
    }
    const v = this.vcpus[alone ?? this.current]!;
    // Whether this slice uses up the round-robin quantum (not when another vCPU runs alone).
    const scheduled = v.index === this.current;
    this.active = v.index;
    const e = v.engine;
    const addon = emuHooks();

    const spinBefore = this.marks ? this.spinSaved() : undefined;
    const fresh = scheduled && this.spinFresh;
    if (fresh) {
      this.spinFresh = false;
      this.spinStart(v);
    }
    // (the current quantum's vCPU run alone, or given an interrupt below)
    let moved = !scheduled && alone === this.current;

    // A device interrupt for this vCPU (local APIC, or the 8259s through LINT0), when IF allows.
    if (this.board.hasInterrupt(v.index) && (e.readReg(X86_REG.RFLAGS) & RFLAGS_IF) !== 0n) {
      const vector = this.board.takeInterrupt(v.index)!;
      const r = this.deliver(v, vector);
      if (!r.ok) {
        return { reason: { kind: 'fault', fault: `device interrupt 0x${vector.toString(16)} could not be delivered: ${r.why}`, pc: e.readReg(X86_REG.RIP) }, vcpu: v.index };
      }
      v.run = 'running';
      v.skipPc = undefined;
      moved = true;
      this.observer?.onInput({ kind: 'interrupt', seq: this.seqNow, vcpu: v.index, vector, writes: r.writes, registers: r.registers });
    }

    if (v.timerPeriod > 0 && v.executed >= v.timerNext) {
      const flags = e.readReg(X86_REG.RFLAGS);
      if ((flags & RFLAGS_IF) !== 0n) {
        const r = this.deliver(v, TIMER_VECTOR);
        if (!r.ok) {
          return { reason: { kind: 'fault', fault: `timer interrupt 0x${TIMER_VECTOR.toString(16)} could not be delivered: ${r.why}`, pc: e.readReg(X86_REG.RIP) }, vcpu: v.index };
        }
        v.timerNext = v.executed + BigInt(v.timerPeriod);
        v.run = 'running';
        v.skipPc = undefined;
        moved = true;
        this.observer?.onInput({ kind: 'interrupt', seq: this.seqNow, vcpu: v.index, vector: TIMER_VECTOR, writes: r.writes, registers: r.registers });
      } else if (v.run === 'idle') {
        // hlt with interrupts off after all (IF cleared by a debugger write): halted for good.
        v.run = 'halted';
        return { reason: { kind: 'halted' }, vcpu: v.index };
      }
    }

    let limit = scheduled ? this.left : this.quantum;
    if (v.timerPeriod > 0 && v.timerNext > v.executed) limit = Math.min(limit, Number(v.timerNext - v.executed));
    const stepping = step !== undefined && step.vcpu === v.index;
    if (stepping) limit = Math.min(limit, step.left);
    const event = this.board.nextEvent();
    if (event !== undefined) {
      const now = this.vnow();
      if (event > now && event - now < BigInt(limit)) limit = Number(event - now);
    }
    if (maxInsns !== undefined && BigInt(limit) > maxInsns) limit = Number(maxInsns);
    limit = Math.max(limit, 1);

    addon.state(v.hooks, this.regs);
    const rip = this.regs[0]!;
    const skip = v.skipPc !== undefined && v.skipPc === rip ? rip : UNTIL_NEVER;
    v.skipPc = undefined;
    if (moved && v.index === this.current) this.spinMoved();
    // (a guest of one vCPU never looks: no call at all)
    const looks = scheduled && this.spin[0] !== 0n;
    if (this.marks) {
      const spinRun = fresh || moved ? this.spinSaved() : spinBefore;
      this.markSlice(skip === UNTIL_NEVER ? undefined : { vcpu: v.index, pc: skip }, v.index, spinBefore, spinRun, looks);
    }
    if (looks) this.spin[1] = BigInt(this.quantum - this.left);
    if (looks || v.spinArmed) addon.spin(v.hooks, looks ? this.spin : SPIN_OFF, true);
    v.spinArmed = looks;
    this.observer?.beforeSlice(v.index, this.seqNow);
    // A device interrupt that waits for IF: the slice ends where the guest opens interrupts (emu.c,
    // irq_open), so that it is taken there and not only when a slice boundary happens to fall there.
    const irqWait = this.board.hasInterrupt(v.index) && (this.regs[1]! & RFLAGS_IF) === 0n;
    // (off after every slice that turned it on, so only turned on here)
    if (irqWait) for (const h of v.contexts) addon.waitInterrupt(h, true);
    let err: number;
    if (v.fast && (!this.observer || v.fastRecorded || this.observer.hearsInstructions === false)) {
      // an observer that needs the instructions but does not hear of the fast engine's blocks
      // needs every instruction on the exact engine
      err = addon.runFast(v.fast.hooks, v.hooks, BigInt(limit), skip);
    } else {
      addon.arm(v.hooks, BigInt(limit), skip);
      err = e.start(rip, UNTIL_NEVER);
    }
    const h = hookResult(v.hooks);
    if (looks && addon.spin(v.hooks, this.spin, false) > 0 && this.marks) this.spinMarks.take(v.hooks, this.seqNow, this.quantum - this.left);
    if (irqWait) for (const c of v.contexts) addon.waitInterrupt(c, false);

    // How many instructions completed (see native/emu/emu.c).
    let executed: bigint;
    let stop: MachineStop | undefined;
    let sliceStop: SliceStop;
    switch (h.kind) {
      case HookStop.None:
        executed = h.counter;
        break;
      case HookStop.BadMemory:
        executed = h.access === UC.MEM_FETCH_UNMAPPED || h.access === UC.MEM_FETCH_PROT ? h.counter : h.counter - 1n;
        break;
      case HookStop.Interrupt:
        executed = isTrap(h.intno) ? h.counter : h.counter - 1n;
        break;
      default:
        executed = h.counter - 1n;
    }
    if (executed < 0n) executed = 0n;
    // Unicorn 2.0.1 sets CR2 to -2 when it probes a code page right after paging is enabled
    // (no fault reaches the guest). A real CPU leaves CR2 alone: put back the last real value.
    const cr2 = h.cr2;
    if (h.kind === HookStop.Interrupt && h.intno === 14) v.cr2 = cr2;
    else if (cr2 === 0xffff_ffff_ffff_fffen) e.writeReg(X86_REG.CR2, v.cr2);
    else v.cr2 = cr2;
    this.seqNow += executed;
    v.executed += executed;
    if (scheduled) this.left -= Number(executed);
    if (stepping) step.left -= Number(executed);
    if (scheduled && h.kind === HookStop.Spin) this.left = 0;
    // a fault or exception leaves the vCPU where the guest's handler (or the debugger) takes it
    if (scheduled && (h.kind === HookStop.Interrupt || h.kind === HookStop.BadMemory || h.kind === HookStop.BadInsn)) this.spinMoved();

    if (this.pendingInputs.length) for (const ev of this.pendingInputs.splice(0)) this.observer?.onInput(ev);

    switch (h.kind) {
      case HookStop.None:
        if (err === UC.ERR_OK) {
          // The engine returned by itself: hlt.
          if ((h.rflags & RFLAGS_IF) !== 0n) v.run = 'idle';
          else {
            v.run = 'halted';
            stop = { reason: { kind: 'halted' }, vcpu: v.index };
          }
        } else {
          stop = { reason: { kind: 'fault', fault: `emulator error: ${err}`, pc: e.readReg(X86_REG.RIP) }, vcpu: v.index };
        }
        break;
      case HookStop.Breakpoint:
        v.skipPc = h.pc;
        stop = { reason: { kind: 'breakpoint', id: h.id, addr: h.pc }, vcpu: v.index };
        break;
      case HookStop.Watch: {
        const exec = (h.access & WATCH_EXEC) !== 0;
        if (exec) v.skipPc = h.pc;
        const p = this.points.get(h.id);
        const access = exec ? 'exec' : h.access === WATCH_WRITE ? 'write' : 'read';
        stop = { reason: { kind: 'watchpoint', id: h.id, addr: h.addr, access, length: p ? Number(p.end - p.begin + 1n) : h.size }, vcpu: v.index };
        break;
      }
      case HookStop.BadMemory: {
        const kind = memFaultName(h.access);
        const fetch = h.access === UC.MEM_FETCH_UNMAPPED || h.access === UC.MEM_FETCH_PROT;
        e.writeReg(X86_REG.RIP, h.pc);
        let fault = `${kind} at 0x${h.addr.toString(16)}${fetch ? '' : ` (${h.size} bytes)`}`;
        // With paging on, an address the guest's tables do not map is a page fault; dbg does not
        // deliver exceptions, so without a #PF gate this is where the CPU would triple-fault.
        this.paging.flush();
        const tr = this.translate(v.index, h.addr);
        if (pagingState(e).paging && tr.phys === undefined) {
          // #PF error code: P (a present entry refused the access) is 0 here, W, I (fetch).
          const code = (h.access === UC.MEM_WRITE_UNMAPPED ? 2n : 0n) | (fetch ? 0x10n : 0n);
          e.writeReg(X86_REG.CR2, h.addr);
          v.cr2 = h.addr;
          if (this.deliverException(v, 14, code)) break;
          fault = `#PF page fault: ${kind.replace(' unmapped memory', '')} 0x${h.addr.toString(16)} not mapped by the page tables (${tr.fault})`;
          fault = this.describeException(v.index, 14, fault);
        } else if (tr.phys !== undefined) {
          fault += ` (physical 0x${tr.phys.toString(16)}, outside guest RAM of 0x${this.ram.length.toString(16)} bytes)`;
        }
        stop = { reason: { kind: 'fault', fault, pc: h.pc, addr: h.addr }, vcpu: v.index };
        break;
      }
      case HookStop.BadInsn:
        e.writeReg(X86_REG.RIP, h.pc);
        if (this.deliverException(v, 6)) break;
        stop = { reason: { kind: 'fault', fault: this.describeException(v.index, 6, `invalid opcode (#UD) at 0x${h.pc.toString(16)}`), pc: h.pc }, vcpu: v.index };
        break;
      case HookStop.Interrupt:
        stop = this.onException(v, h.intno, h.pc);
        break;
      case HookStop.Request:
      case HookStop.Limit:
      case HookStop.Spin:
        break;
    }

    // Deferred device actions of this slice.
    if (this.pendingStarts.length) for (const s of this.pendingStarts.splice(0)) this.startCpu(s.block, s.by);
    if (this.pendingSipis.length) for (const s of this.pendingSipis.splice(0)) this.startupCpu(s.vcpu, s.vector, s.by);
    if (this.board.problem !== undefined && !stop) {
      stop = { reason: { kind: 'fault', fault: this.board.problem, pc: e.readReg(X86_REG.RIP) }, vcpu: v.index };
      this.board.problem = undefined;
    }
    if (this.pendingExit !== undefined && !stop) {
      stop = { reason: { kind: 'exited', code: this.pendingExit }, vcpu: v.index };
      this.pendingExit = undefined;
    }
    if (this.pendingEntry !== undefined && !stop) stop = { reason: { kind: 'guest-breakpoint', how: 'port', code: this.pendingEntry }, vcpu: v.index };
    this.pendingEntry = undefined;
    const io = this.ioHit;
    if (io && !stop) stop = { reason: { kind: 'watchpoint', id: io.id, addr: BigInt(io.port), access: io.access, length: io.length, io: true }, vcpu: v.index };
    this.ioHit = undefined;

    if (stop) sliceStop = { kind: 'stop', reason: stop.reason };
    else if (stepping && step.left <= 0) sliceStop = { kind: 'step' };
    else if (v.timerPeriod > 0 && v.executed >= v.timerNext) sliceStop = { kind: 'timer' };
    else if (h.kind === HookStop.Spin) sliceStop = { kind: 'yield' };
    else sliceStop = { kind: 'quantum' };
    this.observer?.afterSlice(v.index, Number(executed), sliceStop);

    if (!stop && stepping && step.left <= 0) stop = { reason: { kind: 'step' }, vcpu: v.index };
    if (scheduled && (this.left <= 0 || v.run !== 'running')) this.nextVcpu();
    return stop;
  }

  /** A CPU exception or `int n` stopped the engine: deliver `int n` (n >= 32), else stop. */
  private onException(v: Vcpu, vector: number, pc: bigint): MachineStop | undefined {
    const e = v.engine;
    if (vector >= 32) {
      // Unicorn left RIP after the int instruction; deliver through the guest's IDT.
      const r = this.deliver(v, vector, undefined, true);
      if (r.ok) {
        this.observer?.onInput({ kind: 'interrupt', seq: this.seqNow, vcpu: v.index, vector, writes: r.writes, registers: r.registers, inSlice: true });
        return undefined;
      }
      // a gate the int instruction may not use: #GP, with the gate in the error code
      if (r.gp !== undefined) {
        e.writeReg(X86_REG.RIP, pc);
        if (this.deliverException(v, 13, BigInt(r.gp))) return undefined;
      }
      return { reason: { kind: 'fault', fault: `int 0x${vector.toString(16)} could not be delivered: ${r.why}`, pc }, vcpu: v.index };
    }
    if (!isTrap(vector)) e.writeReg(X86_REG.RIP, pc);
    if (vector === 3) {
      // dbg's breakpoints are code hooks, never int3 in memory: this int3 is the guest's. Its own
      // handler takes it when its IDT has one (a kernel's kprobes); else it is a deliberate entry
      // into the debugger, as KMDB has it, and the run stops after the int3.
      const idt = e.readMmr(X86_REG.IDTR);
      if (3 * 16 + 15 <= idt.limit && this.gatePresent(v.index, idt.base + 48n) && this.deliverException(v, 3)) return undefined;
      return { reason: { kind: 'guest-breakpoint', how: 'int3' }, vcpu: v.index };
    }
    if (this.deliverException(v, vector, hasErrorCode(vector) ? 0n : undefined)) return undefined;
    let what = vectorName(vector);
    // Unicorn 2.0.1 leaves CR2 = -2 for some faults (an instruction fetch): name the pc then.
    const cr2 = e.readReg(X86_REG.CR2);
    const cr2Known = cr2 !== 0xffff_ffff_ffff_fffen;
    if (vector === 14) what += cr2Known ? ` at 0x${cr2.toString(16)}` : ` fetching the instruction at 0x${pc.toString(16)}`;
    const fault = this.describeException(v.index, vector, what);
    const addr = vector === 14 ? (cr2Known ? cr2 : pc) : undefined;
    return { reason: { kind: 'fault', fault, pc: isTrap(vector) ? e.readReg(X86_REG.RIP) : pc, ...(addr !== undefined ? { addr } : {}) }, vcpu: v.index };
  }

  /**
   * Deliver CPU exception `vector` to the guest's IDT (64-bit, ring 0), as the CPU would; when
   * that fails, a double fault (vector 8, error code 0). False when neither could be delivered:
   * the CPU would triple-fault, and the run stops. RIP must already be where the exception
   * leaves it (the faulting instruction, or the next one for traps).
   */
  private deliverException(v: Vcpu, vector: number, errorCode?: bigint): boolean {
    const mem = this.guestMemory(v.index);
    void mem;
    for (const [vec, code] of [[vector, errorCode], [8, 0n]] as const) {
      const r = this.deliver(v, vec, code);
      if (r.ok) {
        this.observer?.onInput({ kind: 'interrupt', seq: this.seqNow, vcpu: v.index, vector: vec, writes: r.writes, registers: r.registers, inSlice: true });
        return true;
      }
      if (vec === 8) break;
    }
    return false;
  }

  /** Deliver `vector` through the IDT in the vCPU's mode (64-bit long mode or 32-bit protected mode). */
  private deliver(v: Vcpu, vector: number, errorCode?: bigint, software = false): ReturnType<typeof deliverInterrupt32> {
    const mem = this.guestMemory(v.index);
    if ((v.engine.readReg(X86_REG.CR0) & 1n) === 0n) return { ok: false, why: 'the vCPU is in real mode, where dbg does not deliver interrupts' };
    if (pagingState(v.engine).longMode) return deliverInterrupt(v.engine, mem, vector, errorCode);
    return deliverInterrupt32(v.engine, mem, vector, errorCode, software);
  }

  /** A start-up IPI for vCPU `n` (after an INIT): it starts in real mode at vector << 12. */
  private startupCpu(n: number, vector: number, by: number): void {
    const t = this.vcpus[n];
    if (!t || t.run !== 'wait-start' || !t.initSeen) return;
    enterRealMode(t.engine, vector);
    t.flushTlb();
    t.run = 'running';
    this.observer?.onInput({ kind: 'cpu-start', seq: this.seqNow, vcpu: n, by });
  }

  /** `what` named as the CPU would end up when delivery failed. */
  private describeException(vcpu: number, vector: number, what: string): string {
    const e = this.vcpu(vcpu).engine;
    const idt = e.readMmr(X86_REG.IDTR);
    const size = pagingState(e).longMode ? 16 : 8;
    const handled = vector * size + size - 1 <= idt.limit && this.gatePresent(vcpu, idt.base + BigInt(vector * size));
    return handled
      ? `${what} (the guest's handler could not be entered: see its IDT gate)`
      : `triple fault: ${what}, with no usable IDT gate (IDT base 0x${idt.base.toString(16)} limit 0x${idt.limit.toString(16)})`;
  }

  private gatePresent(vcpu: number, gateAddr: bigint): boolean {
    try {
      return (this.readVirtual(vcpu, gateAddr, 8)[5]! & 0x80) !== 0;
    } catch {
      return false;
    }
  }

  private startCpu(block: bigint, by: number): void {
    let b: Buffer;
    try {
      b = this.readPhysical(block, 32);
    } catch {
      return;
    }
    const n = b.readUInt32LE(0);
    const t = this.vcpus[n];
    if (!t || t.run !== 'wait-start') return;
    const from = this.vcpus[by]!.engine;
    copyMode(from, t.engine);
    t.flushTlb();
    t.engine.writeReg(X86_REG.RIP, b.readBigUInt64LE(8));
    t.engine.writeReg(X86_REG.RSP, b.readBigUInt64LE(16));
    t.engine.writeReg(X86_REG.RDI, b.readBigUInt64LE(24));
    t.run = 'running';
    this.observer?.onInput({ kind: 'cpu-start', seq: this.seqNow, vcpu: n, by });
  }

  // --- state ----------------------------------------------------------------------------------

  saveState(options?: { ram?: boolean }): MachineState {
    return {
      version: 1,
      seq: this.seqNow,
      vcpus: this.vcpus.map((v) => ({
        context: v.engine.saveContext(),
        run: v.run,
        executed: v.executed,
        timerPeriod: v.timerPeriod,
        timerNext: v.timerNext,
        skipPc: v.skipPc,
      })),
      scheduler: { current: this.current, left: this.left, spin: this.spinSaved() },
      devices: { pc: this.board.save(), idleNs: this.idleNs, console: this.console() },
      ...(options?.ram === false ? {} : { ram: Buffer.from(this.ram) }),
    };
  }

  loadState(s: MachineState): void {
    if (this.runningNow) throw errors.state('cannot load a machine state while the guest runs');
    if (s.version !== 1 || s.vcpus.length !== this.vcpus.length) {
      throw errors.badInput(`machine state version ${s.version} with ${s.vcpus.length} vCPUs does not fit this machine (version 1, ${this.vcpus.length} vCPUs)`);
    }
    this.seqNow = s.seq;
    s.vcpus.forEach((st, i) => {
      const v = this.vcpus[i]!;
      v.engine.restoreContext(st.context);
      v.flushTlb();
      v.run = st.run;
      v.executed = st.executed;
      v.timerPeriod = st.timerPeriod;
      v.timerNext = st.timerNext;
      v.skipPc = (st as { skipPc?: bigint }).skipPc;
      const cr2 = v.engine.readReg(X86_REG.CR2);
      v.cr2 = cr2 === 0xffff_ffff_ffff_fffen ? 0n : cr2;
    });
    this.current = s.scheduler.current;
    this.left = s.scheduler.left;
    const spin = s.scheduler.spin;
    if (spin?.length === SPIN_WORDS) {
      this.spin.set(spin);
      this.spinFresh = false;
    } else {
      // a quantum begun (or a state that kept no detector): the detector starts with the next one
      this.spinFresh = this.left === this.quantum;
      if (!this.spinFresh) this.spin.fill(0n);
    }
    const dev = s.devices as { pc: unknown; idleNs: bigint; console: string };
    this.board.load(dev.pc);
    this.vcpus.forEach((v) => this.publishLapicId(v.index));
    this.idleNs = dev.idleNs;
    this.consoleBytes = [];
    this.consoleText = dev.console;
    if (s.ram) s.ram.copy(this.ram);
    this.paging.flush();
  }

  close(): void {
    if (this.shut[0]) return;
    this.shut[0] = 1;
    this.observer?.detach?.();
    for (const v of this.vcpus) {
      emuHooks().destroy(v.hooks);
      v.engine.close();
      if (v.fast) {
        emuHooks().destroy(v.fast.hooks);
        v.fast.engine.close();
      }
    }
  }
}

function memFaultName(type: number): string {
  switch (type) {
    case UC.MEM_READ_UNMAPPED:
      return 'read of unmapped memory';
    case UC.MEM_WRITE_UNMAPPED:
      return 'write to unmapped memory';
    case UC.MEM_FETCH_UNMAPPED:
      return 'instruction fetch from unmapped memory';
    case UC.MEM_READ_PROT:
      return 'read of protected memory';
    case UC.MEM_WRITE_PROT:
      return 'write to protected memory';
    case UC.MEM_FETCH_PROT:
      return 'instruction fetch from non-executable memory';
    default:
      return `memory fault (type ${type})`;
  }
}

export { WATCH_EXEC, WATCH_READ, WATCH_WRITE };

/**
 * A successful walk as a Translation. Its steps are made only if asked for (::vtop): a memory read
 * needs the physical address alone, and a gdb client reads memory at every stop. A class, so the
 * getter is its prototype's: an object literal with a getter defined the accessor again at every
 * translation, in V8's runtime.
 */
class WalkedTranslation implements Translation {
  readonly phys: PhysAddr;
  readonly pageSize: number;

  constructor(
    readonly virt: VirtAddr,
    private readonly walk: Walk,
  ) {
    this.phys = walk.phys!;
    this.pageSize = walk.pageSize!;
  }

  get steps(): readonly TranslationStep[] {
    return this.walk.steps;
  }
}
