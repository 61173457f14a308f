#!/usr/bin/env node
// Builds the sample kernels from their sources: dumps/kernel.elf from dumps/kernel/ with gcc
// (dumps/kernel/build.sh) and the C++ sample guest dumps/cxx-kernel.elf from dumps/cxx-kernel/
// with g++ (it shares dumps/kernel/boot.S and linker.ld). Without the compiler, or when a build
// fails, the committed prebuilt copy (dumps/*.prebuilt.elf) is used instead. Idempotent: rebuilds
// only when a source is newer than the kernel.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const quiet = process.argv.includes('--quiet');
const dumps = join(root, 'dumps');

function build(name, what, sources, compiler) {
  const out = join(dumps, `${name}.elf`);
  const prebuilt = join(dumps, `${name}.prebuilt.elf`);
  const newest = Math.max(...sources.flatMap((d) => readdirSync(d).map((f) => statSync(join(d, f)).mtimeMs)));
  if (existsSync(out) && statSync(out).mtimeMs >= newest) return;
  const has = spawnSync('sh', ['-c', `command -v ${compiler} && command -v ld`], { stdio: 'ignore' }).status === 0;
  if (has) {
    if (!quiet) console.error(`setup: building ${what} (dumps/${name}.elf)`);
    const r = spawnSync('sh', [join(sources[0], 'build.sh'), out], { stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit' });
    if (r.status === 0) return;
    console.error(`setup: building ${what} failed; using dumps/${name}.prebuilt.elf`);
  } else if (!quiet) console.error(`setup: no ${compiler}; using the prebuilt ${what} dumps/${name}.prebuilt.elf`);
  copyFileSync(prebuilt, out);
}

build('kernel', 'the sample kernel', [join(dumps, 'kernel')], 'gcc');
build('cxx-kernel', 'the C++ sample guest', [join(dumps, 'cxx-kernel'), join(dumps, 'kernel')], 'g++');
