/**
 * Crash consistency of a recording: `dbg live` killed (SIGKILL, through the DBG_TEST_KILL_AT hook
 * of src/store/test-kill.ts) inside a chunk's commit or inside a WAL checkpoint, or writing to a
 * full filesystem, leaves a trace that `dbg replay` opens to its last commit and replays; any
 * clean exit (end of -e, ::quit, SIGTERM, SIGHUP) leaves one self-contained file, no -wal or -shm.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { turnEventLoop } from '../helpers/event-loop.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dbg = join(root, 'bin', 'dbg');
const kernel = existsSync(join(root, 'dumps', 'kernel.elf')) ? join(root, 'dumps', 'kernel.elf') : join(root, 'dumps', 'kernel.prebuilt.elf');
const dir = mkdtempSync(join(tmpdir(), 'dbg-trace-crash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Five runs to the next timer tick, each followed by a history query (which stores the chunk recorded so far). */
const SCRIPT = 'timer_tick::bp' + '; :c; ::traceinfo; ::now'.repeat(5);

/** Three chunks, then a fourth of ~1 M instructions (2 vCPUs, to the panic): recorded with memory rows, a WAL of ~4 MB whose checkpoint takes long enough to be killed inside. */
const LONG = 'timer_tick::bp' + '; :c; ::traceinfo'.repeat(3) + '; ::delete all; :c; ::traceinfo; ::now';

function live(trace: string, env: Record<string, string> = {}, script = SCRIPT, cpus = 1) {
  return spawnSync(dbg, ['live', '--emulate', kernel, '-m', '32M', '--cpus', String(cpus), '--wait', '-q', '--record', trace, '-e', script], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, ...env },
  });
}

const nows = (stdout: string): number[] => [...stdout.matchAll(/^seq (\d+) of \[0, \d+\]/gm)].map((m) => Number(m[1]));

function replayNow(trace: string): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(dbg, ['replay', trace, '-e', '::now; ::seek 0; ::rstep; ::seek 0t1000; ::regs'], { encoding: 'utf8', timeout: 60_000 });
}

/** The seq after the last instruction of chunk `id` of a trace. */
function chunkEnd(trace: string, id: number): number {
  const db = new Database(trace, { readonly: true });
  try {
    return (db.prepare('SELECT first + count AS end FROM chunk WHERE id = ?').get(id) as { end: number }).end;
  } finally {
    db.close();
  }
}

/** The bytes the SQLite header says the file holds (page count x page size), and its size. */
function header(path: string): { claims: number; bytes: number } {
  const b = Buffer.alloc(100);
  const fd = openSync(path, 'r');
  readSync(fd, b, 0, 100, 0);
  closeSync(fd);
  return { claims: b.readUInt32BE(28) * (b.readUInt16BE(16) === 1 ? 65536 : b.readUInt16BE(16)), bytes: statSync(path).size };
}

const selfContained = (trace: string) => {
  expect(existsSync(trace + '-wal'), `${trace}-wal left`).toBe(false);
  expect(existsSync(trace + '-shm'), `${trace}-shm left`).toBe(false);
  // Bytes 18 and 19 of the header: 1 = rollback journal, 2 = WAL (which needs the -wal beside it).
  const b = Buffer.alloc(20);
  const fd = openSync(trace, 'r');
  readSync(fd, b, 0, 20, 0);
  closeSync(fd);
  expect([b[18], b[19]]).toEqual([1, 1]);
};

let reference: number[] = [];

describe('a trace killed or cut short opens to its last commit', () => {
  it('a clean run: the seqs each chunk ends at, one self-contained file', () => {
    const trace = join(dir, 'clean.trace');
    const r = live(trace);
    expect(r.status, r.stderr).toBe(0);
    reference = nows(r.stdout);
    expect(reference).toHaveLength(5);
    selfContained(trace);
  });

  it('killed inside the commit of chunk 3: opens with chunks 0-2, recovers its WAL, replays', () => {
    const trace = join(dir, 'commit.trace');
    const r = live(trace, { DBG_TEST_KILL_AT: 'commit:3' });
    expect(r.signal).toBe('SIGKILL');
    expect(nows(r.stdout)).toEqual(reference.slice(0, 3));
    expect(existsSync(trace + '-wal')).toBe(true);
    const p = replayNow(trace);
    expect(p.stderr).toBe('');
    expect(p.stdout).toContain(`seq ${reference[2]} of [0, ${reference[2]}] (${reference[2]} instructions recorded; 0 after now)`);
    expect(p.stdout).toMatch(/%[re]ip += 0x/);
    selfContained(trace); // dbg replay folded the WAL into the file
  });

  it('killed inside a WAL checkpoint (the file shorter than its header says): opens with every committed chunk', async () => {
    // With memory rows: a lazy recording's WAL is too small for its checkpoint to be caught
    // inside (it has written the file and truncated the WAL before the watcher looks).
    const clean = live(join(dir, 'long.trace'), { DBG_RECORD_ROWS: 'eager' }, LONG, 2);
    expect(clean.status, clean.stderr).toBe(0);
    // killed after chunk 3 committed: the history ends where the clean run's chunk 3 does
    const end = chunkEnd(join(dir, 'long.trace'), 3);
    expect(end).toBeLessThanOrEqual(nows(clean.stdout).at(-1)!);
    const trace = join(dir, 'checkpoint.trace');
    await turnEventLoop(); // two long dbg runs and three short ones (test/helpers/event-loop.ts)
    const r = live(trace, { DBG_TEST_KILL_AT: 'checkpoint:3', DBG_RECORD_ROWS: 'eager' }, LONG, 2);
    expect(r.signal).toBe('SIGKILL');
    // Killed inside: the checkpoint had written the first page (the new page count) and had not
    // truncated the WAL yet (automatic checkpoints are off under the hook: every page is in it).
    expect(header(trace).claims).toBeGreaterThan(8192);
    expect(statSync(trace + '-wal').size).toBeGreaterThan(0);
    // The same crash before the checkpoint had extended the file: shorter than its header says,
    // every page in the WAL. SQLite reads it; so must dbg.
    const cut = join(dir, 'checkpoint-cut.trace');
    copyFileSync(trace, cut);
    copyFileSync(trace + '-wal', cut + '-wal');
    truncateSync(cut, 8192); // its first page
    await turnEventLoop();
    const c = replayNow(cut);
    expect(c.stderr).toBe('');
    expect(c.stdout).toContain(`seq ${end} of [0, ${end}]`);
    const p = replayNow(trace);
    expect(p.stderr).toBe('');
    expect(p.stdout).toContain(`seq ${end} of [0, ${end}]`);
    selfContained(trace);
    const q = spawnSync(dbg, ['query', trace, 'PRAGMA integrity_check'], { encoding: 'utf8' });
    expect(q.stdout).toMatch(/^integrity_check\nok\n/);
  });
});

describe('a full filesystem', () => {
  it('stops the recording at the last chunk that fit; the guest runs on; the trace opens there', (ctx) => {
    const mnt = join(dir, 'small');
    mkdirSync(mnt);
    // 1 MiB: the first chunks fit (with the trace's tables, 8 KiB pages, each written again to
    // the WAL by each transaction that touches it), the rest of the run does not.
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { encoding: 'utf8' });
    if (m.status !== 0) {
      console.log(`skipped: cannot mount a small tmpfs to fill (${(m.stderr || m.error?.message || '').trim()}); needs root`);
      ctx.skip();
      return;
    }
    try {
      const trace = join(mnt, 'full.trace');
      const r = live(trace, {}, 'timer_tick::bp' + '; :c; ::traceinfo; ::now'.repeat(30));
      expect(r.status, r.stderr).toBe(0);
      const stopped = /dbg: recording stopped at seq (\d+): writing the trace failed \(trace ".*full\.trace": database or disk is full\); it holds the history up to there; the guest runs on unrecorded/.exec(r.stderr);
      expect(stopped, r.stderr).not.toBeNull();
      const at = Number(stopped![1]);
      expect(at).toBeGreaterThan(0);
      // The guest ran on: later ::now lines show the recording's end, not the guest's.
      expect(nows(r.stdout).at(-1)).toBe(at);
      const p = replayNow(trace);
      expect(p.stderr).toBe('');
      expect(p.stdout).toContain(`seq ${at} of [0, ${at}] (${at} instructions recorded; 0 after now)`);
    } finally {
      spawnSync('umount', [mnt]);
    }
  });
});

describe('clean exits leave one self-contained file', () => {
  it.each(['::quit', '::now'])('-e ending with %s', (last) => {
    const trace = join(dir, `exit-${last.slice(2)}.trace`);
    expect(live(trace, {}, `:s; ${last}`).status).toBe(0);
    selfContained(trace);
  });

  it.each(['SIGTERM', 'SIGHUP'] as const)('%s while the REPL waits for input', async (sig) => {
    const trace = join(dir, `${sig}.trace`);
    const child = spawn(dbg, ['live', '--emulate', kernel, '-m', '32M', '-q', '--record', trace], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    // The guest ran to its halt; the REPL reads stdin (kept open).
    for (let i = 0; i < 600 && !/stopped: halted/.test(err); i++) await new Promise((r) => setTimeout(r, 50));
    expect(err).toMatch(/stopped: halted/);
    expect(existsSync(trace + '-wal')).toBe(true); // still recording: WAL mode
    child.kill(sig);
    expect(await exited).toBe(128 + ({ SIGTERM: 15, SIGHUP: 1 } as const)[sig]);
    selfContained(trace);
    expect(replayNow(trace).stdout).toMatch(/^seq \d+ of \[0, \d+\]/);
  });
});
