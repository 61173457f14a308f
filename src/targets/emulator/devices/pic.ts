/**
 * The 8259A pair of a PC: master at 0x20/0x21 (IRQ 0-7), slave at 0xa0/0xa1 (IRQ 8-15) cascaded
 * on the master's IRQ 2. Edge-triggered (ELCR reads 0), fully nested priority (IRQ 0 highest),
 * ICW1-ICW4 initialisation, OCW1 mask, OCW2 EOI (non-specific and specific), OCW3 IRR/ISR reads,
 * auto-EOI. Rotation and special mask mode are not modelled.
 */

class Pic8259 {
  irr = 0;
  isr = 0;
  imr = 0xff;
  base = 0;
  lines = 0;
  readIsr = false;
  autoEoi = false;
  /** Initialisation step: 0 = operational, 2..4 = the ICW expected next. */
  init = 0;
  needIcw4 = false;

  setLine(irq: number, level: boolean): void {
    const bit = 1 << irq;
    if (level && !(this.lines & bit)) this.irr |= bit;
    if (level) this.lines |= bit;
    else this.lines &= ~bit;
  }

  /** The IRQ the chip would present now (highest priority, above every in-service one), or -1. */
  pending(): number {
    const req = this.irr & ~this.imr;
    for (let i = 0; i < 8; i++) {
      if (this.isr & (1 << i)) return -1;
      if (req & (1 << i)) return i;
    }
    return -1;
  }

  ack(irq: number): void {
    this.irr &= ~(1 << irq);
    if (!this.autoEoi) this.isr |= 1 << irq;
  }

  read(odd: boolean): number {
    if (odd) return this.imr;
    return this.readIsr ? this.isr : this.irr;
  }

  write(odd: boolean, v: number): void {
    if (!odd) {
      if (v & 0x10) {
        // ICW1: start initialisation
        this.init = 2;
        this.needIcw4 = (v & 1) !== 0;
        this.imr = 0;
        this.isr = 0;
        this.irr = 0;
        this.readIsr = false;
        this.autoEoi = false;
      } else if (v & 0x08) {
        // OCW3
        if (v & 0x02) this.readIsr = (v & 1) !== 0;
      } else {
        // OCW2
        const cmd = v >> 5;
        if (cmd === 1) {
          for (let i = 0; i < 8; i++) if (this.isr & (1 << i)) { this.isr &= ~(1 << i); break; }
        } else if (cmd === 3) this.isr &= ~(1 << (v & 7));
      }
      return;
    }
    switch (this.init) {
      case 2:
        this.base = v & 0xf8;
        this.init = 3;
        break;
      case 3:
        this.init = this.needIcw4 ? 4 : 0;
        break;
      case 4:
        this.autoEoi = (v & 2) !== 0;
        this.init = 0;
        break;
      default:
        this.imr = v;
    }
  }
}

export class PicPair {
  private readonly master = new Pic8259();
  private readonly slave = new Pic8259();

  handles(port: number): boolean {
    return port === 0x20 || port === 0x21 || port === 0xa0 || port === 0xa1 || port === 0x4d0 || port === 0x4d1;
  }

  in(port: number): number {
    if (port === 0x4d0 || port === 0x4d1) return 0;
    return (port < 0xa0 ? this.master : this.slave).read((port & 1) === 1);
  }

  out(port: number, v: number): void {
    if (port === 0x4d0 || port === 0x4d1) return;
    (port < 0xa0 ? this.master : this.slave).write((port & 1) === 1, v);
    this.cascade();
  }

  setIrq(irq: number, level: boolean): void {
    if (irq < 8) this.master.setLine(irq, level);
    else this.slave.setLine(irq - 8, level);
    this.cascade();
  }

  private cascade(): void {
    this.master.setLine(2, this.slave.pending() >= 0);
  }

  /** INTR: an interrupt is waiting for the CPU to acknowledge. */
  get intr(): boolean {
    return this.master.pending() >= 0;
  }

  /** INTA: the vector of the highest-priority request (undefined when none is left). */
  acknowledge(): number | undefined {
    const m = this.master.pending();
    if (m < 0) return undefined;
    this.master.ack(m);
    if (m !== 2) {
      this.cascade();
      return this.master.base + m;
    }
    const s = this.slave.pending();
    const vector = s < 0 ? this.slave.base + 7 : this.slave.base + s; // spurious IRQ 15
    if (s >= 0) this.slave.ack(s);
    this.cascade();
    return vector;
  }

  save(): unknown {
    return { m: { ...this.master }, s: { ...this.slave } };
  }

  load(st: unknown): void {
    const s = st as { m: object; s: object };
    Object.assign(this.master, s.m);
    Object.assign(this.slave, s.s);
  }
}
