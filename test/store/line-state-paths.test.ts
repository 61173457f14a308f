/**
 * The two ways a replay moves memory agree: a line's state read from its rows (line by line: the
 * row's initial image + its writes up to the seq) and the state built write by write from the
 * recording's start. The trace is cut into chunks at every stop (a flush), so lines a host event
 * (an interrupt frame: five writes to one line) opens at a chunk's start are covered: their
 * initial image once held the frame already and a replay lost the writes before it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { stateBound, writeOrder } from '../../src/store/line-rows.js';
import { EmulatorRecorder } from '../../src/store/emulator-recorder.js';
import { TraceReader } from '../../src/store/trace-reader.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { session } from '../targets/emulator-session.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const kernel = join(root, 'dumps', 'kernel.elf');
const dir = mkdtempSync(join(tmpdir(), 'dbg-line-paths-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('line state from rows vs write by write', () => {
  it('agree at every chunk start and around every interrupt, with a chunk cut at each stop', async () => {
    const path = join(dir, 'cuts.trace');
    const t = EmulatorTarget.open(kernel, { ramBytes: 64 << 20 });
    t.record(new EmulatorRecorder(path, { guest: 'kernel.elf', symbols: kernel, chunkTarget: 100_000, rows: 'eager' }));
    const s = session(t);
    await s.run('log_append::bp');
    for (let i = 0; i < 4; i++) {
      await s.run(':c');
      t.caps.reverse!.bounds(); // flushes: the next chunk starts here
      await s.run('::step out');
      t.caps.reverse!.bounds();
    }
    t.close();

    const r = TraceReader.open(path);
    try {
      expect(r.chunkCount).toBeGreaterThan(4);
      // Every write of the trace in order, and the seqs to look at.
      const all = [];
      for (let c = 0; c < r.chunkCount; c++) all.push(...r.chunkWrites(c).list);
      all.sort((a, b) => writeOrder(a) - writeOrder(b));
      const seqs = new Set<number>();
      for (let c = 0; c < r.chunkCount; c++) seqs.add(r.chunkFirst(c));
      for (const w of all) if (w.host) for (const d of [0, 1, 2]) seqs.add(w.seq + d);
      const lines = new Map<number, Buffer>();
      let k = 0;
      let checked = 0;
      for (const at of [...seqs].sort((a, b) => a - b)) {
        for (; k < all.length && writeOrder(all[k]!) <= stateBound(at); k++) {
          const w = all[k]!;
          const line = Math.floor(w.phys / 64);
          let b = lines.get(line);
          if (!b) lines.set(line, (b = Buffer.from(r.initialLine(line))));
          w.data.copy(b, w.phys - line * 64);
        }
        for (const [line, want] of lines) {
          const got = r.lineAt(line, at);
          if (!got.equals(want)) expect(`line 0x${(line * 64).toString(16)} at seq ${at}: ${got.toString('hex')}`).toBe(`line 0x${(line * 64).toString(16)} at seq ${at}: ${want.toString('hex')}`);
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(1000);
    } finally {
      r.close();
    }
  });
});
