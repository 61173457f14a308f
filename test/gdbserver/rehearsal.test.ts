// The GDB server's rehearsal (src/gdbserver/rehearsal.ts): a scripted gdb session played on a scratch
// copy of the target before the server listens. It must really step the scratch (forward on a live
// guest, back and forth on a replay), close it, and leave the served target as it was.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rehearseGdb } from '../../src/gdbserver/gdb-server.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { ReplayTarget } from '../../src/targets/replay/replay-target.js';
import type { Target } from '../../src/targets/target.js';
import { qemuSample, recordQemuSample } from '../helpers/repo.js';

const kernel = qemuSample('kernel.elf');
let dir: string;
let trace: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dbg-rehearsal-'));
  trace = join(dir, 'kernel.trace');
  recordQemuSample(trace, ':c; ::status');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The scratch target, watched: where it stood when the rehearsal closed it. */
function watched<T extends Target>(open: () => T): { make: () => T; closedAt: () => bigint | undefined; pcs: Set<bigint> } {
  let closedAt: bigint | undefined;
  const pcs = new Set<bigint>();
  return {
    make: () => {
      const t = open();
      const close = t.close.bind(t);
      const status = t.status.bind(t);
      t.status = () => {
        const s = status();
        pcs.add(s.pc);
        return s;
      };
      t.close = () => {
        closedAt = status().seq;
        close();
      };
      return t;
    },
    closedAt: () => closedAt,
    pcs,
  };
}

describe('the GDB server rehearsal', () => {
  it('steps a scratch live guest 400 times through the packet path, closes it, and the served guest has not moved', async () => {
    const served = EmulatorTarget.open(kernel);
    try {
      const scratch = watched(() => {
        const t = EmulatorTarget.open(kernel);
        t.machine.runSync(50_000n);
        return t;
      });
      const rounds = await rehearseGdb(scratch.make, served, 120_000);
      expect(rounds).toBe(400);
      expect(scratch.closedAt()).toBe(50_000n + 400n);
      expect(scratch.pcs.size).toBeGreaterThan(10); // it went somewhere, one instruction at a time
      expect(served.status().seq).toBe(0n);
    } finally {
      served.close();
    }
  });

  it('steps a scratch replay back and forth and leaves it where it began', async () => {
    const scratch = watched(() => ReplayTarget.open(trace, { symbols: [kernel] }));
    const served = ReplayTarget.open(trace, { symbols: [kernel] });
    try {
      const last = served.status().seq;
      expect(await rehearseGdb(scratch.make, served, 120_000)).toBe(400);
      expect(scratch.closedAt()).toBe(last);
      expect(served.status().seq).toBe(last);
    } finally {
      served.close();
    }
  });

  it('read-only on the served target itself: reads, never a step, and the target stays open', async () => {
    const served = EmulatorTarget.open(kernel);
    try {
      served.machine.runSync(50_000n);
      const regs = served.registers(1);
      const executed = served.machine.seq;
      expect(await rehearseGdb('read-only', served, 120_000)).toBe(400);
      expect(served.machine.seq).toBe(executed);
      expect(executed).toBeGreaterThanOrEqual(50_000n);
      expect(served.registers(1)).toEqual(regs);
    } finally {
      served.close();
    }
  });

  it('a scratch that cannot be made, or fails, costs nothing but the rehearsal', async () => {
    const served = EmulatorTarget.open(kernel);
    try {
      expect(await rehearseGdb(() => undefined, served)).toBe(0);
      expect(
        await rehearseGdb(() => {
          throw new Error('no scratch');
        }, served),
      ).toBe(0);
    } finally {
      served.close();
    }
  });
});
