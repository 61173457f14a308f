/**
 * The i8042 keyboard controller (0x60 data, 0x64 status/command) with a PS/2 keyboard in scan
 * code set 2, translated to set 1 as PCs deliver it (what QEMU gives a guest). Keys come from the
 * debugger (::keys), as text turned into make and break codes. IRQ 1 while the output buffer is
 * full and the command byte enables it. Controller commands: 0x20/0x60 command byte, 0xaa self
 * test, 0xab port test, 0xad/0xae disable/enable, 0xa7/0xa8 aux, 0xd0/0xd1 output port, 0xfe
 * reset (ignored). Keyboard commands are acknowledged (0xfa); 0xff also answers 0xaa.
 */

import type { IrqLine } from './clock.js';

/** Set-1 make codes of the US layout: [code, shift]. */
const SET1: Record<string, [number, boolean]> = {};
{
  const rows: [string, string, number][] = [
    ['1234567890-=', '!@#$%^&*()_+', 0x02],
    ['qwertyuiop[]', 'QWERTYUIOP{}', 0x10],
    ["asdfghjkl;'`", 'ASDFGHJKL:"~', 0x1e],
    ['\\zxcvbnm,./', '|ZXCVBNM<>?', 0x2b],
  ];
  for (const [plain, shifted, first] of rows) {
    [...plain].forEach((ch, i) => (SET1[ch] = [first + i, false]));
    [...shifted].forEach((ch, i) => (SET1[ch] = [first + i, true]));
  }
  SET1[' '] = [0x39, false];
  SET1['\n'] = [0x1c, false];
  SET1['\t'] = [0x0f, false];
  SET1['\b'] = [0x0e, false];
  SET1['\x1b'] = [0x01, false];
}
const LSHIFT = 0x2a;

/** Scan codes (set 1, make then break) typing `text`; undefined for a character with no key. */
export function scanCodes(text: string): number[] | { bad: string } {
  const out: number[] = [];
  for (const ch of text) {
    const k = SET1[ch];
    if (!k) return { bad: ch };
    if (k[1]) out.push(LSHIFT);
    out.push(k[0], k[0] | 0x80);
    if (k[1]) out.push(LSHIFT | 0x80);
  }
  return out;
}

export class I8042 {
  private obuf: number[] = [];
  private command = 0x45; // keyboard interrupt, system flag, translation
  private pending: number | undefined; // a controller command waiting for its data byte
  private kbdPending: number | undefined; // a keyboard command waiting for its data byte
  private line = false;
  private outputPort = 0x03;

  constructor(private readonly irq: IrqLine) {}

  handles(port: number): boolean {
    return port === 0x60 || port === 0x64;
  }

  private update(): void {
    const level = this.obuf.length > 0 && (this.command & 1) !== 0;
    if (level !== this.line) {
      this.line = level;
      this.irq(level);
    }
  }

  /** Scan codes from outside (the debugger). */
  keys(codes: readonly number[]): void {
    this.obuf.push(...codes);
    this.update();
  }

  in(port: number): number {
    if (port === 0x64) return (this.obuf.length > 0 ? 1 : 0) | 0x04 | (this.command & 0x10 ? 0 : 0x10);
    const v = this.obuf.shift() ?? 0;
    // the line drops while the byte is read; the next one raises it again (a new edge)
    if (this.line) {
      this.line = false;
      this.irq(false);
    }
    this.update();
    return v;
  }

  out(port: number, v: number): void {
    if (port === 0x64) {
      this.pending = undefined;
      switch (v) {
        case 0x20:
          this.obuf.push(this.command);
          break;
        case 0x60:
        case 0xd1:
        case 0xd2:
        case 0xd3:
        case 0xd4:
          this.pending = v;
          break;
        case 0xaa:
          this.obuf.push(0x55);
          break;
        case 0xab:
        case 0xa9:
          this.obuf.push(0x00);
          break;
        case 0xad:
          this.command |= 0x10;
          break;
        case 0xae:
          this.command &= ~0x10;
          break;
        case 0xa7:
          this.command |= 0x20;
          break;
        case 0xa8:
          this.command &= ~0x20;
          break;
        case 0xd0:
          this.obuf.push(this.outputPort);
          break;
      }
      this.update();
      return;
    }
    if (this.pending !== undefined) {
      const p = this.pending;
      this.pending = undefined;
      if (p === 0x60) this.command = v;
      else if (p === 0xd1) this.outputPort = v;
      else if (p === 0xd2) this.obuf.push(v); // as if from the keyboard
      this.update();
      return;
    }
    if (this.kbdPending !== undefined) {
      this.kbdPending = undefined;
      this.obuf.push(0xfa);
    } else {
      this.obuf.push(0xfa);
      if (v === 0xff) this.obuf.push(0xaa);
      else if (v === 0xf2) this.obuf.push(0xab, 0x41); // identify: MF2 keyboard, translated
      else if (v === 0xed || v === 0xf0 || v === 0xf3) this.kbdPending = v;
    }
    this.update();
  }

  save(): unknown {
    return { obuf: [...this.obuf], command: this.command, pending: this.pending, kbdPending: this.kbdPending, line: this.line, outputPort: this.outputPort };
  }

  load(s: unknown): void {
    Object.assign(this, structuredClone(s));
  }
}
