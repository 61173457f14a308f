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
import { followPath, printValue, type PrintOptions, type ValueMemory } from '../../types/print-value.js';
import { isCompound, resolveType, sizeOf, typeName, type Type } from '../../types/type.js';
import { TypeSpace } from '../../types/type-space.js';
import { FILE_LINE, lineAddresses, sourceAt } from '../../types/frame-source.js';
import { ObjectSpace } from '../../types/typed-object.js';
import type { Dcmd, DcmdModule, SessionView } from '../dcmd.js';
import { symbolName } from '../names.js';
import { parseFlags } from '../parse-flags.js';

export function typeSpace(s: SessionView): TypeSpace {
  let t = s.state.get('types') as TypeSpace | undefined;
  if (!t || t.symbols !== s.target.symbols) {
    t = new TypeSpace(s.target.symbols);
    s.state.set('types', t);
  }
  return t;
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
  usage: '[addr]::print [-adntxL] [-l limit] [-s depth] [TYPE] [member[.member|->member|[i]]...]',
  help:
    'print memory at addr as a typed object (the type of the symbol at addr when none is given), or the layout of TYPE\n' +
    '-a show addresses, -t show types, -d decimal, -x hex, -n no symbolic pointers,\n' +
    '-l N show N elements of arrays (default 0t10), -L all of them, -s N nest at most N levels.\n' +
    'Each member path prints that member: `tasks::print struct task name next->pid`.',
  run(s, inv, out) {
    // A member path may start with `->` (`item_head::print ->next`): a word, not a flag.
    const words = inv.args.map((a) => (a.startsWith('->') ? '\0' + a : a));
    const parsed = parseFlags(this.name, this.usage, words, { booleans: 'adntxL', strings: 'ls' });
    const flags = parsed.flags;
    const rest = parsed.rest.map((a) => a.replace(/^\0/, ''));
    const addr = inv.addr;
    let type: Type;
    let paths: readonly string[];
    const space = typeSpace(s);
    const t = rest.length > 0 ? takeType(space, rest) : undefined;
    if (t) {
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
    const mem = sessionMemory(s);
    if (addr !== undefined) {
      // Fail with the target's message when the object cannot be read at all.
      const size = sizeOf(type);
      if (size !== undefined && size > 0 && paths.length === 0) s.target.readVirtual(addr, Math.min(size, 1), s.thread || undefined);
    }
    const lines = paths.length === 0 ? printValue(type, addr, mem, opts) : paths.flatMap((p) => printValue(type, addr, mem, opts, p));
    if (addr !== undefined) s.dot = addr + BigInt(sizeOf(type) ?? 0);
    if (out.jsonMode) {
      out.json({ type: typeName(type), addr: addr !== undefined ? hexAddr(addr) : null, size: sizeOf(type) ?? null, lines });
      return;
    }
    for (const l of lines) out.line(l);
  },
};

const sizeofDcmd: Dcmd = {
  name: 'sizeof',
  usage: '::sizeof TYPE',
  help: 'the size of a type in bytes',
  run(s, inv, out) {
    const { rest } = parseFlags(this.name, this.usage, inv.args, {});
    const t = needType(s, this.name, this.usage, rest);
    if (t.used < rest.length) throw errors.badInput(`::sizeof: unexpected "${rest.slice(t.used).join(' ')}" after type ${t.name}`);
    const size = sizeOf(t.type);
    if (size === undefined) throw errors.badInput(`::sizeof: ${typeName(t.type)} has no size (incomplete, void, a function or an unbounded array)`);
    if (out.jsonMode) out.json({ type: typeName(t.type), size });
    else out.line(`sizeof (${t.name}) = ${hex(size)}`);
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
    if (out.jsonMode) out.json({ type: typeName(t.type), member: path, offset: Number(r.addr), bit: r.bitShift, bitSize: r.bitSize ?? null });
    else out.line(`offsetof (${t.name}, ${path}) = ${hex(r.addr)}${bit}`);
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
    const desc = v ? `${r.sym.name}${path}${off ? ` + ${hex(off)}` : ''} (${typeName(type ?? v.type)})` : `${where} (no type data)`;
    if (out.jsonMode) out.json({ addr: hexAddr(addr), symbol: r.sym.name, path: path || null, offset: off, type: type ? typeName(type) : null });
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
      if (out.jsonMode) out.json(r.addrs.map((a) => ({ addr: hexAddr(a.addr), file: r.file, line: a.line })));
      else for (const a of r.addrs) out.line(`${hexAddr(a.addr)} ${symbolName(t, a.addr) ?? '?'}: file ${r.file}, line ${a.line}`);
      return;
    }
    if (inv.addr === undefined) throw errors.badInput(`::line needs an address or FILE:LINE (usage: ${this.usage})`);
    const src = sourceAt(t.symbols, inv.addr, false, true);
    const p = src?.place;
    if (!p) throw new DbgError('no-symbol', `no line number information for address ${hex(inv.addr)}${src ? '' : ' (no module with DWARF holds it)'}`);
    const bias = src.module.bias ?? 0n;
    const start = p.start + bias;
    const end = p.end + bias;
    if (out.jsonMode) out.json({ file: p.file.name, line: p.line, start: hexAddr(start), end: hexAddr(end) });
    else out.line(`Line ${p.line} of "${p.file.name}" starts at address ${hexAddr(start)} <${symbolName(t, start) ?? hex(start)}> and ends at ${hexAddr(end)} <${symbolName(t, end) ?? hex(end)}>.`);
  },
};

export const typesModule: DcmdModule = {
  name: 'types',
  dcmds: [print, sizeofDcmd, offsetof, enumDcmd, whatis, line],
};
