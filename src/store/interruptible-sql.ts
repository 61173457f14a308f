/**
 * A query over a trace that Ctrl-C can stop. better-sqlite3 runs a statement synchronously, so
 * a long query (a join over every memory row, steps() over 10^9 instructions) would hold the
 * thread that watches for SIGINT. The query runs on a worker thread with its own read-only
 * connection; aborting stops waiting at once and terminates the worker (which ends when SQLite
 * next calls into JavaScript, or when the statement finishes).
 */

import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { checkoutRoot } from '../common/checkout-root.js';
import { DbgError, type ErrorCode } from '../common/errors.js';
import { nativeRecorder } from './native-recorder.js';
import { SQL_MAX_ROWS, type SqlResult } from './trace-reader.js';

/**
 * The compiled worker, dist/src/store/sql-worker.js, found from wherever this code runs: the ES
 * module in dist/src/store, the CommonJS bundle in dist/, or the TypeScript source under a test
 * runner (a worker thread cannot load TypeScript).
 */
function workerFile(): string {
  return join(checkoutRoot(), 'dist', 'src', 'store', 'sql-worker.js');
}

/**
 * Run `query` over the trace at `path`; rejects with DbgError('interrupted') when `signal` aborts.
 * `attach`: a derived table's file to attach first (calls-db.ts).
 */
export function interruptibleSql(path: string, query: string, signal?: AbortSignal, maxRows = SQL_MAX_ROWS, attach?: { path: string; schema: string }): Promise<SqlResult> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(interrupted());
    keepRecorderLoaded();
    const worker = new Worker(workerFile(), { workerData: { path, query, maxRows, ...(attach ? { attach } : {}) } });
    const done = (): void => {
      signal?.removeEventListener('abort', onAbort);
      void worker.terminate();
    };
    const onAbort = (): void => {
      done();
      reject(interrupted());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.once('message', (m: { result?: SqlResult; error?: { code: ErrorCode; message: string } }) => {
      done();
      if (m.error) return reject(new DbgError(m.error.code, m.error.message));
      // Buffers cross the thread boundary as plain Uint8Arrays.
      const rows = m.result!.rows.map((row) => row.map((v) => (v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v)));
      resolve({ ...m.result!, rows });
    });
    worker.once('error', (e) => {
      done();
      reject(e);
    });
  });
}

/**
 * The worker makes a lazy trace's pcs and memory rows by re-executing chunks with the native
 * recorder. Loaded on this thread too, it stays loaded when the worker exits: Node unloads an
 * addon that only an exiting worker holds, and a thread-exit destructor registered from it then
 * runs unmapped code (a segfault after the answer was printed). Not built: the worker says so
 * if it needs it.
 */
function keepRecorderLoaded(): void {
  try {
    nativeRecorder();
  } catch {
    // reported by the worker when a query needs it
  }
}

function interrupted(): DbgError {
  return new DbgError('interrupted', 'the query was interrupted (Ctrl-C)');
}
