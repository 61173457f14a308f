/**
 * A 16550A UART (COM1 at 0x3f8, IRQ 4). Transmission is instant (the byte goes to the console at
 * the OUT), so THR and the transmitter are always empty. Received bytes come from the debugger
 * (::input): they wait in the input queue, which the recorder sees as port reads. Interrupts: data
 * available (IER bit 0) and THR empty (IER bit 1, pending after a THR write or enabling it, until
 * IIR reports it or THR is written again), with OUT2 (MCR bit 3) ignored as QEMU does.
 */

import type { IrqLine } from './clock.js';

export class Uart {
  ier = 0;
  lcr = 0;
  mcr = 0;
  scr = 0;
  fcr = 0;
  dll = 1;
  dlm = 0;
  thri = false;
  input: number[] = [];
  private line = false;

  constructor(
    private readonly emit: (byte: number) => void,
    private readonly irq: IrqLine = () => {},
  ) {}

  /** The interrupt the IIR reports now: 0x4 data, 0x2 THR empty, 0x1 none. */
  private cause(): number {
    if (this.ier & 1 && this.input.length > 0) return 0x04;
    if (this.ier & 2 && this.thri) return 0x02;
    return 0x01;
  }

  private update(): void {
    const level = this.cause() !== 0x01;
    if (level !== this.line) {
      this.line = level;
      this.irq(level);
    }
  }

  /** Bytes from outside (the debugger), queued for the guest. */
  receive(bytes: Iterable<number>): void {
    this.input.push(...bytes);
    this.update();
  }

  read(off: number): number {
    const dlab = (this.lcr & 0x80) !== 0;
    let v: number;
    switch (off) {
      case 0:
        v = dlab ? this.dll : (this.input.shift() ?? 0);
        break;
      case 1:
        v = dlab ? this.dlm : this.ier;
        break;
      case 2: {
        const c = this.cause();
        if (c === 0x02) this.thri = false;
        v = c | (this.fcr & 1 ? 0xc0 : 0);
        break;
      }
      case 3:
        v = this.lcr;
        break;
      case 4:
        v = this.mcr;
        break;
      case 5:
        v = 0x60 | (this.input.length > 0 ? 1 : 0); // THR empty, transmitter empty, data ready
        break;
      case 6:
        v = this.mcr & 0x10 ? ((this.mcr & 0x0f) << 4) : 0xb0; // loopback: MCR bits; else DCD, DSR, CTS
        break;
      default:
        v = this.scr;
    }
    this.update();
    return v;
  }

  write(off: number, v: number): void {
    const dlab = (this.lcr & 0x80) !== 0;
    switch (off) {
      case 0:
        if (dlab) this.dll = v;
        else {
          this.emit(v);
          this.thri = true;
        }
        break;
      case 1:
        if (dlab) this.dlm = v;
        else {
          if (v & 2 && !(this.ier & 2)) this.thri = true;
          this.ier = v & 0x0f;
        }
        break;
      case 2:
        this.fcr = v & 0xc9;
        if (v & 2) this.input.length = 0;
        break;
      case 3:
        this.lcr = v;
        break;
      case 4:
        this.mcr = v & 0x1f;
        break;
      case 7:
        this.scr = v;
        break;
    }
    this.update();
  }

  save(): unknown {
    return { ier: this.ier, lcr: this.lcr, mcr: this.mcr, scr: this.scr, fcr: this.fcr, dll: this.dll, dlm: this.dlm, thri: this.thri, line: this.line, input: [...this.input] };
  }

  load(s: unknown): void {
    Object.assign(this, structuredClone(s));
  }
}
