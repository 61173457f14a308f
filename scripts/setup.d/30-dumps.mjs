#!/usr/bin/env node
// The sample kernel dumps, so that after setup
//   dbg open dumps/vmcore.0 --symbols dumps/kernel.elf            (dbg's sample kernel)
//   dbg open dumps/qemu/vmcore.elf --symbols dumps/qemu/kernel.elf (the QEMU-made sample)
// both work. Outputs are git-ignored; idempotent (a file is redone only when missing or stale).
//
//   dumps/qemu/vmcore.elf  expanded from dumps/qemu/vmcore.elf.xz (QEMU dump-guest-memory of the
//                          fixture kernel dumps/qemu/kernel.elf, see dumps/qemu/README.md)
//   dumps/vmcore.0         the emulator's `::dump` of dbg's sample kernel dumps/kernel.elf (built
//                          by 25-sample-kernel.mjs) after it panics; when the emulator cannot run
//                          here, a copy of the QEMU sample (then open it with dumps/qemu/kernel.elf)
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const quiet = process.argv.includes('--quiet');
const say = (m) => console.error(`setup: ${m}`);
const dumps = join(root, 'dumps');
const mtime = (f) => (existsSync(f) ? statSync(f).mtimeMs : 0);

// 1. The QEMU sample.
const xz = join(dumps, 'qemu', 'vmcore.elf.xz');
const qemuDump = join(dumps, 'qemu', 'vmcore.elf');
if (existsSync(xz) && mtime(qemuDump) < mtime(xz)) {
  if (!quiet) say('expanding dumps/qemu/vmcore.elf.xz');
  try {
    execFileSync('sh', ['-c', 'xz -dc "$1" > "$2"', 'sh', xz, `${qemuDump}.tmp`], { stdio: ['ignore', 'ignore', 'inherit'] });
  } catch {
    say('xz failed to expand dumps/qemu/vmcore.elf.xz (is xz-utils installed?)');
    process.exit(1);
  }
  renameSync(`${qemuDump}.tmp`, qemuDump); // only a complete dump ever carries the name
}

// 2. dumps/vmcore.0: the emulator's snapshot of the sample kernel, remade when the kernel changes.
const vmcore = join(dumps, 'vmcore.0');
const kernel = join(dumps, 'kernel.elf');
const stamp = join(dumps, '.work', 'vmcore.0.source');
const source = existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : '';
const fresh = existsSync(vmcore) && (source === 'emulator:panic' ? mtime(vmcore) >= mtime(kernel) : source === 'qemu' && !existsSync(kernel));
if (!fresh) {
  mkdirSync(join(dumps, '.work'), { recursive: true });
  rmSync(`${vmcore}.tmp`, { force: true });
  let made = false;
  if (existsSync(kernel)) {
    if (!quiet) say('making dumps/vmcore.0: the sample kernel runs on the emulator to its panic, then ::dump');
    const r = spawnSync(process.execPath, [join(root, 'bin', 'dbg'), 'live', kernel, '--cpus', '2', '-m', '32M', '-q', '--no-record', '-e', `:c; ::dump ${vmcore}.tmp`], {
      cwd: root,
      encoding: 'utf8',
      timeout: 120_000,
    });
    made = r.status === 0 && existsSync(`${vmcore}.tmp`);
    if (!made) say(`the emulator could not make dumps/vmcore.0 (${(r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').pop()})`);
  }
  if (made) {
    renameSync(`${vmcore}.tmp`, vmcore);
    writeFileSync(stamp, 'emulator:panic\n'); // ("emulator": made before -e waited for the script, at the guest's start)
  } else {
    copyFileSync(qemuDump, vmcore);
    writeFileSync(stamp, 'qemu\n');
    say('dumps/vmcore.0 is a copy of the QEMU sample: open it with --symbols dumps/qemu/kernel.elf');
  }
}
