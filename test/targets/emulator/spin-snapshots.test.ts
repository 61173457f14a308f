/**
 * The spin detector's snapshots kept for ::discard (src/targets/emulator/spin-snapshots.ts): one
 * array in seq order, positions made seqs, trimmed from both ends, compacted and grown as it
 * fills. The snapshots come from a stand-in for emu.c's spinLog, which fills its `out` as the
 * addon does; emulator-spin.test.ts runs the real detector.
 */
import { describe, expect, it, vi } from 'vitest';
import { SPIN_LOG, SPIN_LOG_WORDS, type HookCtx } from '../../../src/targets/emulator/emu-hooks.js';

/** What the next spinLog call gives: [position, pc, snapAt, regs x 16] each. */
let next: bigint[][] = [];
vi.mock('../../../src/targets/emulator/emu-hooks.js', async (load) => ({
  ...(await load<typeof import('../../../src/targets/emulator/emu-hooks.js')>()),
  emuHooks: () => ({
    spinLog: (_c: unknown, out: BigUint64Array): number => {
      if (out.length < SPIN_LOG * SPIN_LOG_WORDS) throw new Error('spinLog: out is too short');
      next.forEach((e, i) => out.set(e, i * SPIN_LOG_WORDS));
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

  it('reuses the room of dropped snapshots and grows past its first array, in order', () => {
    const s = new SpinSnapshots();
    let seq = 0n;
    const take = (k: number): void => {
      next = Array.from({ length: SPIN_LOG }, (_, i) => snap(i, k * SPIN_LOG + i));
      s.take(hooks, seq, 0);
      seq += 1000n;
    };
    for (let k = 0; k < 100; k++) take(k); // more than the first array holds (64 slices' worth)
    expect(s.length).toBe(100 * SPIN_LOG);
    s.dropBefore(90_000n); // keeps slices 90-99
    for (let k = 100; k < 300; k++) take(k); // compacts, then grows
    expect(s.length).toBe(210 * SPIN_LOG);
    for (const k of [90, 150, 299]) {
      const last = s.lastIn(BigInt(k) * 1000n, BigInt(k) * 1000n + 1000n)!;
      expect(last[0]).toBe(BigInt(k) * 1000n + BigInt(SPIN_LOG - 1));
      expect(last[1]).toBe(BigInt(k * SPIN_LOG + SPIN_LOG - 1));
    }
    expect(s.lastIn(0n, 90_000n)).toBeUndefined();
  });
});
