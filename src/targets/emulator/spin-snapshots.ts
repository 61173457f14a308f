/**
 * The snapshots the spin detector took inside slices (emu.c, "Spin detection"), kept while the
 * machine keeps device marks: a position inside a slice has the detector of its slice's start
 * with the last snapshot taken before it (Machine.rewind).
 *
 * Entries of SPIN_LOG_WORDS words, [seq, pc, snapAt, regs x 16], in seq order, in blocks of
 * BLOCK entries: a recorded 2-vCPU xv6 boot takes ~60,000 of them (9 MiB). A typed array apiece
 * was an ArrayBuffer apiece for the collector; one array grown by doubling copied and first
 * touched twice what it kept (a page fault a fresh 4 KiB: ~15 ms of a 2-vCPU boot's guest thread
 * went to it, perf). spinLog writes a slice's entries in place, their seqs made in C.
 */

import { emuHooks, SPIN_LOG, SPIN_LOG_WORDS, type HookCtx } from './emu-hooks.js';

const W = SPIN_LOG_WORDS;
/** Entries a block holds (~300 KiB). */
const BLOCK = 2048;

export class SpinSnapshots {
  /** Blocks in seq order; blocks[b] holds entries [starts[b], ends[b]) (trimmed at both ends). */
  private blocks: BigUint64Array[] = [];
  private starts: number[] = [];
  private ends: number[] = [];
  /** A block dropped whole, kept for the next one needed (its pages are touched already). */
  private spare: BigUint64Array | undefined;

  get length(): number {
    let n = 0;
    for (let b = 0; b < this.blocks.length; b++) n += this.ends[b]! - this.starts[b]!;
    return n;
  }

  /** The snapshots the last slice of `hooks` took: it began at `start`, `base` instructions into its quantum. */
  take(hooks: HookCtx, start: bigint, base: number): void {
    let b = this.blocks.length - 1;
    if (b < 0 || this.ends[b]! + SPIN_LOG > BLOCK) {
      this.blocks.push(this.spare ?? new BigUint64Array(BLOCK * W));
      this.spare = undefined;
      this.starts.push(0);
      this.ends.push(0);
      b++;
    }
    this.ends[b]! += emuHooks().spinLog(hooks, this.blocks[b]!, this.ends[b]! * W, start - BigInt(base));
  }

  /** Forget the snapshots taken before `seq` (the oldest marks were dropped). */
  dropBefore(seq: bigint): void {
    while (this.blocks.length > 0) {
      const at = this.after(0, seq);
      if (at < this.ends[0]!) {
        this.starts[0] = at;
        return;
      }
      this.dropBlock(0);
    }
  }

  /** Forget the snapshots taken at `seq` or later (the machine was put back there). */
  dropFrom(seq: bigint): void {
    for (let b = this.blocks.length - 1; b >= 0; b--) {
      const at = this.after(b, seq);
      if (at > this.starts[b]!) {
        this.ends[b] = at;
        return;
      }
      this.dropBlock(b);
    }
  }

  /** The last snapshot taken at a seq in [from, to) ([seq, pc, snapAt, regs x 16]), if any. */
  lastIn(from: bigint, to: bigint): BigUint64Array | undefined {
    for (let b = this.blocks.length - 1; b >= 0; b--) {
      const i = this.after(b, to) - 1;
      if (i < this.starts[b]!) continue; // every entry of block b is at `to` or later
      const words = this.blocks[b]!;
      return words[i * W]! < from ? undefined : words.subarray(i * W, (i + 1) * W);
    }
    return undefined;
  }

  /** In block `b`, the first entry whose seq is `seq` or later (a binary search). */
  private after(b: number, seq: bigint): number {
    const words = this.blocks[b]!;
    let lo = this.starts[b]!;
    let hi = this.ends[b]!;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (words[mid * W]! < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private dropBlock(b: number): void {
    this.spare = this.blocks[b];
    this.blocks.splice(b, 1);
    this.starts.splice(b, 1);
    this.ends.splice(b, 1);
  }
}
