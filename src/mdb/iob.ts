/**
 * MDB's output buffer rules, so formats lay out as MDB lays them out.
 *
 * Output goes into a line of at most `cols` (80) columns. A chunk that would not fit on the
 * current line starts a new one (auto-wrap). While `indent` is on, every new line begins with
 * `margin` (16) blanks: that is why `=` results and the continuation lines of `addr,8/X` start
 * in column 16. Completed lines go to `emit` without trailing blanks.
 */
export class Iob {
  static readonly margin = 16;
  static readonly cols = 80;
  private buf = '';
  private indenting = false;

  constructor(private readonly emit: (line: string) => void) {}

  get column(): number {
    return this.buf.length;
  }

  setIndent(on: boolean): void {
    this.indenting = on;
    if (on && this.buf === '') this.buf = ' '.repeat(Iob.margin);
    if (!on && this.buf.length === Iob.margin && this.buf.trim() === '') this.buf = '';
  }

  /** A field: the value left-justified in `width` columns (never truncated), wrapped as a unit. */
  field(text: string, width = 0): void {
    const w = Math.max(width, text.length);
    if (this.buf.length !== 0 && this.buf.length + w > Iob.cols && this.buf.trim() !== '') this.nl();
    this.buf += text.padEnd(w);
  }

  /** Text that may hold newlines; no wrapping inside it. */
  text(s: string): void {
    const parts = s.split('\n');
    parts.forEach((p, i) => {
      if (i > 0) this.nl();
      this.buf += p;
    });
  }

  /**
   * An address label (`main+0x10:`) padded to the margin, or for a longer label to the next
   * multiple of 16 with at least one blank, so a 64-bit address never touches its value.
   */
  label(text: string): void {
    const w = text.length < Iob.margin ? Iob.margin : Math.ceil((text.length + 1) / 16) * 16;
    this.field(text, w);
  }

  /** Pad to the next multiple of `stop` unless already on one (MDB's %<stop>T). */
  tabTo(stop: number): void {
    if (this.buf.length % stop !== 0) this.buf = this.buf.padEnd(Math.ceil(this.buf.length / stop) * stop);
  }

  nl(): void {
    this.emit(this.buf.trimEnd());
    this.buf = this.indenting ? ' '.repeat(Iob.margin) : '';
  }

  /** End of a command: emit the pending line, if it holds anything besides the indent. */
  flush(): void {
    if (this.buf.trim() !== '') this.nl();
    this.buf = this.indenting ? ' '.repeat(Iob.margin) : '';
  }
}
