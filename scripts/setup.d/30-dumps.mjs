#!/usr/bin/env node
// The sample kernel dump: expands dumps/qemu/vmcore.elf.xz into dumps/vmcore.0 and copies
// dumps/qemu/kernel.elf to dumps/kernel.elf, so that
//   dbg open dumps/vmcore.0 --symbols dumps/kernel.elf
// works after setup. Both outputs are git-ignored. Idempotent: redoes a file only when it is
// missing or older than its source.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, renameSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const quiet = process.argv.includes('--quiet');
const dumps = join(root, 'dumps');
const stale = (out, src) => !existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs;

const xz = join(dumps, 'qemu', 'vmcore.elf.xz');
const vmcore = join(dumps, 'vmcore.0');
if (existsSync(xz) && stale(vmcore, xz)) {
  if (!quiet) console.error('setup: expanding dumps/qemu/vmcore.elf.xz into dumps/vmcore.0');
  const tmp = `${vmcore}.tmp`;
  try {
    execFileSync('sh', ['-c', 'xz -dc "$1" > "$2"', 'sh', xz, tmp], { stdio: ['ignore', 'ignore', 'inherit'] });
  } catch {
    console.error('setup: xz failed to expand dumps/qemu/vmcore.elf.xz (is xz-utils installed?)');
    process.exit(1);
  }
  renameSync(tmp, vmcore); // only a complete dump ever carries the name
}

const kernel = join(dumps, 'qemu', 'kernel.elf');
const kernelOut = join(dumps, 'kernel.elf');
if (existsSync(kernel) && stale(kernelOut, kernel)) copyFileSync(kernel, kernelOut);
