/**
 * `bin/dbg open` as a user runs it: a child process, its stdout, stderr and exit status.
 */

import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/repo.js';
import { debuggee, type Debuggee } from '../helpers/debuggee.js';
import { tempDir } from './helpers.js';

const dbg = join(repoRoot, 'bin', 'dbg');

function open(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [dbg, 'open', ...args], { encoding: 'utf8', input, timeout: 60_000, env: { ...process.env, DBG_HISTORY: '/dev/null' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let dir: string;
let cleanup: () => void;
let raw: string;
let d: Debuggee;
beforeAll(async () => {
  const t = tempDir('dbg-e2e-open-');
  dir = t.dir;
  cleanup = t.cleanup;
  raw = join(dir, 'blob.bin');
  const b = Buffer.alloc(64);
  b.write('dbg raw file\0', 0, 'latin1');
  b.writeUInt32LE(0xcafef00d, 16);
  writeFileSync(raw, b);
  d = await debuggee('threads', { kernelCore: true });
});
afterAll(() => cleanup());

describe('dbg open -e', () => {
  it('runs commands on a raw file and exits 0', () => {
    const r = open([raw, '-e', '0/s; 10/X\n0t42=D']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(['0x0:            dbg raw file', '0x10:           cafef00d        ', '                42              ', ''].join('\n'));
    expect(r.code).toBe(0);
  });

  it('answers in JSON, one value per line', () => {
    const r = open([d.core, '--json', '-e', '::threads; ::status']);
    expect(r.code).toBe(0);
    const [threads, status] = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as unknown);
    expect((threads as unknown[]).length).toBe(4);
    expect(status).toMatchObject({ kind: 'process-core', threads: 4, modules: expect.arrayContaining(['libc.so.6']) });
  });

  it('prints a backtrace of every thread of a core', () => {
    const r = open([d.core, '-e', '::stack -a']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^thread 1 \(LWP \d+\):$/m);
    expect(r.stdout).toMatch(/^0x[0-9a-f]{16} main\+0x[0-9a-f]+$/m);
    expect(r.stdout).toMatch(/^0x[0-9a-f]{16} sleep_deeply\+0x[0-9a-f]+$/m);
  });

  it('an unknown dcmd: one line on stderr, exit 1, and the script stops there', () => {
    const r = open([raw, '-e', '0t1=D; ::foo; 0t2=D']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("dbg: unknown dcmd 'foo' (::help lists the dcmds)\n");
    expect(r.stdout).toBe('                1               \n');
  });

  it('an unknown symbol, a bad expression, an unmapped address: one line each, exit 1', () => {
    expect(open([raw, '-e', 'nosuch/X']).stderr).toBe('dbg: unknown symbol "nosuch": not defined in any symbol table (none is loaded)\n');
    expect(open([raw, '-e', '1+(2=D']).stderr).toBe('dbg: bad expression "1+(2" at column 5: expected ")" but found end of expression\n');
    const u = open([raw, '-e', '1000/X']);
    expect(u.code).toBe(1);
    expect(u.stdout).toBe('');
    expect(u.stderr).toBe(`dbg: read of 4 bytes at 0x1000 failed: 0x1000 is beyond the end of the file (size 0x40) in raw file "${raw}"\n`);
    expect(open([raw, '-e', '0/k']).stderr).toBe(`dbg: unknown format character 'k' in "k" (::formats lists them)\n`);
    expect(open([raw, '-e', '::stack -q']).stderr).toBe('dbg: ::stack: unknown option -q (usage: ::stack [-a] [-s] [-v])\n');
  });

  it('a missing file and a bad flag: one line, non-zero, no stack', () => {
    const m = open([join(dir, 'nope.core'), '-e', '::status']);
    expect(m.code).toBe(1);
    expect(m.stderr).toBe(`dbg: cannot open "${join(dir, 'nope.core')}": no such file\n`);
    const f = open([raw, '--bogus']);
    expect(f.code).toBe(2);
    expect(f.stderr.split('\n').filter(Boolean), f.stderr).toHaveLength(1);
    expect(f.stderr).toBe('dbg: unknown flag --bogus (see dbg open --help)\n');
    // --symbols takes one file per flag, so FILE may follow it.
    expect(open(['--symbols', 'vmlinux', raw, '-e', '::status']).stderr).toBe(`dbg: --symbols does not apply to "${raw}", which is not an ELF file and opens as a raw file\n`);
    const x = open([raw, '--exe', 'a.out', '-e', '::status']);
    expect(x.code).toBe(1);
    expect(x.stderr).toBe(`dbg: --exe does not apply to "${raw}", which is not an ELF file and opens as a raw file\n`);
  });

  it('prints the target\'s warnings once, at open, and goes on', () => {
    const r = open([d.core, '--sysroot', dir, '-e', '::status; ::threads']);
    expect(r.code).toBe(0);
    const warnings = r.stderr.split('\n').filter(Boolean);
    expect(warnings.length).toBeGreaterThan(0);
    for (const w of warnings) expect(w).toMatch(/^dbg: warning: cannot read symbols of /);
    expect(warnings.filter((w) => w.includes('of the executable'))).toHaveLength(1);
  });

  it('reads commands from stdin when it is not a terminal, going on after a failure', () => {
    const r = open([raw], '0/s\n::nope\n0t7=D\n');
    expect(r.stdout).toBe('0x0:            dbg raw file\n                7               \n');
    expect(r.stderr).toBe("dbg: unknown dcmd 'nope' (::help lists the dcmds)\n");
    expect(r.code).toBe(1);
    expect(open([raw], '0t7=D\n$q\n0t8=D\n').stdout).toBe('                7               \n');
  });
});
