/**
 * Whether this machine delivers x86 debug-register traps to a tracer, asked of the kernel by a
 * small gcc-built probe (test/fixtures-src/probes/debug-register-trap.c) rather than of dbg, so
 * that a dbg whose watchpoints broke cannot make its own tests skip. Some hypervisors take DR7
 * and never raise #DB: there gdb's hardware watchpoints are silent as well.
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturesSrc } from './debuggee.js';

let answer: string | undefined | null = null;

/** Undefined when debug-register traps fire here, else why the tests that need them skip. */
export function debugRegisterTrapsMissing(): string | undefined {
  if (answer !== null) return answer;
  if (process.platform !== 'linux' || process.arch !== 'x64') return (answer = 'not x86-64 Linux');
  const dir = mkdtempSync(join(tmpdir(), 'dbg-dr-probe-'));
  try {
    const exe = join(dir, 'probe');
    execFileSync('gcc', ['-O0', '-o', exe, join(fixturesSrc, 'probes', 'debug-register-trap.c')]);
    const out = execFileSync(exe, { encoding: 'utf8', timeout: 10_000 }).trim();
    answer = out === 'fired' ? undefined : 'this machine does not deliver debug-register traps to a tracer (a DR7 write watchpoint let the write through: a hypervisor without #DB; gdb\'s hardware watchpoints are silent here too)';
  } catch (e) {
    answer = `the debug-register probe could not run: ${(e as Error).message.split('\n')[0]}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return answer;
}
