// bin/dbg started as a server (--gdb, --contract) with stdin closed, as a user's background job:
// it serves headless until SIGTERM. Children left running by a test are killed after it.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { repoRoot } from './repo.js';

const dbg = join(repoRoot, 'bin', 'dbg');

export interface ServingDbg {
  /** The port of the first server line matching `listening`. */
  readonly port: number;
  stderr(): string;
  /** SIGTERM; resolves with the exit status. */
  stop(): Promise<number | null>;
}

/**
 * A starter for one test file (call at its top level): `start(args, listening)` resolves once
 * dbg's standard error matches `listening`, whose first group is the port.
 */
export function servingDbg(): (args: string[], listening: RegExp) => Promise<ServingDbg> {
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    children.length = 0;
  });
  return async (args, listening) => {
    const child = spawn(process.execPath, [dbg, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DBG_HISTORY: '/dev/null' } });
    children.push(child);
    let err = '';
    child.stdout!.on('data', () => undefined);
    const port = await new Promise<number>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`dbg did not start serving: ${err}`)), 30_000);
      child.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        const m = listening.exec(err);
        if (m) {
          clearTimeout(t);
          resolve(Number(m[1]));
        }
      });
      child.on('exit', (code) => reject(new Error(`dbg exited (${code}): ${err}`)));
    });
    return {
      port,
      stderr: () => err,
      stop: () =>
        new Promise((resolve) => {
          child.once('exit', (code) => resolve(code));
          child.kill('SIGTERM');
        }),
    };
  };
}
