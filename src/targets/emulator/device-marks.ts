/**
 * The device and scheduler state at a position, kept while the machine keeps marks (a recorded
 * machine: Machine.keepDeviceMarks, for putting it back at a recorded seq, Machine.rewind): a
 * mark at every slice start (everything) and after every serial-port access inside a slice (the
 * UART and the console length). Between two marks the state follows from the instruction count:
 * the running vCPU has executed and used up its quantum by as many instructions.
 *
 * Columns of typed arrays, a row a mark: a recorded 2-vCPU xv6 boot keeps ~18,000 of them, and as
 * objects (a mark, its slice, the vCPUs' array and entries, their BigInts) each slice made five
 * to eight for the collector to copy and mark (~0.6 KB a mark). Positions and instruction counts
 * are below 2^53, kept as doubles. The devices' states and the spin detectors stay objects,
 * shared between marks while they are the same (Machine.boardState, spinCanonical).
 */

import { grown } from '../../common/grown.js';
import type { VcpuRun } from './machine.js';

/** A vCPU's scheduling state, as a slice's mark keeps it. */
export interface VcpuMark {
  readonly run: VcpuRun;
  readonly executed: bigint;
  readonly timerPeriod: number;
  readonly timerNext: bigint;
  readonly skipPc: bigint | undefined;
}

/** A slice's scheduler state, as its mark keeps it. */
export interface SliceMark {
  readonly current: number;
  readonly left: number;
  /** The vCPU the slice runs when it is not `current` (a run of one vCPU alone). */
  readonly alone?: number;
  readonly vcpus: readonly VcpuMark[];
  /** The spin detector before the slice (undefined for a quantum not begun)... */
  readonly spinBefore: BigUint64Array | undefined;
  /** ...and as the slice ran with it (after a new quantum's start, an interrupt). */
  readonly spinRun?: BigUint64Array;
  /** The slice looked for a spin (its vCPU's quantum, another vCPU could run). */
  readonly spinLooked?: true;
}

/** What a slice's mark is made from: the machine's vCPUs as they are (read, not kept). */
export interface VcpuNow {
  readonly run: VcpuRun;
  readonly executed: bigint;
  readonly timerPeriod: number;
  readonly timerNext: bigint;
  readonly skipPc: bigint | undefined;
}

const RUNS: readonly VcpuRun[] = ['wait-start', 'running', 'idle', 'halted'];
const RUN_CODE: Readonly<Record<VcpuRun, number>> = { 'wait-start': 0, running: 1, idle: 2, halted: 3 };

const SLICE = 1;
const LOOKED = 2;
const ALONE = 4;
/** (vCPU flags) a skip pc is set */
const SKIP = 1;

export class DeviceMarks {
  private cap = 1024;
  private n = 0;
  private seq = new Float64Array(this.cap);
  private flags = new Uint8Array(this.cap);
  private current = new Int32Array(this.cap);
  private left = new Float64Array(this.cap);
  private alone = new Int32Array(this.cap);
  private consoleLength = new Float64Array(this.cap);
  private readonly uart: unknown[] = [];
  private readonly spinBefore: (BigUint64Array | undefined)[] = [];
  private readonly spinRun: (BigUint64Array | undefined)[] = [];
  /** A row of `vcpus` entries a mark (a device mark's is left unset). */
  private run: Uint8Array;
  private vflags: Uint8Array;
  private executed: Float64Array;
  private timerPeriod: Float64Array;
  private timerNext: Float64Array;
  private skipPc: BigUint64Array;

  constructor(private readonly vcpus: number) {
    this.run = new Uint8Array(this.cap * vcpus);
    this.vflags = new Uint8Array(this.cap * vcpus);
    this.executed = new Float64Array(this.cap * vcpus);
    this.timerPeriod = new Float64Array(this.cap * vcpus);
    this.timerNext = new Float64Array(this.cap * vcpus);
    this.skipPc = new BigUint64Array(this.cap * vcpus);
  }

  get length(): number {
    return this.n;
  }

  /** The position mark `i` holds the state at (before instruction `seq` runs). */
  seqAt(i: number): bigint {
    return BigInt(this.seq[i]!);
  }

  /** How many marks hold positions at or before `seq` (the marks are in seq order): a binary search. */
  countUpTo(seq: bigint): number {
    const at = Number(seq);
    let lo = 0;
    let hi = this.n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.seq[mid]! <= at) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  isSlice(i: number): boolean {
    return (this.flags[i]! & SLICE) !== 0;
  }

  uartAt(i: number): unknown {
    return this.uart[i];
  }

  consoleLengthAt(i: number): number {
    return this.consoleLength[i]!;
  }

  /** A mark of the devices alone (a serial access inside a slice, input queued). */
  push(seq: bigint, uart: unknown, consoleLength: number): void {
    const i = this.row();
    this.seq[i] = Number(seq);
    this.flags[i] = 0;
    this.uart[i] = uart;
    this.spinBefore[i] = undefined;
    this.spinRun[i] = undefined;
    this.consoleLength[i] = consoleLength;
  }

  /**
   * A slice's mark: the scheduler (`alone`: the vCPU a run of one vCPU alone runs, when not
   * `current`), the vCPUs as they are now with `skip` for the pc the slice's vCPU passes once,
   * the spin detector before the slice and as it ran, the devices.
   */
  pushSlice(
    seq: bigint,
    current: number,
    left: number,
    alone: number | undefined,
    vcpus: readonly VcpuNow[],
    skip: { vcpu: number; pc: bigint } | undefined,
    spinBefore: BigUint64Array | undefined,
    spinRun: BigUint64Array | undefined,
    spinLooked: boolean,
    uart: unknown,
    consoleLength: number,
  ): void {
    const i = this.row();
    this.seq[i] = Number(seq);
    this.flags[i] = SLICE | (spinLooked ? LOOKED : 0) | (alone !== undefined && alone !== current ? ALONE : 0);
    this.current[i] = current;
    this.left[i] = left;
    this.alone[i] = alone ?? 0;
    this.uart[i] = uart;
    this.spinBefore[i] = spinBefore;
    this.spinRun[i] = spinRun;
    this.consoleLength[i] = consoleLength;
    const at = i * this.vcpus;
    for (let k = 0; k < this.vcpus; k++) {
      const v = vcpus[k]!;
      const pc = skip && skip.vcpu === k ? skip.pc : v.skipPc;
      this.run[at + k] = RUN_CODE[v.run];
      this.executed[at + k] = Number(v.executed);
      this.timerPeriod[at + k] = v.timerPeriod;
      this.timerNext[at + k] = Number(v.timerNext);
      this.vflags[at + k] = pc === undefined ? 0 : SKIP;
      this.skipPc[at + k] = pc ?? 0n;
    }
  }

  /** Slice mark `i` as a record (made for Machine.rewind: rarely). */
  sliceAt(i: number): SliceMark {
    const f = this.flags[i]!;
    if (!(f & SLICE)) throw new Error(`device mark ${i} is not a slice's`);
    const at = i * this.vcpus;
    const vcpus: VcpuMark[] = [];
    for (let k = 0; k < this.vcpus; k++) {
      vcpus.push({
        run: RUNS[this.run[at + k]!]!,
        executed: BigInt(this.executed[at + k]!),
        timerPeriod: this.timerPeriod[at + k]!,
        timerNext: BigInt(this.timerNext[at + k]!),
        skipPc: this.vflags[at + k]! & SKIP ? this.skipPc[at + k]! : undefined,
      });
    }
    const spinRun = this.spinRun[i];
    return {
      current: this.current[i]!,
      left: this.left[i]!,
      ...(f & ALONE ? { alone: this.alone[i]! } : {}),
      vcpus,
      spinBefore: this.spinBefore[i],
      ...(spinRun ? { spinRun } : {}),
      ...(f & LOOKED ? { spinLooked: true as const } : {}),
    };
  }

  /** Keep marks [0, n) (the machine was put back before the rest). */
  truncate(n: number): void {
    this.n = Math.min(this.n, Math.max(0, n));
    this.uart.length = this.spinBefore.length = this.spinRun.length = this.n;
  }

  /** Drop marks [0, from) (the oldest). */
  dropBefore(from: number): void {
    if (from <= 0) return;
    from = Math.min(from, this.n);
    const end = this.n;
    for (const a of [this.seq, this.flags, this.current, this.left, this.alone, this.consoleLength]) a.copyWithin(0, from, end);
    const v = this.vcpus;
    for (const a of [this.run, this.vflags, this.executed, this.timerPeriod, this.timerNext, this.skipPc]) a.copyWithin(0, from * v, end * v);
    this.uart.splice(0, from);
    this.spinBefore.splice(0, from);
    this.spinRun.splice(0, from);
    this.n = end - from;
  }

  /** The index of the next row, grown as needed. */
  private row(): number {
    if (this.n === this.cap) this.grow();
    return this.n++;
  }

  private grow(): void {
    const cap = this.cap * 2;
    const v = this.vcpus;
    this.seq = grown(this.seq, cap);
    this.flags = grown(this.flags, cap);
    this.current = grown(this.current, cap);
    this.left = grown(this.left, cap);
    this.alone = grown(this.alone, cap);
    this.consoleLength = grown(this.consoleLength, cap);
    this.run = grown(this.run, cap * v);
    this.vflags = grown(this.vflags, cap * v);
    this.executed = grown(this.executed, cap * v);
    this.timerPeriod = grown(this.timerPeriod, cap * v);
    this.timerNext = grown(this.timerNext, cap * v);
    this.skipPc = grown(this.skipPc, cap * v);
    this.cap = cap;
  }
}
