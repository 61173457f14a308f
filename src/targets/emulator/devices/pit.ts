/**
 * The 8254 PIT at 0x40-0x43 and the port 0x61 gate of channel 2, clocked at 1.193182 MHz of
 * virtual time. Channel 0 drives IRQ 0: modes 2 and 3 (periodic: one edge per period) and mode 0
 * (one edge at terminal count). Counter latch, lsb/msb/both access, read-back of the count. BCD
 * counting is not modelled (the count is taken as binary).
 */

import { NS_PER_S, PIT_HZ, type IrqLine, type Timed } from './clock.js';
import { snapshot } from './snapshot.js';

interface Channel {
  mode: number;
  access: number; // 1 lsb, 2 msb, 3 lsb then msb
  reload: number; // 0 = 65536
  /** The virtual time (ns) the count was loaded, or -1 while no count is loaded. */
  start: bigint;
  latched: number | undefined;
  readHigh: boolean;
  writeHigh: boolean;
  writeLow: number;
  /** Channel 0: the next IRQ 0 edge (ns), if one is due. */
  next: bigint | undefined;
  fired: bigint;
}

const ticksAt = (ns: bigint): bigint => (ns * PIT_HZ) / NS_PER_S;
const nsAtTick = (t: bigint): bigint => (t * NS_PER_S + PIT_HZ - 1n) / PIT_HZ;

export class Pit implements Timed {
  private readonly ch: Channel[] = [0, 1, 2].map(() => ({ mode: 0, access: 3, reload: 0, start: -1n, latched: undefined, readHigh: false, writeHigh: false, writeLow: 0, next: undefined, fired: 0n }));
  private gate2 = 0;

  constructor(private readonly irq0: IrqLine) {}

  handles(port: number): boolean {
    return (port >= 0x40 && port <= 0x43) || port === 0x61;
  }

  private period(c: Channel): bigint {
    return BigInt(c.reload === 0 ? 0x10000 : c.reload);
  }

  /** The counter's value at `now`. */
  private count(c: Channel, now: bigint): number {
    if (c.start < 0n) return 0;
    const p = this.period(c);
    const elapsed = ticksAt(now) - ticksAt(c.start);
    if (c.mode === 2 || c.mode === 3) return Number(p - (elapsed % p)) & 0xffff;
    return elapsed >= p ? Number((0x10000n - ((elapsed - p) % 0x10000n)) & 0xffffn) : Number(p - elapsed) & 0xffff;
  }

  private out2(now: bigint): boolean {
    const c = this.ch[2]!;
    if (c.start < 0n) return false;
    const elapsed = ticksAt(now) - ticksAt(c.start);
    if (c.mode === 0) return elapsed >= this.period(c);
    if (c.mode === 3) return elapsed % this.period(c) < this.period(c) / 2n;
    return true;
  }

  in(port: number, now: bigint): number {
    if (port === 0x61) return (this.gate2 & 3) | (this.out2(now) ? 0x20 : 0) | (Number((now / 15_000n) & 1n) << 4);
    if (port === 0x43) return 0xff;
    const c = this.ch[port - 0x40]!;
    const v = c.latched ?? this.count(c, now);
    let byte: number;
    if (c.access === 1) byte = v & 0xff;
    else if (c.access === 2) byte = v >> 8;
    else {
      byte = c.readHigh ? v >> 8 : v & 0xff;
      c.readHigh = !c.readHigh;
      if (c.readHigh) return byte; // keep the latch for the high byte
    }
    c.latched = undefined;
    return byte & 0xff;
  }

  out(port: number, v: number, now: bigint): void {
    if (port === 0x61) {
      this.gate2 = v & 3;
      return;
    }
    if (port === 0x43) {
      const sel = v >> 6;
      if (sel === 3) return; // read-back: not modelled
      const c = this.ch[sel]!;
      const access = (v >> 4) & 3;
      if (access === 0) {
        c.latched = this.count(c, now);
        c.readHigh = false;
        return;
      }
      c.access = access;
      c.mode = (v >> 1) & 7;
      if (c.mode > 5) c.mode &= 3;
      c.readHigh = false;
      c.writeHigh = false;
      c.latched = undefined;
      return;
    }
    const n = port - 0x40;
    const c = this.ch[n]!;
    if (c.access === 3 && !c.writeHigh) {
      c.writeLow = v & 0xff;
      c.writeHigh = true;
      return;
    }
    if (c.access === 1) c.reload = v & 0xff;
    else if (c.access === 2) c.reload = (v & 0xff) << 8;
    else c.reload = c.writeLow | ((v & 0xff) << 8);
    c.writeHigh = false;
    c.start = now;
    if (n === 0) {
      c.fired = 0n;
      c.next = nsAtTick(ticksAt(now) + this.period(c));
    }
  }

  nextEvent(): bigint | undefined {
    return this.ch[0]!.next;
  }

  advance(now: bigint): void {
    const c = this.ch[0]!;
    while (c.next !== undefined && c.next <= now) {
      this.irq0(true);
      this.irq0(false);
      c.fired++;
      c.next = c.mode === 2 || c.mode === 3 ? nsAtTick(ticksAt(c.start) + this.period(c) * (c.fired + 1n)) : undefined;
    }
  }

  save(): unknown {
    return { ch: snapshot(this.ch), gate2: this.gate2 };
  }

  load(s: unknown): void {
    const st = structuredClone(s) as { ch: Channel[]; gate2: number };
    st.ch.forEach((c, i) => Object.assign(this.ch[i]!, c));
    this.gate2 = st.gate2;
  }
}
