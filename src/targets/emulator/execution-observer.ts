/**
 * The hook points of the emulated machine's execution loop, for a recorder (issue 5) or any other
 * observer that must see every instruction and every nondeterministic input.
 *
 * The contract, as the machine (machine.ts) keeps it:
 *
 *   Time. `seq` is the number of instructions the whole machine has executed since boot (all
 *   vCPUs together). vCPUs run one at a time, round-robin, each for a quantum of
 *   `quantum` instructions (default 10,000); a slice is a part of a quantum that ended early
 *   (breakpoint, watchpoint, timer deadline, step, interrupt, fault, halt). The next slice of the
 *   same quantum continues on the same vCPU with what is left of it, so the interleaving of vCPUs
 *   depends only on instruction counts, never on where the debugger stopped or on wall time.
 *   A quantum also ends early where its vCPU comes back to a pc with every general register as it
 *   was there (a spin: an idle loop that never halts, a lock held elsewhere; native/emu/emu.c,
 *   "Spin detection"), while another vCPU could run: the slice ends before that instruction
 *   ('yield') and the next vCPU's quantum starts. That is decided by the guest's own state at
 *   instruction counts, whichever engine runs and wherever the debugger stops; the trace keeps
 *   slices as they ran, so a replay follows them without deciding anything.
 *
 *   Slices. For each slice the machine calls, in this order and on the main thread:
 *     beforeSlice(vcpu, seq)          before uc_emu_start on that vCPU's engine; seq = first
 *                                     instruction the slice may execute;
 *     ... the engine runs; the observer's own native hooks on that engine see each instruction ...
 *     afterSlice(vcpu, executed, stop) executed = instructions that completed in this slice
 *                                     (exact: a breakpoint stop does NOT count the instruction at
 *                                     the breakpoint, which did not run; a watchpoint stop counts
 *                                     the accessing instruction, which completed); the machine's
 *                                     seq becomes seq + executed.
 *   Native code hooks may be called for an instruction that does not complete (the one at a
 *   breakpoint, the one after a watched access, the one that faults, the one past the quantum
 *   limit): an observer must trust `executed`, not its own count of hook calls.
 *
 *   Inputs. Everything that changes guest state and is not the execution of guest instructions is
 *   reported through onInput before it takes effect on the guest's next instruction:
 *     - timer interrupts injected between slices, with the stack bytes the injection wrote;
 *     - port reads (IN) with the value the device returned (serial input, status registers);
 *     - secondary-CPU start-ups (the started vCPU's registers are then visible through the machine);
 *     - debugger writes of memory and registers.
 *   Replaying the same inputs at the same seqs from a restored state re-executes identically.
 *
 *   State. machine.saveState() captures everything execution depends on: every vCPU's full CPU
 *   context (uc_context: general, segment, control registers, MSRs, flags, FPU/SSE), its run state
 *   (waiting for start, running, idle in hlt, halted), its timer, the scheduler's position (current
 *   vCPU, what is left of its quantum, the quantum's spin detector), the devices (serial registers
 *   and input queue), seq, and optionally RAM (a copy; pass { ram: false } to skip it when the observer tracks memory itself).
 *   machine.loadState(state) puts all of it back (and flushes every engine's TLB; translated code
 *   is kept: guest code is assumed not to differ between the two states).
 *   Neither may be called from inside a slice.
 *
 *   Native access. attach() gives each vCPU's uc_engine* (a BigInt address, as koffi.address gives
 *   it) so a native addon can add its own hooks, the RAM host buffer (shared by every vCPU: RAM is
 *   ONE host buffer mapped with uc_mem_map_ptr at guest-physical `ramBase` in every engine), and
 *   the vCPU count. An observer that adds or removes CODE hooks must drop the translated code they
 *   cover itself: uc_ctl(UC_CTL_WRITE(UC_CTL_TB_REMOVE_CACHE, 2), begin, end). Do not use
 *   UC_CTL_TB_FLUSH: in Unicorn 2.0.1 it costs 1.5-4 s per call. Memory hooks need nothing (they
 *   are looked up at run time), and hooks added before the first slice need nothing either. Engines exist for the machine's whole life; a vCPU
 *   waiting for start-up has an engine but runs no slices.
 */

import type { StopReason } from '../target.js';

/** Why a slice ended, as afterSlice reports it. */
export type SliceStop =
  | { kind: 'quantum' } // the slice ran the instructions it was given
  | { kind: 'timer' } // the vCPU's timer deadline came; an interrupt may be injected next
  | { kind: 'step' } // a single step or a step limit
  | { kind: 'yield' } // the vCPU came back to a state it was in: the rest of its quantum goes to the next vCPU
  | { kind: 'stop'; reason: StopReason }; // breakpoint, watchpoint, fault, halted, interrupted...

export type InputEvent =
  | {
      kind: 'interrupt';
      seq: bigint;
      vcpu: number;
      vector: number;
      /** Guest-physical stack writes the injection made (the interrupt frame), in order, with the
       *  bytes they replaced. */
      writes: readonly { phys: bigint; data: Buffer; old: Buffer }[];
      /** The registers the injection changed, with their new values. */
      registers: ReadonlyMap<string, bigint>;
      /**
       * An exception or `int n` delivered as the slice that raised it ended (before its end, and
       * its end checkpoint, reach the observer); else an interrupt taken between slices.
       */
      inSlice?: true;
    }
  | { kind: 'port-in'; seq: bigint; vcpu: number; port: number; size: number; value: number }
  /** A device register (local or I/O APIC) read by the instruction at `seq`: guest-physical `phys`. */
  | { kind: 'mmio-read'; seq: bigint; vcpu: number; phys: number; size: number; value: number }
  /**
   * From `seq` on, vCPU `vcpu`'s local APIC ID register (0xfee00020, 4 bytes) reads as `value`,
   * and reads of it are no 'mmio-read' events: a kernel reads it at every lock it takes (xv6's
   * mycpu()), and a replay answers them from this (schema 9). Told when observing starts and
   * whenever the register changes.
   */
  | { kind: 'lapic-id'; seq: bigint; vcpu: number; value: number }
  | { kind: 'cpu-start'; seq: bigint; vcpu: number; by: number }
  | { kind: 'memory-write'; seq: bigint; phys: bigint; data: Buffer; old: Buffer } // by the debugger
  | { kind: 'register-write'; seq: bigint; vcpu: number; name: string; value: bigint }; // by the debugger

/**
 * A fast engine as an observer sees it: its uc_engine*, and `recordTo`, which connects a native
 * block sink (native/common/block-sink.h) that hears of every block it runs; `recordTo(undefined)`
 * disconnects (before the sink's owner goes).
 */
export interface FastEngineHandle {
  readonly address: bigint;
  recordTo(sink: bigint | undefined): void;
}

/** What an observer may see and do of the machine. */
export interface ObservedMachine {
  readonly vcpuCount: number;
  /** Instructions per scheduling quantum (the dbg machine always gives it). */
  readonly quantum?: number;
  /** uc_engine* of vCPU `vcpu` (0-based), for a native addon. */
  engineAddress(vcpu: number): bigint;
  /**
   * The fast engine of vCPU `vcpu` (native/emu/emu.c, "Fast engine"), when it has one; connected
   * to a sink (FastEngineHandle.recordTo), the machine runs that vCPU's slices on it while
   * observed. Without a fast engine, or when not connected, observed slices run on the exact
   * engine alone.
   */
  fastEngine?(vcpu: number): FastEngineHandle | undefined;
  /** Guest RAM: one host buffer shared by every vCPU's engine. */
  readonly ram: Buffer;
  /** Guest-physical address of ram[0]. */
  readonly ramBase: bigint;
  /** Instructions executed by the whole machine so far. */
  readonly seq: bigint;
  saveState(options?: { ram?: boolean }): MachineState;
  loadState(state: MachineState): void;
}

/** An opaque snapshot of the machine (see saveState); structured-cloneable. */
export interface MachineState {
  readonly version: 1;
  readonly seq: bigint;
  readonly vcpus: readonly {
    readonly context: Buffer;
    readonly run: 'wait-start' | 'running' | 'idle' | 'halted';
    readonly executed: bigint;
    readonly timerPeriod: number;
    readonly timerNext: bigint;
    /** The vCPU stopped at a breakpoint at this pc: its next instruction passes it once. */
    readonly skipPc?: bigint;
  }[];
  /**
   * `spin`: the current quantum's spin detector (emu-hooks.ts, SPIN_WORDS; undefined while the
   * quantum has not begun); a state made without it looks for no spin in the rest of that quantum.
   */
  readonly scheduler: { readonly current: number; readonly left: number; readonly spin?: BigUint64Array };
  readonly devices: unknown;
  readonly ram?: Buffer;
}

/**
 * Implemented by whoever wants to observe execution (the recorder). All methods run on the main
 * thread, outside uc_emu_start: no method is ever called from inside an engine hook. Port and
 * device register reads happen inside a slice; their 'port-in' and 'mmio-read' events are
 * delivered after that slice ends and before its afterSlice, each with the seq of its reading
 * instruction. Other inputs are delivered between slices,
 * before the instruction they affect, with the seq of that instruction.
 * Exceptions thrown by an observer propagate out of the run (the run stops).
 */
export interface ExecutionObserver {
  /**
   * False: the observer needs no instruction told (a lazy recording keeps slices, inputs and
   * written pages, not pcs): slices run on the fast engine with no block sink, as unobserved.
   */
  readonly hearsInstructions?: boolean;
  attach(machine: ObservedMachine): void;
  beforeSlice(vcpu: number, seq: bigint): void;
  afterSlice(vcpu: number, executed: number, stop: SliceStop): void;
  onInput(event: InputEvent): void;
  /** A run of the machine ended: `seq` is the next instruction to run, on `vcpu`. */
  onStop?(seq: bigint, vcpu: number, reason: StopReason): void;
  /** The machine is closing; release hooks. */
  detach?(): void;
}
