/**
 * Types made inside the debugger, MDB's ::typedef: C types for a target that has no debug info
 * of its own (a raw memory image, a stripped binary), or names of one's own for the target's.
 *
 * As MDB's synthetic CTF container (mdb_typedef.c, mdb_ctf.c): `::typedef -c LP64` (or LP32 /
 * ILP32) creates the C base types and the <stdint.h> typedefs of that data model;
 * `::typedef "struct s { int a; char *p; }" s_t` lays out a struct or union with natural alignment
 * (members may be pointers and arrays of any type already known; the last member of a struct may
 * be a flexible array `x[0]`); `::typedef TYPE NAME` names an existing type. A name is looked up
 * in the target's DWARF first and in these types after, so a synthetic type never hides the
 * target's. Pointers take the target's pointer size: the data model decides the integer types
 * only (MDB's container has the debugger's own model for pointers, so an LP32 `void *` is 8 bytes
 * there as here on a 64-bit target).
 */

import { DbgError, errors } from '../common/errors.js';
import { resolveType, sizeOf, type CompoundType, type Member, type Type } from '../types/type.js';
import type { SessionView } from './dcmd.js';

export type DataModel = 'ILP32' | 'LP64';

interface Intrinsic {
  readonly name: string;
  readonly kind: 'int' | 'char' | 'bool' | 'float' | 'void';
  readonly bytes: number;
  readonly signed?: boolean;
}

/** MDB's intrinsic types: the same names in both models, `long` (and its kin) 4 or 8 bytes. */
function intrinsics(model: DataModel): Intrinsic[] {
  const long = model === 'LP64' ? 8 : 4;
  return [
    { name: 'void', kind: 'void', bytes: 0 },
    { name: 'signed', kind: 'int', bytes: 4, signed: true },
    { name: 'unsigned', kind: 'int', bytes: 4 },
    { name: 'char', kind: 'char', bytes: 1, signed: true },
    { name: 'short', kind: 'int', bytes: 2, signed: true },
    { name: 'int', kind: 'int', bytes: 4, signed: true },
    { name: 'long', kind: 'int', bytes: long, signed: true },
    { name: 'long long', kind: 'int', bytes: 8, signed: true },
    { name: 'signed char', kind: 'char', bytes: 1, signed: true },
    { name: 'signed short', kind: 'int', bytes: 2, signed: true },
    { name: 'signed int', kind: 'int', bytes: 4, signed: true },
    { name: 'signed long', kind: 'int', bytes: long, signed: true },
    { name: 'signed long long', kind: 'int', bytes: 8, signed: true },
    { name: 'unsigned char', kind: 'char', bytes: 1 },
    { name: 'unsigned short', kind: 'int', bytes: 2 },
    { name: 'unsigned int', kind: 'int', bytes: 4 },
    { name: 'unsigned long', kind: 'int', bytes: long },
    { name: 'unsigned long long', kind: 'int', bytes: 8 },
    { name: '_Bool', kind: 'bool', bytes: 1 },
    { name: 'float', kind: 'float', bytes: 4 },
    { name: 'double', kind: 'float', bytes: 8 },
    { name: 'long double', kind: 'float', bytes: 16 },
    { name: 'float imaginary', kind: 'float', bytes: 4 },
    { name: 'double imaginary', kind: 'float', bytes: 8 },
    { name: 'long double imaginary', kind: 'float', bytes: 16 },
    { name: 'float complex', kind: 'float', bytes: 8 },
    { name: 'double complex', kind: 'float', bytes: 16 },
    { name: 'long double complex', kind: 'float', bytes: 32 },
  ];
}

/** The <stdint.h>-style typedefs `-c` adds: [name, the intrinsic it names]. */
function stdTypedefs(model: DataModel): [string, string][] {
  const lp = model === 'LP64';
  return [
    ['int8_t', 'char'],
    ['int16_t', 'short'],
    ['int32_t', 'int'],
    ['int64_t', lp ? 'long' : 'long long'],
    ['intptr_t', lp ? 'long' : 'int'],
    ['uint8_t', 'unsigned char'],
    ['uint16_t', 'unsigned short'],
    ['uint32_t', 'unsigned'],
    ['uint64_t', lp ? 'unsigned long' : 'unsigned long long'],
    ['uchar_t', 'unsigned char'],
    ['ushort_t', 'unsigned short'],
    ['uint_t', 'unsigned'],
    ['ulong_t', 'unsigned long'],
    ['u_longlong_t', 'unsigned long long'],
    ['ptrdiff_t', lp ? 'long' : 'int'],
    ['uintptr_t', lp ? 'unsigned long' : 'unsigned'],
  ];
}

function intrinsicType(i: Intrinsic): Type {
  switch (i.kind) {
    case 'void':
      return { kind: 'void' };
    case 'bool':
      return { kind: 'bool', name: i.name, size: i.bytes };
    case 'float':
      return { kind: 'float', name: i.name, size: i.bytes };
    default:
      return { kind: 'int', name: i.name, size: i.bytes, signed: i.signed === true, isChar: i.kind === 'char' };
  }
}

/** One member of a parsed `struct { ... }`: its base type's name, pointer depth, array length. */
interface ParsedMember {
  readonly type: string;
  readonly name: string;
  readonly pointers: number;
  readonly length?: number;
}

interface ParsedDefinition {
  readonly kind: 'struct' | 'union';
  readonly tag?: string;
  readonly members: ParsedMember[];
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

function bad(message: string): DbgError {
  return errors.badInput(`::typedef: ${message}`);
}

/** A number as MDB's mdb_strtoull reads one: decimal, or with a 0x / 0t / 0o / 0i prefix. */
function arrayLength(text: string, member: string): number {
  const t = text.trim();
  const m = /^0([xXtToOiI])(.+)$/.exec(t);
  const radix = m ? { x: 16, t: 10, o: 8, i: 2 }[m[1]!.toLowerCase() as 'x' | 't' | 'o' | 'i'] : 10;
  const digits = m ? m[2]! : t;
  const valid = { 16: /^[0-9a-fA-F]+$/, 10: /^[0-9]+$/, 8: /^[0-7]+$/, 2: /^[01]+$/ }[radix]!;
  if (t.startsWith('-')) throw bad(`array lengths cannot be negative: ${member}[${t}]`);
  if (!valid.test(digits)) throw bad(`"${t}" is not an array length (in ${member}[${t}])`);
  const n = parseInt(digits, radix);
  if (n > 0x1000000) throw bad(`array length ${t} of ${member} is too large (at most 0x1000000 elements)`);
  return n;
}

/** One `type **name[len]` declaration (the text between two semicolons). */
function parseMember(decl: string): ParsedMember {
  const text = decl.trim();
  const space = text.lastIndexOf(' ');
  if (space < 0) throw bad(`a member needs a type and a name; found "${text}"`);
  let type = text.slice(0, space);
  let name = text.slice(space + 1);
  let pointers = 0;
  for (; /[*\s]$/.test(type); type = type.slice(0, -1)) if (type.endsWith('*')) pointers++;
  for (; name.startsWith('*'); name = name.slice(1)) pointers++;
  let length: number | undefined;
  const open = name.indexOf('[');
  if (open >= 0) {
    const close = name.indexOf(']', open);
    if (close < 0 || close !== name.length - 1) throw bad(`the array size in "${name}" has no closing ']'`);
    length = arrayLength(name.slice(open + 1, close), name.slice(0, open));
    name = name.slice(0, open);
  }
  if (!IDENT.test(name)) throw bad(`the name "${name}" is not a valid C identifier`);
  type = type.trim().replace(/\s+/g, ' ');
  if (type === '') throw bad(`member ${name} has no type`);
  return { type, name, pointers, ...(length !== undefined ? { length } : {}) };
}

/** `struct [tag] { members }` or `union [tag] { members }`, as ::typedef takes it in one quoted word. */
function parseDefinition(text: string): ParsedDefinition {
  const src = text.trim();
  const m = /^(struct|union)\s+([^{]*?)\s*\{([\s\S]*)\}$/.exec(src);
  if (!m) {
    const first = /^\S*/.exec(src)![0];
    if (first !== 'struct' && first !== 'union') throw bad(`a definition starts with 'struct' or 'union', not '${first.replace(/\{.*/, '') || first}'`);
    if (!src.includes('{')) throw bad(`the ${first} definition has no opening '{'`);
    throw bad(`the ${first} definition does not end with '}'`);
  }
  const kind = m[1] as 'struct' | 'union';
  const tag = m[2] || undefined;
  if (tag !== undefined && !IDENT.test(tag)) throw bad(`the name "${tag}" is not a valid C identifier`);
  const body = m[3]!.trim();
  if (body === '') throw bad(`${kind} ${tag ?? '{...}'} has no members`);
  if (!body.endsWith(';')) throw bad(`the last member of ${kind} ${tag ?? '{...}'} does not end with ';'`);
  const members = body
    .slice(0, -1)
    .split(';')
    .map((d) => parseMember(d));
  return { kind, ...(tag !== undefined ? { tag } : {}), members };
}

/** The alignment C gives a type: its own size for scalars, its strictest member for aggregates. */
function alignOf(t: Type, pointerBytes: number): number {
  const r = resolveType(t);
  switch (r.kind) {
    case 'int':
    case 'bool':
    case 'float':
    case 'enum':
      return Math.max(1, Math.min(r.size ?? 1, 16));
    case 'pointer':
      return pointerBytes;
    case 'array':
      return alignOf(r.element, pointerBytes);
    case 'struct':
    case 'union':
    case 'class':
      return Math.max(1, ...r.members.map((m) => alignOf(m.type, pointerBytes)));
    default:
      return 1;
  }
}

/** A struct or union under construction: its members are filled in after it is named, so members may point at it. */
interface Building {
  kind: 'struct' | 'union';
  tag?: string;
  size?: number;
  members: Member[];
}

export class SyntheticTypes {
  private readonly byName = new Map<string, Type>();
  /** Names in the order they were made, for `::typedef -l`. */
  private readonly order: string[] = [];
  private readonly files: { file: string; types: { lookup(name: string): Type | undefined } }[] = [];
  model?: DataModel;

  constructor(private readonly pointerBytes: number) {}

  names(): readonly string[] {
    return this.order;
  }

  /** The synthetic type called `name` (`gift_t`, `struct gift`, `unsigned long`, `list_t *`), or undefined. */
  find(name: string): Type | undefined {
    const n = name.trim().replace(/\s+/g, ' ').replace(/\s*\*/g, ' *').trim();
    const star = /^(.*?)\s*(\*+)$/.exec(n);
    if (star) {
      let t = this.find(star[1]!);
      if (!t) return undefined;
      for (let k = 0; k < star[2]!.length; k++) t = { kind: 'pointer', size: this.pointerBytes, target: t };
      return t;
    }
    const own = this.byName.get(n);
    if (own) return own;
    for (const f of this.files) {
      const t = f.types.lookup(n);
      if (t) return t;
    }
    return undefined;
  }

  /** `-r FILE`: the types of another file's DWARF, found after the ones made here. */
  importFrom(file: string, types: { lookup(name: string): Type | undefined }): void {
    this.files.push({ file, types });
  }

  /** The files `-r` read types from. */
  importedFiles(): readonly string[] {
    return this.files.map((f) => f.file);
  }

  private add(name: string, t: Type): void {
    this.byName.set(name, t);
    this.order.push(name);
  }

  /** `-c MODEL`: the base types and typedefs of LP64 or ILP32; an error when they already exist. */
  createBase(modelText: string): void {
    const up = modelText.toUpperCase();
    const model: DataModel | undefined = up === 'LP64' ? 'LP64' : up === 'LP32' || up === 'ILP32' ? 'ILP32' : undefined;
    if (!model) throw bad(`invalid data model "${modelText}" (LP64, LP32 or ILP32)`);
    const all = intrinsics(model);
    const clash = [...all.map((i) => i.name), ...stdTypedefs(model).map(([n]) => n)].find((n) => this.byName.has(n));
    if (clash !== undefined) throw new DbgError('bad-input', `::typedef -c ${modelText}: the intrinsic types exist already (${clash}); ::typedef -d deletes them`);
    for (const i of all) this.add(i.name, intrinsicType(i));
    for (const [name, of] of stdTypedefs(model)) this.add(name, { kind: 'typedef', name, target: this.byName.get(of)! });
    this.model = model;
  }

  /** `::typedef TYPE NAME`: NAME for an existing type. */
  alias(type: Type, name: string): void {
    if (!IDENT.test(name)) throw bad(`the name "${name}" is not a valid C identifier`);
    this.add(name, { kind: 'typedef', name, target: type });
  }

  /**
   * `::typedef "struct [tag] { ... }" NAME`: lays out the struct or union and names it NAME (and
   * `struct tag` when it has a tag). `lookup` finds member types in the target and here.
   */
  define(definition: string, name: string, lookup: (name: string) => Type | undefined, exists: (name: string) => boolean): void {
    const def = parseDefinition(definition);
    if (!IDENT.test(name)) throw bad(`the name "${name}" is not a valid C identifier`);
    const tagName = def.tag !== undefined ? `${def.kind} ${def.tag}` : undefined;
    if (tagName !== undefined && exists(tagName)) throw bad(`type name ${tagName} already in use`);
    const seen = new Set<string>();
    def.members.forEach((m, i) => {
      if (seen.has(m.name)) throw bad(`duplicate member name: ${m.name}`);
      seen.add(m.name);
      if (m.length === 0) {
        if (def.kind !== 'struct') throw bad(`flexible array members are only valid in structs (${m.name})`);
        if (i !== def.members.length - 1) throw bad(`a flexible array member must be the last member of a struct (${m.name})`);
        if (def.members.length === 1) throw bad(`a struct needs members besides its flexible array member (${m.name})`);
      }
    });
    if (exists(name)) throw bad(`typedef name ${name} already exists`);
    const building: Building = { kind: def.kind, members: [], ...(def.tag !== undefined ? { tag: def.tag } : {}) };
    const self = building as CompoundType;
    // Named first, as C does, so that `struct list { struct list *next; }` finds itself.
    const find = (n: string) => (tagName !== undefined && n === tagName ? self : lookup(n));
    const members: Member[] = [];
    let offset = 0;
    let size = 0;
    let align = 1;
    for (const pm of def.members) {
      let t = find(pm.type);
      if (!t) throw bad(`member ${pm.name}: type ${pm.type} does not exist`);
      for (let k = 0; k < pm.pointers; k++) t = { kind: 'pointer', size: this.pointerBytes, target: t };
      if (pm.length !== undefined) t = { kind: 'array', element: t, length: pm.length };
      const r = resolveType(t);
      if (r === self && pm.pointers === 0) throw bad(`member ${pm.name}: ${tagName} cannot contain itself`);
      const bytes = sizeOf(t);
      if (bytes === undefined && pm.length !== 0) throw bad(`member ${pm.name}: ${pm.type} has no size (void, a function or an incomplete type)`);
      const a = alignOf(t, this.pointerBytes);
      align = Math.max(align, a);
      if (def.kind === 'struct') {
        offset = Math.ceil(offset / a) * a;
        members.push({ name: pm.name, bitOffset: offset * 8, type: t });
        offset += bytes ?? 0;
        size = offset;
      } else {
        members.push({ name: pm.name, bitOffset: 0, type: t });
        size = Math.max(size, bytes ?? 0);
      }
    }
    building.members = members;
    building.size = Math.ceil(size / align) * align;
    if (tagName !== undefined) this.add(tagName, self);
    this.add(name, { kind: 'typedef', name, target: self });
  }
}

/** The session's synthetic types (made on first use, kept when the target changes). */
export function syntheticTypes(s: SessionView): SyntheticTypes {
  let t = s.state.get('synthetic-types') as SyntheticTypes | undefined;
  if (!t) {
    t = new SyntheticTypes(s.target.arch.pointerBytes);
    s.state.set('synthetic-types', t);
  }
  return t;
}
