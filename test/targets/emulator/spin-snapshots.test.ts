/**
 * The spin detector's snapshots kept for ::discard (src/targets/emulator/spin-snapshots.ts): blocks
 * of entries in seq order, trimmed from both ends, a block dropped whole reused. The snapshots
 * come from a stand-in for emu.c's spinLog, which fills its `out` from `at` and makes positions
 * seqs as the addon does; emulator-spin.test.ts runs the real detector.
 */
import { describe, expect, it, vi } from 'vitest';
import { SPIN_LOG, SPIN_LOG_WORDS, type HookCtx } from '../../../src/targets/emulator/emu-hooks.js';

/** What the next spinLog call gives: [position, pc, snapAt, regs x 16] each. */
let next: bigint[][] = [];
vi.mock('../../../src/targets/emulator/emu-hooks.js', async (load) => ({
  ...(await load<typeof import('../../../src/targets/emulator/emu-hooks.js')>()),
  emuHooks: () => ({
    spinLog: (_c: unknown, out: BigUint64Array, at: number, seq: bigint): number => {
      if (out.length < at + SPIN_LOG * SPIN_LOG_WORDS) throw new Error('spinLog: out is too short');
      next.forEach((e, i) => out.set([e[0]! + seq, ...e.slice(1)], at + i * SPIN_LOG_WORDS));
      return next.length;
    },
  }),
}));
const { SpinSnapshots } = await import('../../../src/targets/emulator/spin-snapshots.js');

const hooks = {} as HookCtx;
/** A snapshot at quantum position `pos` whose pc and registers say `tag`. */
const snap = (pos: number, tag: number): bigint[] => [BigInt(pos), BigInt(tag), BigInt(tag + 1), ...Array.from({ length: 16 }, () => BigInt(tag))];

describe('SpinSnapshots', () => {
  it('keeps snapshots by seq and finds the last one before a position inside a range', () => {
    const s = new SpinSnapshots();
    // a slice that began at seq 1000, 200 instructions into its quantum
    next = [snap(250, 1), snap(300, 2)];
    s.take(hooks, 1000n, 200);
    next = [snap(500, 3)];
    s.take(hooks, 2000n, 100);
    expect(s.length).toBe(3);
    expect(s.lastIn(1000n, 1050n)).toBeUndefined(); // the first is at seq 1050
    expect(s.lastIn(1000n, 1051n)?.[1]).toBe(1n);
    expect([...s.lastIn(1000n, 2000n)!]).toEqual(snap(1100, 2)); // positions made seqs
    expect(s.lastIn(2000n, 2400n)).toBeUndefined();
    expect(s.lastIn(2000n, 2401n)?.[1]).toBe(3n);
    s.dropFrom(1100n);
    expect(s.length).toBe(1);
    expect(s.lastIn(0n, 5000n)?.[1]).toBe(1n);
    s.dropBefore(1051n);
    expect(s.length).toBe(0);
    expect(s.lastIn(0n, 5000n)).toBeUndefined();
  });

  it('keeps them in blocks: found across the edge of a block, trimmed from both ends, a dropped block reused', () => {
    const s = new SpinSnapshots();
    let seq = 0n;
    const take = (k: number): void => {
      next = Array.from({ length: SPIN_LOG }, (_, i) => snap(i, k * SPIN_LOG + i));
      s.take(hooks, seq, 0);
      seq += 1000n;
    };
    const lastOf = (k: number): BigUint64Array | undefined => s.lastIn(BigInt(k) * 1000n, BigInt(k) * 1000n + 1000n);
    for (let k = 0; k < 700; k++) take(k); // 5,600 snapshots: three blocks of 2,048
    expect(s.length).toBe(700 * SPIN_LOG);
    for (const k of [0, 255, 256, 511, 512, 699]) {
      expect(lastOf(k)?.[0]).toBe(BigInt(k) * 1000n + BigInt(SPIN_LOG - 1));
      expect(lastOf(k)?.[1]).toBe(BigInt(k * SPIN_LOG + SPIN_LOG - 1));
    }
    // the first snapshot of slice 256 (the second block's first) from inside that slice
    expect(s.lastIn(256_000n, 256_001n)?.[1]).toBe(BigInt(256 * SPIN_LOG));
    // before the first snapshot of a block: the last of the block before
    expect(s.lastIn(0n, 256_000n)?.[1]).toBe(BigInt(256 * SPIN_LOG - 1));
    s.dropBefore(300_000n); // the first block whole, and into the second
    expect(s.length).toBe(400 * SPIN_LOG);
    expect(s.lastIn(0n, 300_000n)).toBeUndefined();
    expect(lastOf(300)?.[1]).toBe(BigInt(300 * SPIN_LOG + SPIN_LOG - 1));
    s.dropFrom(600_003n); // into the third block: slice 600 keeps three
    expect(s.length).toBe(300 * SPIN_LOG + 3);
    expect(s.lastIn(0n, 10_000_000n)?.[0]).toBe(600_002n);
    seq = 601_000n;
    for (let k = 601; k < 1200; k++) take(k); // fills the third block, then the dropped one again
    expect(s.length).toBe(899 * SPIN_LOG + 3);
    for (const k of [300, 600, 601, 900, 1199]) expect(lastOf(k)?.[0]).toBe(BigInt(k) * 1000n + BigInt(k === 600 ? 2 : SPIN_LOG - 1));
    s.dropFrom(0n);
    expect(s.length).toBe(0);
    expect(s.lastIn(0n, 10_000_000n)).toBeUndefined();
  });
});
