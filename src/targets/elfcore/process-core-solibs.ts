/**
 * The dynamic linker's list of loaded objects in a process core, read as gdb's solib-svr4 reads
 * it, and the files a library may be found as.
 *
 *   AT_PHDR, AT_PHNUM (auxv)   the executable's program headers in memory; PT_PHDR gives its bias
 *   PT_DYNAMIC -> DT_DEBUG     the address of the dynamic linker's struct r_debug
 *   r_debug.r_map              the first struct link_map; l_next links the rest:
 *                                l_addr (bias), l_name (the path the dynamic linker opened),
 *                                l_ld (the object's dynamic section), l_next, l_prev
 *
 * The names are what gdb shows and looks for under its sysroot: `/lib/x86_64-linux-gnu/libc.so.6`
 * where the kernel's NT_FILE note records the resolved `/usr/lib/x86_64-linux-gnu/libc.so.6`.
 *
 * Everything here is read from the core's own bytes, so a list that lies (a loop, a pointer into
 * nothing, a name without its NUL) ends the walk with a `problem` and keeps what was read before.
 */

import { statSync } from 'node:fs';
import { DbgError, errors } from '../../common/errors.js';
import { hexAddr } from '../../common/format.js';
import { AT_PHDR } from './core-notes.js';

/** One struct link_map of the list, in list order. */
export interface LinkMapEntry {
  /** Address of the struct link_map. */
  readonly at: bigint;
  /** l_addr: run-time minus link-time address. */
  readonly bias: bigint;
  /** l_name: the path the dynamic linker opened ("" for the executable). */
  readonly name: string;
  /** l_ld: run-time address of the object's dynamic section. */
  readonly dynamic: bigint;
}

export interface LinkMap {
  /** The entries read, the executable's first (as the list has it). */
  readonly entries: readonly LinkMapEntry[];
  /** Address of struct r_debug, when the executable's DT_DEBUG names one. */
  readonly rDebug?: bigint;
  /** Why the walk stopped early, one line; undefined when the list was read to its end. */
  readonly problem?: string;
}

/** Reads bytes of the process's memory; throws DbgError where the core has none. */
export type ReadMemory = (addr: bigint, length: number) => Buffer;

const AT_PHNUM = 5n;
const PT_DYNAMIC = 2;
const PT_PHDR = 6;
const DT_NULL = 0n;
const DT_DEBUG = 21n;
const PHDR_SIZE = 56;
/** More objects than any process loads; a longer list is damage. */
const MAX_OBJECTS = 10_000;
/** PATH_MAX: a longer l_name is not a path. */
const MAX_NAME = 4096;

/**
 * The link map of the process whose auxv is `auxv`. A process without one (static, or dumped
 * before the dynamic linker ran) has no entries and no problem.
 */
export function readLinkMap(read: ReadMemory, auxv: ReadonlyMap<bigint, bigint>): LinkMap {
  const phdr = auxv.get(AT_PHDR);
  const phnum = auxv.get(AT_PHNUM);
  if (phdr === undefined || phnum === undefined || phnum === 0n) return { entries: [] };
  let rDebug: bigint | undefined;
  try {
    if (phnum > 512n) return { entries: [], problem: `AT_PHNUM is ${phnum}, not a count of program headers` };
    rDebug = findRDebug(read, phdr, Number(phnum));
  } catch (e) {
    if (!(e instanceof DbgError)) throw e;
    return { entries: [], problem: `the executable's program headers or dynamic section (AT_PHDR ${hexAddr(phdr)}) cannot be read: ${e.message}` };
  }
  if (rDebug === undefined || rDebug === 0n) return { entries: [] };
  return walk(read, rDebug);
}

/** DT_DEBUG of the executable whose program headers are at `phdr`; undefined for a static one. */
function findRDebug(read: ReadMemory, phdr: bigint, phnum: number): bigint | undefined {
  const table = read(phdr, phnum * PHDR_SIZE);
  let bias = 0n;
  let dynamic: { vaddr: bigint; memsz: bigint } | undefined;
  for (let i = 0; i < phnum; i++) {
    const o = i * PHDR_SIZE;
    const type = table.readUInt32LE(o);
    const vaddr = table.readBigUInt64LE(o + 16);
    if (type === PT_PHDR) bias = phdr - vaddr;
    if (type === PT_DYNAMIC) dynamic = { vaddr, memsz: table.readBigUInt64LE(o + 40) };
  }
  if (!dynamic) return undefined;
  const count = Number(dynamic.memsz > 0x10000n ? 0x10000n : dynamic.memsz) >> 4;
  const at = (dynamic.vaddr + bias) & 0xffff_ffff_ffff_ffffn;
  const dyn = read(at, count * 16);
  for (let o = 0; o + 16 <= dyn.length; o += 16) {
    const tag = dyn.readBigUInt64LE(o);
    if (tag === DT_NULL) break;
    if (tag === DT_DEBUG) return dyn.readBigUInt64LE(o + 8);
  }
  return undefined;
}

function walk(read: ReadMemory, rDebug: bigint): LinkMap {
  const entries: LinkMapEntry[] = [];
  const where = `the dynamic linker's list of libraries (r_debug at ${hexAddr(rDebug)})`;
  let next: bigint;
  try {
    const r = read(rDebug, 16);
    const version = r.readInt32LE(0);
    // 0: the dynamic linker has not set it up yet; glibc writes 1, or 2 with r_debug_extended.
    if (version === 0) return { entries, rDebug };
    if (version < 0 || version > 2) return { entries, rDebug, problem: `${where} has r_version ${version}, not 1 or 2: not a struct r_debug; libraries are named by NT_FILE only` };
    next = r.readBigUInt64LE(8);
  } catch (e) {
    if (!(e instanceof DbgError)) throw e;
    return { entries, rDebug, problem: `${where} cannot be read: ${e.message}; libraries are named by NT_FILE only` };
  }
  const seen = new Map<bigint, number>();
  let prev = 0n;
  while (next !== 0n) {
    const n = entries.length;
    const at = next;
    const earlier = seen.get(at);
    if (earlier !== undefined) {
      return { entries, rDebug, problem: `${where} loops: link_map ${n - 1}'s l_next points back to link_map ${earlier} at ${hexAddr(at)}; the list is read up to there` };
    }
    if (n >= MAX_OBJECTS) return { entries, rDebug, problem: `${where} has more than ${MAX_OBJECTS} entries; the list is read up to there` };
    seen.set(at, n);
    let name: string;
    let lm: Buffer;
    try {
      lm = read(at, 40);
      name = readCString(read, lm.readBigUInt64LE(8));
    } catch (e) {
      if (!(e instanceof DbgError)) throw e;
      return { entries, rDebug, problem: `${where}: link_map ${n} at ${hexAddr(at)} cannot be read: ${e.message}; the list is read up to there` };
    }
    if (lm.readBigUInt64LE(32) !== prev) {
      return { entries, rDebug, problem: `${where}: link_map ${n} at ${hexAddr(at)} has l_prev ${hexAddr(lm.readBigUInt64LE(32))}, not ${hexAddr(prev)}; the list is read up to there` };
    }
    entries.push({ at, bias: lm.readBigUInt64LE(0), name, dynamic: lm.readBigUInt64LE(16) });
    prev = at;
    next = lm.readBigUInt64LE(24);
  }
  return { entries, rDebug };
}

/** The NUL-terminated string at `addr` (empty for a null pointer), read a page at a time. */
function readCString(read: ReadMemory, addr: bigint): string {
  if (addr === 0n) return '';
  const parts: Buffer[] = [];
  let total = 0;
  let at = addr;
  while (total < MAX_NAME) {
    // Up to the end of the page: the next page may not be there.
    const chunk = read(at, Math.min(MAX_NAME - total, Number(0x1000n - (at & 0xfffn))));
    const nul = chunk.indexOf(0);
    if (nul >= 0) {
      parts.push(chunk.subarray(0, nul));
      return Buffer.concat(parts).toString('utf8');
    }
    parts.push(chunk);
    total += chunk.length;
    at += BigInt(chunk.length);
  }
  throw new DbgError('corrupt', `its l_name at ${hexAddr(addr)} has no NUL within ${MAX_NAME} bytes`);
}

/**
 * The files to try for a library, in gdb's order: the dynamic linker's name, then the NT_FILE
 * path, each under `sysroot` (as given when there is none); then each of `searchPath`'s
 * directories with the library's base name (gdb's solib-search-path). No repeats.
 */
export function libraryCandidates(linkName: string | undefined, corePath: string, sysroot: string | undefined, searchPath: readonly string[]): string[] {
  const out: string[] = [];
  const add = (p: string) => {
    if (!out.includes(p)) out.push(p);
  };
  const root = sysroot?.replace(/\/+$/, '');
  for (const p of [linkName, corePath]) {
    if (p === undefined || !p.startsWith('/')) continue;
    add(root ? root + p : p);
  }
  for (const dir of searchPath) {
    for (const p of [linkName, corePath]) {
      if (p === undefined || p === '') continue;
      add(`${dir.replace(/\/+$/, '')}/${p.slice(p.lastIndexOf('/') + 1)}`);
    }
  }
  return out;
}

/** A directory option (--sysroot, --solib-search-path, --source-path, ::dir) that names no directory is a typo, not an empty one. */
export function checkDirectory(flag: string, dir: string | undefined): void {
  if (dir === undefined) return;
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw errors.badInput(`${flag} "${dir}": no such directory`);
  }
  if (!st.isDirectory()) throw errors.badInput(`${flag} "${dir}": not a directory`);
}

