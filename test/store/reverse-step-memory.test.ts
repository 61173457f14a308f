/**
 * Reverse steps reuse what the previous step read (RAM at the window's checkpoint as far as the
 * chunk changes it; the window's recorded inputs): every position reached by stepping back one
 * instruction at a time has the RAM and registers a fresh replay machine seeking there has. In
 * the boot of the QEMU sample kernel, where a chunk writes hundreds of lines (moved line by
 * line), across checkpoint windows and UART port reads.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TraceReader } from '../../src/store/trace-reader.js';
import { ReplayMachine } from '../../src/targets/replay/replay-machine.js';
import { recordQemuSample } from '../helpers/repo.js';

let dir: string;
let trace: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dbg-reverse-mem-'));
  trace = join(dir, 'kernel.trace');
  recordQemuSample(trace);
}, 150_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Offsets of the 8-byte words that differ other than in bits 5 and 6 (accessed, dirty). */
function ramDiffs(a: Buffer, b: Buffer): string[] {
  const out: string[] = [];
  for (let off = 0; off < a.length; off += 4096) {
    if (a.subarray(off, off + 4096).equals(b.subarray(off, off + 4096))) continue;
    for (let w = off; w < off + 4096; w += 8) {
      if ((a.readBigUInt64LE(w) ^ b.readBigUInt64LE(w)) & ~0x60n) out.push(`0x${w.toString(16)}`);
    }
  }
  return out;
}

describe('reverse steps', () => {
  it('land on the RAM and registers a fresh seek finds', () => {
    const reader = TraceReader.open(trace);
    const fresh = TraceReader.open(trace);
    try {
      const every = reader.info.checkpointEvery ?? 8192;
      const c = reader.chunkIndexOf(36_838);
      expect(reader.chunkRows(c).lines).toBeGreaterThan(100); // moved line by line, not write by write
      const stepping = new ReplayMachine(reader);
      const start = 36_838;
      stepping.seek(start);
      let compared = 0;
      // 120 single steps back, crossing at least one checkpoint, then jumps back a window each
      const positions = [...Array.from({ length: 120 }, (_, i) => start - 1 - i), ...[1, 2, 3].map((k) => start - 120 - k * every)];
      for (const s of positions) {
        stepping.seek(s);
        if (s % 8 !== 0 && s > start - 120) continue; // every eighth step compared (a fresh machine each)
        const other = new ReplayMachine(fresh);
        try {
          other.seek(s);
          expect(stepping.registers(0), `registers at seq ${s}`).toEqual(other.registers(0));
          expect(ramDiffs(stepping.ram, other.ram), `RAM at seq ${s}`).toEqual([]);
          compared++;
        } finally {
          other.close();
        }
      }
      expect(compared).toBeGreaterThan(15);
      stepping.close();
    } finally {
      reader.close();
      fresh.close();
    }
  }, 120_000);
});
