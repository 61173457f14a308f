/**
 * Trace hygiene: `dbg traces` lists the trace folder (size, instructions, guest, date, how the run
 * ended) and removes traces; the folder keeps to its cap (--trace-cap, DBG_TRACE_CAP), oldest
 * first, never a trace in use; a lock keeps two dbg processes from recording into one trace; a
 * recording on a terminal shows one status line, none with -q or without a terminal.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { turnEventLoop } from '../helpers/event-loop.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dbg = join(root, 'bin', 'dbg');
const kernel = existsSync(join(root, 'dumps', 'kernel.elf')) ? join(root, 'dumps', 'kernel.elf') : join(root, 'dumps', 'kernel.prebuilt.elf');
const home = mkdtempSync(join(tmpdir(), 'dbg-traces-'));
const folder = join(home, 'dbg');
const env = { ...process.env, XDG_CACHE_HOME: home, DBG_TRACE_CAP: '' };
afterAll(() => rmSync(home, { recursive: true, force: true }));

function run(args: string[], extra: Record<string, string> = {}) {
  return spawnSync(dbg, args, { encoding: 'utf8', timeout: 60_000, env: { ...env, ...extra } });
}

const live = (...e: string[]) => ['live', '--emulate', kernel, '-m', '32M', '--wait', '-q', ...e.flatMap((x) => ['-e', x])];

describe('the trace folder', () => {
  beforeAll(() => {
    // A run that ends well and one that fails (an unknown dcmd in -e: exit status 1).
    expect(run(live('::now')).status).toBe(0);
    expect(run(live('::bogus')).status).toBe(1);
  });

  it('dbg traces lists each trace with its size, instructions, guest, date and outcome', () => {
    const r = run(['traces']);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^trace +size +instructions +guest +recorded +outcome$/);
    expect(lines[1]).toMatch(/^kernel\.elf-\d{8}-\d{6}-\d+\.trace +[\d.]+ [KM]iB +0 +kernel\.elf +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +ok$/);
    expect(lines[2]).toMatch(/ +kernel\.elf +\S+ +failed \(exit status 1\)$/);
    expect(lines[3]).toMatch(new RegExp(`^2 trace\\(s\\), [\\d.]+ [KM]iB in ${folder}$`));
    const json = run(['traces', '--json']).stdout.trim().split('\n').map((l) => JSON.parse(l) as { outcome: string; instructions: number; guest: string });
    expect(json.map((t) => [t.outcome, t.instructions, t.guest])).toEqual([
      ['ok', 0, 'kernel.elf'],
      ['failed (exit status 1)', 0, 'kernel.elf'],
    ]);
  });

  it('a trace being recorded is locked: a second recording into it, pruning and --rm leave it alone; a stale lock is taken over', () => {
    const busy = join(folder, 'busy.trace');
    writeFileSync(busy, '');
    writeFileSync(busy + '.lock', `${process.pid}\n`); // this test's process: alive
    utimesSync(busy, new Date(2000, 0, 1), new Date(2000, 0, 1)); // the oldest
    let r = run([...live('::now'), '--record', busy]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe(`dbg: trace "${busy}" is being recorded by dbg process ${process.pid}: choose another file`);
    r = run(['traces', '--rm', 'busy.trace']);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe(`dbg: trace "${busy}" is being recorded by dbg process ${process.pid}: not removed`);
    expect(run(['traces']).stdout).toMatch(/busy\.trace +.*recording \(pid \d+\)/);
    r = run(['traces', '--prune', '--cap', '0']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^removed 2 trace\(s\), /);
    expect(existsSync(busy)).toBe(true);
    // The process is gone (a pid no process has): the lock is stale.
    writeFileSync(busy + '.lock', '999999999\n');
    rmSync(busy);
    r = run([...live('::now'), '--record', busy]);
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(busy + '.lock')).toBe(false);
    r = run(['traces', '--rm', 'busy.trace']);
    expect(r.stdout.trim()).toBe(`removed ${busy}`);
    expect(existsSync(busy)).toBe(false);
  });

  it('dbg live keeps the folder under its cap, oldest first, and says what it removed', () => {
    mkdirSync(folder, { recursive: true });
    for (const [i, name] of ['old1.trace', 'old2.trace', 'new.trace'].entries()) {
      writeFileSync(join(folder, name), Buffer.alloc(300_000));
      utimesSync(join(folder, name), new Date(2001, 0, 1 + i), new Date(2001, 0, 1 + i));
    }
    const r = run(live('::now'), { DBG_TRACE_CAP: '400K' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`^dbg: removed 2 old trace\\(s\\) \\(586 KiB\\) to keep ${folder} under 400 KiB \\(--trace-cap, DBG_TRACE_CAP\\)$`, 'm'));
    expect(existsSync(join(folder, 'old1.trace'))).toBe(false);
    expect(existsSync(join(folder, 'old2.trace'))).toBe(false);
    expect(existsSync(join(folder, 'new.trace'))).toBe(true);
    expect(run(['traces']).stdout).toMatch(/new\.trace +293 KiB +\? +\? +2001-01-03T\S+ +unreadable: /);
  });

  it('bad input: one dbg: line each', async () => {
    const cases: [string[], Record<string, string>, string][] = [
      [[...live('::now'), '--trace-cap', 'lots'], {}, 'dbg: --trace-cap "lots": expected a size such as 500M or 4G'],
      [live('::now'), { DBG_TRACE_CAP: '-1' }, 'dbg: DBG_TRACE_CAP "-1": expected a size such as 500M or 4G'],
      [['traces', '--rm', 'nosuch.trace'], {}, `dbg: no trace "nosuch.trace" in ${folder} (dbg traces lists them)`],
      [['traces', '--dir', join(home, 'nowhere')], {}, `dbg: trace folder ${join(home, 'nowhere')}: does not exist`],
      [['traces', '--cap', '1G'], {}, 'dbg: --cap goes with --prune (dbg live takes --trace-cap)'],
      [['traces', '--prune', '--cap', '1X'], {}, 'dbg: --trace-cap "1X": expected a size such as 500M or 4G'],
    ];
    for (const [args, extra, msg] of cases) {
      await turnEventLoop(); // a dbg process each (test/helpers/event-loop.ts)
      const r = run(args, extra);
      expect(r.status, args.join(' ')).not.toBe(0);
      expect(r.stderr.trim(), args.join(' ')).toBe(msg);
    }
  });
});

describe('the recording status line', () => {
  // 60 timer ticks: more than one 2^20-instruction chunk, so the recorder reports progress.
  const script = ['timer_tick::bp', ...Array<string>(60).fill(':c'), '::now'].join('; ');
  let n = 0;
  const args = (quiet: boolean) => ['live', '--emulate', kernel, '-m', '32M', '--cmdline', 'nobug', '--wait', ...(quiet ? ['-q'] : []), '--record', join(home, `s${n++}.trace`), '-e', script];
  /** Under a pseudo-terminal (util-linux script). */
  const onTty = (a: string[]) => spawnSync('script', ['-qec', [dbg, ...a].map((x) => `'${x}'`).join(' '), '/dev/null'], { encoding: 'utf8', timeout: 120_000, env });

  it('on a terminal: instructions, size and rate on one line redrawn in place', () => {
    const r = onTty(args(false));
    expect(r.status, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/\r\x1b\[Kdbg: recording: \d+\.\d M instructions, [\d.]+ [KM]iB, \d+\.\d M insn\/s/);
    // Erased before anything else is written: never left behind a line of output.
    expect(r.stdout).not.toMatch(/M insn\/s[^\r]/);
  });

  it('none with -q, none without a terminal', () => {
    expect(onTty(args(true)).stdout).not.toContain('dbg: recording:');
    const r = spawnSync(dbg, args(false), { encoding: 'utf8', timeout: 120_000, env });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('dbg: recording:');
  });
});
