/**
 * A local APIC (xAPIC, MMIO page 0xfee00000, one per vCPU; which one an access reaches depends on
 * the vCPU making it). ID, version (0x14, 6 LVT entries), TPR, EOI, LDR/DFR, SVR, ISR/TMR/IRR,
 * ESR, ICR (fixed, lowest-priority as fixed, INIT, start-up; destination shorthands, physical and
 * flat logical destinations), LVT timer/thermal/perf/LINT0/LINT1/error, and the timer (one-shot
 * and periodic) counting at 1 GHz / divide of virtual time. The BSP's LINT0 starts as ExtINT and
 * LINT1 as NMI (the virtual-wire mode SeaBIOS leaves), so 8259 interrupts reach vCPU 0 until the
 * kernel masks LINT0.
 */

import type { Timed } from './clock.js';

export const LAPIC_BASE = 0xfee00000;
/** The local APIC's ID register (guest-physical), which kernels read at every lock (a 'lapic-id' input of a recording). */
export const LAPIC_ID = LAPIC_BASE + 0x20;

/** What an ICR write asks the board to do. */
export interface Ipi {
  mode: number; // 0 fixed, 1 lowest priority, 2 SMI, 4 NMI, 5 INIT, 6 start-up, 7 ExtINT
  vector: number;
  level: boolean; // INIT level de-assert when false (ignored)
  shorthand: number; // 0 none, 1 self, 2 all including self, 3 all excluding self
  logical: boolean;
  dest: number;
}

const DIVIDES = [2, 4, 8, 16, 32, 64, 128, 1];

export class Lapic implements Timed {
  id: number;
  tpr = 0;
  ldr = 0;
  dfr = 0xffffffff;
  svr = 0xff;
  esr = 0;
  icrLow = 0;
  icrHigh = 0;
  lvt = [0x10000, 0x10000, 0x10000, 0x10000, 0x10000, 0x10000]; // timer, thermal, perf, LINT0, LINT1, error
  divide = 0;
  initial = 0;
  start = 0n;
  next: bigint | undefined;
  irr = new Uint32Array(8);
  isr = new Uint32Array(8);
  tmr = new Uint32Array(8);

  constructor(
    readonly index: number,
    private readonly sendIpi: (from: number, ipi: Ipi) => void,
    private readonly eoiLevel: (vector: number) => void,
    private readonly complain: (message: string) => void,
  ) {
    this.id = index;
    if (index === 0) {
      this.lvt[3] = 0x700;
      this.lvt[4] = 0x400;
    }
  }

  get enabled(): boolean {
    return (this.svr & 0x100) !== 0;
  }

  private get divisor(): bigint {
    return BigInt(DIVIDES[(this.divide & 3) | ((this.divide & 8) >> 1)]!);
  }

  /** LINT0 passes the 8259's INTR (ExtINT, not masked). */
  acceptsPic(): boolean {
    return (this.lvt[3]! & 0x10700) === 0x700;
  }

  /** Queue fixed interrupt `vector` (level: remembered in TMR for the IOAPIC's EOI). */
  accept(vector: number, level = false): void {
    if (vector < 16) {
      this.esr |= 0x40; // received illegal vector
      return;
    }
    this.irr[vector >> 5]! |= 1 << (vector & 31);
    if (level) this.tmr[vector >> 5]! |= 1 << (vector & 31);
    else this.tmr[vector >> 5]! &= ~(1 << (vector & 31));
  }

  private static highest(bits: Uint32Array): number {
    for (let i = 7; i >= 0; i--) if (bits[i]) return i * 32 + 31 - Math.clz32(bits[i]!);
    return -1;
  }

  /** The vector this APIC would give its CPU now (priority above ISR and TPR), or -1. */
  deliverable(): number {
    const v = Lapic.highest(this.irr);
    if (v < 0) return -1;
    const isr = Lapic.highest(this.isr);
    const ppr = Math.max(isr < 0 ? 0 : isr & 0xf0, this.tpr & 0xf0);
    return (v & 0xf0) > ppr ? v : -1;
  }

  /** The CPU takes `vector` (INTA): IRR -> ISR. */
  take(vector: number): void {
    this.irr[vector >> 5]! &= ~(1 << (vector & 31));
    this.isr[vector >> 5]! |= 1 << (vector & 31);
  }

  private currentCount(now: bigint): number {
    if (this.initial === 0) return 0;
    const ticks = (now - this.start) / this.divisor;
    const n = BigInt(this.initial);
    if (this.lvt[0]! & 0x20000) return Number(n - (ticks % n));
    return ticks >= n ? 0 : Number(n - ticks);
  }

  private arm(now: bigint): void {
    this.start = now;
    this.next = this.initial === 0 ? undefined : now + BigInt(this.initial) * this.divisor;
  }

  nextEvent(): bigint | undefined {
    return this.next;
  }

  advance(now: bigint): void {
    while (this.next !== undefined && this.next <= now) {
      const lvt = this.lvt[0]!;
      if (!(lvt & 0x10000) && this.enabled) this.accept(lvt & 0xff);
      if (lvt & 0x20000) this.next += BigInt(this.initial) * this.divisor;
      else this.next = undefined;
    }
  }

  read(off: number, now: bigint): number {
    if (off >= 0x100 && off < 0x280) {
      const arr = off < 0x180 ? this.isr : off < 0x200 ? this.tmr : this.irr;
      return arr[(off >> 4) & 7]!;
    }
    switch (off) {
      case 0x20:
        return this.id << 24;
      case 0x30:
        return 0x00050014;
      case 0x80:
        return this.tpr;
      case 0xa0: {
        const isr = Lapic.highest(this.isr);
        return Math.max(isr < 0 ? 0 : isr & 0xf0, this.tpr & 0xf0);
      }
      case 0xd0:
        return this.ldr;
      case 0xe0:
        return this.dfr;
      case 0xf0:
        return this.svr;
      case 0x280:
        return this.esr;
      case 0x300:
        return this.icrLow & ~0x1000; // delivery status: idle
      case 0x310:
        return this.icrHigh;
      case 0x380:
        return this.initial;
      case 0x390:
        return this.currentCount(now);
      case 0x3e0:
        return this.divide;
      default:
        if (off >= 0x320 && off <= 0x370) return this.lvt[(off - 0x320) >> 4]!;
        return 0;
    }
  }

  write(off: number, v: number, now: bigint): void {
    v >>>= 0;
    switch (off) {
      case 0x20:
        this.id = v >>> 24;
        return;
      case 0x80:
        this.tpr = v & 0xff;
        return;
      case 0xb0: {
        const vec = Lapic.highest(this.isr);
        if (vec < 0) return;
        this.isr[vec >> 5]! &= ~(1 << (vec & 31));
        if (this.tmr[vec >> 5]! & (1 << (vec & 31))) this.eoiLevel(vec);
        return;
      }
      case 0xd0:
        this.ldr = v & 0xff000000;
        return;
      case 0xe0:
        this.dfr = v | 0x0fffffff;
        return;
      case 0xf0:
        this.svr = v & 0x13ff;
        if (!(v & 0x100)) for (let i = 0; i < 6; i++) this.lvt[i]! |= 0x10000;
        return;
      case 0x280:
        this.esr = 0;
        return;
      case 0x300: {
        this.icrLow = v;
        const ipi: Ipi = {
          vector: v & 0xff,
          mode: (v >> 8) & 7,
          logical: (v & 0x800) !== 0,
          level: (v & 0x4000) !== 0,
          shorthand: (v >> 18) & 3,
          dest: this.icrHigh >>> 24,
        };
        this.sendIpi(this.index, ipi);
        return;
      }
      case 0x310:
        this.icrHigh = v & 0xff000000;
        return;
      case 0x380:
        this.initial = v;
        this.arm(now);
        return;
      case 0x3e0:
        this.divide = v & 0xb;
        return;
      default:
        if (off >= 0x320 && off <= 0x370) {
          const i = (off - 0x320) >> 4;
          let val = v & (i === 0 ? 0x710ff : i === 3 || i === 4 ? 0x1a7ff : 0x107ff);
          if (!this.enabled) val |= 0x10000;
          if (i === 0 && ((v >> 17) & 3) === 2) {
            this.complain(`local APIC of vCPU ${this.index}: LVT timer 0x${v.toString(16)} selects TSC-deadline mode, which the emulated APIC does not offer (CPUID says so)`);
            return;
          }
          this.lvt[i] = val;
          return;
        }
        // read-only and reserved registers ignore writes (as the APIC does), noting it in ESR
        if (off !== 0x30 && off !== 0x90 && off !== 0xa0 && off !== 0xc0 && off !== 0x390 && !(off >= 0x100 && off < 0x280)) this.esr |= 0x80;
    }
  }

  /**
   * Every field but the callbacks, copied (a recorded machine saves a local APIC at most slices
   * that take a timer interrupt: the generic copy of `this` went through megamorphic keyed stores,
   * ~2x this; test/targets/emulator/standard-pc.test.ts checks that no field is left out).
   */
  save(): unknown {
    return {
      id: this.id,
      tpr: this.tpr,
      ldr: this.ldr,
      dfr: this.dfr,
      svr: this.svr,
      esr: this.esr,
      icrLow: this.icrLow,
      icrHigh: this.icrHigh,
      lvt: this.lvt.slice(),
      divide: this.divide,
      initial: this.initial,
      start: this.start,
      next: this.next,
      irr: this.irr.slice(),
      isr: this.isr.slice(),
      tmr: this.tmr.slice(),
      index: this.index,
    };
  }

  load(s: unknown): void {
    Object.assign(this, structuredClone(s));
  }
}
