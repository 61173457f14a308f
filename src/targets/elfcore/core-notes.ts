/**
 * The notes of Linux ELF cores, decoded: NT_PRSTATUS (a thread and its general registers),
 * NT_PRPSINFO (the process), NT_AUXV, NT_FILE (mapped files) and NT_SIGINFO.
 *
 * Layouts are Linux's (include/uapi/linux/elfcore.h, fs/binfmt_elf.c) for the LP64 ABI, with the
 * ILP32 variants where the only difference is the width of `long` and of a pointer. Every parser
 * checks the descriptor's size before it reads, and a short or lying note is DbgError('corrupt')
 * naming the note and the size it expected.
 *
 * Kernel dumps made by QEMU carry NT_PRSTATUS notes of the same layout: `parsePrstatus` is for
 * them too.
 */

import type { Arch, Registers } from '../../arch/arch.js';
import { errors } from '../../common/errors.js';

export const NT_PRSTATUS = 1;
export const NT_FPREGSET = 2;
export const NT_PRPSINFO = 3;
export const NT_AUXV = 6;
export const NT_SIGINFO = 0x53494749;
export const NT_FILE = 0x46494c45;

export const AT_NULL = 0n;
export const AT_PHDR = 3n;
export const AT_ENTRY = 9n;
export const AT_SYSINFO_EHDR = 33n;
export const AT_EXECFN = 31n;

/**
 * struct elf_prstatus (LP64):
 *
 *   off  size  field
 *     0    12  pr_info (si_signo, si_code, si_errno)
 *    12     2  pr_cursig
 *    16     8  pr_sigpend
 *    24     8  pr_sighold
 *    32    16  pr_pid, pr_ppid, pr_pgrp, pr_sid (int32 each)
 *    48    64  pr_utime, pr_stime, pr_cutime, pr_cstime (struct timeval)
 *   112   N*8  pr_reg (user_regs_struct: arch.prstatusRegisters)
 *     .     4  pr_fpvalid
 *
 * ILP32 is the same up to pr_pid; the timevals are 8 bytes each, so pr_reg starts at 72.
 */
export interface Prstatus {
  readonly signal: number;
  /** pr_cursig: the signal the thread was handling when the core was written (0 for gcore). */
  readonly cursig: number;
  readonly pid: number;
  readonly ppid: number;
  readonly pgrp: number;
  readonly sid: number;
  readonly registers: Registers;
}

export function parsePrstatus(desc: Buffer, arch: Arch, where = 'NT_PRSTATUS'): Prstatus {
  const w = arch.pointerBytes;
  const regAt = w === 8 ? 112 : 72;
  const need = regAt + arch.prstatusRegisters.length * w;
  if (desc.length < need) {
    throw errors.corrupt(where, `NT_PRSTATUS descriptor has ${desc.length} bytes; ${arch.name} needs at least ${need} (pr_reg of ${arch.prstatusRegisters.length} registers at offset ${regAt})`);
  }
  const le = arch.littleEndian;
  const i32 = (o: number) => (le ? desc.readInt32LE(o) : desc.readInt32BE(o));
  const i16 = (o: number) => (le ? desc.readInt16LE(o) : desc.readInt16BE(o));
  const word = (o: number) => (w === 8 ? (le ? desc.readBigUInt64LE(o) : desc.readBigUInt64BE(o)) : BigInt(le ? desc.readUInt32LE(o) : desc.readUInt32BE(o)));
  const registers: Registers = new Map();
  arch.prstatusRegisters.forEach((name, i) => registers.set(name, word(regAt + i * w)));
  return {
    signal: i32(0),
    cursig: i16(12),
    pid: i32(w === 8 ? 32 : 24),
    ppid: i32(w === 8 ? 36 : 28),
    pgrp: i32(w === 8 ? 40 : 32),
    sid: i32(w === 8 ? 44 : 36),
    registers,
  };
}

/**
 * struct elf_prpsinfo (LP64):
 *
 *   off  size  field
 *     0     1  pr_state     1  pr_sname ('R', 'S', 'D', 'T', 'Z'...)
 *     2     1  pr_zomb      3  pr_nice
 *     8     8  pr_flag
 *    16     8  pr_uid, pr_gid (uint32 each)
 *    24    16  pr_pid, pr_ppid, pr_pgrp, pr_sid
 *    40    16  pr_fname (command, NUL-padded)
 *    56    80  pr_psargs (command line, NUL-padded)
 *
 * ILP32: pr_flag is 4 bytes and the uid/gid are 16-bit, so pr_pid is at 12 and pr_fname at 28.
 */
export interface Prpsinfo {
  readonly state: number;
  readonly sname: string;
  readonly pid: number;
  readonly ppid: number;
  readonly uid: number;
  readonly gid: number;
  readonly fname: string;
  readonly psargs: string;
}

export function parsePrpsinfo(desc: Buffer, arch: Arch, where = 'NT_PRPSINFO'): Prpsinfo {
  const lp64 = arch.pointerBytes === 8;
  const need = lp64 ? 136 : 124;
  if (desc.length < need) throw errors.corrupt(where, `NT_PRPSINFO descriptor has ${desc.length} bytes; ${arch.name} needs ${need}`);
  const le = arch.littleEndian;
  const i32 = (o: number) => (le ? desc.readInt32LE(o) : desc.readInt32BE(o));
  const u32 = (o: number) => (le ? desc.readUInt32LE(o) : desc.readUInt32BE(o));
  const u16 = (o: number) => (le ? desc.readUInt16LE(o) : desc.readUInt16BE(o));
  const pidAt = lp64 ? 24 : 12;
  const fnameAt = lp64 ? 40 : 28;
  return {
    state: desc[0]!,
    sname: String.fromCharCode(desc[1]!),
    uid: lp64 ? u32(16) : u16(8),
    gid: lp64 ? u32(20) : u16(10),
    pid: i32(pidAt),
    ppid: i32(pidAt + 4),
    fname: cstr(desc, fnameAt, 16),
    psargs: cstr(desc, fnameAt + 16, 80).trimEnd(),
  };
}

/** NT_AUXV: (type, value) word pairs up to AT_NULL. */
export function parseAuxv(desc: Buffer, arch: Arch): Map<bigint, bigint> {
  const w = arch.pointerBytes;
  const out = new Map<bigint, bigint>();
  for (let o = 0; o + 2 * w <= desc.length; o += 2 * w) {
    const type = readWord(desc, o, w, arch.littleEndian);
    if (type === AT_NULL) break;
    if (!out.has(type)) out.set(type, readWord(desc, o + w, w, arch.littleEndian));
  }
  return out;
}

/** One NT_FILE entry: [start, end) is mapped from `path` at byte offset `fileOffset`. */
export interface FileMapping {
  readonly start: bigint;
  readonly end: bigint;
  readonly fileOffset: bigint;
  readonly path: string;
}

/**
 * NT_FILE:
 *
 *   word  count
 *   word  page_size
 *   count x { word start; word end; word file_ofs (in pages) }
 *   count NUL-terminated paths
 */
export function parseFileNote(desc: Buffer, arch: Arch, where = 'NT_FILE'): FileMapping[] {
  const w = arch.pointerBytes;
  const le = arch.littleEndian;
  if (desc.length < 2 * w) throw errors.corrupt(where, `NT_FILE descriptor has ${desc.length} bytes, too few for its header (${2 * w})`);
  const count = readWord(desc, 0, w, le);
  const pageSize = readWord(desc, w, w, le);
  const tableEnd = 2n * BigInt(w) + count * 3n * BigInt(w);
  if (tableEnd > BigInt(desc.length)) {
    throw errors.corrupt(where, `NT_FILE claims ${count} mappings, whose table needs ${tableEnd} bytes, but the note has ${desc.length}`);
  }
  const n = Number(count);
  const out: FileMapping[] = [];
  let s = Number(tableEnd);
  for (let i = 0; i < n; i++) {
    const o = 2 * w + i * 3 * w;
    const nul = desc.indexOf(0, s);
    if (nul < 0) throw errors.corrupt(where, `NT_FILE path ${i} of ${n} is not terminated inside the note (${desc.length} bytes)`);
    out.push({
      start: readWord(desc, o, w, le),
      end: readWord(desc, o + w, w, le),
      fileOffset: readWord(desc, o + 2 * w, w, le) * pageSize,
      path: desc.toString('utf8', s, nul),
    });
    s = nul + 1;
  }
  return out;
}

/** The fields of siginfo_t that a core's reader cares about. */
export interface Siginfo {
  readonly signo: number;
  readonly errno: number;
  readonly code: number;
  /** si_addr, for the fault signals (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP). */
  readonly addr?: bigint;
}

/** NT_SIGINFO: siginfo_t (si_signo, si_errno, si_code, then a union; si_addr first in it). */
export function parseSiginfo(desc: Buffer, arch: Arch, where = 'NT_SIGINFO'): Siginfo {
  const w = arch.pointerBytes;
  const addrAt = w === 8 ? 16 : 12;
  if (desc.length < addrAt + w) throw errors.corrupt(where, `NT_SIGINFO descriptor has ${desc.length} bytes, too few for siginfo_t (${addrAt + w})`);
  const le = arch.littleEndian;
  const i32 = (o: number) => (le ? desc.readInt32LE(o) : desc.readInt32BE(o));
  const signo = i32(0);
  const fault = [4, 5, 7, 8, 11].includes(signo);
  return { signo, errno: i32(4), code: i32(8), ...(fault ? { addr: readWord(desc, addrAt, w, le) } : {}) };
}

const signalNames = [
  '', 'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGKILL', 'SIGUSR1',
  'SIGSEGV', 'SIGUSR2', 'SIGPIPE', 'SIGALRM', 'SIGTERM', 'SIGSTKFLT', 'SIGCHLD', 'SIGCONT', 'SIGSTOP', 'SIGTSTP',
  'SIGTTIN', 'SIGTTOU', 'SIGURG', 'SIGXCPU', 'SIGXFSZ', 'SIGVTALRM', 'SIGPROF', 'SIGWINCH', 'SIGIO', 'SIGPWR', 'SIGSYS',
];

/** Linux's name for signal `n` ('SIGSEGV'), or 'SIG<n>' (real-time signals, unknown numbers). */
export function signalName(n: number): string {
  return signalNames[n] || `SIG${n}`;
}

function readWord(b: Buffer, o: number, w: number, le: boolean): bigint {
  if (w === 8) return le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o);
  return BigInt(le ? b.readUInt32LE(o) : b.readUInt32BE(o));
}

function cstr(b: Buffer, o: number, max: number): string {
  const end = b.indexOf(0, o);
  return b.toString('utf8', o, end < 0 || end > o + max ? o + max : end);
}

/** NT_X86_XSTATE (name "LINUX"): the thread's XSAVE area, standard format. */
export const NT_X86_XSTATE = 0x202;

const FXSAVE_BYTES = 512;
/** XSAVE: XSTATE_BV in the header after the legacy area; the AVX upper halves (YMM_Hi128) at 576. */
const XSTATE_BV = 512;
const XSAVE_YMMH = 576;
/** Linux's xstate_fx_sw_bytes (in the legacy area's software bytes): XCR0, what the area can hold. */
const XSAVE_XCR0 = 464;
const XFEATURE_X87 = 1n;
const XFEATURE_SSE = 2n;
const XFEATURE_YMM = 4n;

/**
 * The x87 and SSE registers of an FXSAVE image (NT_FPREGSET, the first 512 bytes of an XSAVE
 * area), named as gdb names them:
 *
 *   off  size  field                       off  size  field
 *     0     2  fcw -> fctrl                  24     4  mxcsr
 *     2     2  fsw -> fstat (TOP in 13:11)   32  8*16  st0..st7 (10 bytes each, ST(i) order)
 *     4     1  abridged tag                 160 16*16  xmm0..xmm15 (8 in 32-bit images)
 *     6     2  fop (11 bits)
 *     8     8  fip -> fioff, fiseg (its upper half in the 64-bit format)
 *    16     8  fdp -> fooff, foseg
 *
 * ftag is the full 16-bit tag word, rebuilt from the abridged one as the CPU's FSTENV would give
 * it (valid, zero or special per physical register), as gdb shows it.
 */
export function parseFxsave(desc: Buffer, where: string, xmmCount = 16): Registers {
  if (desc.length < FXSAVE_BYTES) throw errors.corrupt(where, `FXSAVE area of ${desc.length} bytes; it has ${FXSAVE_BYTES}`);
  const r: Registers = new Map();
  const fsw = desc.readUInt16LE(2);
  r.set('fctrl', BigInt(desc.readUInt16LE(0)));
  r.set('fstat', BigInt(fsw));
  r.set('fop', BigInt(desc.readUInt16LE(6) & 0x7ff));
  r.set('fioff', BigInt(desc.readUInt32LE(8)));
  r.set('fiseg', BigInt(desc.readUInt32LE(12)));
  r.set('fooff', BigInt(desc.readUInt32LE(16)));
  r.set('foseg', BigInt(desc.readUInt32LE(20)));
  r.set('mxcsr', BigInt(desc.readUInt32LE(24)));
  const st: Buffer[] = [];
  for (let i = 0; i < 8; i++) {
    st.push(desc.subarray(32 + i * 16, 32 + i * 16 + 10));
    r.set(`st${i}`, le(st[i]!));
  }
  r.set('ftag', BigInt(fullTagWord(desc[4]!, (fsw >> 11) & 7, st)));
  for (let i = 0; i < xmmCount; i++) r.set(`xmm${i}`, le(desc.subarray(160 + i * 16, 176 + i * 16)));
  return r;
}

/**
 * The registers of an XSAVE area (NT_X86_XSTATE): the x87 and SSE state, and with AVX the upper
 * halves of ymm0..ymm15 as gdb's ymm0h..ymm15h. A component whose XSTATE_BV bit is clear is in its
 * initial state (zeros; fctrl 0x37f, ftag 0xffff; mxcsr 0x1f80), as XRSTOR would load it.
 */
export function parseXstate(desc: Buffer, where: string, xmmCount = 16): Registers {
  if (desc.length < XSAVE_YMMH) throw errors.corrupt(where, `NT_X86_XSTATE descriptor has ${desc.length} bytes; an XSAVE area has at least ${XSAVE_YMMH}`);
  const area = Buffer.from(desc);
  const bv = area.readBigUInt64LE(XSTATE_BV);
  const xcr0 = area.readBigUInt64LE(XSAVE_XCR0);
  if ((bv & XFEATURE_X87) === 0n) {
    area.fill(0, 0, 24);
    area.writeUInt16LE(0x37f, 0);
    area.fill(0, 32, 160);
  }
  if ((bv & XFEATURE_SSE) === 0n) area.fill(0, 160, 160 + 16 * 16);
  if ((bv & (XFEATURE_SSE | XFEATURE_YMM)) === 0n) area.writeUInt32LE(0x1f80, 24);
  const r = parseFxsave(area, where, xmmCount);
  if ((xcr0 & XFEATURE_YMM) !== 0n) {
    const end = XSAVE_YMMH + xmmCount * 16;
    if (desc.length < end) throw errors.corrupt(where, `NT_X86_XSTATE descriptor has ${desc.length} bytes; its XCR0 names AVX, whose registers end at ${end}`);
    for (let i = 0; i < xmmCount; i++) {
      r.set(`ymm${i}h`, (bv & XFEATURE_YMM) === 0n ? 0n : le(area.subarray(XSAVE_YMMH + i * 16, XSAVE_YMMH + i * 16 + 16)));
    }
  }
  return r;
}

/** A little-endian unsigned integer of any width. */
function le(b: Buffer): bigint {
  // The widths that occur (10-byte x87, 16-byte vector registers) a word at a time: a live
  // process's registers are parsed at every stop.
  if (b.length === 16) return b.readBigUInt64LE(0) | (b.readBigUInt64LE(8) << 64n);
  if (b.length === 10) return b.readBigUInt64LE(0) | (BigInt(b.readUInt16LE(8)) << 64n);
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  return v;
}

/**
 * The x87 tag word from FXSAVE's abridged one (bit i set: physical register i is not empty):
 * per physical register 00 valid, 01 zero, 10 special (NaN, infinity, denormal), 11 empty.
 * `st` is in ST(i) order; physical register i is ST((i - top) & 7).
 */
export function fullTagWord(abridged: number, top: number, st: readonly Buffer[]): number {
  let tag = 0;
  for (let phys = 0; phys < 8; phys++) {
    let t = 3;
    if (abridged & (1 << phys)) {
      const v = st[(phys - top) & 7]!;
      const exp = v.readUInt16LE(8) & 0x7fff;
      const mant = v.readBigUInt64LE(0);
      if (exp === 0x7fff) t = 2;
      else if (exp === 0) t = mant === 0n ? 1 : 2;
      else t = mant >> 63n ? 0 : 2; // an unnormal (integer bit clear) is special
    }
    tag |= t << (phys * 2);
  }
  return tag;
}
