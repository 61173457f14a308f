/**
 * The REPL at a terminal (a pseudo-terminal from python3's pty module, keys typed as a user types
 * them): Tab completes dcmds, symbols and file names, Ctrl-R finds an earlier command, the prompt
 * says where in the recorded history the session is, and gdb habits get the MDB command.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onPty } from '../helpers/pty.js';
import { repoRoot } from '../helpers/repo.js';

const dbg = join(repoRoot, 'bin', 'dbg');
const kernel = join(repoRoot, 'dumps', 'kernel.elf');
const dir = mkdtempSync(join(tmpdir(), 'dbg-repl-'));
const trace = join(dir, 'k.trace');

function terminal(args: string[], steps: [number, string][]): string {
  const env = { ...process.env, DBG_HISTORY: join(dir, 'history'), TERM: 'xterm' };
  const screen = onPty([process.execPath, dbg, ...args], steps, { cwd: dir, settle: 4, env });
  // The screen without colour and cursor movement, so the text can be matched.
  return screen.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
}

beforeAll(() => {
  const r = spawnSync(process.execPath, [dbg, 'live', '--emulate', kernel, '--wait', '-q', '--record', trace, '-e', 'kmain::bp; :c'], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`recording the test trace failed: ${r.stderr}`);
  mkdirSync(join(dir, 'mods'));
  writeFileSync(join(dir, 'mods', 'my-dmod.js'), 'export default { name: "x", dcmds: [] };\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the REPL at a terminal', () => {
  it('completes, searches back, shows the position, and hints gdb habits', () => {
    const screen = terminal(
      ['replay', trace],
      [
        // Keys arrive one write at a time: readline takes a Tab inside a pasted chunk literally.
        [0.3, '::rst'],
        [0.5, '\t'], // ::rstep by completion
        [1.5, '\r'],
        [0.3, 'kmai'],
        [0.5, '\t'], // the symbol kmain by completion
        [1.5, '=K\r'],
        [0.3, '::load ./mo'],
        [0.5, '\t'], // a directory by completion ...
        [0.3, 'my'],
        [0.5, '\t'], // ... and the file in it
        [0.5, '\x15'], // Ctrl-U: drop the line
        [0.3, '\x12'], // Ctrl-R ...
        [0.3, 'r'],
        [0.3, 's'],
        [0.3, 't'], // ... finds ::rstep
        [1.5, '\r'], // and Enter runs it
        [1.5, 'bt\r'],
        [1, 'info registers\r'],
        [1, '::quit\r'],
      ],
    );
    expect(screen).toMatch(/\[seq (\d+)\]> ::rstep\r*\n/);
    const end = Number(/\[seq (\d+)\]> ::rstep/.exec(screen)![1]);
    expect(screen).toMatch(new RegExp(`seq ${end - 1}: kstart\\+0x[0-9a-f]+ \\(0x[0-9a-f]+\\) on vCPU 0: step`));
    expect(screen).toContain(`[seq ${end - 1}, past]> kmain=K`);
    expect(screen).toMatch(/\n\s*ffffffff80101580 *\r*\n/);
    expect(screen).toContain('::load ./mods/my-dmod.js');
    expect(screen).toContain("(reverse-i-search)'rst': ::rstep");
    expect(screen).toContain(`seq ${end - 2}: `);
    expect(screen).toContain(`[seq ${end - 2}, past]> `);
    expect(screen).toContain("gdb's bt is $c or ::stack here");
    expect(screen).toContain("gdb's info registers is $r or ::regs here");
  });

  it('the prompt of a dump is MDB\'s "> "', () => {
    const screen = terminal(['open', join(repoRoot, 'dumps', 'vmcore.0'), '--symbols', kernel], [[0.3, '::statu'], [0.5, '\t'], [1.5, '\r'], [1, '::quit\r']]);
    expect(screen).toMatch(/(^|\n)> ::status\r*\n/);
    expect(screen).toContain('status: panic: scheduler: task list corrupted');
  });
});
