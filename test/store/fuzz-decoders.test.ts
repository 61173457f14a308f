/**
 * The recorder's trace decoders under AddressSanitizer and UBSan for a bounded time
 * (scripts/fuzz-decoders.mjs; DBG_FUZZ_SECONDS, default 30). Each run draws a new seed and
 * prints it: `node scripts/fuzz-decoders.mjs --seed S` replays a failure.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const seconds = Number(process.env.DBG_FUZZ_SECONDS ?? 30);

it(`the pc-stream and checkpoint decoders survive ${seconds} s of fuzzing under ASan and UBSan`, () => {
  const seed = `0x${(Date.now() * 2654435761).toString(16).slice(-12)}`;
  const r = spawnSync(process.execPath, [join(__dirname, '..', '..', 'scripts', 'fuzz-decoders.mjs'), '--seconds', String(seconds), '--seed', seed], {
    encoding: 'utf8',
    timeout: (seconds + 120) * 1000,
  });
  const out = `${r.stdout}${r.stderr}`;
  expect(r.status, `seed ${seed}:\n${out.slice(-4000)}`).toBe(0);
  expect(out).toMatch(/no fault|Done \d+ runs/);
}, (seconds + 150) * 1000);
