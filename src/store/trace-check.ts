/**
 * A trace is untrusted input (a file from another machine, a damaged disk, a hand edit): what a
 * reader takes from it is checked here before it is used, so that every damage ends in one
 * DbgError('corrupt') that says which trace, which value and what was expected:
 *
 *   trace "t.trace": meta.vcpus = 100000: expected an integer from 1 to 16
 *
 * - the path must name a regular file (a directory, FIFO or device is refused before any open);
 * - meta values are range-checked before anything is sized from them (RAM, engines);
 * - every value read from a row is checked for its SQL type (a BLOB where a blob is expected, an
 *   integer in range where a number is) by the accessors below.
 */

import type Database from 'better-sqlite3';
import { constants as bufferConstants } from 'node:buffer';
import { statSync, type Stats } from 'node:fs';
import { totalmem } from 'node:os';
import { DbgError, errors } from '../common/errors.js';

/** The corruption error of a trace: `trace "PATH": WHAT`. */
export function traceCorrupt(path: string, what: string): DbgError {
  return new DbgError('corrupt', `trace "${path}": ${what}`);
}

/** What kind of file `st` is, for messages ("a directory", "a FIFO"...). */
export function fileKind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Refuses a trace path that does not exist or is not a regular file (never opened: a FIFO would block). */
export function checkTracePath(path: string): void {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw errors.notFound(`trace "${path}" does not exist`);
    throw new DbgError('io', `trace "${path}": ${(e as Error).message}`);
  }
  if (!st.isFile()) throw new DbgError('bad-input', `trace "${path}" is ${fileKind(st)}, not a trace file`);
}

/** The most vCPUs a recording holds (native/recorder's MAX_ENG). */
export const MAX_TRACE_VCPUS = 16;
/** Guest-physical addresses are below 2^52 on x86-64. */
const PHYS_LIMIT = 2 ** 52;

/** The meta values a reader sizes things from, checked. */
export interface TraceMeta {
  readonly ramBase: bigint;
  /** Bytes; 0 when the trace does not say (a trace of no machine). */
  readonly ramSize: number;
  readonly vcpus: number;
  readonly cpuModel: number | undefined;
  readonly firstSeq: number;
  readonly checkpointEvery: number | undefined;
  /** The symbol file the recorder named ('' when none). */
  readonly symbols: string;
  /** The Unicorn build that made the checkpoints and its uc_context size (undefined in older traces). */
  readonly contextSize: number | undefined;
  readonly unicorn: string | undefined;
}

const hex = (n: number | bigint) => `0x${n.toString(16)}`;
const gib = (n: number) => `${(n / 2 ** 30).toFixed(n % 2 ** 30 ? 1 : 0)} GiB`;

/** meta.KEY as an integer in [min, max] (numbers, or strings of decimal or 0x-hex digits). */
function metaInt(path: string, meta: ReadonlyMap<string, unknown>, key: string, min: number, max: number, expected: string): number | undefined {
  const v = meta.get(key);
  if (v === undefined || v === null) return undefined;
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'bigint') n = Number(v);
  else if (typeof v === 'string' && /^(0x[0-9a-f]+|\d+)$/i.test(v.trim())) n = Number(v.trim());
  else n = NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw traceCorrupt(path, `meta.${key} = ${show(v)}: expected ${expected}`);
  return n;
}

/** A value as the message shows it: strings quoted and cut, blobs by size. */
export function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (Buffer.isBuffer(v)) return `a blob of ${v.length} bytes`;
  if (v === null) return 'NULL';
  return String(v);
}

/**
 * The checked meta. RAM must fit this machine (it is allocated whole) and below 2^52; vCPUs are
 * 1-16 (the recorder's limit).
 */
export function checkMeta(path: string, meta: ReadonlyMap<string, unknown>): TraceMeta {
  const ramSize = metaInt(path, meta, 'ram_size', 4096, PHYS_LIMIT, 'a positive multiple of 4096') ?? 0;
  if (ramSize % 4096 !== 0) throw traceCorrupt(path, `meta.ram_size = ${show(meta.get('ram_size'))}: expected a positive multiple of 4096`);
  // Replay holds the guest's RAM in one buffer, as the live machine did.
  const mem = Math.min(totalmem(), bufferConstants.MAX_LENGTH);
  if (ramSize > mem) {
    const what = mem < totalmem() ? `the largest buffer Node makes (${gib(mem)})` : `this machine's memory (${gib(mem)})`;
    throw traceCorrupt(path, `meta.ram_size = ${ramSize} (${gib(ramSize)}) is more than ${what}: the value is damaged, or the trace needs a larger machine`);
  }
  const ramBase = metaInt(path, meta, 'ram_base', 0, PHYS_LIMIT - ramSize, `a 4 KiB-aligned physical address with the RAM below ${hex(PHYS_LIMIT)}`) ?? 0;
  if (ramBase % 4096 !== 0) throw traceCorrupt(path, `meta.ram_base = ${show(meta.get('ram_base'))}: expected a 4 KiB-aligned physical address`);
  const vcpus = metaInt(path, meta, 'vcpus', 1, MAX_TRACE_VCPUS, `an integer from 1 to ${MAX_TRACE_VCPUS}`) ?? 1;
  const cpuModel = metaInt(path, meta, 'cpu_model', 0, 255, 'a Unicorn x86 CPU model number (0-255)');
  const firstSeq = metaInt(path, meta, 'first_seq', 0, Number.MAX_SAFE_INTEGER, 'a seq (a non-negative integer)') ?? 0;
  const checkpointEvery = metaInt(path, meta, 'checkpoint_every', 0, 2 ** 32 - 1, 'an instruction count (0-2^32-1)');
  const contextSize = metaInt(path, meta, 'context_size', 1, 1 << 20, 'a uc_context size in bytes (1-1048576)');
  const unicorn = meta.get('unicorn_version');
  if (unicorn !== undefined && (typeof unicorn !== 'string' || !/^\d+\.\d+\.\d+$/.test(unicorn))) {
    throw traceCorrupt(path, `meta.unicorn_version = ${show(unicorn)}: expected a version such as "2.0.1"`);
  }
  const sym = meta.get('symbols') ?? '';
  if (typeof sym !== 'string') throw traceCorrupt(path, `meta.symbols = ${show(sym)}: expected a file name (text)`);
  return { ramBase: BigInt(ramBase), ramSize, vcpus, cpuModel, firstSeq, checkpointEvery, symbols: sym, contextSize, unicorn };
}

/** A BLOB column's value (of `len` bytes when given). */
export function blobOf(path: string, v: unknown, what: string, len?: number): Buffer {
  if (!Buffer.isBuffer(v)) throw traceCorrupt(path, `${what} is ${sqlType(v)}, expected a BLOB`);
  if (len !== undefined && v.length !== len) throw traceCorrupt(path, `${what} has ${v.length} bytes, expected ${len}`);
  return v;
}

/** An INTEGER column's value in [min, max]. */
export function intOf(path: string, v: unknown, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) {
    throw traceCorrupt(path, `${what} = ${show(v)}${typeof n === 'number' && Number.isInteger(n) ? `, expected ${min}-${max}` : ` (${sqlType(v)}), expected an integer`}`);
  }
  return n;
}

function sqlType(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (Buffer.isBuffer(v)) return 'a BLOB';
  if (typeof v === 'string') return 'TEXT';
  if (typeof v === 'number' && !Number.isInteger(v)) return 'REAL';
  return 'INTEGER';
}

/**
 * `db` whose statements turn SQLite's errors at run time (a damaged page met by a query long after
 * the open: "database disk image is malformed") into trace errors. prepare() itself is left as it
 * is: its errors are the SQL's (reader.sql reports them as bad SQL).
 */
export function guardTraceDb(path: string, db: Database.Database): Database.Database {
  return new Proxy(db, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (prop === 'prepare') return (sql: string) => guardStatement(path, target.prepare(sql));
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

function sqliteError(path: string, e: unknown): unknown {
  if (e instanceof DbgError || !(e instanceof Error) || e.name !== 'SqliteError') return e;
  const code = (e as { code?: string }).code ?? '';
  const msg = e.message.replace(/\s+/g, ' ');
  if (code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB' || /malformed/.test(msg)) return traceCorrupt(path, `the file is damaged (SQLite: ${msg})`);
  return new DbgError('io', `trace "${path}": ${msg}`);
}

function guardStatement(path: string, st: Database.Statement): Database.Statement {
  const proxy: Database.Statement = new Proxy(st, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        let out: unknown;
        try {
          out = (v as (...a: unknown[]) => unknown).apply(target, args);
        } catch (e) {
          throw sqliteError(path, e);
        }
        if (out === target) return proxy; // raw(), pluck(), safeIntegers() chain
        if (prop === 'iterate') return guardIterator(path, out as IterableIterator<unknown>);
        return out;
      };
    },
  });
  return proxy;
}

function guardIterator(path: string, it: IterableIterator<unknown>): IterableIterator<unknown> {
  return {
    next() {
      try {
        return it.next();
      } catch (e) {
        throw sqliteError(path, e);
      }
    },
    return(v?: unknown) {
      return it.return ? it.return(v) : { done: true, value: v };
    },
    [Symbol.iterator]() {
      return this;
    },
  };
}
