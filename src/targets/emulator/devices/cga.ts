/**
 * CGA/VGA text mode: the 6845 CRT controller's index/data ports (0x3d4/0x3d5, and the mono pair
 * 0x3b4/0x3b5), the input status register (0x3da) and the 80x25 text buffer, which is guest RAM
 * at 0xb8000 (two bytes per cell: character, attribute). The controller keeps its registers; the
 * cursor is registers 0x0e (high) and 0x0f (low) of the cell index. `screen` renders the text.
 */

export const TEXT_BUFFER = 0xb8000;
export const COLUMNS = 80;
export const ROWS = 25;

export class Cga {
  private index = 0;
  private readonly regs = new Uint8Array(32);
  private retrace = 0;

  handles(port: number): boolean {
    return (port >= 0x3d4 && port <= 0x3d5) || port === 0x3da || (port >= 0x3b4 && port <= 0x3b5) || port === 0x3ba;
  }

  in(port: number): number {
    if (port === 0x3da || port === 0x3ba) {
      this.retrace ^= 0x09; // retrace bits toggle on each read, so polling loops end
      return this.retrace;
    }
    if ((port & 1) === 0) return this.index;
    return this.index < 32 ? this.regs[this.index]! : 0xff;
  }

  out(port: number, v: number): void {
    if ((port & 1) === 0) this.index = v & 0x1f;
    else if (port !== 0x3da && port !== 0x3ba) this.regs[this.index] = v & 0xff;
  }

  get cursor(): number {
    return (this.regs[0x0e]! << 8) | this.regs[0x0f]!;
  }

  /** The 25 lines of text in `ram` (trailing spaces kept: each line is 80 characters). */
  screen(ram: Buffer): string[] {
    const lines: string[] = [];
    for (let r = 0; r < ROWS; r++) {
      let s = '';
      for (let c = 0; c < COLUMNS; c++) {
        const ch = ram[TEXT_BUFFER + (r * COLUMNS + c) * 2]!;
        s += ch >= 0x20 && ch < 0x7f ? String.fromCharCode(ch) : ch === 0 ? ' ' : '.';
      }
      lines.push(s);
    }
    return lines;
  }

  save(): unknown {
    return { index: this.index, regs: this.regs.slice() };
  }

  load(s: unknown): void {
    const st = s as { index: number; regs: ArrayLike<number> };
    this.index = st.index;
    this.regs.set(st.regs);
  }
}
