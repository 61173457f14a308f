/**
 * MDB's output buffer rules, so formats lay out as MDB lays them out (its mdb_io.c behaviour).
 *
 * Output goes into a line of at most `cols` (80) columns:
 *   - a field (a value left-justified in its width) that would not fit on the current line starts
 *     a new one (auto-wrap); so does the blank padding after a value when it would reach the last
 *     column, which is why a full line ends without its trailing blank;
 *   - text longer than the rest of the line is continued on the next one;
 *   - while `indent` is on, every new line begins with `margin` (16) blanks: that is why `=`
 *     results and the continuation lines of `addr,8/X` start in column 16.
 * Lines are emitted as they were built, trailing blanks included, as MDB prints them.
 */
export class Iob {
  static readonly margin = 16;
  static readonly cols = 80;
  private static readonly indentText = ' '.repeat(Iob.margin);
  private buf = '';
  private indenting = false;

  constructor(private readonly emit: (line: string) => void) {}

  get column(): number {
    return this.buf.length;
  }

  setIndent(on: boolean): void {
    this.indenting = on;
    if (on && this.buf === '') this.buf = Iob.indentText;
    if (!on && this.buf === Iob.indentText) this.buf = '';
  }

  /** Nothing on the line but the indent. */
  private get blank(): boolean {
    return this.buf === '' || (this.indenting && this.buf === Iob.indentText);
  }

  /** A field: the value left-justified in `width` columns (never truncated), wrapped as a unit. */
  field(text: string, width = 0): void {
    const w = Math.max(width, text.length);
    if (!this.blank && this.buf.length + w > Iob.cols) this.nl();
    this.puts(text);
    if (w > text.length) this.blanks(w - text.length);
  }

  /** `n` blanks, or the end of the line when they would reach its last column (MDB's ws). */
  blanks(n: number): void {
    if (this.buf.length + n < Iob.cols) this.buf += ' '.repeat(n);
    else this.nl();
  }

  /** Text that may hold newlines; a part longer than the rest of the line continues on the next. */
  text(s: string): void {
    s.split('\n').forEach((part, i) => {
      if (i > 0) this.nl();
      this.puts(part);
    });
  }

  private puts(s: string): void {
    let rest = s;
    while (rest.length > 0) {
      const room = Iob.cols - this.buf.length;
      if (room <= 0) {
        this.nl();
        continue;
      }
      this.buf += rest.slice(0, room);
      rest = rest.slice(room);
      if (rest.length > 0) this.nl();
    }
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
    this.emit(this.buf);
    this.buf = this.indenting ? Iob.indentText : '';
  }

  /** End of a command: emit the pending line, if it holds anything besides the indent. */
  flush(): void {
    if (this.buf.trim() !== '') this.nl();
    this.buf = this.indenting ? Iob.indentText : '';
  }
}
