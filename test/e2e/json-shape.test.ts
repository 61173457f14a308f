/**
 * --json has one shape (src/mdb/json.ts): addresses as "0x…" strings, seqs and counts as numbers,
 * errors as {"error": {code, message}} on stdout with the exit status kept; SQL offers hex64().
 */

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/repo.js';

const dbg = join(repoRoot, 'bin', 'dbg');
const kernel = join(repoRoot, 'dumps', 'kernel.elf');
const dir = mkdtempSync(join(tmpdir(), 'dbg-json-'));
const trace = join(dir, 'k.trace');
const raw = join(dir, 'blob.bin');

function run(args: string[]) {
  const r = spawnSync(process.execPath, [dbg, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, DBG_HISTORY: '/dev/null' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, values: !args.includes('--json') ? [] : r.stdout.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>) };
}

beforeAll(() => {
  writeFileSync(raw, Buffer.from('dbg raw file\0'));
  const r = spawnSync(process.execPath, [dbg, 'live', '--emulate', kernel, '--wait', '-q', '--record', trace, '-e', 'kmain::bp; :c'], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`recording the test trace failed: ${r.stderr}`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HEX = /^0x[0-9a-f]+$/;

describe('--json', () => {
  it('history dcmds: seqs are numbers, addresses hex strings, the same stop object everywhere', () => {
    const r = run(['replay', trace, '--json', '-e', '::now; ::rstep; ::traceinfo; mb_entry::when; ::seek 0t100; tasks,8::whowrote']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [now, step, timeline, when, seek, who] = r.values;
    const end = timeline!.instructions as number;
    expect(now).toEqual({ now: end, first: 0, last: end, after: 0 });
    expect(step).toEqual({ stop: 'step', thread: 1, vcpu: 0, pc: expect.stringMatching(HEX), seq: end - 1, reason: { kind: 'step' } });
    expect(typeof timeline!.writes).toBe('number');
    expect(timeline!.now).toBe(end - 1);
    expect(when).toEqual({ pc: '0x100020', seqs: [0], more: false });
    expect(seek).toMatchObject({ stop: expect.any(String), seq: 100, pc: expect.stringMatching(HEX) });
    expect(who === null || typeof who.seq === 'number').toBe(true);
  });

  it('dbg query --json: integers as numbers, hex64() gives a pc as dbg prints it', () => {
    const r = run(['query', '--json', trace, 'SELECT seq, vcpu, pc, hex64(pc) AS hpc FROM steps(0, 2)']);
    expect(r.code).toBe(0);
    expect(r.values).toHaveLength(2);
    for (const row of r.values) {
      expect(typeof row.seq).toBe('number');
      expect(typeof row.pc).toBe('number');
      expect(row.hpc).toMatch(HEX);
      expect(BigInt.asUintN(64, BigInt(row.pc as number))).toBe(BigInt(row.hpc as string));
    }
    const hi = run(['query', trace, "SELECT hex64(pc) AS pc FROM steps(3000, 100000) WHERE pc < 0 LIMIT 1"]);
    expect(hi.stdout).toMatch(/^pc\n0xffffffff801[0-9a-f]{5}\n$/);
  });

  it('errors: one object on stdout, nothing on stderr, the exit status kept', () => {
    const bad = run(['replay', trace, '--json', '-e', '::now; ::nosuch']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('');
    expect(bad.values[1]).toEqual({ error: { code: 'bad-input', message: "unknown dcmd 'nosuch' (::help lists the dcmds)" } });
    const missing = run(['open', join(dir, 'nope'), '--json']);
    expect(missing.code).toBe(1);
    expect(missing.values).toEqual([{ error: { code: 'not-found', message: `cannot open "${join(dir, 'nope')}": no such file` } }]);
    const sql = run(['query', '--json', trace, 'SELECT nonsense']);
    expect(sql.code).toBe(1);
    expect(sql.values).toEqual([{ error: { code: 'bad-input', message: 'bad SQL: no such column: nonsense' } }]);
    const usage = run(['live', '--emulate', kernel, '--cpus', '0', '--json']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toBe('');
    expect(usage.values).toEqual([{ error: { code: 'usage', message: '--cpus 0: expected an integer greater than or equal to 1 (see dbg live --help)' } }]);
    const unmapped = run(['open', raw, '--json', '-e', '0/X; 100/X']);
    expect(unmapped.code).toBe(1);
    expect(unmapped.values[1]).toMatchObject({ error: { code: 'unmapped' } });
  });
});
