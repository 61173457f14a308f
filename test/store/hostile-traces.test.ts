/**
 * Hostile traces: 1,000+ seeded mutants of two real traces (the sample kernel recorded once per
 * run, with memory rows and with page images: lazy rows) — byte flips, page overwrites, SQL edits of every column with every SQL type,
 * damaged blobs inside valid rows — opened and used in-process (bench/hostile-traces.ts). Each
 * must end in one-line DbgError or open and answer; a sample also goes through `dbg replay` so
 * the CLI prints `dbg: ...` on one line. The larger run: node dist/bench/hostile-traces.js.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaign, KINDS, mutate, recordSampleTrace, Rng } from '../../bench/hostile-traces.js';
import { readFileSync } from 'node:fs';
import { turnEventLoop } from '../helpers/event-loop.js';

const dir = mkdtempSync(join(tmpdir(), 'dbg-hostile-'));
const good = join(dir, 'good.trace');
const lazy = join(dir, 'lazy.trace');
const fifo = join(dir, 'fifo');
const COUNT = Number(process.env.DBG_HOSTILE_COUNT ?? 1000);
const SEED = Number(process.env.DBG_HOSTILE_SEED ?? 20261205);

beforeAll(async () => {
  await recordSampleTrace(good);
  await recordSampleTrace(lazy, 'lazy');
  execFileSync('mkfifo', [fifo]);
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('hostile traces', () => {
  it(`${COUNT} mutants (seed ${SEED}) each end in a one-line dbg error or a correct open`, async () => {
    const res = await campaign([good, lazy], COUNT, SEED, dir, fifo);
    expect(res.failures.slice(0, 5)).toEqual([]);
    expect(res.runs).toBe(COUNT);
    // the campaign reaches past the open: some mutants open and are used, many are refused
    expect(res.opened).toBeGreaterThan(COUNT / 20);
    expect(res.refused).toBeGreaterThan(COUNT / 10);
  }, 600_000);

  it('through the CLI: a sample of mutants prints one dbg: line or replays, and never an internal error', async () => {
    const r = new Rng(SEED + 1);
    const bytes = readFileSync(good);
    const bin = join(__dirname, '..', '..', 'bin', 'dbg');
    for (let i = 0; i < 8; i++) {
      await turnEventLoop(); // eight dbg processes one after the other (test/helpers/event-loop.ts)
      const p = join(dir, `cli${i}.trace`);
      const what = mutate(good, bytes, p, KINDS[i % KINDS.length]!, r, fifo);
      const out = spawnSync(bin, ['replay', p, '-e', '::status; ::stack'], { encoding: 'utf8', timeout: 60_000 });
      expect(out.signal, what).toBeNull();
      if (out.status !== 0) {
        const lines = out.stderr.trim().split('\n').filter((l) => l.startsWith('dbg:'));
        expect(lines.length, `${what}: ${out.stderr}`).toBeGreaterThan(0);
        expect(out.stderr, what).not.toMatch(/internal error|    at /);
      }
    }
  }, 300_000);
});
