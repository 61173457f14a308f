/**
 * Typed dcmds over the modules' DWARF: ::print, ::sizeof, ::offsetof, ::whatis, ::enum.
 *
 * Output follows illumos MDB (mdb_print.c): `addr::print struct task` prints the members one a
 * line, four spaces a level; `::sizeof struct task` prints `sizeof (struct task) = 0x38`;
 * `::offsetof struct task next` prints `offsetof (struct task, next) = 0x20`. A type name may
 * span words (`struct task`, `unsigned int`, `char *`); the words after it are member paths.
 */

import { DbgError, errors } from '../../common/errors.js';
import { hex, hexAddr } from '../../common/format.js';
import { followPath, printValue, readBits, readUnsigned, type PrintOptions, type ValueMemory } from '../../types/print-value.js';
import { isCompound, resolveType, sizeOf, typeName, type Type } from '../../types/type.js';
import { TypeSpace } from '../../types/type-space.js';
import { FILE_LINE, lineAddresses, sourceAt } from '../../types/frame-source.js';
import { ObjectSpace } from '../../types/typed-object.js';
import type { Dcmd, DcmdModule, SessionView } from '../dcmd.js';
import { symbolName } from '../names.js';
import { readUpTo } from '../formats.js';
import { parseFlags } from '../parse-flags.js';
import { setSourcePath, sourcePath } from '../source-frames.js';
import { syntheticTypes, type SyntheticTypes } from '../synthetic-types.js';
import { symbolText } from '../../symbols/symbol-text.js';

export function typeSpace(s: SessionView): TypeSpace {
  let t = s.state.get('types') as TypeSpace | undefined;
  if (!t || t.symbols !== s.target.symbols) {
    t = new SessionTypes(s.target.symbols, () => syntheticTypes(s));
    s.state.set('types', t);
  }
  return t;
}

/** The target's types, then the ones ::typedef made (MDB looks in the target's CTF first, its synthetic types last). */
class SessionTypes extends TypeSpace {
  constructor(
    symbols: TypeSpace['symbols'],
    private readonly synthetic: () => SyntheticTypes,
  ) {
    super(symbols);
  }

  override find(name: string): Type | undefined {
    return super.find(name) ?? this.synthetic().find(name);
  }

  override where(): string {
    const made = this.synthetic().names().length > 0 || this.synthetic().importedFiles().length > 0;
    return made ? `${super.where()}, nor made by ::typedef` : super.where();
  }
}

/** What the value printer reads through: the session's target, as the selected thread sees it. */
export function sessionMemory(s: SessionView): ValueMemory {
  const t = s.target;
  return {
    read: (a, n) => t.readVirtual(a, n, s.thread || undefined),
    littleEndian: t.arch.littleEndian,
    symbolize: (a) => symbolName(t, a),
  };
}

/**
 * ::print -p (MDB's): the object is at a physical address, and so is every address it leads to
 * through its members (pointers still print as they are stored).
 */
function physicalMemory(s: SessionView, addr: bigint | undefined): ValueMemory {
  const t = s.target;
  const phys = t.caps.physical;
  if (!phys) throw errors.unsupported(t.name, '::print -p (physical memory)');
  if (addr === undefined) throw errors.badInput('::print -p needs a physical address: addr::print -p TYPE');
  return { read: (a, n) => phys.readPhysical(a, n), littleEndian: t.arch.littleEndian, symbolize: (a) => symbolName(t, a) };
}

/** Typed objects over the session's target, for dmods: `objects(session).object('init_task')`. */
export function objects(s: SessionView): ObjectSpace {
  return new ObjectSpace(typeSpace(s), s.target.symbols, sessionMemory(s), s.target.arch.pointerBytes);
}

/**
 * The longest run of leading words that names a type (at most 5 words, `*` words included), and
 * how many words it took; undefined when no prefix is a type.
 */
export function takeType(space: TypeSpace, words: readonly string[]): { type: Type; name: string; used: number } | undefined {
  for (let k = Math.min(words.length, 5); k >= 1; k--) {
    const name = words.slice(0, k).join(' ');
    if (/^[*\s]/.test(name)) continue;
    const type = space.find(name);
    if (type) return { type, name: name.replace(/\s+\*/g, ' *'), used: k };
  }
  return undefined;
}

function needType(s: SessionView, dcmd: string, usage: string, words: readonly string[]): { type: Type; name: string; used: number } {
  if (words.length === 0) throw errors.badInput(`::${dcmd} needs a type name (usage: ${usage})`);
  const space = typeSpace(s);
  const t = takeType(space, words);
  if (!t) throw new DbgError('no-symbol', `::${dcmd}: unknown type "${words.join(' ')}": ${space.where()}`);
  return t;
}

/** The type of the variable whose symbol starts at `addr`, for `sym::print`. */
function typeAtSymbol(s: SessionView, addr: bigint): { type: Type; name: string } {
  const r = s.target.symbols.resolve(addr);
  if (!r || !r.inside || r.offset !== 0n) throw new DbgError('no-symbol', `::print: no symbol starts at ${hex(addr)}: give a type (addr::print TYPE)`);
  const v = typeSpace(s).variable(r.sym.name, r.module);
  if (!v) throw new DbgError('no-symbol', `::print: no type data for ${r.sym.name} in the debug info of ${r.module.name}: give a type (addr::print TYPE)`);
  return { type: v.type, name: typeName(v.type) };
}

const print: Dcmd = {
  name: 'print',
  usage: '[addr]::print [-adnptxL] [-l limit] [-s depth] [TYPE] [member[.member|->member|[i]]...]',
  help:
    'print memory at addr as a typed object (the type of the symbol at addr when none is given), or the layout of TYPE\n' +
    '-a show addresses, -t show types, -d decimal, -x hex, -n no symbolic pointers, -p addr is physical,\n' +
    '-l N show N elements of arrays (default 0t10), -L all of them, -s N nest at most N levels.\n' +
    'Each member path prints that member: `tasks::print struct task name next->pid`.',
  run(s, inv, out) {
    // A member path may start with `->` (`item_head::print ->next`): a word, not a flag.
    const words = inv.args.map((a) => (a.startsWith('->') ? '\0' + a : a));
    const parsed = parseFlags(this.name, this.usage, words, { booleans: 'adnptxL', strings: 'ls' });
    const flags = parsed.flags;
    const rest = parsed.rest.map((a) => a.replace(/^\0/, ''));
    const addr = inv.addr;
    let type: Type;
    let paths: readonly string[];
    const space = typeSpace(s);
    // `foo::print foo`: a word that is a member of the symbol's own type is that member, even when
    // a type has the same name (MDB: `struct foo` is the type; `foo` the member).
    const own = addr !== undefined && rest.length > 0 ? memberOfSymbol(s, addr, rest[0]!) : undefined;
    const t = rest.length > 0 && !own ? takeType(space, rest) : undefined;
    if (own) {
      type = own;
      paths = rest;
    } else if (t) {
      type = t.type;
      paths = rest.slice(t.used);
    } else if (addr !== undefined) {
      type = typeAtSymbol(s, addr).type;
      paths = rest;
    } else if (rest.length === 0) {
      throw errors.badInput(`::print needs an address or a type (usage: ${this.usage})`);
    } else {
      throw new DbgError('no-symbol', `::print: unknown type "${rest.join(' ')}": ${space.where()}`);
    }
    const num = (c: string) => {
      const v = flags.get(c);
      if (typeof v !== 'string') return undefined;
      const n = s.evaluate(v);
      if (n > 0x100000n) throw errors.badInput(`::print: -${c} ${v} is too large`);
      return Number(n);
    };
    const opts: PrintOptions = {
      showType: flags.has('t'),
      showAddr: flags.has('a'),
      ...(flags.has('d') ? { radix: 'dec' as const } : flags.has('x') ? { radix: 'hex' as const } : {}),
      noSymbolic: flags.has('n'),
      ...(flags.has('L') ? {} : { arrayLimit: num('l') ?? 10 }),
      ...(num('s') !== undefined ? { maxDepth: num('s')! } : {}),
    };
    const mem = flags.has('p') ? physicalMemory(s, addr) : sessionMemory(s);
    if (addr !== undefined) {
      // Fail with the target's message when the object cannot be read at all.
      const size = sizeOf(type);
      if (size !== undefined && size > 0 && paths.length === 0) mem.read(addr, Math.min(size, 1));
    }
    if (out.piping && out.value) {
      // Into a pipe (MDB): each member's value when it is a scalar or a pointer, else its address;
      // the object's address when no member is named.
      if (addr === undefined) throw errors.badInput('::print into a pipe needs an address');
      if (paths.length === 0) out.value(addr);
      for (const p of paths) out.value(memberValue(type, addr, p, mem));
      return;
    }
    // Without an address, -a shows offsets (MDB lays the type out at 0) and nothing is read.
    const at = addr ?? (opts.showAddr ? 0n : undefined);
    const from = addr === undefined ? undefined : mem;
    const lines = paths.length === 0 ? printValue(type, at, from, opts) : paths.flatMap((p) => printPath(type, at, from, opts, p));
    if (addr !== undefined) s.dot = addr + BigInt(sizeOf(type) ?? 0);
    if (out.jsonMode) {
      out.json({ type: typeName(type), addr: addr !== undefined ? hexAddr(addr, s.target.arch) : null, size: sizeOf(type) ?? null, lines });
      return;
    }
    for (const l of lines) out.line(l);
  },
};

/**
 * One member path's lines; a number (`$[8]` arrives as 0x8) is MDB's offset form: the member that
 * holds that byte offset, an anonymous one shown as <anon> with its members as <anon>.name.
 */
function printPath(type: Type, addr: bigint | undefined, mem: ValueMemory | undefined, opts: PrintOptions, path: string): string[] {
  if (!/^0x[0-9a-f]+$/i.test(path)) return printValue(type, addr, mem, opts, path);
  const offset = Number(BigInt(path));
  const t = resolveType(type);
  if (!isCompound(t)) throw errors.badInput(`::print: offset ${path} needs a struct or union, not ${typeName(type)}`);
  const m = t.members.find((x) => {
    const start = Math.floor(x.bitOffset / 8);
    return offset >= start && offset < start + Math.max(1, sizeOf(x.type) ?? 0);
  });
  if (!m) throw errors.badInput(`::print: no member of ${typeName(type)} holds offset ${path}`);
  if (m.name !== undefined) return printValue(type, addr, mem, opts, m.name);
  const at = addr === undefined ? undefined : addr + BigInt(Math.floor(m.bitOffset / 8));
  const inner = printValue(m.type, at, mem, opts);
  return inner.map((l, i) => (i === 0 ? `<anon> = ${l.trimStart()}` : /^ {4}[^\s}]/.test(l) ? `    <anon>.${l.slice(4)}` : l));
}

/** The type of the symbol at `addr` when `word` is a member path of it; else undefined. */
function memberOfSymbol(s: SessionView, addr: bigint, word: string): Type | undefined {
  if (!/^[A-Za-z_]/.test(word)) return undefined;
  let type: Type;
  try {
    type = typeAtSymbol(s, addr).type;
    followPath(type, 0n, word, undefined);
  } catch (e) {
    if (e instanceof DbgError) return undefined;
    throw e;
  }
  return type;
}

/** A member's value as a number (integers sign-extended to 64 bits, pointers, enums, bit fields), or its address when it is an aggregate. */
function memberValue(type: Type, addr: bigint, path: string, mem: ValueMemory): bigint {
  return memberNumber(type, addr, path, mem).num;
}

function memberNumber(type: Type, addr: bigint, path: string, mem: ValueMemory): { num: bigint; bytes: number } {
  const r = followPath(type, addr, path, mem);
  const t = resolveType(r.type);
  if (r.bitSize !== undefined) {
    const v = readBits(mem, r.addr, r.bitShift, r.bitSize);
    return { num: t.kind === 'int' && t.signed ? BigInt.asUintN(64, BigInt.asIntN(r.bitSize, v)) : v, bytes: sizeOf(t) ?? 8 };
  }
  if (t.kind === 'int' || t.kind === 'bool' || t.kind === 'enum' || t.kind === 'pointer') {
    const size = sizeOf(t) ?? 0;
    if (size < 1 || size > 8) throw errors.badInput(`member ${path} of ${typeName(type)} is ${size} bytes, too wide for a value`);
    const v = readUnsigned(mem, r.addr, size);
    const signed = (t.kind === 'int' && t.signed) || (t.kind === 'enum' && t.signed);
    return { num: signed ? BigInt.asUintN(64, BigInt.asIntN(size * 8, v)) : v, bytes: size };
  }
  return { num: r.addr, bytes: 8 };
}

/** A size or offset as MDB's %#r prints one in hexadecimal: `8`, `0x10` (a digit needs no 0x). */
function mdbNumber(v: bigint | number): string {
  const n = BigInt(v);
  return n < 10n ? n.toString() : '0x' + n.toString(16);
}

const sizeofDcmd: Dcmd = {
  name: 'sizeof',
  usage: '::sizeof TYPE',
  help: 'the size of a type in bytes',
  run(s, inv, out) {
    const { rest } = parseFlags(this.name, this.usage, inv.args, {});
    const t = needType(s, this.name, this.usage, rest);
    if (t.used < rest.length) throw errors.badInput(`::sizeof: unexpected "${rest.slice(t.used).join(' ')}" after type ${t.name}`);
    // void is 0 bytes, as MDB says (CTF's void is an integer of no bits).
    const size = resolveType(t.type).kind === 'void' ? 0 : sizeOf(t.type);
    if (size === undefined) throw errors.badInput(`::sizeof: ${typeName(t.type)} has no size (incomplete, void, a function or an unbounded array)`);
    if (out.jsonMode) out.json({ type: typeName(t.type), size });
    else out.line(`sizeof (${t.name}) = ${mdbNumber(size)}`);
  },
};

const offsetof: Dcmd = {
  name: 'offsetof',
  usage: '::offsetof TYPE MEMBER',
  help: 'the offset of a member (a path: a.b, a[2]) from the start of a struct or union',
  run(s, inv, out) {
    const { rest } = parseFlags(this.name, this.usage, inv.args, {});
    const t = needType(s, this.name, this.usage, rest);
    const paths = rest.slice(t.used);
    if (paths.length !== 1) throw errors.badInput(`::offsetof needs one member after the type (usage: ${this.usage})`);
    const path = paths[0]!;
    if (!isCompound(resolveType(t.type))) throw errors.badInput(`::offsetof: ${typeName(t.type)} is not a struct or union type`);
    if (path.includes('->')) throw errors.badInput(`::offsetof: "${path}" goes through a pointer; an offset is only defined within one object`);
    const r = followPath(t.type, 0n, path.replace(/^\./, '.'), undefined);
    const bit = r.bitSize !== undefined && r.bitShift !== 0 ? `, bit ${r.bitShift}` : '';
    const size = r.bitSize !== undefined ? `${r.bitSize} bits` : mdbNumber(sizeOf(r.type) ?? 0);
    if (out.jsonMode) out.json({ type: typeName(t.type), member: path, offset: Number(r.addr), bit: r.bitShift, bitSize: r.bitSize ?? null, size: sizeOf(r.type) ?? null });
    else out.line(`offsetof (${t.name}, ${path}) = ${mdbNumber(r.addr)}${bit}, sizeof (...->${path}) = ${size}`);
  },
};

const enumDcmd: Dcmd = {
  name: 'enum',
  usage: '[value]::enum TYPE',
  help: "the values of an enum type, or the name of one value (addr is the value)",
  run(s, inv, out) {
    const { rest } = parseFlags(this.name, this.usage, inv.args, {});
    const t = needType(s, this.name, this.usage, rest);
    const r = resolveType(t.type);
    if (r.kind !== 'enum') throw errors.badInput(`::enum: ${typeName(t.type)} is not an enum type`);
    const list = inv.addr !== undefined ? r.enumerators.filter((e) => BigInt.asUintN(64, e.value) === BigInt.asUintN(64, inv.addr!)) : r.enumerators;
    if (inv.addr !== undefined && list.length === 0) throw errors.badInput(`::enum: ${hex(inv.addr)} is not a value of ${typeName(t.type)}`);
    if (out.jsonMode) {
      out.json(list.map((e) => ({ name: e.name, value: e.value.toString() })));
      return;
    }
    const w = Math.max(4, ...list.map((e) => e.name.length));
    out.line(`${'NAME'.padEnd(w)} VALUE`);
    for (const e of list) out.line(`${e.name.padEnd(w)} ${e.value}`);
  },
};

const whatis: Dcmd = {
  name: 'whatis',
  usage: 'addr::whatis',
  help: 'the variable an address lies in, and the member path inside it',
  run(s, inv, out) {
    const { rest } = parseFlags(this.name, this.usage, inv.args, {});
    if (rest.length > 0) throw errors.badInput(`::whatis: unexpected argument "${rest[0]}" (usage: ${this.usage})`);
    if (inv.addr === undefined) throw errors.badInput(`::whatis needs an address (usage: ${this.usage})`);
    const addr = inv.addr;
    const r = s.target.symbols.resolve(addr);
    if (!r || !r.inside) throw new DbgError('no-symbol', `${hex(addr)} is not inside any symbol`);
    const v = typeSpace(s).variable(r.sym.name, r.module);
    let path = '';
    let type: Type | undefined = v?.type;
    let off = Number(r.offset);
    for (let guard = 0; type && guard < 64; guard++) {
      const t = resolveType(type);
      if (t.kind === 'array') {
        const es = sizeOf(t.element);
        if (!es) break;
        const i = Math.floor(off / es);
        path += `[${i}]`;
        off -= i * es;
        type = t.element;
        continue;
      }
      if (!isCompound(t)) break;
      const m = t.members.find((x) => x.name !== undefined && x.bitOffset / 8 <= off && off < x.bitOffset / 8 + (sizeOf(x.type) ?? 0) && x.bitSize === undefined);
      if (!m) break;
      path += `.${m.name}`;
      off -= Math.floor(m.bitOffset / 8);
      type = m.type;
    }
    const where = symbolName(s.target, addr) ?? hex(addr);
    const desc = v ? `${symbolText(r.sym.name)}${path}${off ? ` + ${hex(off)}` : ''} (${typeName(type ?? v.type)})` : `${where} (no type data)`;
    if (out.jsonMode) out.json({ addr: hexAddr(addr, s.target.arch), symbol: symbolText(r.sym.name), path: path || null, offset: off, type: type ? typeName(type) : null });
    else out.line(`${addr.toString(16)} is ${where}, ${desc}`);
  },
};

const line: Dcmd = {
  name: 'line',
  usage: 'addr::line | ::line FILE:LINE',
  help:
    "source lines from the DWARF line tables: the line holding addr and the addresses its code spans (gdb's info line *addr),\n" +
    'or where FILE:LINE has code: one address per function, past the prologue at a function entry (where ::bp FILE:LINE stops)',
  run(s, inv, out) {
    const { rest } = parseFlags(this.name, this.usage, inv.args, {});
    const t = s.target;
    if (rest.length > 1) throw errors.badInput(`::line: one FILE:LINE at most (usage: ${this.usage})`);
    if (rest.length === 1) {
      if (inv.addr !== undefined) throw errors.badInput(`::line takes an address or FILE:LINE, not both (usage: ${this.usage})`);
      if (!FILE_LINE.test(rest[0]!)) throw errors.badInput(`::line: "${rest[0]}" is not FILE:LINE (usage: ${this.usage})`);
      const r = lineAddresses(t.symbols, rest[0]!);
      if (out.jsonMode) out.json(r.addrs.map((a) => ({ addr: hexAddr(a.addr, t.arch), file: r.file, line: a.line })));
      else for (const a of r.addrs) out.line(`${hexAddr(a.addr, t.arch)} ${symbolName(t, a.addr) ?? '?'}: file ${r.file}, line ${a.line}`);
      return;
    }
    if (inv.addr === undefined) throw errors.badInput(`::line needs an address or FILE:LINE (usage: ${this.usage})`);
    const src = sourceAt(t.symbols, inv.addr, false, true);
    const p = src?.place;
    if (!p) throw new DbgError('no-symbol', `no line number information for address ${hex(inv.addr)}${src ? '' : ' (no module with DWARF holds it: build with -g, or give the directory of its separate debug file with --debug-file-directory)'}`);
    const bias = src.module.bias ?? 0n;
    const start = p.start + bias;
    const end = p.end + bias;
    if (out.jsonMode) out.json({ file: p.file.name, line: p.line, start: hexAddr(start, t.arch), end: hexAddr(end, t.arch) });
    else out.line(`Line ${p.line} of "${p.file.name}" starts at address ${hexAddr(start, t.arch)} <${symbolName(t, start) ?? hex(start)}> and ends at ${hexAddr(end, t.arch)} <${symbolName(t, end) ?? hex(end)}>.`);
  },
};

const dir: Dcmd = {
  name: 'dir',
  usage: '::dir [-r] [DIR ...]',
  help: "where source files are looked for when they are not where the debug info says (gdb's directory): DIR first, then the path before;\n-r forgets the path; without DIR, prints it",
  run(s, inv, out) {
    const { flags, rest } = parseFlags(this.name, this.usage, inv.args, { booleans: 'r' });
    if (inv.addr !== undefined) throw errors.badInput(`::dir takes no address (usage: ${this.usage})`);
    const base = flags.has('r') ? [] : sourcePath();
    if (rest.length > 0 || flags.has('r')) setSourcePath([...rest, ...base.filter((d) => !rest.includes(d))], '::dir');
    if (out.jsonMode) out.json(sourcePath());
    else out.line(`Source directories searched: ${[...sourcePath(), '(the path the debug info gives)'].join(':')}`);
  },
};

const array: Dcmd = {
  name: 'array',
  usage: 'addr::array TYPE COUNT',
  help: 'the address of each of COUNT objects of TYPE from addr, one a line (for a pipe: addr::array struct item 3 | ::print struct item name)',
  run(s, inv, out) {
    const { rest } = parseFlags(this.name, this.usage, inv.args, {});
    if (inv.addr === undefined) throw errors.badInput(`::array needs the address of the first element (usage: ${this.usage})`);
    const t = needType(s, this.name, this.usage, rest);
    if (rest.length !== t.used + 1) throw errors.badInput(`::array needs a type and a COUNT (usage: ${this.usage})`);
    const count = s.evaluate(rest[t.used]!);
    if (count > 1_000_000n) throw errors.badInput(`::array: COUNT ${count} is too large (at most 0t1000000)`);
    const size = sizeOf(t.type);
    if (!size) throw errors.badInput(`::array: ${typeName(t.type)} has no size`);
    const addrs: bigint[] = [];
    for (let i = 0n; i < count; i++) addrs.push(inv.addr + i * BigInt(size));
    if (out.piping && out.value) for (const a of addrs) out.value(a);
    else if (out.jsonMode) out.json(addrs.map((a) => hexAddr(a, s.target.arch)));
    else for (const a of addrs) out.line(hex(a));
  },
};

/** The most nodes a typed ::list follows. */
const MAX_NODES = 1_000_000;

/**
 * `addr::list TYPE MEMBER`: the objects of a linked list from the object at addr. MEMBER is a
 * pointer to the next TYPE (a NULL-terminated list), or an embedded node whose first member points
 * at the same member of the next object (a circular `list_head`-style list, ended when it comes
 * back to the start); each object's address is yielded, never the node's.
 */
export function* typedList(s: SessionView, first: bigint, words: readonly string[]): Generator<bigint> {
  const t = needType(s, 'list', 'addr::list TYPE MEMBER', words);
  if (words.length !== t.used + 1) throw errors.badInput('::list needs a type and one MEMBER (usage: addr::list TYPE MEMBER)');
  const member = words[t.used]!;
  const mem = sessionMemory(s);
  const r = followPath(t.type, 0n, member, undefined);
  const off = r.addr;
  const mt = resolveType(r.type);
  const ptr = s.target.arch.pointerBytes;
  let embedded: boolean;
  if (mt.kind === 'pointer') embedded = false;
  else if (isCompound(mt) && mt.members[0] && resolveType(mt.members[0].type).kind === 'pointer') embedded = true;
  else throw errors.badInput(`::list: member ${member} of ${t.name} is ${typeName(r.type)}: neither a pointer to the next object nor a list node whose first member is one`);
  const seen = new Set<bigint>();
  let obj = first;
  while (obj !== 0n) {
    if (seen.has(obj)) {
      if (embedded && obj === first) return; // a circular list, back at its start
      throw new DbgError('corrupt', `list of ${t.name} cycles back to ${hex(obj)} after ${seen.size} objects`);
    }
    if (seen.size >= MAX_NODES) throw new DbgError('corrupt', `list of ${t.name} has more than ${MAX_NODES} objects`);
    seen.add(obj);
    yield obj;
    const next = readUnsigned(mem, obj + off, ptr);
    obj = embedded ? (next === 0n ? 0n : next - off) : next;
  }
}

const printf: Dcmd = {
  name: 'printf',
  usage: 'addr::printf FORMAT TYPE member...',
  help:
    'print members of the TYPE object at addr through a C format: %d %i %u %x %X %o (with h, hh, l, ll, width, -, 0, #),\n' +
    '%p, %c, %s (a char array or a char pointer), %a (the symbol at the value), %%; one member per conversion',
  run(s, inv, out) {
    if (inv.addr === undefined) throw errors.badInput(`::printf needs an address (usage: ${this.usage})`);
    const [format, ...words] = inv.args;
    if (format === undefined) throw errors.badInput(`::printf needs a FORMAT (usage: ${this.usage})`);
    const t = needType(s, this.name, this.usage, words);
    const members = words.slice(t.used);
    const mem = sessionMemory(s);
    const text = formatMembers(unescape(format), members, (m, conv) => {
      if (conv === 's') {
        const r = followPath(t.type, inv.addr!, m, mem);
        const rt = resolveType(r.type);
        if (rt.kind === 'array') return { str: cString(mem.read(r.addr, Math.min(sizeOf(rt) ?? 0, 4096))) };
        if (rt.kind === 'pointer') return { str: readCString(mem, readUnsigned(mem, r.addr, rt.size)) };
        throw errors.badInput(`::printf: %s needs a char array or pointer; member ${m} is ${typeName(r.type)}`);
      }
      return memberNumber(t.type, inv.addr!, m, mem);
    }, (a) => symbolName(s.target, a));
    if (out.jsonMode) out.json({ text });
    else for (const l of text.replace(/\n$/, '').split('\n')) out.line(l);
  },
};

function unescape(f: string): string {
  return f.replace(/\\(n|t|\\|")/g, (_, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : c));
}

function cString(b: Buffer): string {
  const z = b.indexOf(0);
  return b.toString('latin1', 0, z < 0 ? b.length : z);
}

function readCString(mem: ValueMemory, addr: bigint): string {
  if (addr === 0n) return '(null)';
  const out: Buffer[] = [];
  for (let i = 0; i < 16; i++) {
    const b = readUpTo({ read: mem.read, littleEndian: mem.littleEndian, pointerBytes: 8, symbolic: () => undefined, incr: 0n }, addr + BigInt(i * 256), 256);
    const z = b.indexOf(0);
    if (z >= 0) {
      out.push(b.subarray(0, z));
      break;
    }
    out.push(b);
    if (b.length < 256) break; // the end of what the target has
  }
  return Buffer.concat(out).toString('latin1');
}

type Arg = { num: bigint } | { str: string };

/** C's printf over member values; each conversion takes the next member. */
function formatMembers(fmt: string, members: readonly string[], get: (member: string, conv: string) => Arg, sym: (a: bigint) => string | undefined): string {
  let next = 0;
  const text = fmt.replace(/%([-0# +]*)(\d*)(?:\.(\d+))?(hh|h|ll|l|j|z)?([diuxXopcsa%])/g, (_m, flags: string, width: string, _prec, len: string | undefined, conv: string) => {
    if (conv === '%') return '%';
    const member = members[next++];
    if (member === undefined) throw errors.badInput(`::printf: the format has more conversions than the ${members.length} member(s) given`);
    const a = get(member, conv);
    let body: string;
    if ('str' in a) body = a.str;
    else {
      // As C passes it: promoted to int without a length modifier, cut to the modifier's width.
      const bits = conv === 'p' || conv === 'a' ? 64 : len === 'hh' ? 8 : len === 'h' ? 16 : len === 'l' || len === 'll' || len === 'j' || len === 'z' ? 64 : 32;
      const u = BigInt.asUintN(bits, a.num);
      switch (conv) {
        case 'd':
        case 'i':
          body = BigInt.asIntN(bits, u).toString();
          break;
        case 'u':
          body = u.toString();
          break;
        case 'x':
          body = (flags.includes('#') && u !== 0n ? '0x' : '') + u.toString(16);
          break;
        case 'X':
          body = (flags.includes('#') && u !== 0n ? '0X' : '') + u.toString(16).toUpperCase();
          break;
        case 'o':
          body = (flags.includes('#') ? '0' : '') + u.toString(8);
          break;
        case 'p':
          body = '0x' + u.toString(16);
          break;
        case 'c':
          body = String.fromCharCode(Number(u & 0xffn));
          break;
        default: // a
          body = sym(u) ?? '0x' + u.toString(16);
      }
    }
    const w = Number(width || 0);
    if (body.length >= w) return body;
    if (flags.includes('-')) return body.padEnd(w);
    if (flags.includes('0') && 'num' in a) {
      const neg = body.startsWith('-');
      return (neg ? '-' : '') + body.slice(neg ? 1 : 0).padStart(w - (neg ? 1 : 0), '0');
    }
    return body.padStart(w);
  });
  if (next < members.length) throw errors.badInput(`::printf: ${members.length} member(s) given for ${next} conversion(s) in the format`);
  return text;
}

export const typesModule: DcmdModule = {
  name: 'types',
  dcmds: [print, sizeofDcmd, offsetof, enumDcmd, whatis, line, dir, array, printf],
};
