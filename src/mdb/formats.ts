/**
 * MDB's format characters: `addr/X`, `addr,4/J`, `expr=D`, `main/i`.
 *
 * A format string is a sequence of items, each an optional decimal repeat count and a format
 * character, or a quoted string printed as is: `/2X"next"J`. The table follows illumos MDB's
 * (mdb_fmt.c): size in bytes, how the value prints and the column width it is padded to.
 * Layout rules (margin 16, 80 columns, wrapping) are Iob's.
 */

import { DbgError, errors } from '../common/errors.js';
import { Disassembler, formatInstruction } from './disasm.js';
import type { Iob } from './iob.js';

/** What formats need from the session: memory (or a value, for `=`), symbols, the disassembler. */
export interface FormatContext {
  /** Exactly `length` bytes at `addr`; throws DbgError('unmapped'). */
  read(addr: bigint, length: number): Buffer;
  readonly littleEndian: boolean;
  readonly pointerBytes: number;
  /** `sym+0x10` (MDB's %a), or undefined when no symbol precedes addr. */
  symbolic(addr: bigint): string | undefined;
  /** The disassembler, when `/i` may run (the session loads it before running a format with i/I). */
  readonly disassembler?: Disassembler;
  /** The size of the last item printed (MDB's increment), for `^`. */
  incr: bigint;
  /** Given each value a format prints, when the format feeds a pipe: the values go on, not the text. */
  emit?(v: bigint): void;
}

export type FormatItem = { readonly count: number; readonly ch: string } | { readonly text: string };

interface Simple {
  readonly size: 1 | 2 | 4 | 8 | 'ptr';
  readonly width: number;
  readonly render: (v: bigint, bits: number, ctx: FormatContext) => string;
  readonly help: string;
}

type Special = (ctx: FormatContext, iob: Iob, addr: bigint, n: number) => bigint;

const hexU = (v: bigint) => v.toString(16);
const decS = (v: bigint, bits: number) => BigInt.asIntN(bits, v).toString(10);
const decU = (v: bigint) => v.toString(10);
const octAlt = (v: bigint) => (v === 0n ? '0' : '0' + v.toString(8));
const octSAlt = (v: bigint, bits: number) => {
  const s = BigInt.asIntN(bits, v);
  return s === 0n ? '0' : s < 0n ? '-0' + (-s).toString(8) : '0' + s.toString(8);
};
const octS = (v: bigint, bits: number) => BigInt.asIntN(bits, v).toString(8);
const symbolOr = (v: bigint, _bits: number, ctx: FormatContext) => ctx.symbolic(v) ?? '0x' + v.toString(16);

const simple: Record<string, Simple> = {
  B: { size: 1, width: 8, render: hexU, help: 'hexadecimal int (1 byte)' },
  D: { size: 4, width: 16, render: decS, help: 'decimal signed int (4 bytes)' },
  E: { size: 8, width: 21, render: decU, help: 'decimal unsigned long long (8 bytes)' },
  F: { size: 8, width: 0, render: (v) => String(bufOf(v, 8).readDoubleLE(0)), help: 'double (8 bytes)' },
  G: { size: 8, width: 23, render: (v) => v.toString(8), help: 'octal unsigned long long (8 bytes)' },
  H: { size: 4, width: 16, render: (v) => swap(v, 4).toString(16), help: 'swap bytes and shorts (4 bytes)' },
  J: { size: 8, width: 16, render: hexU, help: 'hexadecimal long long (8 bytes)' },
  K: { size: 'ptr', width: 16, render: hexU, help: 'hexadecimal uintptr_t (pointer size)' },
  O: { size: 4, width: 16, render: octAlt, help: 'octal unsigned int (4 bytes)' },
  P: { size: 'ptr', width: 19, render: symbolOr, help: 'symbol (pointer size)' },
  p: { size: 'ptr', width: 19, render: symbolOr, help: 'symbol (pointer size)' },
  Q: { size: 4, width: 16, render: octSAlt, help: 'octal signed int (4 bytes)' },
  R: { size: 8, width: 64, render: (v) => v.toString(2), help: 'binary unsigned long long (8 bytes)' },
  U: { size: 4, width: 16, render: decU, help: 'decimal unsigned int (4 bytes)' },
  V: { size: 1, width: 8, render: decU, help: 'decimal unsigned int (1 byte)' },
  W: { size: 4, width: 16, render: hexU, help: 'hexadecimal int (4 bytes); with values: write' },
  X: { size: 4, width: 16, render: hexU, help: 'hexadecimal int (4 bytes)' },
  Y: { size: 4, width: 24, render: (v, b) => time(BigInt.asIntN(b, v)), help: 'decoded time32_t (4 bytes)' },
  Z: { size: 8, width: 16, render: hexU, help: 'hexadecimal long long (8 bytes); with values: write' },
  b: { size: 1, width: 8, render: octAlt, help: 'octal unsigned int (1 byte)' },
  c: { size: 1, width: 0, render: (v) => String.fromCharCode(Number(v)), help: 'character (1 byte)' },
  d: { size: 2, width: 8, render: decS, help: 'decimal signed short (2 bytes)' },
  e: { size: 8, width: 21, render: decS, help: 'decimal signed long long (8 bytes)' },
  f: { size: 4, width: 0, render: (v) => expo(bufOf(v, 4).readFloatLE(0)), help: 'float (4 bytes)' },
  g: { size: 8, width: 24, render: octS, help: 'octal signed long long (8 bytes)' },
  h: { size: 2, width: 8, render: (v) => swap(v, 2).toString(16), help: 'swap bytes (2 bytes)' },
  o: { size: 2, width: 8, render: octAlt, help: 'octal unsigned short (2 bytes)' },
  q: { size: 2, width: 8, render: octSAlt, help: 'octal signed short (2 bytes)' },
  u: { size: 2, width: 8, render: decU, help: 'decimal unsigned short (2 bytes)' },
  v: { size: 1, width: 8, render: decS, help: 'decimal signed int (1 byte); with values: write' },
  w: { size: 2, width: 8, render: hexU, help: 'hexadecimal short (2 bytes); with values: write' },
  x: { size: 2, width: 8, render: hexU, help: 'hexadecimal short (2 bytes)' },
  y: { size: 8, width: 24, render: (v, b) => time(BigInt.asIntN(b, v)), help: 'decoded time64_t (8 bytes)' },
};

const special: Record<string, { fn: Special; help: string }> = {
  '+': { fn: (_c, _i, a, n) => a + BigInt(n), help: 'increment dot by the count' },
  '-': { fn: (_c, _i, a, n) => a - BigInt(n), help: 'decrement dot by the count' },
  '^': { fn: (c, _i, a, n) => a - c.incr * BigInt(n), help: 'decrement dot by increment * count' },
  a: {
    fn: (ctx, iob, addr, n) => {
      for (let k = 0; k < n; k++) {
        iob.label(label(ctx, addr) + ':');
      }
      return addr;
    },
    help: 'dot as symbol+offset',
  },
  n: { fn: newlines, help: 'newline' },
  N: { fn: newlines, help: 'newline' },
  r: {
    fn: (_c, iob, a, n) => {
      iob.text(' '.repeat(n));
      return a;
    },
    help: 'whitespace',
  },
  t: { fn: tabs, help: 'horizontal tab' },
  T: { fn: tabs, help: 'horizontal tab' },
  s: { fn: (c, i, a, n) => strings(c, i, a, n, false), help: 'raw string' },
  S: { fn: (c, i, a, n) => strings(c, i, a, n, true), help: 'string using C string notation' },
  C: {
    fn: (ctx, iob, addr, n) => {
      const b = ctx.read(addr, n);
      iob.text(escape(b.toString('latin1')));
      return addr + BigInt(n);
    },
    help: 'character using C character notation',
  },
  j: {
    fn: (ctx, iob, addr, n) => {
      for (let k = 0; k < n; k++, addr += 8n) iob.text(bitDiagram(readValue(ctx, addr, 8)));
      return addr;
    },
    help: 'binary long long with a line per set bit (8 bytes)',
  },
  l: { fn: matchAlone('l'), help: 'match short (2 bytes): addr/l value [mask]' },
  L: { fn: matchAlone('L'), help: 'match int (4 bytes): addr/L value [mask]' },
  M: { fn: matchAlone('M'), help: 'match long long (8 bytes): addr/M value [mask]' },
  i: {
    fn: (ctx, iob, addr, n) => instructions(ctx, iob, addr, n, false),
    help: 'disassembled instruction',
  },
  I: {
    fn: (ctx, iob, addr, n) => instructions(ctx, iob, addr, n, true),
    help: 'address and disassembled instruction',
  },
};

/** Characters that search memory for a value (`addr/L 0x1234 [mask]`): MDB's lLM and their sizes. */
export const matchSizes: Record<string, 2 | 4 | 8> = { l: 2, L: 4, M: 8 };

function matchAlone(ch: string): Special {
  return () => {
    throw errors.badInput(`format '${ch}' searches memory for a value: addr/${ch} value [mask], alone after the '/'`);
  };
}

/**
 * MDB's match verbs (mdb_cmds.c match_arglist): from `addr` on, in steps of `size`, the first
 * unit whose bits under `mask` equal `value`; undefined when memory ends first (`end` is then
 * where the reading stopped). `read` gives up to `max` bytes, fewer where memory ends.
 */
export function matchValue(read: (addr: bigint, max: number) => Buffer, littleEndian: boolean, addr: bigint, size: 2 | 4 | 8, value: bigint, mask: bigint, limit: bigint, aborted: () => boolean): { found?: bigint; end: bigint } {
  const bits = BigInt(size * 8);
  const want = BigInt.asUintN(Number(bits), value & mask);
  const m = BigInt.asUintN(Number(bits), mask);
  let at = addr;
  const chunk = 0x10000;
  while (at - addr < limit) {
    if (aborted()) throw new DbgError('interrupted', `the search from 0x${addr.toString(16)} was interrupted at 0x${at.toString(16)}`);
    let b: Buffer;
    try {
      b = read(at, chunk);
    } catch (e) {
      if (e instanceof DbgError && e.code === 'unmapped') return { end: at };
      throw e;
    }
    const whole = b.length - (b.length % size);
    for (let k = 0; k < whole; k += size) {
      let v = 0n;
      for (let j = 0; j < size; j++) v = (v << 8n) | BigInt(b[k + (littleEndian ? size - 1 - j : j)]!);
      if ((v & m) === want) return { found: at + BigInt(k), end: at + BigInt(k) };
    }
    at += BigInt(whole);
    if (whole < chunk) return { end: at };
  }
  throw errors.badInput(`no match within 0x${limit.toString(16)} bytes of 0x${addr.toString(16)} (give a closer start)`);
}

/** Characters that write when followed by values (`addr/W 0t5`): MDB's vwWZ. */
export const writeSizes: Record<string, 1 | 2 | 4 | 8> = { v: 1, w: 2, W: 4, Z: 8 };

export function formatHelp(): string[] {
  const all = new Map<string, string>();
  for (const [k, v] of Object.entries(simple)) all.set(k, `${v.help}`);
  for (const [k, v] of Object.entries(special)) all.set(k, v.help);
  return [...all.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, h]) => `${k} - ${h}`);
}

/** Parse a format string; DbgError('bad-input') naming an unknown character. */
export function parseFormat(fmt: string): FormatItem[] {
  const items: FormatItem[] = [];
  let i = 0;
  while (i < fmt.length) {
    if (fmt[i] === '"') {
      const close = fmt.indexOf('"', i + 1);
      if (close < 0) throw errors.badInput(`unterminated string in format "${fmt}"`);
      items.push({ text: fmt.slice(i + 1, close) });
      i = close + 1;
      continue;
    }
    let j = i;
    while (j < fmt.length && /[0-9]/.test(fmt[j]!)) j++;
    const count = j > i ? parseInt(fmt.slice(i, j), 10) : 1;
    const ch = fmt[j];
    if (ch === undefined) throw errors.badInput(`format "${fmt}" ends with a count but no format character`);
    if (!(ch in simple) && !(ch in special)) {
      throw errors.badInput(`unknown format character '${ch}' in "${fmt}" (::formats lists them)`);
    }
    items.push({ count, ch });
    i = j + 1;
  }
  return items;
}

/**
 * How many bytes the first thing `items` prints reads at dot: 0 when it reads nothing (a label,
 * text, a move), 1 for strings and instructions whose length is not known before reading.
 */
export function firstReadSize(items: readonly FormatItem[], pointerBytes: number): number {
  const first = items[0];
  if (first === undefined || !('ch' in first)) return 0;
  const f = simple[first.ch];
  if (f) return f.size === 'ptr' ? pointerBytes : f.size;
  return 'sSCiI'.includes(first.ch) ? 1 : 0;
}

export function needsDisassembler(items: readonly FormatItem[]): boolean {
  return items.some((it) => 'ch' in it && (it.ch === 'i' || it.ch === 'I'));
}

/** Print `items` starting at `addr`; returns the address after the last item (the next dot). */
export function printItems(ctx: FormatContext, iob: Iob, addr: bigint, items: readonly FormatItem[]): bigint {
  for (const it of items) {
    if ('text' in it) {
      iob.text(it.text);
      continue;
    }
    const before = addr;
    const sp = special[it.ch];
    if (sp) {
      addr = sp.fn(ctx, iob, addr, it.count);
    } else {
      const f = simple[it.ch]!;
      const size = f.size === 'ptr' ? ctx.pointerBytes : f.size;
      for (let k = 0; k < it.count; k++) {
        const v = readValue(ctx, addr, size);
        ctx.emit?.(v);
        iob.field(f.render(v, size * 8, ctx), fieldWidth(it.ch, f, size, v));
        addr += BigInt(size);
      }
    }
    if (addr !== before) ctx.incr = addr - before;
  }
  return addr;
}

/**
 * The column a value of `ch` is padded to. The 64-bit hexadecimal formats (J, and K and Z on a
 * 64-bit target) take one more column when all 16 digits are used, so values never run together.
 */
function fieldWidth(ch: string, f: Simple, size: number, v: bigint): number {
  if ('JKZ'.includes(ch) && size === 8) return v >> 60n !== 0n ? 17 : 16;
  return f.width;
}

/** `sym+0x10` or `0x401000`, as MDB's %a. */
export function label(ctx: FormatContext, addr: bigint): string {
  return ctx.symbolic(addr) ?? '0x' + addr.toString(16);
}

export function readValue(ctx: FormatContext, addr: bigint, size: number): bigint {
  const b = ctx.read(addr, size);
  let v = 0n;
  for (let k = 0; k < size; k++) {
    const byte = BigInt(b[ctx.littleEndian ? size - 1 - k : k]!);
    v = (v << 8n) | byte;
  }
  return v;
}

function bufOf(v: bigint, size: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, v));
  return b.subarray(0, size);
}

function swap(v: bigint, size: number): bigint {
  let out = 0n;
  for (let k = 0; k < size; k++) out = (out << 8n) | ((v >> BigInt(8 * k)) & 0xffn);
  return out;
}

function expo(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const [m, e] = x.toExponential(6).split('e');
  const exp = Number(e);
  return `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
}

const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** adb's /Y layout, in UTC: `2024 Mar 05 13:01:02`. */
function time(secs: bigint): string {
  const d = new Date(Number(secs) * 1000);
  if (Number.isNaN(d.getTime())) return secs.toString(16);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()} ${months[d.getUTCMonth()]} ${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
}

function escape(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    if (ch === '\\') out += '\\\\';
    else if (ch === '"') out += '\\"';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (c === 0) out += '\\0';
    else if (c < 0x20 || c >= 0x7f) out += '\\' + c.toString(8).padStart(3, '0');
    else out += ch;
  }
  return out;
}

/**
 * `=j`: the value in binary, a `|` under each set bit, then one line per set bit (lowest first)
 * drawing it out to its number and mask:
 *   11101
 *   ||| |
 *   ||| +-- bit 0 mask 0x01
 */
function bitDiagram(v: bigint): string {
  const bits = v.toString(2);
  const width = bits.length;
  const maskDigits = Math.ceil(width / 4);
  const set = (pos: number) => bits[width - 1 - pos] === '1';
  const lines = [bits, [...bits].map((c) => (c === '1' ? '|' : ' ')).join('').trimEnd()];
  for (let bit = 0; bit < width; bit++) {
    if (!set(bit)) continue;
    let line = '';
    for (let pos = width - 1; pos > bit; pos--) line += set(pos) ? '|' : ' ';
    line += '+' + '-'.repeat(bit) + '-- bit ' + bit + ' mask 0x' + (1n << BigInt(bit)).toString(16).padStart(maskDigits, '0');
    lines.push(line);
  }
  return lines.join('\n');
}

function newlines(_c: FormatContext, iob: Iob, a: bigint, n: number): bigint {
  for (let k = 0; k < n; k++) iob.nl();
  return a;
}

function tabs(_c: FormatContext, iob: Iob, a: bigint, n: number): bigint {
  iob.tabTo(Math.max(1, n) === 1 ? 8 : n);
  return a;
}

/** Longest string `/s` reads before it stops looking for the NUL. */
const MAX_STRING = 4096;

/** Bytes at `addr` up to `max`, fewer where the target's memory ends. */
export function readUpTo(ctx: FormatContext, addr: bigint, max: number): Buffer {
  try {
    return ctx.read(addr, max);
  } catch (e) {
    if (!(e instanceof DbgError) || e.code !== 'unmapped') throw e;
  }
  const parts: Buffer[] = [];
  let got = 0;
  while (got < max) {
    const chunk = Math.min(64, max - got);
    try {
      parts.push(ctx.read(addr + BigInt(got), chunk));
      got += chunk;
    } catch (e) {
      if (!(e instanceof DbgError) || e.code !== 'unmapped') throw e;
      for (let k = 0; k < chunk; k++) {
        try {
          parts.push(ctx.read(addr + BigInt(got), 1));
          got++;
        } catch {
          if (got === 0) throw e;
          return Buffer.concat(parts);
        }
      }
    }
  }
  return Buffer.concat(parts);
}

function strings(ctx: FormatContext, iob: Iob, addr: bigint, n: number, esc: boolean): bigint {
  for (let k = 0; k < n; k++) {
    const b = readUpTo(ctx, addr, MAX_STRING);
    let end = b.indexOf(0);
    const terminated = end >= 0;
    if (!terminated) end = b.length;
    const s = b.toString('latin1', 0, end);
    iob.text(esc ? escape(s) : s);
    if (k + 1 < n) iob.text('\\0');
    addr += BigInt(end) + (terminated ? 1n : 0n);
  }
  return addr;
}

function instructions(ctx: FormatContext, iob: Iob, addr: bigint, n: number, withAddr: boolean): bigint {
  const dis = ctx.disassembler;
  if (!dis) throw errors.state('the disassembler is not loaded');
  for (let k = 0; k < n; k++) {
    const bytes = readUpTo(ctx, addr, 16);
    const [insn] = dis.decode(bytes, addr, 1);
    if (!insn) throw errors.badInput(`no valid instruction at ${'0x' + addr.toString(16)} (bytes ${bytes.subarray(0, 8).toString('hex')})`);
    const text = formatInstruction(insn, ctx.symbolic.bind(ctx));
    if (withAddr) {
      const word = bytes.length >= 4 ? (ctx.littleEndian ? bytes.readUInt32LE(0) : bytes.readUInt32BE(0)) : 0;
      iob.text(`${addr.toString(16)} ${word.toString(16)}: ${text}\n`);
    } else {
      iob.text(text + '\n');
    }
    addr += BigInt(insn.size);
  }
  return addr;
}
