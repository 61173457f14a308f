/**
 * The one status line a recording shows on a terminal (dbg live without -q): instructions
 * recorded, trace size, rate. Redrawn in place at most 4 times a second; whoever writes to the
 * terminal first takes `clear()` (which erases the line, to be redrawn at the next update).
 */

import { formatBytes } from './trace-folder.js';

export class RecordingStatus {
  private shown = false;
  private last = 0;
  private readonly start = performance.now();

  constructor(private readonly out: { write(s: string): unknown }) {}

  update(p: { instructions: bigint; bytes: number }, now = performance.now()): void {
    if (now - this.last < 250) return;
    this.last = now;
    const n = Number(p.instructions);
    const rate = n / Math.max((now - this.start) / 1000, 1e-3);
    this.out.write(`\r\x1b[Kdbg: recording: ${(n / 1e6).toFixed(1)} M instructions, ${formatBytes(p.bytes)}, ${(rate / 1e6).toFixed(1)} M insn/s`);
    this.shown = true;
  }

  /** The text that erases the line when it is shown ('' otherwise). */
  clear(): string {
    if (!this.shown) return '';
    this.shown = false;
    return '\r\x1b[K';
  }
}
