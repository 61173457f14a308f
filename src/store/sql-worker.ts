/**
 * Runs one read-only query over a trace on a worker thread (see interruptible-sql.ts): the
 * caller's thread stays free to see Ctrl-C and to stop waiting.
 *
 * workerData: { path, query, maxRows, attach? } (attach: a derived table's file, calls-db.ts). Posts { result } or { error: { code, message } }.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { isDbgError } from '../common/errors.js';
import { TraceReader } from './trace-reader.js';
// a lazy trace's pcs and memory rows (steps(), writes(), mem...) are made by re-executing its chunks
import '../targets/replay/chunk-indexer.js';

const { path, query, maxRows, attach } = workerData as { path: string; query: string; maxRows: number; attach?: { path: string; schema: string } };
// The answer is posted after the reader is closed: the caller terminates this thread when it has
// the answer, and a termination that lands inside the close (an engine of the reader's chunk
// indexer freed through koffi, the rows file's WAL folded in) aborted the process.
let answer: unknown;
try {
  const reader = TraceReader.open(path);
  try {
    if (attach) reader.attachDerived(attach.path, attach.schema);
    answer = { result: reader.sql(query, maxRows) };
  } finally {
    reader.close();
  }
} catch (e) {
  answer = { error: isDbgError(e) ? { code: e.code, message: e.message } : { code: 'internal', message: (e as Error).stack ?? String(e) } };
}
parentPort!.postMessage(answer);
