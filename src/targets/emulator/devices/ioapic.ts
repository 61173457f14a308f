/**
 * The I/O APIC at 0xfec00000 (IOREGSEL at +0x00, IOWIN at +0x10): ID, version 0x11 with 24 pins,
 * arbitration ID, and the redirection table (vector, delivery mode fixed or lowest priority,
 * physical or logical destination, edge or level trigger with remote IRR, mask). An edge on an
 * unmasked pin, or a high level with remote IRR clear, sends the vector to the destination's
 * local APIC. ISA IRQ n is pin n, except the timer's IRQ 0 on pin 2 (the MP table says so).
 */

export const IOAPIC_BASE = 0xfec00000;
export const IOAPIC_PINS = 24;

export class IoApic {
  id: number;
  private sel = 0;
  private readonly low = new Array<number>(IOAPIC_PINS).fill(0x10000);
  private readonly high = new Array<number>(IOAPIC_PINS).fill(0);
  private lines = 0;

  constructor(
    id: number,
    private readonly deliver: (dest: number, logical: boolean, vector: number, level: boolean) => void,
    private readonly complain: (message: string) => void,
  ) {
    this.id = id;
  }

  read(off: number): number {
    if (off === 0x00) return this.sel;
    if (off !== 0x10) return 0;
    const r = this.sel;
    if (r === 0) return this.id << 24;
    if (r === 1) return ((IOAPIC_PINS - 1) << 16) | 0x11;
    if (r === 2) return this.id << 24;
    if (r >= 0x10 && r < 0x10 + 2 * IOAPIC_PINS) {
      const pin = (r - 0x10) >> 1;
      return (r & 1 ? this.high[pin]! : this.low[pin]!) >>> 0;
    }
    return 0xffffffff;
  }

  write(off: number, v: number): void {
    v >>>= 0;
    if (off === 0x00) {
      this.sel = v & 0xff;
      return;
    }
    if (off === 0x40) {
      this.eoi(v & 0xff);
      return;
    }
    if (off !== 0x10) return;
    const r = this.sel;
    if (r === 0) this.id = (v >>> 24) & 0x0f;
    else if (r >= 0x10 && r < 0x10 + 2 * IOAPIC_PINS) {
      const pin = (r - 0x10) >> 1;
      if (r & 1) this.high[pin] = v & 0xff000000;
      else {
        const mode = (v >> 8) & 7;
        if (mode !== 0 && mode !== 1 && !(v & 0x10000)) {
          this.complain(`I/O APIC: redirection entry ${pin} = 0x${v.toString(16)} asks for delivery mode ${mode} (${['fixed', 'lowest priority', 'SMI', 'reserved', 'NMI', 'INIT', 'reserved', 'ExtINT'][mode]}), which the emulated I/O APIC does not deliver`);
          return;
        }
        this.low[pin] = (this.low[pin]! & 0x5000) | (v & ~0x5000);
        this.check(pin);
      }
    }
  }

  setPin(pin: number, level: boolean): void {
    const bit = 1 << pin;
    const rising = level && !(this.lines & bit);
    if (level) this.lines |= bit;
    else this.lines &= ~bit;
    if (rising) this.fire(pin);
  }

  private fire(pin: number): void {
    const e = this.low[pin]!;
    if (e & 0x10000) return;
    const levelTrig = (e & 0x8000) !== 0;
    if (levelTrig) {
      if (e & 0x4000) return;
      this.low[pin] = e | 0x4000;
    }
    this.deliver(this.high[pin]! >>> 24, (e & 0x800) !== 0, e & 0xff, levelTrig);
  }

  /** A level-triggered pin still high after the entry changed: deliver it. */
  private check(pin: number): void {
    if (this.lines & (1 << pin) && this.low[pin]! & 0x8000) this.fire(pin);
  }

  /** The local APICs' EOI of a level-triggered `vector`: clear remote IRR, re-deliver if still high. */
  eoi(vector: number): void {
    for (let pin = 0; pin < IOAPIC_PINS; pin++) {
      if ((this.low[pin]! & 0xff) !== vector || !(this.low[pin]! & 0x4000)) continue;
      this.low[pin]! &= ~0x4000;
      this.check(pin);
    }
  }

  save(): unknown {
    return { id: this.id, sel: this.sel, low: [...this.low], high: [...this.high], lines: this.lines };
  }

  load(s: unknown): void {
    const st = s as { id: number; sel: number; low: number[]; high: number[]; lines: number };
    this.id = st.id;
    this.sel = st.sel;
    this.lines = st.lines;
    st.low.forEach((v, i) => (this.low[i] = v));
    st.high.forEach((v, i) => (this.high[i] = v));
  }
}
