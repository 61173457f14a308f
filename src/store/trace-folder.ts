/**
 * The trace folder ($XDG_CACHE_HOME/dbg, else ~/.cache/dbg): where `dbg live` records when no
 * --record FILE is given, and what `dbg traces` lists, prunes and removes.
 *
 *   - A recording holds a lock beside its trace (`T.lock`, the recording process's pid, created
 *     exclusively): a second dbg refuses to record into a trace being recorded, and pruning and
 *     `dbg traces --rm` never touch a trace in use. A lock whose process is gone is stale and is
 *     taken over.
 *   - The folder has a size cap (default 4 GiB; `--trace-cap SIZE` or DBG_TRACE_CAP): before a
 *     new recording starts, the oldest traces (by modification time) not in use are removed
 *     until the folder fits. A single recording is bounded on its own by DBG_RECORD_MAX.
 *   - Each trace says how its run ended in meta.outcome: "ok", "failed (...)", or nothing when
 *     the process died while recording ("unfinished" in the listing).
 */

import Database from 'better-sqlite3';
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { DbgError, errors } from '../common/errors.js';
import { removeRowsFiles, rowsFilesBytes } from './rows-file.js';

export const DEFAULT_TRACE_CAP = 4 * 2 ** 30;

/** The folder, created when missing. */
export function traceFolder(): string {
  const dir = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'dbg');
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new DbgError('io', `cannot create the trace folder ${dir}: ${(e as Error).message} (pass --record FILE or --no-record)`);
  }
  return dir;
}

/** "500M", "4G", "1048576" (bytes), "0" (no old trace kept): bytes. `what` names the flag or variable. */
export function parseTraceSize(s: string, what: string): number {
  const m = /^(\d+)([KMGT]?)i?B?$/i.exec(s.trim());
  const n = m ? Number(m[1]) * { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'] : NaN;
  if (!Number.isSafeInteger(n)) throw errors.badInput(`${what} "${s}": expected a size such as 500M or 4G`);
  return n;
}

/** The cap: the flag's value, else DBG_TRACE_CAP, else the default. */
export function traceCap(flag?: string): number {
  if (flag !== undefined) return parseTraceSize(flag, '--trace-cap');
  const env = process.env.DBG_TRACE_CAP;
  return env !== undefined && env !== '' ? parseTraceSize(env, 'DBG_TRACE_CAP') : DEFAULT_TRACE_CAP;
}

// --- locks ------------------------------------------------------------------------------------

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid of the live process recording `trace`, or undefined. */
export function recordingPid(trace: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(trace + '.lock', 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 0 && alive(pid) ? pid : undefined;
}

/**
 * Take the recording lock of `trace`; returns its release. Refuses (DbgError 'state') when another
 * live process holds it; a stale lock (its process is gone) is taken over.
 */
export function lockTrace(trace: string): () => void {
  const lock = resolve(trace) + '.lock';
  for (let attempt = 0; ; attempt++) {
    let fd: number;
    try {
      fd = openSync(lock, 'wx');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw errors.notFound(`trace "${trace}": no such directory "${dirname(trace)}"`);
      if (code !== 'EEXIST') throw new DbgError('io', `trace "${trace}": cannot take its lock: ${(e as Error).message}`);
      const pid = recordingPid(trace);
      if (pid !== undefined) throw errors.state(`trace "${trace}" is being recorded by dbg process ${pid}: choose another file`);
      if (attempt > 0) throw errors.state(`trace "${trace}": its lock ${lock} cannot be taken over`);
      rmSync(lock, { force: true }); // stale
      continue;
    }
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    return () => {
      try {
        if (readFileSync(lock, 'utf8').trim() === String(process.pid)) rmSync(lock, { force: true });
      } catch {
        // gone already
      }
    };
  }
}

// --- listing, pruning, removing ------------------------------------------------------------------

export interface TraceEntry {
  readonly path: string;
  readonly name: string;
  /** The file and its WAL. */
  readonly bytes: number;
  readonly modified: Date;
  /** The pid recording it now. */
  readonly recordingBy?: number;
  readonly instructions?: number;
  readonly guest?: string;
  readonly created?: string;
  /** meta.outcome ("ok", "failed (...)"); "unfinished" when the run died recording; "unreadable: ..." */
  readonly outcome: string;
}

function fileBytes(p: string): number {
  return ['', '-wal'].reduce((n, s) => n + (statSync(p + s, { throwIfNoEntry: false })?.size ?? 0), 0) + rowsFilesBytes(p);
}

/** What a trace says about itself, read without recovering or changing it. */
function describeTrace(path: string): Pick<TraceEntry, 'instructions' | 'guest' | 'created' | 'outcome'> {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true, timeout: 100 });
    const meta = new Map((db.prepare('SELECT key, value FROM meta').all() as { key: string; value: unknown }[]).map((r) => [r.key, r.value]));
    if (meta.get('format') !== 'dbg-trace') return { outcome: 'unreadable: not a dbg trace' };
    const n = (db.prepare('SELECT coalesce(sum(count), 0) AS n FROM chunk').get() as { n: number }).n;
    const text = (k: string) => (typeof meta.get(k) === 'string' ? (meta.get(k) as string) : undefined);
    return { instructions: n, guest: text('guest'), created: text('created'), outcome: text('outcome') ?? 'unfinished' };
  } catch (e) {
    return { outcome: `unreadable: ${((e as Error).message ?? String(e)).replace(/\s+/g, ' ')}` };
  } finally {
    db?.close();
  }
}

/** The traces of `dir` (files named *.trace), oldest first. */
export function listTraces(dir: string): TraceEntry[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw errors.notFound(`trace folder ${dir}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (e as Error).message}`);
  }
  const out: TraceEntry[] = [];
  for (const name of names) {
    if (!name.endsWith('.trace')) continue;
    const path = join(dir, name);
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st?.isFile()) continue;
    const pid = recordingPid(path);
    out.push({ path, name, bytes: fileBytes(path), modified: st.mtime, ...(pid !== undefined ? { recordingBy: pid } : {}), ...describeTrace(path) });
  }
  return out.sort((a, b) => a.modified.getTime() - b.modified.getTime() || a.name.localeCompare(b.name));
}

/** Delete a trace and its WAL, shared memory, stale lock and kept rows (rows-file.ts); refuses a trace being recorded. */
export function removeTrace(path: string): void {
  const pid = recordingPid(path);
  if (pid !== undefined) throw errors.state(`trace "${path}" is being recorded by dbg process ${pid}: not removed`);
  for (const s of ['', '-wal', '-shm', '.lock']) rmSync(path + s, { force: true });
  removeRowsFiles(path);
}

/**
 * Remove the oldest traces of `dir` not in use (and not `keep`) until the folder holds at most
 * `cap` bytes. Returns the traces removed.
 */
export function pruneTraces(dir: string, cap: number, keep?: string): TraceEntry[] {
  const all = listTraces(dir);
  let total = all.reduce((n, t) => n + t.bytes, 0);
  const removed: TraceEntry[] = [];
  for (const t of all) {
    if (total <= cap) break;
    if (t.recordingBy !== undefined || (keep && resolve(keep) === resolve(t.path))) continue;
    removeTrace(t.path);
    total -= t.bytes;
    removed.push(t);
  }
  return removed;
}

/** "1.5 GiB", "312 MiB", "4.0 KiB", "12 B". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${n >= 100 ? n.toFixed(0) : n.toFixed(1)} ${units[u]}`;
}
