/**
 * A test hook for crash consistency: DBG_TEST_KILL_AT makes the trace writer kill its own
 * process (SIGKILL, as `kill -9` would) at a chosen point, so tests can check that a trace opens
 * to its last commit whatever moment the process dies at.
 *
 *   commit:N       inside chunk N's transaction, after its rows are written, before COMMIT
 *   checkpoint:N   inside the WAL checkpoint run after chunk N commits (automatic checkpoints
 *                  are off under this hook, so the WAL holds the whole recording): once the
 *                  checkpoint has written the file's first page, before it has truncated the
 *                  WAL (at the latest), or before it has written the rest
 *
 * Unset (always, outside tests) it costs one lookup when a trace is created.
 */

import Database from 'better-sqlite3';
import { Worker } from 'node:worker_threads';

export interface KillPoint {
  readonly at: 'commit' | 'checkpoint';
  readonly chunk: number;
}

export function testKillPoint(): KillPoint | undefined {
  const m = /^(commit|checkpoint):(\d+)$/.exec(process.env.DBG_TEST_KILL_AT ?? '');
  return m ? { at: m[1] as KillPoint['at'], chunk: Number(m[2]) } : undefined;
}

export function killNow(): never {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable: SIGKILL sent');
}

/**
 * Run `checkpoint` (a synchronous WAL checkpoint of the trace at `path`) and die inside it: a
 * worker thread watches the file's page count (header offset 28), which the checkpoint's first
 * page write changes, and kills the process then. A checkpoint that never changes it dies
 * when it returns (`checkpoint` must be a TRUNCATE checkpoint: see the reader below).
 */
export function checkpointAndDie(path: string, checkpoint: () => void): never {
  const ready = new Int32Array(new SharedArrayBuffer(4));
  const watcher = `
    const { workerData } = require('node:worker_threads');
    const { openSync, readSync } = require('node:fs');
    const fd = openSync(workerData.path, 'r');
    const b = Buffer.alloc(4);
    readSync(fd, b, 0, 4, 28);
    const before = b.readUInt32BE(0);
    Atomics.store(workerData.ready, 0, 1);
    Atomics.notify(workerData.ready, 0);
    for (;;) {
      readSync(fd, b, 0, 4, 28);
      if (b.readUInt32BE(0) !== before) process.kill(process.pid, 'SIGKILL');
    }`;
  new Worker(watcher, { eval: true, workerData: { path, ready } });
  Atomics.wait(ready, 0, 0, 10_000);
  // A reader of the newest snapshot, left open: a TRUNCATE checkpoint writes every page into the
  // file and then waits (its busy handler, seconds) for readers to leave the WAL before it
  // truncates it, so the watcher sees the first page change even when the machine is too busy
  // to schedule it while the pages are written (a checkpoint of a few MB takes milliseconds).
  const reader = new Database(path, { readonly: true, fileMustExist: true });
  reader.exec('BEGIN');
  reader.prepare('SELECT count(*) FROM chunk').get();
  checkpoint();
  return killNow();
}
