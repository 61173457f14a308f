/**
 * `dbg traces --verify TRACE`: the trace re-executed from its start (its initial RAM, the register
 * state at each slice start, its inputs) and recorded again gives back the recorded history (pc
 * streams, memory rows, inputs, checkpoints' registers); a trace whose rows were changed after the
 * fact is caught, with the first difference named in one `dbg: trace "…"` line.
 *
 * The recordings (one with memory rows, one lazily: page images) are made by `dbg live` on two
 * vCPUs, from the fast engines, with what a session puts into a history besides instructions:
 * timer interrupts, a second CPU's start-up, breakpoint stops, a register and a memory write by
 * the debugger, reverse steps and a discarded future.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmulatorRecorder } from '../../src/store/emulator-recorder.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dbg = join(root, 'bin', 'dbg');
const kernel = existsSync(join(root, 'dumps', 'kernel.elf')) ? join(root, 'dumps', 'kernel.elf') : join(root, 'dumps', 'kernel.prebuilt.elf');
const dir = mkdtempSync(join(tmpdir(), 'dbg-verify-test-'));
// recorded with memory rows (the damage below changes one), and as dbg records by default (lazily)
const trace = join(dir, 'k.trace');
const lazyTrace = join(dir, 'lazy.trace');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (args: string[]) => spawnSync(dbg, args, { encoding: 'utf8', timeout: 120_000, env: { ...process.env, XDG_CACHE_HOME: dir } });

/** A copy of the trace with `sql` run on it. */
function damaged(name: string, sql: string): string {
  const path = join(dir, name);
  copyFileSync(trace, path);
  const db = new Database(path);
  try {
    db.exec(sql);
  } finally {
    db.close();
  }
  return path;
}

describe('dbg traces --verify', () => {
  beforeAll(() => {
    const session = ['timer_tick::bp', ':c', ':c', '0x99::setreg r12', ':c', '::rstep', '::rstep', '::delete all', 'log_append::bp', ':c', 'jiffies/Z 0t7', ':c', '::seek -0t500', '::discard -f', ':c', '::delete all'];
    for (const [path, rows] of [[trace, 'eager'], [lazyTrace, 'lazy']]) {
      const r = spawnSync(dbg, ['live', '--emulate', kernel, '--cmdline', 'nobug', '--cpus', '2', '-m', '32M', '-q', '--record', path!, ...session.flatMap((c) => ['-e', c])], {
        encoding: 'utf8',
        timeout: 120_000,
        env: { ...process.env, DBG_RECORD_ROWS: rows },
      });
      expect(r.status, r.stderr).toBe(0);
    }
  });

  it('re-executes a live recording to the recorded history', () => {
    const r = run(['traces', '--verify', trace]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^.*k\.trace: \d+ instructions in \d+ chunk\(s\) re-execute to the recorded history \(\d+\.\d\d s\)\n$/);
    const j = run(['traces', '--verify', trace, '--json']);
    expect(JSON.parse(j.stdout)).toMatchObject({ path: trace, verified: true });
  });

  it('re-executes a lazy recording to the recorded history, and says its memory and pcs were not compared', () => {
    const r = run(['traces', '--verify', lazyTrace]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^.*lazy\.trace: \d+ instructions in \d+ chunk\(s\) re-execute to the recorded history, memory and pcs \(a lazy trace: page images, no memory rows or pc stream\) not compared \(\d+\.\d\d s\)\n$/);
    const j = run(['traces', '--verify', lazyTrace, '--json']);
    expect(JSON.parse(j.stdout)).toMatchObject({ path: lazyTrace, verified: true });
  });

  it('names the first memory row that does not come back', () => {
    // one byte of a record of the first row with records (past its 128 bytes of images)
    const path = damaged('row.trace', `UPDATE mem SET data = substr(data, 1, 140) || x'5a' || substr(data, 142) WHERE (chunk, line, part) = (SELECT chunk, line, part FROM mem WHERE length(data) > 160 ORDER BY chunk, line LIMIT 1)`);
    const r = run(['traces', '--verify', path]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^dbg: trace ".*row\.trace": re-executed, it differs from the recording: memory row chunk \d+, line 0x[0-9a-f]+ \(physical 0x[0-9a-f]+\) part \d+: recorded, not made again by re-execution\n$/);
  });

  it('catches a port read that the history did not come from', () => {
    // the serial line status the kernel polls before each byte it prints: "not ready" makes it
    // poll again, so the re-execution runs other instructions than the recording
    const path = damaged('port.trace', `UPDATE input SET detail = json_set(detail, '$.value', 0) WHERE id = (SELECT id FROM input WHERE kind = 'port-in' ORDER BY id LIMIT 1 OFFSET 10)`);
    const r = run(['traces', '--verify', path]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^dbg: trace ".*port\.trace": .+\n$/);
  });

  it('catches a slice that started from registers the history did not have', () => {
    // a slice start of chunk 1 given the registers of the slice start before it
    const path = damaged(
      'ckpt.trace',
      `UPDATE ckpt SET data = (SELECT c.data FROM ckpt c WHERE c.chunk = ckpt.chunk AND c.vcpu = ckpt.vcpu AND c.flags = 0 AND c.id < ckpt.id ORDER BY c.id DESC LIMIT 1)
       WHERE id = (SELECT id FROM ckpt WHERE chunk = 1 AND flags = 0 ORDER BY id LIMIT 1 OFFSET 4)`,
    );
    const r = run(['traces', '--verify', path]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^dbg: trace ".*ckpt\.trace": .+\n$/);
  });

  it('stops on Ctrl-C and leaves no scratch trace behind', async () => {
    const long = join(dir, 'long.trace');
    const t = EmulatorTarget.open(kernel, { ramBytes: 32 << 20, cmdline: 'nobug' });
    try {
      t.record(new EmulatorRecorder(long, { guest: 'kernel.elf' }));
      for (let i = 0; i < 4; i++) expect((await t.machine.run({ vcpu: 0, count: 10_000_000 })).reason.kind).toBe('step');
    } finally {
      t.close();
    }
    const scratch = mkdtempSync(join(dir, 'tmp-'));
    const child = spawn(dbg, ['traces', '--verify', long], { env: { ...process.env, TMPDIR: scratch }, stdio: ['ignore', 'pipe', 'pipe'] });
    const ended = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // once the re-recording is under way (its scratch trace exists)
    for (let i = 0; i < 600 && readdirSync(scratch).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(readdirSync(scratch)).toHaveLength(1);
    child.kill('SIGINT');
    expect(await ended).toBe(130);
    expect(readdirSync(scratch)).toEqual([]);
  }, 120_000);

  it('refuses what is not a trace, in one line', () => {
    expect(run(['traces', '--verify', dir]).stderr).toBe(`dbg: trace "${dir}" is a directory, not a trace file\n`);
    const missing = run(['traces', '--verify', join(dir, 'nope.trace')]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe(`dbg: trace "${join(dir, 'nope.trace')}" does not exist\n`);
  });
});
