/**
 * The i386 test guest (test/fixtures-src/i386/): built by gcc -m32 and ld into test/.fixtures,
 * keyed by its sources, and QEMU's gdbstub on it as the oracle for dbg's GDB server.
 */

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { freePort } from '../../bench/gdb-bench.js';
import { repoRoot } from './repo.js';

const src = join(repoRoot, 'test', 'fixtures-src', 'i386');
const files = ['start.S', 'multiboot.h', 'guest.c', 'link.ld'];

/** guest.elf, built once per version of its sources. */
export function i386Guest(): string {
  const hash = createHash('sha256');
  for (const f of files) hash.update(readFileSync(join(src, f)));
  const dir = join(repoRoot, 'test', '.fixtures', `i386-guest-${hash.digest('hex').slice(0, 12)}`);
  const elf = join(dir, 'guest.elf');
  if (existsSync(elf)) return elf;
  mkdirSync(dir, { recursive: true });
  const cflags = ['-m32', '-ffreestanding', '-fno-pic', '-fno-pie', '-O1', '-g', '-fno-omit-frame-pointer', '-fno-stack-protector'];
  execFileSync('gcc', [...cflags, '-c', join(src, 'guest.c'), '-o', join(dir, 'guest.o')]);
  execFileSync('gcc', ['-m32', '-c', join(src, 'start.S'), '-o', join(dir, 'start.o')]);
  execFileSync('ld', ['-m', 'elf_i386', '--no-warn-rwx-segments', '-z', 'noexecstack', '-T', join(src, 'link.ld'), '-o', elf, join(dir, 'start.o'), join(dir, 'guest.o')]);
  return elf;
}

/** A TCP port free on loopback now (QEMU's -gdb wants a number): the benches' helper. */
export { freePort };

/** QEMU stopped at its first instruction with its gdbstub on `port`; stop() ends it by its PID. */
export async function qemuGdbstub(system: 'i386' | 'x86_64', kernel: string): Promise<{ port: number; stop: () => void }> {
  const port = await freePort();
  const child: ChildProcess = spawn(`qemu-system-${system}`, ['-kernel', kernel, '-display', 'none', '-nodefaults', '-m', '64', '-S', '-gdb', `tcp:127.0.0.1:${port}`], { stdio: 'ignore' });
  let exited = false;
  child.once('exit', () => (exited = true));
  // Wait until the stub listens: up to 30 s (a QEMU starting beside a busy test run took over
  // the 5 s this waited before, and the test then met "connection refused").
  for (let i = 0; ; i++) {
    const listening = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(true));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(false)));
    });
    if (listening) break;
    if (exited || i >= 600) {
      child.kill('SIGTERM');
      throw new Error(`qemu-system-${system} ${exited ? 'exited before its gdb stub listened' : 'did not listen on its gdb stub in 30 s'} (port ${port})`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, stop: () => child.kill('SIGTERM') };
}
