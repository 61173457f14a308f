/** Running `dbg attach` and the stubs it attaches to, for the gdb-client tests. */

import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { repoRoot } from '../helpers/repo.js';

export { freePort } from '../helpers/i386-guest.js';

export const dbg = join(repoRoot, 'bin', 'dbg');

export interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `dbg ARGS` (node started with `nodeFlags`, `env` added to the environment), killed after `timeoutMs`. */
export function runDbg(args: readonly string[], timeoutMs = 60_000, opts: { nodeFlags?: readonly string[]; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((done) => {
    const env = { ...process.env, DBG_HISTORY: '/dev/null', ...opts.env };
    const p = spawn(process.execPath, [...(opts.nodeFlags ?? []), dbg, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

/** Wait until something accepts connections on `port` (then close the probe at once). */
export async function waitForPort(port: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((done) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        done(true);
      });
      s.once('error', () => done(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Stop a child this test started, by its PID, and wait for it to go. */
export function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    child.once('exit', () => done());
    child.kill('SIGKILL');
  });
}
