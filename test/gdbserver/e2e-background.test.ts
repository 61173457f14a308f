// `dbg live … --gdb PORT &` typed at an interactive shell, as the README shows it: the job is in
// the background with the terminal as its stdin. It must leave the terminal alone (a REPL's raw
// mode would stop it with SIGTTOU, and gdb would then hang) and serve gdb until it is killed.
// A real bash with job control runs on a pseudo-terminal that python3's pty module makes.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/repo.js';

// Types lines into `bash -i` on a pty, one per step after the given delay, and prints everything
// the terminal showed. Steps: [seconds to wait after, line].
const driver = String.raw`
import json, os, pty, select, sys, time
steps = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.execvp('bash', ['bash', '--norc', '--noprofile', '-i'])
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
pump(0.5)
for wait, line in steps:
    os.write(fd, (line + '\n').encode())
    pump(wait)
os.waitpid(pid, 0)
sys.stdout.write(out.decode('utf8', 'replace'))
`;

describe('dbg --gdb as a background job of an interactive shell', () => {
  it('keeps running (no SIGTTOU), says it has no REPL, and serves gdb', () => {
    const dbg = join(repoRoot, 'bin', 'dbg');
    const kernel = join(repoRoot, 'dumps', 'kernel.elf');
    const port = 20000 + (process.pid % 20000);
    const gdb = `gdb -nx -batch -iex 'set auto-load off' -ex 'target remote 127.0.0.1:${port}' -ex 'monitor ::status' 2>&1 | grep -c 'instructions executed: 0'`;
    const steps: [number, string][] = [
      [0.2, `export DBG_HISTORY=/dev/null PS1='$ '`],
      [4, `'${process.execPath}' '${dbg}' live --emulate '${kernel}' --wait --no-record --gdb ${port} &`],
      [0.5, 'jobs -l'],
      [10, gdb],
      [1, 'kill %1; wait'],
      [0.5, 'exit'],
    ];
    const r = spawnSync('python3', ['-c', driver, JSON.stringify(steps)], { encoding: 'utf8', timeout: 60_000, cwd: repoRoot });
    const screen = r.stdout ?? '';
    expect(screen, screen).not.toMatch(/Stopped \(tty (output|input)\)/);
    expect(screen).toMatch(/\[1\]\+ +\d+ Running +.*--gdb \d+ &/);
    expect(screen).toContain(`dbg gdbserver: in the background (no REPL): serving gdb on 127.0.0.1:${port} until stopped (SIGTERM or SIGINT)`);
    // gdb's `monitor ::status` answered (grep -c printed 1): the server was not stopped.
    expect(screen).toMatch(/\n1\r?\n/);
  });
});
