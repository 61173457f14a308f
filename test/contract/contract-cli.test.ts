// `dbg live|replay|open ... --contract [HOST:]PORT` as a user runs it (a child process with no
// terminal, serving until SIGTERM), driven by `dbg contract PORT -e …`, and the command-line errors.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/repo.js';
import { servingDbg, type ServingDbg } from '../helpers/serving-dbg.js';

const dbg = join(repoRoot, 'bin', 'dbg');
const cxx = join(repoRoot, 'dumps', 'cxx-kernel.elf');
const start = servingDbg();
/** Start dbg with stdin closed; resolves with the port it reports and a way to stop it. */
const startDbg = (args: string[]): Promise<ServingDbg> => start(args, /listening on 127\.0\.0\.1:(\d+) \(commands/);

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [dbg, ...args], { encoding: 'utf8', timeout: 60_000, input: '', env: { ...process.env, DBG_HISTORY: '/dev/null' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `dbg contract ARGS` in a child process, asynchronously (the server under test may be this process's child too). */
function contract(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [dbg, 'contract', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('dbg live|replay|open --contract, dbg contract', () => {
  it('dbg live --wait --contract: BP= on a C++ method, C=1 to its STOP=, D=1; the server goes on for the next client', async () => {
    const s = await startDbg(['live', '--emulate', cxx, '--wait', '-q', '--no-record', '--contract', '0']);
    const r = await contract([String(s.port), '-e', 'V=?; BP=Scheduler::tick; C=1;', '-e', 'D=1']);
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')).toEqual([
      'V=dbg-contract/1;',
      expect.stringMatching(/^BP=1,PC=0xffffffff801[0-9a-f]{5},SYM=Scheduler::tick\(\);$/),
      'OK;',
      'OK;',
      expect.stringMatching(/^STOP=breakpoint,PC=0xffffffff801[0-9a-f]{5},CPU=0,BP=1,SYM=Scheduler::tick\(\);$/),
      'OK;',
      '',
    ]);
    expect(r.status).toBe(0);
    // the first ERR= stops the script: one dbg: line, status 1, nothing after it sent
    const bad = await contract([`127.0.0.1:${s.port}`, '-e', 'BP=ns::Foo::nope; C=1;']);
    expect(bad.stderr).toBe('dbg: no symbol "ns::Foo::nope" in cxx-kernel.elf (a C name as written, a C++ name unmangled: ns::Foo::bar, or ns::Foo::bar(int) for one overload)\n');
    expect(bad.stdout).toBe('');
    expect(bad.status).toBe(1);
    expect(s.stderr()).toContain('no terminal: serving the control contract on 127.0.0.1:');
    expect(await s.stop()).toBe(0);
  });

  it('dbg replay --contract: C=1 replays to the breakpoint, then to the end of the history', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dbg-contract-cli-'));
    try {
      const trace = join(dir, 'cxx.trace');
      const rec = run(['live', '--emulate', cxx, '-q', '--record', trace, '-e', ':c']);
      expect(rec.stdout).toMatch(/^stopped: halted/);
      const s = await startDbg(['replay', trace, '--seek', '0', '--contract', '0']);
      const r = await contract([String(s.port), '-e', 'BP=max<long>; C=1; C=1; C=1;']);
      const stops = r.stdout.split('\n').filter((l) => l.startsWith('STOP='));
      expect(stops[0]).toMatch(/^STOP=breakpoint,PC=0x[0-9a-f]+,CPU=0,BP=1,SYM=max<long>\(long, long\);$/);
      expect(stops).toHaveLength(3);
      expect(r.status).toBe(0);
      expect(await s.stop()).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('dbg open DUMP --contract: the target cannot run', async () => {
    const s = await startDbg(['open', join(repoRoot, 'dumps', 'vmcore.0'), '--symbols', join(repoRoot, 'dumps', 'kernel.elf'), '--contract', '0']);
    const r = await contract([String(s.port), '-e', 'C=1']);
    expect(r.stderr).toBe('dbg: kernel dump "vmcore.0" cannot run: execution control is not supported by this target\n');
    expect(r.status).toBe(1);
    expect(await s.stop()).toBe(0);
  });

  it('bad flags and addresses: one line each', async () => {
    const remote = run(['live', '--emulate', cxx, '--wait', '-q', '--no-record', '--contract', '0.0.0.0:0']);
    expect(remote.stderr).toBe('dbg: --contract 0.0.0.0:0: 0.0.0.0 is not a loopback address, and anyone who can reach it could control the target with no password; add --contract-allow-remote to listen there anyway\n');
    expect(remote.status).toBe(1);
    const noPort = run(['live', '--emulate', cxx, '--wait', '-q', '--no-record', '--contract', 'abc']);
    expect(noPort.stderr).toBe('dbg: --contract abc: not a port number; expected [HOST:]PORT, e.g. 1234 or 127.0.0.1:1234\n');
    const alone = run(['replay', 'x.trace', '--contract-allow-remote']);
    expect(alone.stderr).toBe('dbg: --contract-allow-remote applies to the control contract: give --contract [HOST:]PORT too\n');
    const refused = await contract(['127.0.0.1:1', '-e', 'V=?']);
    expect(refused.stderr).toBe('dbg: cannot connect to the dbg contract at 127.0.0.1:1: connection refused (is dbg running with --contract?)\n');
    expect(refused.status).toBe(1);
    const zero = await contract(['0', '-e', 'V=?']);
    expect(zero.stderr).toBe("dbg: contract 0: port 0 is not a server's port; expected [HOST:]PORT, e.g. 4000 or 127.0.0.1:4000\n");
  });
});
