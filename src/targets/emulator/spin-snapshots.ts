/**
 * The snapshots the spin detector took inside slices (emu.c, "Spin detection"), kept while the
 * machine keeps device marks: a position inside a slice has the detector of its slice's start
 * with the last snapshot taken before it (Machine.rewind).
 *
 * One array of SPIN_LOG_WORDS-word entries in seq order, [seq, pc, snapAt, regs x 16] (spinLog's
 * position in the quantum made a seq), not an array apiece: a recorded 2-vCPU xv6 boot takes
 * ~60,000 of them, and a typed array apiece was an ArrayBuffer apiece for the collector.
 */

import { emuHooks, SPIN_LOG, SPIN_LOG_WORDS, type HookCtx } from './emu-hooks.js';

const W = SPIN_LOG_WORDS;

export class SpinSnapshots {
  private words = new BigUint64Array(W * SPIN_LOG * 64);
  /** Entries [first, end) of `words` are kept. */
  private first = 0;
  private end = 0;

  get length(): number {
    return this.end - this.first;
  }

  /** The snapshots the last slice of `hooks` took: it began at `start`, `base` instructions into its quantum. */
  take(hooks: HookCtx, start: bigint, base: number): void {
    this.reserve(SPIN_LOG);
    const at = this.end * W;
    const n = emuHooks().spinLog(hooks, this.words.subarray(at));
    const shift = start - BigInt(base);
    for (let i = 0; i < n; i++) this.words[at + i * W] = this.words[at + i * W]! + shift;
    this.end += n;
  }

  /** Forget the snapshots taken before `seq` (the oldest marks were dropped). */
  dropBefore(seq: bigint): void {
    this.first = this.after(seq, this.first);
  }

  /** Forget the snapshots taken at `seq` or later (the machine was put back there). */
  dropFrom(seq: bigint): void {
    this.end = this.after(seq, this.first);
  }

  /** The last snapshot taken at a seq in [from, to) ([seq, pc, snapAt, regs x 16]), if any. */
  lastIn(from: bigint, to: bigint): BigUint64Array | undefined {
    const i = this.after(to, this.first) - 1;
    if (i < this.first || this.words[i * W]! < from) return undefined;
    return this.words.subarray(i * W, (i + 1) * W);
  }

  /** The first entry at or after `from` whose seq is `seq` or later (a binary search). */
  private after(seq: bigint, from: number): number {
    let lo = from;
    let hi = this.end;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.words[mid * W]! < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Room for `n` more entries: the dropped ones' room first, then a larger array. */
  private reserve(n: number): void {
    if ((this.end + n) * W <= this.words.length) return;
    if (this.first > 0) {
      this.words.copyWithin(0, this.first * W, this.end * W);
      this.end -= this.first;
      this.first = 0;
    }
    if ((this.end + n) * W <= this.words.length) return;
    const grown = new BigUint64Array(Math.max(this.words.length * 2, (this.end + n) * W));
    grown.set(this.words.subarray(0, this.end * W));
    this.words = grown;
  }
}
