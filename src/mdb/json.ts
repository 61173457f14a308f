/**
 * The one shape of `--json` output, for every dcmd and `dbg query`:
 *
 *   - one JSON value per line (an object, or an array for a list);
 *   - addresses and other 64-bit values (registers, pcs, physical addresses, SQL's hex64()) are
 *     strings "0x…" in hex: JSON numbers lose precision above 2^53;
 *   - counts, sizes in bytes that are counts, seqs (positions in a recorded history), ids, thread
 *     indices and vCPU numbers are numbers;
 *   - byte contents (old and new bytes of a write, SQL blobs) are hex strings without "0x";
 *   - an error is one object on stdout, {"error": {"code": "...", "message": "..."}}, and the exit
 *     status is what it is without --json (1 for a failing command, 2 for a usage error).
 *
 * SQL results carry SQLite's values: integers are numbers when they fit 2^53, else decimal
 * strings (SQLite integers are signed: select hex64(pc) to have a pc as "0x…").
 */

import type { StopStatus, Target } from '../targets/target.js';
import { hexAddr } from '../common/format.js';

/** A value with bigints as "0x…" strings (a stop reason, an event). */
export function jsonable(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `0x${x.toString(16)}` : x)));
}

/** A seq (or another count held as a bigint) as a JSON number. */
export function jsonCount(n: bigint | number | undefined): number | null {
  return n === undefined ? null : Number(n);
}

/** A stop, the same object from :c, :s, ::rstep, ::rcont and ::seek. */
export function stopJson(t: Target, st: StopStatus): unknown {
  const vcpu = t.kind === 'emulator' || t.kind === 'replay' ? { vcpu: st.thread - 1 } : {};
  return { stop: st.reason.kind, thread: st.thread, ...vcpu, pc: hexAddr(st.pc, t.arch), seq: jsonCount(st.seq), reason: jsonable(st.reason) };
}

/** An SQL value in the shape above. */
export function sqlJson(v: unknown): unknown {
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  return v;
}

/** An error as --json prints it. */
export function errorJson(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}
