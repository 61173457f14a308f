/**
 * A lazy trace's made memory rows kept beside it (`T.rows-H`): what a reader re-executed a chunk
 * to make (chunk-indexer.ts) serves every later reader of the same history, instead of being made
 * again by each session (~20-35 ms a chunk). The file is derived data, never part of the trace:
 * a reader that cannot write it (a read-only folder, a damaged file, one that is not a regular
 * file) keeps its rows in memory as before, and DBG_KEEP_ROWS=0 says not to keep them.
 *
 * H is the trace's meta.history_id: a random id a trace gets when it is made and again whenever
 * its history is cut (::discard: the chunks from the cut on are re-recorded). Rows of one file
 * therefore belong to one history, whose stored chunks never change; files of other ids are old
 * and removed when a reader opens the trace, or with it (`dbg traces --rm`, pruning).
 *
 *   mem, mem_mask, lazy_pcs   as the trace's own (schema.ts), for the chunks made
 *   made(chunk, first, count) the chunks whose rows the file holds, and where they lie
 */

import { randomBytes } from 'node:crypto';
import { lstatSync, readdirSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

/** A new history id (meta.history_id): 32 hex digits. */
export function newHistoryId(): string {
  return randomBytes(16).toString('hex');
}

const ID = /^[0-9a-f]{32}$/;

/** Whether readers keep the rows they make beside the trace (DBG_KEEP_ROWS=0: no). */
export function keepRows(): boolean {
  return process.env.DBG_KEEP_ROWS !== '0';
}

/**
 * The rows file of `trace`'s history `historyId` (undefined when the id is not one dbg made, or
 * when the path is taken by something other than a regular file, which is never opened).
 */
export function rowsFile(trace: string, historyId: unknown): string | undefined {
  if (typeof historyId !== 'string' || !ID.test(historyId)) return undefined;
  const path = `${resolve(trace)}.rows-${historyId}`;
  try {
    if (!lstatSync(path).isFile()) return undefined;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return undefined;
  }
  return path;
}

/** `trace`'s rows files (and their -wal, -shm) beside it: paths and history ids. */
function filesOf(trace: string): { path: string; id: string }[] {
  const dir = dirname(resolve(trace));
  const prefix = `${basename(trace)}.rows-`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((name) => name.startsWith(prefix))
    .map((name) => ({ path: join(dir, name), id: name.slice(prefix.length).replace(/-(wal|shm)$/, '') }))
    .filter((f) => ID.test(f.id));
}

/** Remove `trace`'s rows files, but the one of history `keep`. */
export function removeRowsFiles(trace: string, keep?: string): void {
  for (const f of filesOf(trace)) {
    if (f.id === keep) continue;
    try {
      if (lstatSync(f.path).isFile()) rmSync(f.path, { force: true });
    } catch {
      // gone already, or not ours to remove
    }
  }
}

/** The bytes `trace`'s rows files take (the trace folder's cap counts them with the trace). */
export function rowsFilesBytes(trace: string): number {
  return filesOf(trace).reduce((n, f) => n + (lstatSync(f.path, { throwIfNoEntry: false })?.size ?? 0), 0);
}
