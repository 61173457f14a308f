/**
 * Time travel on a guest that keeps running: LiveHistory over a live recording. Going back shows
 * the past from the trace while the machine stays at the end; forward replays to the live
 * position, then the caller runs live again; the machine can run on and history grows; writes in
 * the past are refused.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GuestMachine } from '../../bench/recording-guest.js';
import { DbgError } from '../../src/common/errors.js';
import { EmulatorRecorder } from '../../src/store/emulator-recorder.js';
import { LiveHistory } from '../../src/targets/replay/live-history.js';

const dir = mkdtempSync(join(tmpdir(), 'dbg-live-history-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('LiveHistory', () => {
  it('goes back while the guest stays live, comes forward to live, follows a growing history', async () => {
    const m = new GuestMachine();
    const rec = new EmulatorRecorder(join(dir, 'live.trace'), { chunkTarget: 50_000 });
    m.setObserver(rec);
    const h = new LiveHistory(rec);
    const before: Map<string, bigint>[] = [];
    m.run(100_000);
    for (let i = 0; i < 3; i++) {
      before.push(m.registers());
      m.run(1, 1);
    }
    expect(h.reverse.bounds()).toEqual({ first: 0n, last: 100_003n, now: 100_003n });
    for (let i = 2; i >= 0; i--) {
      const st = await h.reverse.stepBack(1);
      expect(st.seq).toBe(BigInt(100_000 + i));
      expect(h.past!.registers(1).get('rip')).toBe(before[i]!.get('rip'));
      expect(h.past!.registers(1).get('rax')).toBe(before[i]!.get('rax'));
    }
    expect(m.registers().get('rip')).not.toBe(before[0]!.get('rip')); // the machine did not move
    expect(() => h.refuseWriteInPast('writing memory')).toThrow(DbgError);
    expect(() => h.refuseWriteInPast('writing memory')).toThrow(/writing memory refused: the view is at seq 100000, in the recorded past \(the guest is at 100003\); changing the past would discard the 3 instructions/);
    for (const want of [100_001n, 100_002n, 100_003n]) {
      const st = await h.stepForward(1);
      expect(st !== 'live' && st.seq).toBe(want);
    }
    expect(h.past).toBeUndefined(); // the last step reached the live position
    expect(await h.stepForward(1)).toBe('live');
    // The guest runs on; history grows and reverse operations see it.
    m.run(20_000);
    expect(h.reverse.bounds().last).toBe(120_003n);
    const st = await h.reverse.seek(110_000n);
    expect(st.seq).toBe(110_000n);
    expect(h.history.whoWrote(0x100000n, 0x20000)).toBeDefined();
    expect((await h.resumeForward())).toBe('live');
    h.close();
    m.close();
  });
});
