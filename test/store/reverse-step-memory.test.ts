/**
 * Reverse steps reuse what the previous step read (RAM at the window's checkpoint as far as the
 * chunk changes it; the window's recorded inputs; the rungs of registers and RAM a first step back
 * lays in its window, see ReplayMachine's Ladder): every position reached by stepping back one
 * instruction at a time has the RAM and registers a fresh replay machine seeking there has. In
 * the boot of the QEMU sample kernel, where a chunk writes hundreds of lines (moved line by
 * line), across checkpoint windows and UART port reads. The tests that count re-executed
 * instructions are about an eager trace's ladders and use one; the first runs on a lazy-rows
 * trace too (its RAM moved by page images and its chunk driven from its start).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TraceReader } from '../../src/store/trace-reader.js';
import { ReplayMachine } from '../../src/targets/replay/replay-machine.js';
import { recordQemuSample } from '../helpers/repo.js';

let dir: string;
/** Recorded with memory rows: the tests that count re-executed instructions are about their ladders. */
let trace: string;
/** Recorded lazily (dbg's default): a seek drives its chunk from its start. */
let lazyTrace: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dbg-reverse-mem-'));
  trace = join(dir, 'kernel.trace');
  lazyTrace = join(dir, 'lazy.trace');
  recordQemuSample(trace, ':c', 'eager');
  recordQemuSample(lazyTrace, ':c', 'lazy');
}, 240_000);

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

/**
 * Seek one machine from `start` to each of `positions` in turn; where `check(i, s)` says so, compare
 * its registers and RAM with another machine's sent forward from the start of the history to the
 * same position (the checkpoint and re-execution path, never a rung). One machine for all the
 * comparisons: a new one per comparison costs seconds of page faults to compare its 128 MiB of RAM
 * (a minute for the first test under load). Returns the comparisons made and the instructions the
 * stepping machine re-executed.
 */
function stepAndCompare(start: number, positions: readonly number[], check: (i: number, s: number) => boolean, path = trace): { compared: number; reexecuted: number } {
  const reader = TraceReader.open(path);
  const fresh = TraceReader.open(path);
  const stepping = new ReplayMachine(reader);
  const other = new ReplayMachine(fresh);
  const counted = stepping as unknown as { reexecute: (v: number, from: number, to: number) => void };
  const reexecute = counted.reexecute.bind(stepping);
  let reexecuted = 0;
  counted.reexecute = (v, from, to) => {
    reexecuted += to - from;
    reexecute(v, from, to);
  };
  let compared = 0;
  try {
    stepping.seek(start);
    for (const [i, s] of positions.entries()) {
      stepping.seek(s);
      if (!check(i, s)) continue;
      other.seek(fresh.first);
      other.seek(s);
      expect(stepping.registers(0), `registers at seq ${s}`).toEqual(other.registers(0));
      expect(ramDiffs(stepping.ram, other.ram), `RAM at seq ${s}`).toEqual([]);
      compared++;
    }
  } finally {
    stepping.close();
    other.close();
    reader.close();
    fresh.close();
  }
  return { compared, reexecuted };
}

describe('reverse steps', () => {
  it.each(['eager', 'lazy'])('land on the RAM and registers a fresh seek finds (%s rows)', (rows) => {
    const path = rows === 'eager' ? trace : lazyTrace;
    const reader = TraceReader.open(path);
    expect(reader.lazyRows).toBe(rows === 'lazy');
    const every = reader.info.checkpointEvery ?? 8192;
    const c = reader.chunkIndexOf(36_838);
    expect(reader.chunkRows(c).lines).toBeGreaterThan(100); // moved line by line, not write by write
    reader.close();
    const start = 36_838;
    // 120 single steps back, crossing at least one checkpoint, then jumps back a window each;
    // every eighth step compared
    const positions = [...Array.from({ length: 120 }, (_, i) => start - 1 - i), ...[1, 2, 3].map((k) => start - 120 - k * every)];
    const { compared } = stepAndCompare(start, positions, (_, s) => s % 8 === 0 || s <= start - 120, path);
    expect(compared).toBeGreaterThan(15);
  }, 120_000);

  it('from the rungs a first step back keeps in its window land where a fresh seek does', () => {
    // A window boundary (a checkpoint) a few hundred instructions below the start.
    const start = 40_300;
    const reader = TraceReader.open(trace);
    const boundary = reader.checkpoint(0, start)!.seq;
    reader.close();
    expect(start - boundary).toBeGreaterThan(200);
    expect(start - boundary).toBeLessThan(500);
    const positions: number[] = [];
    // back 600 one at a time (through the rungs, across the boundary), forward 70, back 140
    for (let s = start - 1; s > start - 600; s--) positions.push(s);
    for (let s = start - 598; s < start - 530; s++) positions.push(s);
    for (let s = start - 531; s > start - 670; s--) positions.push(s);
    const { compared, reexecuted } = stepAndCompare(start, positions, (i, s) => i % 23 === 0 || s === boundary || s === boundary - 1);
    expect(compared).toBeGreaterThan(30);
    // From the window's checkpoint each step back re-executes ~350 or ~9,700 instructions; from
    // a rung fewer than 128 (plus the first step of each window, which lays the rungs).
    expect(reexecuted / positions.length).toBeLessThan(200);
  }, 180_000);

  it('back and forth over one instruction (reverse-stepi, stepi, ...) restore a rung at the lower one, not re-executing up to it', () => {
    const reader = TraceReader.open(trace);
    const boundary = reader.checkpoint(0, 40_300)!.seq;
    const next = reader.nextCheckpointSeq(boundary)!;
    reader.close();
    // 100 instructions above the rung below (every 128 from the window's checkpoint, or wider)
    const low = boundary + 484;
    expect(next).toBeGreaterThan(low + 2);
    const positions = [low];
    for (let k = 0; k < 40; k++) positions.push(low + 1, low);
    const { compared, reexecuted } = stepAndCompare(low + 1, positions, (i) => i % 10 === 0);
    expect(compared).toBeGreaterThan(5);
    // the seek to the start and the first step back run from the window's checkpoint (485 and 484
    // instructions); then one instruction a step forward, none a step back (from a rung 100 below: 100)
    expect(reexecuted - 485 - 484).toBe(40);
  }, 180_000);
});
