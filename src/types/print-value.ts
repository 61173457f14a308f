import { DbgError, isDbgError } from '../common/errors.js';
import { findMember, isCompound, memberLabel, resolveType, sizeOf, typeName, type CompoundType, type Member, type Type } from './type.js';

/**
 * Typed values printed as illumos MDB's ::print prints them (mdb_print.c): one line per member,
 * indented four spaces a level; integers in hex (`0` for zero) unless decimal was asked for
 * (`0t` prefix); pointers as `sym+off` or hex, char pointers followed by their string; char
 * arrays as `[ "text" ]`; other arrays as `[ a, b, ... ]` up to a limit; enums as `value (NAME)`;
 * `-t` puts each member's type before its name, `-a` its address.
 */

/** What the printer needs of a target: bytes, and names for addresses. */
export interface ValueMemory {
  read(addr: bigint, length: number): Buffer;
  readonly littleEndian: boolean;
  /** `sym+0x10` for an address inside a symbol, else undefined. */
  symbolize?(addr: bigint): string | undefined;
}

export interface PrintOptions {
  /** -t: the type before each name. */
  readonly showType?: boolean;
  /** -a: the address before each name. */
  readonly showAddr?: boolean;
  /** -d: decimal; -x: hex (the default, but also makes signed bit fields hex). */
  readonly radix?: 'hex' | 'dec';
  /** -l: elements of a non-char array shown before `...`; undefined: no limit (-L). */
  readonly arrayLimit?: number;
  /** -n: pointers as plain hex, never symbol+offset. */
  readonly noSymbolic?: boolean;
  /** How deep structures nest before `{ ... }` (MDB's -s). */
  readonly maxDepth?: number;
}

const DEFAULT_DEPTH = 32;
const STRING_MAX = 256;
const MAX_LINES = 200_000;

export interface PathResult {
  /** Where the member is (byte address; with bitOffset for a bit field). */
  readonly addr: bigint;
  readonly type: Type;
  /** Bits past addr, for a bit field. */
  readonly bitShift: number;
  readonly bitSize?: number;
  /** What children are prefixed with: "." after a struct, "->" after [0] of a pointer. */
  readonly suffix: string;
}

/**
 * Follows an MDB member path from an object of type `t` at `addr`: `a.b`, `a->b`, `a[3]`,
 * `->next->pid`. A leading name without `.`/`->` takes `->` when `t` is a pointer, else `.`.
 * `addr` may be undefined when nothing needs reading (no `->` and no pointer index): offsets only.
 */
export function followPath(t: Type, addr: bigint | undefined, path: string, mem: ValueMemory | undefined): PathResult {
  let cur = t;
  let at = addr;
  let bitShift = 0;
  let bitSize: number | undefined;
  let i = 0;
  let lastDeref = false;
  const deref = () => {
    const p = resolveType(cur);
    if (p.kind !== 'pointer') throw new DbgError('bad-input', `${typeName(cur)} is not a pointer type`);
    if (at === undefined || !mem) throw new DbgError('bad-input', `following ${typeName(cur)} in "${path}" needs an address`);
    at = readUnsigned(mem, at, p.size);
    cur = p.target;
  };
  const first = path[0];
  if (first !== '.' && first !== '-' && first !== '[') path = (resolveType(t).kind === 'pointer' ? '->' : '.') + path;
  while (i < path.length) {
    let delim: '.' | '->' | '[';
    if (path.startsWith('->', i)) {
      delim = '->';
      i += 2;
    } else if (path[i] === '.' || path[i] === '[') {
      delim = path[i] as '.' | '[';
      i++;
    } else throw new DbgError('bad-input', `'${path[i]}' is not a valid delimiter in member path "${path}" (use ., -> or [N])`);
    if (bitSize !== undefined) throw new DbgError('bad-input', `bit field ${path.slice(0, i - delim.length)} has no members`);
    if (delim === '[') {
      const end = path.indexOf(']', i);
      if (end < 0) throw new DbgError('bad-input', `no trailing ']' in member path "${path}"`);
      const text = path.slice(i, end).trim();
      const index = parseIndex(text, path);
      i = end + 1;
      const r = resolveType(cur);
      if (r.kind === 'pointer') {
        deref();
        lastDeref = index === 0n;
      } else if (r.kind === 'array') {
        if (r.length !== undefined && index >= BigInt(r.length)) throw new DbgError('bad-input', `index ${index} is outside of array bounds [0 .. ${r.length - 1}] of ${typeName(cur)}`);
        cur = r.element;
        lastDeref = false;
      } else throw new DbgError('bad-input', `cannot index into ${typeName(cur)}: not an array or pointer`);
      const es = sizeOf(cur);
      if (es === undefined) throw new DbgError('bad-input', `cannot index an array of ${typeName(cur)}: its size is unknown`);
      if (at !== undefined) at += index * BigInt(es);
      continue;
    }
    if (delim === '->') deref();
    const r = resolveType(cur);
    if (!isCompound(r)) throw new DbgError('bad-input', `${typeName(cur)} is not a struct or union type (member path "${path}")`);
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(path.slice(i));
    if (!m) throw new DbgError('bad-input', `expected a member name at "${path.slice(i)}" in "${path}"`);
    const member = findMember(r, m[0]);
    if (!member) throw new DbgError('bad-input', `failed to find member ${m[0]} of ${typeName(cur)}${memberHint(r)}`);
    i += m[0].length;
    if (at !== undefined) at += BigInt(Math.floor(member.bitOffset / 8));
    bitShift = member.bitOffset % 8;
    bitSize = member.bitSize;
    cur = member.type;
    lastDeref = false;
  }
  const kind = resolveType(cur);
  return { addr: at ?? 0n, type: cur, bitShift, ...(bitSize !== undefined ? { bitSize } : {}), suffix: isCompound(kind) ? (lastDeref ? '->' : '.') : '' };
}

function memberHint(t: CompoundType): string {
  const names = t.members.map((m) => m.name).filter((n) => n !== undefined);
  if (names.length === 0) return ' (it has no members: is it only declared?)';
  return ` (members: ${names.slice(0, 12).join(', ')}${names.length > 12 ? ', ...' : ''})`;
}

function parseIndex(text: string, path: string): bigint {
  try {
    if (/^0t\d+$/i.test(text)) return BigInt(text.slice(2));
    if (/^(0x)?[0-9a-f]+$/i.test(text)) return BigInt(text.toLowerCase().startsWith('0x') ? text : '0x' + text);
  } catch {
    /* fall through */
  }
  throw new DbgError('bad-input', `bad array index "${text}" in member path "${path}" (hex, or 0t for decimal)`);
}

export function readUnsigned(mem: ValueMemory, addr: bigint, size: number): bigint {
  const b = mem.read(addr, size);
  let v = 0n;
  for (let k = 0; k < size; k++) v |= BigInt(b[mem.littleEndian ? k : size - 1 - k]!) << BigInt(8 * k);
  return v;
}

/** The bits of a bit field: `bits` bits starting `shift` bits into the byte at addr. */
export function readBits(mem: ValueMemory, addr: bigint, shift: number, bits: number): bigint {
  const bytes = Math.ceil((shift + bits) / 8);
  const raw = readUnsigned(mem, addr, bytes);
  const v = mem.littleEndian ? raw >> BigInt(shift) : raw >> BigInt(bytes * 8 - shift - bits);
  return v & ((1n << BigInt(bits)) - 1n);
}

/** MDB's %#x / %#d: `0` for zero, else `0x...` or `0t...`. */
function intText(v: bigint, dec: boolean): string {
  if (v === 0n) return '0';
  if (!dec) return '0x' + v.toString(16);
  return v < 0n ? `-0t${-v}` : `0t${v}`;
}

function charText(c: number): string {
  const esc: Record<number, string> = { 0: '\\0', 7: '\\a', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r', 39: "\\'", 92: '\\\\' };
  if (esc[c] !== undefined) return `'${esc[c]}'`;
  if (c >= 0x20 && c < 0x7f) return `'${String.fromCharCode(c)}'`;
  return `'\\${c.toString(8).padStart(3, '0')}'`;
}

function isPrintable(b: Buffer): boolean {
  for (const c of b) if (c < 0x20 || c >= 0x7f) if (c !== 9 && c !== 10) return false;
  return true;
}

/** The bytes of the NUL-terminated string at addr, up to `max`; undefined when unreadable. */
function readCString(mem: ValueMemory, addr: bigint, max: number): Buffer | undefined {
  const parts: Buffer[] = [];
  let total = 0;
  while (total < max) {
    const chunk = Math.min(64, max - total);
    let b: Buffer;
    try {
      b = mem.read(addr + BigInt(total), chunk);
    } catch {
      try {
        b = mem.read(addr + BigInt(total), 1);
      } catch {
        return total > 0 ? Buffer.concat(parts) : undefined;
      }
    }
    const nul = b.indexOf(0);
    if (nul >= 0) {
      parts.push(b.subarray(0, nul));
      return Buffer.concat(parts);
    }
    parts.push(b);
    total += b.length;
  }
  return Buffer.concat(parts);
}

class Printer {
  readonly lines: string[] = [];
  private cur = '';
  constructor(
    readonly mem: ValueMemory | undefined,
    readonly o: PrintOptions,
  ) {}

  emit(text: string): void {
    this.cur += text;
  }
  newline(): void {
    this.lines.push(this.cur);
    this.cur = '';
    this.budget();
  }
  private budget(): void {
    if (this.lines.length > MAX_LINES) throw new DbgError('bad-input', `::print output passes ${MAX_LINES} lines: limit the depth with -s or the arrays with -l`);
  }
  finish(): string[] {
    if (this.cur) this.newline();
    // A layout without values ends each name with MDB's separator space, kept as MDB prints it
    // (illumos's typedef tests: `    0 int frodo `); values leave no trailing blanks.
    return this.mem === undefined ? this.lines : this.lines.map((l) => l.trimEnd());
  }

  get dec(): boolean {
    return this.o.radix === 'dec';
  }

  /** The value of a scalar (not struct, union or array) at addr. */
  scalar(t: Type, addr: bigint, bitShift: number, bitSize: number | undefined): string {
    const mem = this.mem!;
    const r = resolveType(t);
    const size = 'size' in r ? r.size : undefined;
    if (size !== undefined && (size < 1 || size > 16) && r.kind !== 'void' && r.kind !== 'function') return `??? (a ${size}-byte scalar)`;
    switch (r.kind) {
      case 'int':
      case 'bool': {
        const signed = r.kind === 'int' && r.signed;
        if (bitSize !== undefined) {
          const raw = readBits(mem, addr, bitShift, bitSize);
          // MDB: signed bit fields in decimal unless -x; unsigned ones in hex unless -d.
          if (signed && this.o.radix !== 'hex') return intText(BigInt.asIntN(bitSize, raw), true);
          return intText(raw, this.dec);
        }
        if (isChar(r)) return charText(Number(readUnsigned(mem, addr, 1)));
        const raw = readUnsigned(mem, addr, r.size);
        if (!this.dec) return intText(raw, false);
        return intText(signed ? BigInt.asIntN(r.size * 8, raw) : raw, true);
      }
      case 'float': {
        const b = mem.read(addr, r.size);
        if (r.size === 4) return floatText(mem.littleEndian ? b.readFloatLE(0) : b.readFloatBE(0));
        if (r.size === 8) return floatText(mem.littleEndian ? b.readDoubleLE(0) : b.readDoubleBE(0));
        return `??? (unsupported FP format / ${r.size * 8} bits)`;
      }
      case 'enum': {
        const size = r.size ?? 4;
        const raw = bitSize !== undefined ? readBits(mem, addr, bitShift, bitSize) : readUnsigned(mem, addr, size);
        const v = r.signed ? BigInt.asIntN(bitSize ?? size * 8, raw) : raw;
        const e = r.enumerators.find((x) => x.value === v);
        const flags = isFlagEnum(r.enumerators.map((x) => x.value));
        // MDB: decimal, unless -x or every enumerator is a power of two (flags: hex, names or-ed).
        return `${intText(v, !(flags || this.o.radix === 'hex'))} (${e ? e.name : flags ? flagNames(r.enumerators, v) : '???'})`;
      }
      case 'pointer': {
        const v = readUnsigned(mem, addr, r.size);
        if (v === 0n) return '0';
        if (this.o.noSymbolic) return '0x' + v.toString(16);
        let text = this.mem?.symbolize?.(v) ?? '0x' + v.toString(16);
        const target = resolveType(r.target);
        if (isChar(target)) {
          const s = readCString(mem, v, STRING_MAX);
          if (s && isPrintable(s)) text += ` "${s.toString('latin1')}${s.length >= STRING_MAX ? '...' : ''}"`;
        }
        return text;
      }
      case 'function':
        return this.mem?.symbolize?.(addr) ?? '0x' + addr.toString(16);
      case 'void':
        return '???';
      default:
        throw new Error(`scalar() on ${r.kind}`);
    }
  }

  /**
   * Prints one element: `name` at `depth` (indent (depth + nest) * 4), `prefix` replacing the
   * name at depth 0 and prefixing names at depth 1 (MDB's member-path display).
   */
  element(t: Type, name: string, addr: bigint | undefined, bitShift: number, bitSize: number | undefined, depth: number, nest: number, prefix: string | undefined, suffix: string, delim: string): void {
    const r = resolveType(t);
    const showName = true;
    if (this.o.showType || showName || this.o.showAddr) this.emit(' '.repeat((depth + nest) * 4));
    if (this.o.showAddr && addr !== undefined) this.emit(bitShift ? `${addr.toString(16)}.${bitShift.toString(16)} ` : `${addr.toString(16)} `);
    if (this.o.showType) {
      // An anonymous struct or union is named by its kind alone, as MDB shows it: `union  <anon>`.
      // A bit field's type is its integer with the width, as CTF has it: `unsigned int:3`.
      const tn = isCompound(t) && t.tag === undefined ? `${t.kind} ` : bitSize !== undefined ? `${typeName(r)}:${bitSize}` : typeName(t);
      this.emit(tn.endsWith('*') && (depth !== 0 || prefix !== undefined) ? tn : tn + ' ');
    }
    if (prefix !== undefined && depth <= 1) this.emit(prefix + (depth === 0 ? '' : suffix));
    if (!(depth === 0 && prefix !== undefined)) this.emit(name);
    if (this.o.showType && bitSize !== undefined) this.emit(` :${bitSize}`);
    const showVal = addr !== undefined && this.mem !== undefined;
    if (depth !== 0 || prefix !== undefined) this.emit(showVal ? ' = ' : ' ');
    if (isCompound(r)) {
      this.compound(r, addr, depth, nest, prefix, suffix, delim);
      return;
    }
    if (!showVal) {
      this.emit(delim);
      return;
    }
    if (r.kind === 'array') {
      this.array(r.element, r.length, addr!, depth, nest);
      this.emit(delim);
      return;
    }
    let text: string;
    try {
      text = this.scalar(t, addr!, bitShift, bitSize);
    } catch (e) {
      if (!isDbgError(e)) throw e;
      text = `??? (${e.message})`;
    }
    this.emit(text + delim);
  }

  private compound(r: CompoundType, addr: bigint | undefined, depth: number, nest: number, prefix: string | undefined, suffix: string, delim: string): void {
    const max = this.o.maxDepth ?? DEFAULT_DEPTH;
    if (r.size === undefined && r.members.length === 0) {
      this.emit(`; <forward declaration of ${r.kind} ${r.tag ?? '?'}>`);
      this.emit(delim === '\n' ? '\n' : delim);
      if (delim === '\n') this.flushNewlines();
      return;
    }
    if (depth >= max) {
      this.emit('{ ... }' + delim);
      this.flushNewlines();
      return;
    }
    this.emit('{');
    this.newline();
    for (const m of r.members) this.member(m, addr, depth + 1, nest, prefix, suffix);
    this.emit(`${' '.repeat((depth + nest) * 4)}}${depth === 0 && nest > 0 ? ',' : ''}`);
    if (delim === '\n') this.newline();
    else this.emit(delim);
  }

  private member(m: Member, base: bigint | undefined, depth: number, nest: number, prefix: string | undefined, suffix: string): void {
    const addr = base === undefined ? undefined : base + BigInt(Math.floor(m.bitOffset / 8));
    this.element(m.type, memberLabel(m) ?? '<anon>', addr, m.bitOffset % 8, m.bitSize, depth, nest, prefix, suffix, '\n');
    this.flushNewlines();
  }

  /** Turns "\n" emitted inline into line breaks. */
  flushNewlines(): void {
    if (!this.cur.includes('\n')) return;
    const parts = this.cur.split('\n');
    this.cur = parts.pop()!;
    for (const p of parts) this.lines.push(p);
    this.budget();
  }

  private array(elem: Type, length: number | undefined, addr: bigint, depth: number, nest: number): void {
    const mem = this.mem!;
    const er = resolveType(elem);
    const n = length ?? 0;
    if (isChar(er) && n > 0 && n <= 1 << 20) {
      let bytes: Buffer | undefined;
      try {
        bytes = mem.read(addr, n);
      } catch (e) {
        if (!isDbgError(e)) throw e;
        this.emit(`??? (${e.message})`);
        return;
      }
      const nul = bytes.indexOf(0);
      const str = nul >= 0 ? bytes.subarray(0, nul) : bytes;
      if (str.length > 0 && isPrintable(str)) {
        this.emit(`[ "${str.toString('latin1')}" ]`);
        return;
      }
    }
    const limit = this.o.arrayLimit === undefined ? n : Math.min(n, this.o.arrayLimit);
    if (limit === 0) {
      this.emit('[ ... ]');
      return;
    }
    const es = sizeOf(elem) ?? 0;
    if (isCompound(er)) {
      this.emit('[');
      this.newline();
      for (let i = 0; i < limit; i++) {
        this.element(elem, '', addr + BigInt(i * es), 0, undefined, 0, nest + depth + 1, undefined, '', '\n');
        this.flushNewlines();
      }
      this.emit(`${' '.repeat((depth + nest) * 4)}${limit < n ? '... ]' : ']'}`);
      return;
    }
    const parts: string[] = [];
    for (let i = 0; i < limit; i++) {
      const a = addr + BigInt(i * es);
      if (er.kind === 'array') {
        const sub = new Printer(this.mem, this.o);
        sub.array(er.element, er.length, a, 0, 0);
        parts.push(sub.finish().join(' '));
      } else {
        try {
          parts.push(this.scalar(elem, a, 0, undefined));
        } catch (e) {
          if (!isDbgError(e)) throw e;
          parts.push('???');
        }
      }
    }
    this.emit(`[ ${parts.join(', ')}${limit < n ? ', ...' : ''} ]`);
  }
}

/** MDB's IS_CHAR: a signed one-byte character type (plain char on x86); unsigned char is a number. */
function isChar(t: Type): boolean {
  return t.kind === 'int' && t.isChar && t.signed && t.size === 1;
}

function isFlagEnum(values: readonly bigint[]): boolean {
  // MDB's enum_is_p2: every value a power of two (or zero), and more than one of them.
  let n = 0;
  for (const v of values) {
    if (v < 0n) return false;
    if (v !== 0n && (v & (v - 1n)) !== 0n) return false;
    if (v !== 0n) n++;
  }
  return n > 1 && values.length > 2;
}

function flagNames(list: readonly { name: string; value: bigint }[], v: bigint): string {
  const names: string[] = [];
  let rest = v;
  for (const e of list) {
    if (e.value !== 0n && (v & e.value) === e.value) {
      names.push(e.name);
      rest &= ~e.value;
    }
  }
  if (rest !== 0n) names.push('0x' + rest.toString(16));
  return names.join('|') || '0';
}

function floatText(v: number): string {
  if (!Number.isFinite(v)) return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Inf' : '-Inf';
  const [mant, exp] = v.toExponential(7).split('e') as [string, string];
  const sign = exp.startsWith('-') ? '-' : '+';
  const digits = exp.replace(/^[+-]/, '').padStart(2, '0');
  // MDB signs every value: +3.9829317e-60 (illumos's tst.anon).
  return `${mant.startsWith('-') ? '' : '+'}${mant}e${sign}${digits}`;
}

/**
 * The lines ::print shows for an object of type `t` at `addr` (undefined: the type's layout
 * without values). `path` is an optional member path, shown as MDB shows it (`a.b = value`,
 * children as `a.b.c`).
 */
export function printValue(t: Type, addr: bigint | undefined, mem: ValueMemory | undefined, opts: PrintOptions, path?: string): string[] {
  const p = new Printer(addr === undefined ? undefined : mem, opts);
  if (path !== undefined) {
    const r = followPath(t, addr, path, addr === undefined ? undefined : mem);
    p.element(r.type, '', addr === undefined ? undefined : r.addr, r.bitShift, r.bitSize, 0, 0, path, r.suffix, '\n');
  } else {
    p.element(t, '', addr, 0, undefined, 0, 0, undefined, '', '\n');
  }
  p.flushNewlines();
  return p.finish();
}
