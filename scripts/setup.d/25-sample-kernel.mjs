#!/usr/bin/env node
// Builds the sample kernel dumps/kernel.elf from dumps/kernel/ with gcc (dumps/kernel/build.sh).
// Without gcc, or when the build fails, the committed prebuilt copy dumps/kernel.prebuilt.elf is
// used instead. Idempotent: rebuilds only when a source is newer than dumps/kernel.elf.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const quiet = process.argv.includes('--quiet');
const src = join(root, 'dumps', 'kernel');
const out = join(root, 'dumps', 'kernel.elf');
const prebuilt = join(root, 'dumps', 'kernel.prebuilt.elf');

const newest = Math.max(...readdirSync(src).map((f) => statSync(join(src, f)).mtimeMs));
if (existsSync(out) && statSync(out).mtimeMs >= newest) process.exit(0);
const hasGcc = spawnSync('sh', ['-c', 'command -v gcc && command -v ld'], { stdio: 'ignore' }).status === 0;
if (hasGcc) {
  if (!quiet) console.error('setup: building the sample kernel (dumps/kernel.elf)');
  const r = spawnSync('sh', [join(src, 'build.sh'), out], { stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit' });
  if (r.status === 0) process.exit(0);
  console.error('setup: building the sample kernel failed; using dumps/kernel.prebuilt.elf');
} else if (!quiet) console.error('setup: no gcc; using the prebuilt sample kernel dumps/kernel.prebuilt.elf');
copyFileSync(prebuilt, out);
