/**
 * Every flag and argument of every command, given a bad value: one line `dbg: …` on stderr that
 * names the flag or argument and what is accepted, nothing on stdout, a non-zero exit status (2 for
 * a usage error oclif finds, 1 for a value dbg refuses), and never a stack.
 */

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qemuSample, repoRoot } from '../helpers/repo.js';
import { runDbg } from '../gdb-client/attach-helpers.js';

const dbg = join(repoRoot, 'bin', 'dbg');
const kernel = join(repoRoot, 'dumps', 'kernel.elf');
const dir = mkdtempSync(join(tmpdir(), 'dbg-cli-errors-'));
const trace = join(dir, 'k.trace');
const raw = join(dir, 'blob.bin');
const nosuch = join(dir, 'nosuch');
const emptyDir = join(dir, 'empty');

const run = (args: readonly string[]) => runDbg(args, 60_000, { env: { XDG_CACHE_HOME: dir } });

beforeAll(() => {
  writeFileSync(raw, Buffer.from('dbg raw file\0'));
  mkdirSync(emptyDir);
  const r = spawnSync(process.execPath, [dbg, 'live', '--emulate', kernel, '--wait', '-q', '--record', trace, '-e', 'kmain::bp; :c'], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`recording the test trace failed: ${r.stderr}`);
  spawnSync('xz', ['-k', raw]);
  spawnSync('xz', ['-k', trace]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Case = readonly [args: readonly string[], message: string | RegExp, code: number];

const usage = (cmd: string, text: string): string => `dbg: ${text} (see dbg ${cmd} --help)`;
const gdbPort = 'dbg: --gdb notaport: not a port number; expected [HOST:]PORT, e.g. 1234 or 127.0.0.1:1234';

const cases: Record<string, () => Case[]> = {
  open: () => [
    [['open'], usage('open', 'missing argument FILE: the dump, core, ELF or raw file to open'), 2],
    [['open', raw, 'extra'], usage('open', 'unexpected argument: extra'), 2],
    [['open', raw, '--bogus'], usage('open', 'unknown flag --bogus'), 2],
    [['open', raw, '--raw=yes'], usage('open', '--raw takes no value (got --raw=yes); give --raw alone'), 2],
    [['open', '--json=1', raw, '-e', '0/X'], usage('open', '--json takes no value (got --json=1); give --json alone'), 2],
    [['open', nosuch], `dbg: cannot open "${nosuch}": no such file`, 1],
    [['open', emptyDir], `dbg: cannot open "${emptyDir}": it is a directory`, 1],
    [['open', raw, '--exe', kernel], `dbg: --exe does not apply to "${raw}", which is not an ELF file and opens as a raw file`, 1],
    [['open', raw, '--sysroot', dir], `dbg: --sysroot does not apply to "${raw}", which is not an ELF file and opens as a raw file`, 1],
    [['open', raw, '--symbols', kernel], `dbg: --symbols does not apply to "${raw}", which is not an ELF file and opens as a raw file`, 1],
    [['open', raw, '--raw', '--symbols', kernel], 'dbg: --symbols does not apply to a raw file (--raw)', 1],
    [['open', raw, '--modules', dir], `dbg: --modules does not apply to "${raw}", which is not an ELF file and opens as a raw file`, 1],
    [['open', raw, '-e'], usage('open', 'flag --execute expects a value'), 2],
    [['open', raw, '-e', '::nosuch'], "dbg: unknown dcmd 'nosuch' (::help lists the dcmds)", 1],
    [['open', raw, '--gdb', 'notaport', '-e', '::status'], gdbPort, 1],
    [['open', raw, '--gdb', '99999', '-e', '::status'], 'dbg: --gdb 99999: port 99999 is above 65535; expected [HOST:]PORT, e.g. 1234 or 127.0.0.1:1234', 1],
    [['open', `${raw}.xz`], `dbg: "${raw}.xz" is xz-compressed; dbg reads files uncompressed: xz -dk ${raw}.xz, then dbg open ${raw} (--raw opens the compressed bytes)`, 1],
    [['open', trace], `dbg: "${trace}" is a SQLite file, such as a trace dbg live records: open a trace with dbg replay ${trace} (--raw opens the bytes)`, 1],
  ],
  live: () => [
    [['live'], 'dbg: dbg live needs a kernel: --emulate FILE', 1],
    [['live', '--emulate', nosuch], `dbg: cannot read kernel "${nosuch}": no such file`, 1],
    [['live', '--emulate', emptyDir], `dbg: cannot read kernel "${emptyDir}": it is a directory`, 1],
    [['live', '--emulate', `${raw}.xz`], `dbg: "${raw}.xz" is xz-compressed; dbg reads files uncompressed: xz -dk ${raw}.xz, then dbg live --emulate ${raw}`, 1],
    [['live', '--emulate', kernel, '-m', 'lots', '--no-record'], 'dbg: -m lots: expected a size such as 64M or 1G', 1],
    [['live', '--emulate', kernel, '--cpus', '0'], usage('live', '--cpus 0: expected an integer greater than or equal to 1'), 2],
    [['live', '--emulate', kernel, '--cpus', 'abc'], usage('live', '--cpus abc: expected an integer'), 2],
    [['live', '--emulate', kernel, '--cpus', '65'], usage('live', '--cpus 65: expected an integer less than or equal to 64'), 2],
    [['live', '--emulate', kernel, '--quantum', '0'], usage('live', '--quantum 0: expected an integer greater than or equal to 1'), 2],
    [['live', '--emulate', kernel, '--symbols', nosuch, '--no-record', '--wait', '-e', '::status'], `dbg: cannot open "${nosuch}": no such file`, 1],
    [['live', '--emulate', kernel, '--cmdline'], usage('live', 'flag --cmdline expects a value'), 2],
    [['live', '--emulate', kernel, '--wait=x'], usage('live', '--wait takes no value (got --wait=x); give --wait alone'), 2],
    [['live', '--emulate', kernel, '--record', trace, '--wait', '-e', '::status'], `dbg: trace "${trace}" already exists: choose another file or remove it first`, 1],
    [['live', '--emulate', kernel, '--record', join(nosuch, 'x.trace'), '--wait', '-e', '::status'], /^dbg: trace ".*x\.trace": .*directory/, 1],
    [['live', '--emulate', kernel, '--record', join(dir, 'r.trace'), '--no-record'], usage('live', '--no-record=true cannot also be provided when using --record'), 2],
    [['live', '--emulate', kernel, '--no-record', '--gdb', 'notaport', '-e', '::status'], gdbPort, 1],
    [['live', '--emulate', kernel, '--no-record', '--wait', '-e', '::nosuch'], "dbg: unknown dcmd 'nosuch' (::help lists the dcmds)", 1],
  ],
  replay: () => [
    [['replay'], usage('replay', 'missing argument FILE: the trace file'), 2],
    [['replay', nosuch], new RegExp(`^dbg: .*"?${nosuch}"? does not exist`), 1],
    [['replay', raw], /^dbg: .*blob\.bin.*not a dbg trace/, 1],
    [['replay', trace, '--symbols', nosuch], new RegExp(`^dbg: symbol file "${nosuch}" does not exist`), 1],
    [['replay', trace, '--symbols', raw], new RegExp(`^dbg: .*${raw}.*not an ELF file`), 1],
    [
      ['replay', trace, '--symbols', qemuSample('kernel.elf')],
      `dbg: --symbols ${qemuSample('kernel.elf')} does not match trace "k.trace": its code at physical 0x200000 (PT_LOAD 0) is not the recorded guest's. Give the kernel that was recorded`,
      1,
    ],
    [['replay', trace, '--seek', 'abc'], 'dbg: --seek abc: expected a decimal seq', 1],
    [['replay', trace, '--seek', '999999999999'], /^dbg: seq 999999999999 is outside the recorded history \[0, \d+\]$/, 1],
    [['replay', trace, '--gdb', 'notaport', '-e', '::now'], gdbPort, 1],
    [['replay', trace, '-e'], usage('replay', 'flag --execute expects a value'), 2],
    [['replay', `${trace}.xz`], `dbg: "${trace}.xz" is xz-compressed; dbg reads files uncompressed: xz -dk ${trace}.xz, then dbg replay ${trace}`, 1],
  ],
  query: () => [
    [['query'], usage('query', 'missing arguments FILE: the trace file; SQL: the query'), 2],
    [['query', trace], usage('query', 'missing argument SQL: the query'), 2],
    [['query', nosuch, 'SELECT 1'], new RegExp(`^dbg: .*"${nosuch}" does not exist`), 1],
    [['query', trace, 'SELECT nonsense'], 'dbg: bad SQL: no such column: nonsense', 1],
    [['query', `${trace}.xz`, 'SELECT 1'], `dbg: "${trace}.xz" is xz-compressed; dbg reads files uncompressed: xz -dk ${trace}.xz, then dbg replay ${trace}`, 1],
    [['query', trace, 'SELECT 1', 'extra'], usage('query', 'unexpected argument: extra'), 2],
    [['query', trace, 'SELECT 1', '--bogus'], usage('query', 'unknown flag --bogus'), 2],
  ],
};

for (const [command, list] of Object.entries(cases)) {
  describe(`dbg ${command} with a bad flag or argument`, () => {
    it('prints one line dbg: … naming it, nothing on stdout, and fails', async () => {
      for (const [args, message, code] of list()) {
        const r = await run(args);
        const what = `dbg ${args.join(' ')}`;
        expect(r.stdout, what).toBe('');
        expect(r.stderr.endsWith('\n') && r.stderr.split('\n').length === 2, `${what}: ${r.stderr}`).toBe(true);
        if (typeof message === 'string') expect(r.stderr, what).toBe(`${message}\n`);
        else expect(r.stderr.trimEnd(), what).toMatch(message);
        expect(r.code, what).toBe(code);
      }
    }, 240_000); // a dozen dbg processes one after the other: ~20 s idle, over 60 s at load 8
  });
}

describe('-e given more than once', () => {
  it('runs every script in order; the first failure stops the rest', async () => {
    const ok = await run(['open', raw, '-e', '0t1=D', '-e', '0t2=D; 0t3=D', '-e', '0t4=D']);
    expect(ok.stderr).toBe('');
    expect(ok.stdout.split('\n').map((l) => l.trim())).toEqual(['1', '2', '3', '4', '']);
    expect(ok.code).toBe(0);
    const failing = await run(['open', raw, '-e', '0t1=D', '-e', '::nosuch', '-e', '0t2=D']);
    expect(failing.stdout.trim()).toBe('1');
    expect(failing.code).toBe(1);
    // a script that starts with -- is the value of -e, not a flag
    expect((await run(['open', raw, '-e', '--raw=1'])).stderr).not.toContain('takes no value');
    const replay = await run(['replay', trace, '-e', '::seek 0t10', '-e', '::now']);
    expect(replay.stdout).toMatch(/^seq 10 of \[0, \d+\]/m);
  });
});
