/**
 * A replay machine makes a vCPU's engines when it first runs or reads that vCPU, and its fast
 * engine once the vCPU has run enough to pay for one (replay-machine.ts, FAST_AFTER). A replay of
 * a range that runs on one vCPU of two makes that one's engines alone; the other's registers are
 * the checkpoint a seek placed, loaded when it is made. Either way the machine must stand where a
 * machine with every engine made from the start stands: registers of every vCPU and all of RAM.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmulatorRecorder } from '../../../src/store/emulator-recorder.js';
import { TraceReader } from '../../../src/store/trace-reader.js';
import { EmulatorTarget } from '../../../src/targets/emulator/emulator-target.js';
import { ReplayMachine } from '../../../src/targets/replay/replay-machine.js';
import { toLazyRows } from '../../helpers/lazy-trace.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const kernel = existsSync(join(root, 'dumps', 'kernel.elf')) ? join(root, 'dumps', 'kernel.elf') : join(root, 'dumps', 'kernel.prebuilt.elf');
const dir = mkdtempSync(join(tmpdir(), 'dbg-lazy-engines-'));
const eagerPath = join(dir, 'eager.trace');
const lazyPath = join(dir, 'lazy.trace');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(async () => {
  // the sample kernel on 2 vCPUs: vCPU 0 alone for its first slices, then both in turn
  const t = EmulatorTarget.open(kernel, { ramBytes: 32 << 20, cpus: 2, cmdline: 'nobug' });
  try {
    t.record(new EmulatorRecorder(eagerPath, { guest: 'kernel.elf', chunkTarget: 200_000, rows: 'eager' }));
    for (let i = 0; i < 4; i++) await t.machine.run({ vcpu: 0, count: 150_000 });
  } finally {
    t.close();
  }
  toLazyRows(eagerPath, lazyPath);
}, 120_000);

/** The engines a machine made, as its watchers hear of them: "exact 0", "fast 0", ... */
function made(m: ReplayMachine): string[] {
  const out: string[] = [];
  m.watchEngines({ exact: (v) => out.push(`exact ${v}`), fast: (v) => out.push(`fast ${v}`) });
  return out;
}

/** Where `m` stands differs from where `ref` does: registers of vCPU `v`, RAM; undefined when it does not. */
function difference(m: ReplayMachine, ref: ReplayMachine, vcpus: number[]): string | undefined {
  for (const v of vcpus) {
    const [a, b] = [m.registers(v), ref.registers(v)];
    for (const [name, value] of b) if (a.get(name) !== value) return `vCPU ${v} ${name}: 0x${a.get(name)?.toString(16)}, with every engine made 0x${value.toString(16)}`;
  }
  if (!m.ram.equals(ref.ram)) {
    for (let i = 0; i < m.ram.length; i++) if (m.ram[i] !== ref.ram[i]) return `RAM byte 0x${i.toString(16)}: ${m.ram[i]}, with every engine made ${ref.ram[i]}`;
  }
  return undefined;
}

describe.each([
  ['an eager trace', eagerPath],
  ['a lazy-rows trace', lazyPath],
])('a replay machine of %s', (_what, path) => {
  it('makes the engines of the one vCPU its range runs, and seeks, steps and steps back there as one with every engine made', () => {
    const reader = TraceReader.open(path);
    const m = new ReplayMachine(reader);
    const ref = new ReplayMachine(reader);
    try {
      const engines = made(m);
      // every engine of the reference made before anything runs
      for (let v = 0; v < reader.vcpus; v++) ref.fastEngine(v);
      expect(reader.vcpus).toBe(2);
      // the range where vCPU 0 runs alone: up to vCPU 1's first instruction
      let alone = reader.first;
      while (alone < reader.end && reader.step(alone).vcpu === 0) alone++;
      expect(alone).toBeGreaterThan(reader.first + 4096);
      expect(alone).toBeLessThan(reader.end);
      const seqs = [alone - 1000, ...Array.from({ length: 10 }, (_, i) => alone - 999 + i), ...Array.from({ length: 20 }, (_, i) => alone - 990 - i), reader.first + 100, alone - 1];
      for (const s of seqs) {
        m.seek(s);
        ref.seek(s);
        expect(difference(m, ref, [0]), `at seq ${s}`).toBeUndefined();
      }
      expect(engines).toEqual(['exact 0']);
      // vCPU 1 read: made now, with the registers of the checkpoint the last seek placed
      expect(difference(m, ref, [0, 1]), `vCPU 1 at seq ${alone - 1}`).toBeUndefined();
      expect(engines).toEqual(['exact 0', 'exact 1']);
      // past it, both run
      for (const s of [alone + 5000, alone + 5001, alone + 4999, alone - 10, reader.end - 1]) {
        m.seek(s);
        ref.seek(s);
        expect(difference(m, ref, [0, 1]), `at seq ${s}`).toBeUndefined();
      }
    } finally {
      m.close();
      ref.close();
      reader.close();
    }
  }, 120_000);

  it("makes a vCPU's fast engine once it has run enough on its exact one, and stands where the exact engines alone stand", () => {
    const reader = TraceReader.open(path);
    const m = new ReplayMachine(reader);
    const exact = new ReplayMachine(reader);
    const saved = process.env.DBG_EMU_EXACT;
    try {
      const engines = made(m);
      // short windows (steps) never make one
      m.seek(reader.first + 3000);
      for (let s = reader.first + 3001; s < reader.first + 3020; s++) m.seek(s);
      expect(engines).toEqual(['exact 0']);
      // a seek in the lazy-rows trace drives its chunk from the start, one in an eager trace runs
      // a checkpoint window (up to 8,192 instructions): seeks all over until a vCPU has run enough
      for (let k = 1; k <= 40; k++) m.seek(reader.first + ((k * 104_729) % (reader.end - reader.first)));
      if (saved !== '1') expect(engines.filter((e) => e.startsWith('fast')).length).toBeGreaterThan(0);
      // the reference runs on exact engines alone (a fast engine is never made)
      process.env.DBG_EMU_EXACT = '1';
      for (const s of [reader.end - 1, reader.first + 150_000, reader.chunkFirst(2) + 30_000, reader.chunkFirst(2) + 29_990]) {
        m.seek(s);
        exact.seek(s);
        expect(difference(m, exact, [0, 1]), `at seq ${s}`).toBeUndefined();
      }
    } finally {
      if (saved === undefined) delete process.env.DBG_EMU_EXACT;
      else process.env.DBG_EMU_EXACT = saved;
      m.close();
      exact.close();
      reader.close();
    }
  }, 120_000);
});
