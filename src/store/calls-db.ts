/**
 * The `calls` table of raw SQL (`::sql`, `dbg query`), materialized the first time a query names
 * it. A reader never writes its trace (schema.ts), so the rows go into a small SQLite file of
 * their own in a private temporary directory, which each connection that runs the query ATTACHes
 * read-only as `derived`: SQLite resolves an unqualified `calls` there, after the trace's own
 * tables. The file is removed when the target that made it closes (and at exit).
 *
 *   calls(call_seq, return_seq, vcpu, depth, kind, vector, caller_pc, caller, callee_pc, callee, instructions)
 *
 * call_seq: the callee's first instruction (an interrupt handler's, for kind 'interrupt');
 * return_seq: the ret/iret that left it, NULL when the history ends inside it; caller_pc: the call
 * instruction (or the interrupted rip); pcs are SQLite's signed 64-bit integers, as in steps()
 * (hex64() prints them); caller/callee: symbol (+offset), NULL without symbols. How calls are
 * found: call-walker.ts.
 */

import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guard } from './schema.js';

export interface CallsDbRow {
  readonly callSeq: number;
  readonly returnSeq: number | null;
  readonly vcpu: number;
  readonly depth: number;
  readonly vector: number | null;
  readonly callerPc: bigint;
  readonly caller: string | null;
  readonly calleePc: bigint;
  readonly callee: string | null;
  readonly instructions: number;
}

/** The schema name the table is attached under. */
export const CALLS_SCHEMA = 'derived';

/** Does `query` name the calls table (so it must be materialized and attached first)? */
export function namesCalls(query: string): boolean {
  return /\bcalls\b/i.test(query);
}

const made = new Set<string>();
let exitHook = false;

/** Write `rows` into a new file; its path (remove it with removeCallsDb). */
export function writeCallsDb(rows: Iterable<CallsDbRow>): string {
  const dir = mkdtempSync(join(tmpdir(), 'dbg-calls-'));
  const path = join(dir, 'calls.db');
  made.add(dir);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const d of made) rmSync(d, { recursive: true, force: true });
    });
  }
  guard(path, () => {
    const db = new Database(path);
    try {
      db.pragma('journal_mode = OFF');
      db.pragma('synchronous = OFF');
      db.exec(
        'CREATE TABLE calls (call_seq INTEGER NOT NULL, return_seq INTEGER, vcpu INTEGER NOT NULL, depth INTEGER NOT NULL, kind TEXT NOT NULL, vector INTEGER, ' +
          'caller_pc INTEGER NOT NULL, caller TEXT, callee_pc INTEGER NOT NULL, callee TEXT, instructions INTEGER NOT NULL)',
      );
      const put = db.prepare('INSERT INTO calls VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
      db.transaction(() => {
        for (const r of rows) {
          put.run(r.callSeq, r.returnSeq, r.vcpu, r.depth, r.vector === null ? 'call' : 'interrupt', r.vector, BigInt.asIntN(64, r.callerPc), r.caller, BigInt.asIntN(64, r.calleePc), r.callee, r.instructions);
        }
      })();
      db.exec('CREATE INDEX calls_by_callee ON calls (callee_pc, call_seq); CREATE INDEX calls_by_seq ON calls (call_seq)');
    } finally {
      db.close();
    }
  });
  return path;
}

export function removeCallsDb(path: string): void {
  const dir = join(path, '..');
  made.delete(dir);
  rmSync(dir, { recursive: true, force: true });
}
