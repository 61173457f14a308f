import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * A file of the QEMU-made sample in dumps/qemu/ (a kernel, its dumps, and the facts QEMU, gdb and
 * a page walk report about them; see dumps/qemu/README.md for where each comes from).
 */
export function qemuSample(name: string): string {
  const p = join(repoRoot, 'dumps', 'qemu', name);
  if (!existsSync(p)) throw new Error(`the QEMU sample file dumps/qemu/${name} is missing from this checkout`);
  return p;
}

/**
 * Record the QEMU sample kernel into `trace` with `dbg live --record -e SCRIPT` (the usual script
 * runs it to its halt), memory as `rows` says (DBG_RECORD_ROWS; dbg's default if not given);
 * throws with dbg's stderr if the recording fails.
 */
export function recordQemuSample(trace: string, script = ':c', rows?: 'eager' | 'lazy'): void {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'dbg'), 'live', '--emulate', qemuSample('kernel.elf'), '-q', '--record', trace, '-e', script], {
    encoding: 'utf8',
    input: '',
    timeout: 120_000,
    env: rows ? { ...process.env, DBG_RECORD_ROWS: rows } : process.env,
  });
  if (r.status !== 0) throw new Error(`dbg live --record failed: ${r.stderr}`);
}
