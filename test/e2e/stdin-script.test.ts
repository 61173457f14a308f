import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// Commands piped into dbg (no terminal, no -e) run as a script, for every command. oclif reads
// standard input for a missing argument unless told not to, which once swallowed the script.
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dbg = join(root, 'bin', 'dbg');
const kernel = existsSync(join(root, 'dumps', 'kernel.elf')) ? join(root, 'dumps', 'kernel.elf') : join(root, 'dumps', 'kernel.prebuilt.elf');

function piped(args: string[], input: string) {
  return spawnSync(dbg, args, { input, encoding: 'utf8', timeout: 60_000 });
}

describe('commands read from standard input', () => {
  it('dbg live --wait runs piped commands and exits 0', () => {
    const r = piped(['live', '--emulate', kernel, '--no-record', '--wait', '-q'], '::status\nkmain::bp\n:c\n');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('instructions executed: 0');
    expect(r.stdout).toMatch(/stopped: breakpoint 1 at 0xffffffff[0-9a-f]+ kmain/);
  });

  it('dbg live with stdin closed exits 0 when the guest has stopped', () => {
    const r = piped(['live', kernel, '--no-record', '-q'], '');
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/stopped: halted/);
  });

  it('a failing piped command is reported, the rest run, and the exit status is 1', () => {
    const r = piped(['open', '--raw', kernel], '::nosuch\n0/X\n');
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("dbg: unknown dcmd 'nosuch' (::help lists the dcmds)\n");
    expect(r.stdout).toBe('0x0:            464c457f        \n'); // MDB pads the column after the value
  });
});
