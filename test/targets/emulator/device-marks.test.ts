/**
 * The machine's marks (src/targets/emulator/device-marks.ts): columns of typed arrays, a row a
 * mark; what a slice's mark is given comes back from sliceAt as it was, across growth, a drop of
 * the oldest and a cut of the newest. Machine.rewind's use of them runs in emulator-discard and
 * emulator-spin tests.
 */
import { describe, expect, it } from 'vitest';
import { DeviceMarks, type VcpuNow } from '../../../src/targets/emulator/device-marks.js';

const vcpu = (k: number, over: Partial<VcpuNow> = {}): VcpuNow => ({
  run: (['running', 'idle', 'halted', 'wait-start'] as const)[k % 4]!,
  executed: BigInt(1000 * k + 7),
  timerPeriod: k * 3,
  timerNext: BigInt(2 ** 40 + k),
  skipPc: k % 3 === 0 ? 0xffff_ffff_8010_0000n + BigInt(k) : undefined,
  ...over,
});

describe('DeviceMarks', () => {
  it('gives back each slice mark as it was made, device marks between, across growth, drops and cuts', () => {
    const m = new DeviceMarks(2);
    const spin = new BigUint64Array(23).fill(5n);
    const uart = { ier: 1 };
    for (let i = 0; i < 3000; i++) {
      if (i % 3 === 2) m.push(BigInt(i * 10), { i }, i);
      else m.pushSlice(BigInt(i * 10), i % 2, 5000 - i, i % 5 === 0 ? 1 - (i % 2) : undefined, [vcpu(i), vcpu(i + 1)], i % 7 === 0 ? { vcpu: 1, pc: 0x1234n } : undefined, spin, i % 4 === 0 ? spin : undefined, i % 6 === 0, uart, i);
    }
    expect(m.length).toBe(3000);
    const check = (at: number, i: number): void => {
      expect(m.seqAt(at)).toBe(BigInt(i * 10));
      expect(m.consoleLengthAt(at)).toBe(i);
      expect(m.isSlice(at)).toBe(i % 3 !== 2);
      if (i % 3 === 2) {
        expect(m.uartAt(at)).toEqual({ i });
        return;
      }
      expect(m.uartAt(at)).toBe(uart);
      const s = m.sliceAt(at);
      expect(s.current).toBe(i % 2);
      expect(s.left).toBe(5000 - i);
      expect(s.alone).toBe(i % 5 === 0 ? 1 - (i % 2) : undefined);
      expect(s.spinBefore).toBe(spin);
      expect(s.spinRun).toBe(i % 4 === 0 ? spin : undefined);
      expect(s.spinLooked).toBe(i % 6 === 0 ? true : undefined);
      const want = [vcpu(i), vcpu(i + 1)].map((v, k) => ({ ...v, skipPc: i % 7 === 0 && k === 1 ? 0x1234n : v.skipPc }));
      expect(s.vcpus).toEqual(want);
    };
    for (const i of [0, 1, 2, 1023, 1024, 2047, 2048, 2999]) check(i, i);
    expect([0n, 9n, 10n, 15n, 20n, 29_990n, 10n ** 9n].map((q) => m.countUpTo(q))).toEqual([1, 1, 2, 2, 3, 3000, 3000]);
    m.dropBefore(1000);
    expect(m.length).toBe(2000);
    for (const i of [1000, 1001, 1002, 2999]) check(i - 1000, i);
    m.truncate(1500);
    expect(m.length).toBe(1500);
    check(1499, 2499);
    m.pushSlice(99n, 0, 1, undefined, [vcpu(0), vcpu(1)], undefined, undefined, undefined, false, uart, 0);
    expect(m.seqAt(1500)).toBe(99n);
    expect(m.sliceAt(1500).spinBefore).toBeUndefined();
    expect(() => m.sliceAt(1)).toThrow("device mark 1 is not a slice's"); // (mark 1001)
  });
});
