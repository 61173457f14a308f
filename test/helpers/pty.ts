/**
 * A program on a pseudo-terminal (python3's pty module), typed at as a user types: each step's
 * keys are written, then the step's seconds pass while the screen is read. Returns everything the
 * terminal showed.
 */
import { spawnSync } from 'node:child_process';

const driver = String.raw`
import json, os, pty, select, sys, time
argv, steps, cwd, settle = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.chdir(cwd)
    os.execvp(argv[0], argv)
out = b''
def pump(seconds):
    global out
    end = time.time() + seconds
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                out += os.read(fd, 65536)
            except OSError:
                return
pump(settle)
for wait, keys in steps:
    os.write(fd, keys.encode())
    pump(wait)
os.waitpid(pid, 0)
sys.stdout.write(out.decode('utf8', 'replace'))
`;

export interface PtyOptions {
  readonly cwd: string;
  /** Seconds to read the screen before the first keys (the program starting). */
  readonly settle: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly timeoutMs?: number;
}

/** Run `argv` on a pty; steps are [seconds to wait after, keys]. */
export function onPty(argv: readonly string[], steps: readonly (readonly [number, string])[], opts: PtyOptions): string {
  const r = spawnSync('python3', ['-c', driver, JSON.stringify([argv, steps, opts.cwd, opts.settle])], {
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 90_000,
    env: opts.env ?? process.env,
  });
  return r.stdout ?? '';
}
