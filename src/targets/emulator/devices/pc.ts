/**
 * The standard-PC devices of the dbg machine, on one bus: 8259A pair, 8254 PIT, CMOS/RTC, COM1
 * 16550, i8042 keyboard, CGA text, primary ATA channel, one local APIC per vCPU and an I/O APIC.
 * Each device is in its own file; this board routes ports and MMIO to them, ISA IRQ lines to both
 * the 8259s and the I/O APIC, interrupts to the vCPUs' local APICs, and INIT/start-up IPIs to the
 * machine. Times are virtual (clock.ts): every call that depends on time is given `now`.
 *
 * A device access dbg cannot honour as hardware would (an IPI or redirection entry asking for
 * SMI/NMI/ExtINT delivery, the APIC's TSC-deadline mode, a misaligned APIC access) sets `problem`,
 * and the machine stops the run with it before the guest's next instruction.
 */

import { isDeepStrictEqual } from 'node:util';
import { AtaChannel, type Disk } from './ata.js';
import { Cga } from './cga.js';
import { Cmos } from './cmos.js';
import { I8042 } from './i8042.js';
import { IOAPIC_BASE, IoApic } from './ioapic.js';
import { LAPIC_BASE, LAPIC_ID, Lapic, type Ipi } from './lapic.js';
import { PicPair } from './pic.js';
import { Pit } from './pit.js';
import { Uart } from './uart.js';

export { IOAPIC_BASE, LAPIC_BASE, LAPIC_ID };
export const COM1_PORT = 0x3f8;
export const COM1_IRQ = 4;

export interface BoardHost {
  /** A byte the guest wrote to COM1. */
  emit(byte: number): void;
  /** INIT (assert) reached vCPU `vcpu`. */
  init(vcpu: number): void;
  /** A start-up IPI with `vector` reached vCPU `vcpu`. */
  startup(vcpu: number, vector: number): void;
}

/** A device on I/O ports (StandardPc.portDevices). */
interface PortDevice {
  readonly bit: number;
  has(port: number): boolean;
  in(port: number, size: number, now: bigint): number;
  out(port: number, size: number, value: number, now: bigint): void;
}

/**
 * The devices as bits of StandardPc.changed: which may have changed since save() last saved them.
 * The local APICs are one (an interrupt routed reaches any of them).
 */
const PIC = 1;
const PIT = 2;
const CMOS = 4;
const UART = 8;
const KBD = 16;
const CGA = 32;
const ATA = 64;
const IOAPIC = 128;
const LAPICS = 256;
const ALL = 511;

export class StandardPc {
  readonly pic = new PicPair();
  readonly pit: Pit;
  readonly cmos: Cmos;
  readonly uart: Uart;
  readonly kbd: I8042;
  readonly cga = new Cga();
  readonly ata: AtaChannel;
  readonly ioapic: IoApic;
  readonly lapics: Lapic[] = [];
  /**
   * Moves on at every call that may change a device's state (an access, a timer that fires, an
   * interrupt taken, input, a load): a recorded machine's marks (Machine.keepDeviceMarks) save the
   * devices again only when it moved, instead of at every slice.
   */
  version = 0;
  /**
   * The devices (bits above) a call may have changed since save() last saved them; save() saves
   * only those again and shares the others' states with the save before (a recorded xv6 boot
   * saves the board at ~9,000 slice starts, nearly all of which came after a port access, and
   * copying every device each time, the ATA channel's sector buffer among them, was ~7% of the
   * recording's time). A call marks what it may reach: the device it names, and through an IRQ
   * line, the 8259s, the I/O APIC and the local APICs (irq()).
   */
  private changed = ALL;
  private saved: Record<string, unknown> | undefined;
  /**
   * Tests: save() checks every state it shares against the device's own save, and keeps the first
   * that differs in `saveMismatch` (not thrown: save() runs inside the engines' callbacks).
   */
  static checkSaves = false;
  static saveMismatch: string | undefined;
  /** Why the run must stop (see the header), until the machine takes it. */
  problem: string | undefined;

  constructor(
    cpus: number,
    ramBytes: number,
    readonly disks: (Disk | undefined)[],
    private readonly host: BoardHost,
  ) {
    this.pit = new Pit((l) => this.irq(0, l));
    this.cmos = new Cmos(ramBytes);
    this.uart = new Uart((b) => host.emit(b), (l) => this.irq(COM1_IRQ, l));
    this.kbd = new I8042((l) => this.irq(1, l));
    this.ata = new AtaChannel(disks, (l) => this.irq(14, l));
    const complain = (m: string): void => {
      this.problem ??= m;
    };
    for (let i = 0; i < cpus; i++) this.lapics.push(new Lapic(i, (from, ipi) => this.ipi(from, ipi), (v) => this.ioapic.eoi(v), complain));
    this.ioapic = new IoApic(0, (dest, logical, vector, level) => this.route(dest, logical, vector, level), complain);
  }

  /** ISA IRQ line `n` (0-15). */
  irq(n: number, level: boolean): void {
    this.touch(PIC | IOAPIC | LAPICS);
    this.pic.setIrq(n, level);
    this.ioapic.setPin(n === 0 ? 2 : n, level);
  }

  private targets(dest: number, logical: boolean): Lapic[] {
    if (!logical) return dest === 0xff ? this.lapics : this.lapics.filter((l) => l.id === dest);
    return this.lapics.filter((l) => (l.ldr >>> 24) & dest);
  }

  private route(dest: number, logical: boolean, vector: number, level: boolean): void {
    for (const l of this.targets(dest, logical)) l.accept(vector, level);
  }

  private ipi(from: number, ipi: Ipi): void {
    const self = this.lapics[from]!;
    let to: Lapic[];
    if (ipi.shorthand === 1) to = [self];
    else if (ipi.shorthand === 2) to = this.lapics;
    else if (ipi.shorthand === 3) to = this.lapics.filter((l) => l !== self);
    else to = this.targets(ipi.dest, ipi.logical);
    switch (ipi.mode) {
      case 0:
      case 1:
        for (const l of ipi.mode === 1 ? to.slice(0, 1) : to) l.accept(ipi.vector);
        return;
      case 5:
        if (ipi.level) for (const l of to) this.host.init(l.index);
        return;
      case 6:
        for (const l of to) this.host.startup(l.index, ipi.vector);
        return;
      default:
        this.problem ??= `local APIC of vCPU ${from}: ICR 0x${(this.lapics[from]!.icrLow >>> 0).toString(16)} asks for ${['', '', 'SMI', 'reserved', 'NMI', '', '', 'ExtINT'][ipi.mode]} delivery, which the emulated APIC does not send`;
    }
  }

  /**
   * The devices on I/O ports, each with its bit (touch), which ports it has, and how a read and a
   * write of one reach it (a byte of the value: only the ATA data port takes words).
   */
  private readonly portDevices: readonly PortDevice[] = [
    { bit: UART, has: (p) => p >= COM1_PORT && p < COM1_PORT + 8, in: (p) => this.uart.read(p - COM1_PORT), out: (p, _n, v) => this.uart.write(p - COM1_PORT, v & 0xff) },
    { bit: PIC, has: (p) => this.pic.handles(p), in: (p) => this.pic.in(p), out: (p, _n, v) => this.pic.out(p, v & 0xff) },
    { bit: PIT, has: (p) => this.pit.handles(p), in: (p, _n, now) => this.pit.in(p, now), out: (p, _n, v, now) => this.pit.out(p, v & 0xff, now) },
    { bit: CMOS, has: (p) => this.cmos.handles(p), in: (p, _n, now) => this.cmos.in(p, now), out: (p, _n, v) => this.cmos.out(p, v & 0xff) },
    { bit: KBD, has: (p) => this.kbd.handles(p), in: (p) => this.kbd.in(p), out: (p, _n, v) => this.kbd.out(p, v & 0xff) },
    { bit: CGA, has: (p) => this.cga.handles(p), in: (p) => this.cga.in(p), out: (p, _n, v) => this.cga.out(p, v & 0xff) },
    { bit: ATA, has: (p) => this.ata.handles(p), in: (p, n) => this.ata.in(p, n), out: (p, n, v) => this.ata.out(p, n, v) },
  ];

  /** The device that has `port`, marked as reached (touch), or undefined. */
  private portDevice(port: number): PortDevice | undefined {
    const d = this.portDevices.find((x) => x.has(port));
    this.touch(d?.bit ?? 0);
    return d;
  }

  /** A port of one of these devices: its value; undefined when no device here has the port. */
  portIn(port: number, size: number, now: bigint): number | undefined {
    return this.portDevice(port)?.in(port, size, now);
  }

  /** False when no device here has the port. */
  portOut(port: number, size: number, value: number, now: bigint): boolean {
    const d = this.portDevice(port);
    if (d) d.out(port, size, value, now);
    else return port === 0x80 || port === 0x92 || port === 0x22 || port === 0x23; // POST codes, fast A20, IMCR
    return true;
  }

  private mmioCheck(what: string, vcpu: number, off: number, size: number, write: boolean): boolean {
    if (size === 4 && (off & 3) === 0) return true;
    this.problem ??= `${what}: ${size}-byte ${write ? 'write to' : 'read of'} offset 0x${off.toString(16)} by vCPU ${vcpu}; its registers take aligned 4-byte accesses only`;
    return false;
  }

  lapicRead(vcpu: number, off: number, size: number, now: bigint): number {
    this.touch(LAPICS);
    if (!this.mmioCheck('local APIC', vcpu, off, size, false)) return 0;
    this.lapics[vcpu]!.advance(now);
    return this.lapics[vcpu]!.read(off & 0xff0, now);
  }

  /** The ID register of `vcpu`'s local APIC as a read returns it (its only register no time or event changes). */
  lapicIdRegister(vcpu: number): number {
    return this.lapics[vcpu]!.read(0x20, 0n) >>> 0;
  }

  lapicWrite(vcpu: number, off: number, size: number, value: number, now: bigint): void {
    // (an IPI reaches the other local APICs; an EOI, the I/O APIC, which may send the vector again)
    this.touch(LAPICS | IOAPIC);
    if (!this.mmioCheck('local APIC', vcpu, off, size, true)) return;
    this.lapics[vcpu]!.advance(now);
    this.lapics[vcpu]!.write(off & 0xff0, value, now);
  }

  ioapicRead(vcpu: number, off: number, size: number): number {
    this.touch(IOAPIC);
    return this.mmioCheck('I/O APIC', vcpu, off, size, false) ? this.ioapic.read(off) : 0;
  }

  ioapicWrite(vcpu: number, off: number, size: number, value: number): void {
    // (a redirection entry unmasked sends a raised line's vector to the local APICs)
    this.touch(IOAPIC | LAPICS);
    if (this.mmioCheck('I/O APIC', vcpu, off, size, true)) this.ioapic.write(off, value);
  }

  /** The next virtual time a timer changes something, or undefined. */
  nextEvent(): bigint | undefined {
    let t = this.pit.nextEvent();
    for (const l of this.lapics) {
      const n = l.nextEvent();
      if (n !== undefined && (t === undefined || n < t)) t = n;
    }
    return t;
  }

  advance(now: bigint): void {
    // (timers change nothing before their next event)
    const due = this.nextEvent();
    if (due === undefined || due > now) return;
    this.touch(PIT | LAPICS);
    this.pit.advance(now);
    for (const l of this.lapics) l.advance(now);
  }

  /** Bytes for the guest to read from COM1. */
  receive(bytes: Iterable<number>): void {
    this.touch(UART);
    this.uart.receive(bytes);
  }

  /** Scan codes (set 1) typed on the PS/2 keyboard. */
  keys(codes: readonly number[]): void {
    this.touch(KBD);
    this.kbd.keys(codes);
  }

  /** An interrupt waits for vCPU `vcpu` (it takes it when its IF allows). */
  hasInterrupt(vcpu: number): boolean {
    const l = this.lapics[vcpu]!;
    return (l.enabled && l.deliverable() >= 0) || (vcpu === 0 && l.acceptsPic() && this.pic.intr);
  }

  /** vCPU `vcpu` acknowledges its highest-priority interrupt: the vector, or undefined. */
  takeInterrupt(vcpu: number): number | undefined {
    const l = this.lapics[vcpu]!;
    const v = l.enabled ? l.deliverable() : -1;
    if (v >= 0) {
      this.touch(LAPICS);
      l.take(v);
      return v;
    }
    if (vcpu === 0 && l.acceptsPic() && this.pic.intr) {
      this.touch(PIC);
      return this.pic.acknowledge();
    }
    return undefined;
  }

  /** A call may have changed the devices `bits`. */
  private touch(bits: number): void {
    this.version++;
    this.changed |= bits;
  }

  /** Each device's bit, its name in save()'s state, and how it saves itself. */
  private readonly parts: readonly (readonly [number, string, () => unknown])[] = [
    [PIC, 'pic', () => this.pic.save()],
    [PIT, 'pit', () => this.pit.save()],
    [CMOS, 'cmos', () => this.cmos.save()],
    [UART, 'uart', () => this.uart.save()],
    [KBD, 'kbd', () => this.kbd.save()],
    [CGA, 'cga', () => this.cga.save()],
    [ATA, 'ata', () => this.ata.save()],
    [IOAPIC, 'ioapic', () => this.ioapic.save()],
    [LAPICS, 'lapics', () => this.lapics.map((l) => l.save())],
  ];

  /**
   * The devices' state, each device's shared with the save before when no call marked it since
   * (states are never changed once saved: load() copies from them). With checkSaves, each state
   * shared is checked against the device's own save: one that differs means a call marks too
   * little (saveMismatch).
   */
  save(): unknown {
    const before = this.saved;
    const now: Record<string, unknown> = {};
    for (const [bit, name, save] of this.parts) {
      if (!before || this.changed & bit) now[name] = save();
      else {
        now[name] = before[name];
        if (StandardPc.checkSaves && !isDeepStrictEqual(save(), now[name])) {
          StandardPc.saveMismatch ??= `StandardPc.save: the ${name} state shared with the save before is not the device's now (a call changed it without marking it)`;
        }
      }
    }
    this.saved = now;
    this.changed = 0;
    return now;
  }

  load(s: unknown): void {
    this.touch(ALL);
    const st = s as Record<string, unknown> & { lapics: unknown[] };
    this.pic.load(st.pic);
    this.pit.load(st.pit);
    this.cmos.load(st.cmos);
    this.uart.load(st.uart);
    this.kbd.load(st.kbd);
    this.cga.load(st.cga);
    this.ata.load(st.ata);
    this.ioapic.load(st.ioapic);
    st.lapics.forEach((l, i) => this.lapics[i]!.load(l));
  }
}
