/**
 * Differential: a live guest and the replay of its trace agree on every register and on memory at
 * 1000+ sampled seqs, visited in random order (so seeks go forward and back, near and far).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuestMachine } from '../../bench/recording-guest.js';
import { EmulatorRecorder } from '../../src/store/emulator-recorder.js';
import { TraceReader } from '../../src/store/trace-reader.js';
import { ReplayMachine } from '../../src/targets/replay/replay-machine.js';
import { turnEventLoop } from '../helpers/event-loop.js';

const dir = mkdtempSync(join(tmpdir(), 'dbg-replay-diff-'));
const trace = join(dir, 'guest.trace');

function memHash(ram: Buffer): string {
  return createHash('sha1').update(ram.subarray(0x100000, 0x120000)).update(ram.subarray(0xef0000, 0xf00000)).digest('hex');
}

interface Sample {
  seq: number;
  regs: Map<string, bigint>;
  mem: string;
}

const samples: Sample[] = [];
let total = 0;

beforeAll(() => {
  // The live guest runs unrecorded in irregular slices (so samples land anywhere); an identical
  // guest is recorded in 10,000-instruction slices, so most samples fall between checkpoints
  // and the replay must re-execute to reach them.
  const live = new GuestMachine();
  let x = 12345;
  for (let i = 0; i < 1100; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    const n = 1 + (x % 900);
    live.run(n, 10_000);
    total += n;
    samples.push({ seq: total, regs: live.registers(), mem: memHash(live.ram) });
  }
  live.close();
  total += 5000;
  const rec = new GuestMachine();
  rec.setObserver(new EmulatorRecorder(trace, { chunkTarget: 100_000, checkpointEvery: 4096 }));
  rec.run(total, 10_000);
  rec.close();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('live run vs replay of its trace', () => {
  it('holds every instruction and agrees on all registers and memory at 1100 seqs', async () => {
    const reader = TraceReader.open(trace);
    expect(reader.first).toBe(0);
    expect(reader.end).toBe(total);
    const replay = new ReplayMachine(reader);
    const order = samples.map((s, i) => ({ s, k: (i * 7919) % samples.length })).sort((a, b) => a.k - b.k);
    let checked = 0;
    for (const { s } of order) {
      if (checked % 50 === 0) await turnEventLoop(); // (test/helpers/event-loop.ts)
      replay.seek(s.seq);
      const got = replay.registers(0);
      for (const [name, value] of s.regs) {
        if (got.get(name) !== value) throw new Error(`seq ${s.seq}: ${name} = 0x${got.get(name)?.toString(16)}, live had 0x${value.toString(16)}`);
      }
      expect(memHash(replay.ram), `memory at seq ${s.seq}`).toBe(s.mem);
      checked++;
    }
    expect(checked).toBe(1100);
    replay.close();
    reader.close();
  }, 240_000); // ~18 s on an idle machine; over 60 s at load 8 on two cores
});
