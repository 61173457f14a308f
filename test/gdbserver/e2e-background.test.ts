// `dbg live … --gdb PORT &` typed at an interactive shell, as the README shows it: the job is in
// the background with the terminal as its stdin. It must leave the terminal alone (a REPL's raw
// mode would stop it with SIGTTOU, and gdb would then hang) and serve gdb until it is killed.
// A real bash with job control runs on a pseudo-terminal that python3's pty module makes.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { onPty } from '../helpers/pty.js';
import { repoRoot } from '../helpers/repo.js';

describe('dbg --gdb as a background job of an interactive shell', () => {
  it('keeps running (no SIGTTOU), says it has no REPL, and serves gdb', () => {
    const dbg = join(repoRoot, 'bin', 'dbg');
    const kernel = join(repoRoot, 'dumps', 'kernel.elf');
    const port = 20000 + (process.pid % 20000);
    const gdb = `gdb -nx -batch -iex 'set auto-load off' -ex 'target remote 127.0.0.1:${port}' -ex 'monitor ::status' 2>&1 | grep -c 'instructions executed: 0'`;
    const lines: [number, string][] = [
      [0.2, `export DBG_HISTORY=/dev/null PS1='$ '`],
      [4, `'${process.execPath}' '${dbg}' live --emulate '${kernel}' --wait --no-record --gdb ${port} &`],
      [0.5, 'jobs -l'],
      [10, gdb],
      [1, 'kill %1; wait'],
      [0.5, 'exit'],
    ];
    // Lines typed into `bash -i`, one per step after the given delay.
    const steps = lines.map(([wait, line]) => [wait, `${line}\n`] as const);
    const screen = onPty(['bash', '--norc', '--noprofile', '-i'], steps, { cwd: repoRoot, settle: 0.5, timeoutMs: 60_000 });
    expect(screen, screen).not.toMatch(/Stopped \(tty (output|input)\)/);
    expect(screen).toMatch(/\[1\]\+ +\d+ Running +.*--gdb \d+ &/);
    expect(screen).toContain(`dbg gdbserver: in the background (no REPL): serving gdb on 127.0.0.1:${port} until stopped (SIGTERM or SIGINT)`);
    // gdb's `monitor ::status` answered (grep -c printed 1): the server was not stopped.
    expect(screen).toMatch(/\n1\r?\n/);
  });
});
