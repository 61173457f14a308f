/**
 * dbg attach against stubs that lie (lying-stub.mjs, a real process with a real socket): every
 * failure is one `dbg: gdb stub HOST:PORT: … (packet X)` line and exit status 1, within the
 * --timeout, never a hang.
 */

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/repo.js';
import { freePort, runDbg, stop } from './attach-helpers.js';

let child: ChildProcess | undefined;
afterEach(() => stop(child));

/** A position-independent program, for the relocation cases. */
let dir: string;
let pie: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dbg-lying-stub-'));
  writeFileSync(join(dir, 'pie.c'), 'int main(void) { return 0; }\n');
  pie = join(dir, 'pie');
  execFileSync('gcc', ['-fPIE', '-pie', '-o', pie, join(dir, 'pie.c')]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Start the lying stub in `mode`; its port. */
function lyingStub(mode: string): Promise<number> {
  return new Promise((done, fail) => {
    child = spawn(process.execPath, [join(repoRoot, 'test', 'gdb-client', 'lying-stub.mjs'), mode], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout!.once('data', (b: Buffer) => done(Number(b.toString().trim())));
    child.once('error', fail);
  });
}

async function attach(mode: string, script: string): Promise<{ code: number | null; stdout: string; line: string; ms: number }> {
  const port = await lyingStub(mode);
  const t0 = Date.now();
  const r = await runDbg(['attach', '--gdb', String(port), '--timeout', '1', '-e', script], 30_000);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines, r.stderr).toHaveLength(1);
  return { code: r.code, stdout: r.stdout, line: lines[0]!.replace(`127.0.0.1:${port}`, 'STUB'), ms: Date.now() - t0 };
}

describe('dbg attach to a stub that misbehaves', () => {
  const cases: [mode: string, script: string, message: string][] = [
    ['silent', '::regs', 'dbg: gdb stub STUB: no acknowledgement within 1 s (packet qSupported:swbreak+;hwbreak+;vContSuppor...)'],
    ['ack-only', '::regs', 'dbg: gdb stub STUB: no reply within 1 s (packet qSupported:swbreak+;hwbreak+;vContSuppor...)'],
    ['bad-sum', '::regs', 'dbg: gdb stub STUB: a reply with a wrong checksum (packet qSupported:swbreak+;hwbreak+;vContSuppor...)'],
    ['close', '::regs', 'dbg: gdb stub STUB: the stub closed the connection (packet qSupported:swbreak+;hwbreak+;vContSuppor...)'],
    ['arm', '::regs', 'dbg: gdb stub STUB: a target description dbg cannot use: architecture "arm" (dbg reads i386:x86-64 and i386) (packet qXfer:features:read:target.xml:0,7fc)'],
    ['short-g', '::regs', 'dbg: gdb stub STUB: a g reply of 8 bytes without rip (the description needs 140) (packet g)'],
    ['hang-m', '::regs; 0x1000,4/X', 'dbg: gdb stub STUB: no reply within 1 s (packet m1000,7fc)'],
    ['garbage-m', '0x1000,4/X', 'dbg: gdb stub STUB: a reply that is not hex bytes: "zz not hex" (packet m1000,7fc)'],
    ['refuse-z', '0x2000::wp -w -L 3', 'dbg: gdb stub STUB: the stub refused a write watchpoint of 3 byte(s) at 0x0000000000002000: E22 (hardware watchpoints are few and of 1, 2, 4 or 8 aligned bytes) (packet Z2,2000,3)'],
    ['refuse-G', '0x1234::setreg rbx', 'dbg: gdb stub STUB: the stub refused writing the registers (G, for rbx): E01 (packet G000000000000000034120000000000000200000...)'],
    ['no-G', '0x1234::setreg rbx', 'dbg: gdb stub STUB: the stub supports neither P nor G: registers cannot be written (packet G000000000000000034120000000000000200000...)'],
    ['honest', '::dump core', 'dbg: writing a core snapshot is not supported by gdb stub STUB'],
  ];
  it.each(cases)('%s: one line naming the packet, exit status 1', async (mode, script, message) => {
    const r = await attach(mode, script);
    expect(r.line).toBe(message);
    expect(r.code).toBe(1);
    expect(r.ms).toBeLessThan(15_000);
  });

  it('a stub that answers well gives registers and memory (the same lying stub, honest)', async () => {
    const port = await lyingStub('honest');
    const r = await runDbg(['attach', '--gdb', `127.0.0.1:${port}`, '-e', '::regs; 0x1000,2/X; ::threads'], 30_000);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/%rip +0x0000000000401000|%rip += 0x0000000000401000/);
    expect(r.stdout).toMatch(/0x1000:\s+5a5a5a5a\s+5a5a5a5a/);
    expect(r.code).toBe(0);
  });

  it('a stub that answers P empty: a register write goes as g, changed, then G', async () => {
    const port = await lyingStub('honest');
    const r = await runDbg(['attach', '--gdb', String(port), '-e', '0x1234::setreg rbx; 0x402000::setreg rip; ::regs'], 30_000);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^%rbx += 0x0000000000001234$/m);
    expect(r.stdout).toMatch(/^%rip += 0x0000000000402000$/m);
    // The others are as the stub had them.
    expect(r.stdout).toMatch(/^%rcx += 0x0000000000000002$/m);
    expect(r.stdout).toMatch(/^%rsp += 0x0000000000007000$/m);
    expect(r.code).toBe(0);
    // A second connection reads what the first wrote: the stub took the G.
    const again = await runDbg(['attach', '--gdb', String(port), '-e', '::regs'], 30_000);
    expect(again.stdout).toMatch(/^%rbx += 0x0000000000001234$/m);
  });

  it('a PIE the stub cannot place: one warning line naming why, the session goes on', async () => {
    const e_entry = /Entry point address: +(0x[0-9a-f]+)/.exec(execFileSync('readelf', ['-h', pie], { encoding: 'utf8' }))![1]!;
    const cases: [mode: string, why: string][] = [
      ['honest', 'the stub offers no auxiliary vector (qXfer:auxv:read) to find its load address in'],
      ['auxv-odd', `the process's entry point (AT_ENTRY 0x0000000000001001) is not the file's (e_entry 0x${BigInt(e_entry).toString(16).padStart(16, '0')}) moved by whole pages: is it the program the stub runs?`],
    ];
    for (const [mode, why] of cases) {
      const port = await lyingStub(mode);
      const r = await runDbg(['attach', '--gdb', String(port), '--symbols', pie, '-e', '::regs'], 30_000);
      expect(r.stderr).toBe(`dbg: warning: pie is position-independent and stays at its link addresses: ${why}\n`);
      expect(r.code).toBe(0);
      await stop(child);
    }
  });

  it('an auxiliary vector that is no qXfer reply: one line naming the packet', async () => {
    const port = await lyingStub('auxv-bad');
    const r = await runDbg(['attach', '--gdb', String(port), '--symbols', pie, '-e', '::regs'], 30_000);
    expect(r.stderr).toBe(`dbg: gdb stub 127.0.0.1:${port}: an auxiliary vector dbg cannot use: the stub answered "zz" (packet qXfer:auxv:read::0,7fc)\n`);
    expect(r.code).toBe(1);
  });

  it('nothing listening: connection refused, in one line', async () => {
    const port = await freePort();
    const r = await runDbg(['attach', '--gdb', String(port), '-e', '::regs']);
    expect(r.stderr).toBe(`dbg: gdb stub 127.0.0.1:${port}: connection refused (is the stub listening there?) (packet connect)\n`);
    expect(r.code).toBe(1);
  });

  it('bad --gdb and --timeout values are refused before connecting', async () => {
    let r = await runDbg(['attach', '--gdb', 'localhost:http', '-e', '::regs']);
    expect(r.stderr).toBe('dbg: --gdb localhost:http: not a port number; expected [HOST:]PORT, e.g. 1234 or 127.0.0.1:1234\n');
    expect(r.code).toBe(1);
    r = await runDbg(['attach', '--gdb', '1234', '--timeout', '0', '-e', '::regs']);
    expect(r.stderr).toBe('dbg: --timeout 0: expected seconds, more than 0 and at most 3600\n');
    expect(r.code).toBe(1);
  });
});
