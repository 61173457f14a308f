import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DbgError } from '../../src/common/errors.js';
import { builtinModules } from '../../src/mdb/modules/index.js';
import { CaptureOutput, Session } from '../../src/mdb/session.js';
import { FileTarget } from '../../src/targets/file/file-target.js';
import type { Target } from '../../src/targets/target.js';

/** A temporary directory removed by the returned function. */
export function tempDir(prefix = 'dbg-mdb-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A raw-file session over `bytes`, written to a file in `dir`. */
export function rawSession(dir: string, bytes: Buffer, name = 'raw.bin'): Session {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return new Session(FileTarget.raw(path), builtinModules);
}

export function sessionOn(target: Target): Session {
  return new Session(target, builtinModules);
}

/**
 * Run `line` and return its text lines without their trailing blanks (formats keep MDB's; the
 * illumos suite, test/mdb/illumos.test.ts, checks those column by column).
 */
export async function run(s: Session, line: string): Promise<string[]> {
  const out = new CaptureOutput(false);
  await s.execute(line, out);
  return out.lines.map((l) => l.trimEnd());
}

/** Run `line` in --json mode and return the JSON values it printed. */
export async function runJson(s: Session, line: string): Promise<unknown[]> {
  const out = new CaptureOutput(true);
  await s.execute(line, out);
  return out.values;
}

/** The DbgError `line` fails with (the test fails if it succeeds or throws anything else). */
export async function failure(s: Session, line: string): Promise<DbgError> {
  try {
    await s.execute(line, new CaptureOutput(false));
  } catch (e) {
    if (e instanceof DbgError) return e;
    throw e;
  }
  throw new Error(`"${line}" did not fail`);
}

/** A size or offset as MDB prints one (%#r in hexadecimal): `8`, `0x10`. */
export function mdbNumber(v: bigint | number | string): string {
  const n = BigInt(v);
  return n < 10n ? n.toString() : '0x' + n.toString(16);
}

/** The start of ::offsetof's line for member `m` of `t` at `offset` (its `, sizeof (...->m) = …` follows). */
export function offsetofLine(t: string, m: string, offset: bigint | number | string): RegExp {
  const esc = (x: string) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${esc(`offsetof (${t}, ${m}) = ${mdbNumber(offset)}, sizeof (...->${m}) = `)}(\\d|0x[0-9a-f]+|\\d+ bits)$`);
}
