import type { Die } from '../symbols/dwarf/dwarf-info.js';
import { DbgError } from '../common/errors.js';

/**
 * The type model: what ::print, ::sizeof, ::offsetof and dmods see of a program's types.
 *
 * Shaped after drgn's: a type has a kind, and the kinds that refer to other types (pointer,
 * typedef, array, qualified, member) reach them through getters that resolve on first use, so a
 * `struct node { struct node *next; }` or a type graph of a whole kernel costs only what is walked.
 * Sizes are in bytes; member offsets are in bits from the start of the enclosing type, so bit
 * fields and ordinary members are one case.
 *
 * Types come from DWARF (dwarf-types.ts) but nothing here knows that: a type built by hand (a
 * test, a dmod describing a structure with no debug info) is as good.
 */

export type Qualifier = 'const' | 'volatile' | 'restrict' | '_Atomic';

export interface VoidType {
  readonly kind: 'void';
}

export interface IntType {
  readonly kind: 'int';
  readonly name: string;
  readonly size: number;
  readonly signed: boolean;
  /** A character type (char, signed char, unsigned char, char8_t): printed as characters. */
  readonly isChar: boolean;
}

export interface BoolType {
  readonly kind: 'bool';
  readonly name: string;
  readonly size: number;
}

export interface FloatType {
  readonly kind: 'float';
  readonly name: string;
  readonly size: number;
}

export interface PointerType {
  readonly kind: 'pointer';
  readonly size: number;
  readonly target: Type;
  /** C++ `&` / `&&`: printed with that sigil, read like a pointer. */
  readonly reference?: '&' | '&&';
}

export interface Member {
  /** Undefined for an anonymous struct or union member. */
  readonly name?: string;
  /** Bits from the start of the enclosing struct or union. */
  readonly bitOffset: number;
  /** Set for a bit field: its width in bits. */
  readonly bitSize?: number;
  readonly type: Type;
  /** A C++ base class subobject (DW_TAG_inheritance): no name of its own, printed `<Base> = {...}`; its members are found through it. */
  readonly base?: boolean;
}

export interface CompoundType {
  readonly kind: 'struct' | 'union' | 'class';
  /** The tag (`task` of `struct task`); undefined when anonymous. */
  readonly tag?: string;
  /** Undefined for an incomplete type (declared, never defined in the debug info). */
  readonly size?: number;
  readonly members: readonly Member[];
}

export interface Enumerator {
  readonly name: string;
  readonly value: bigint;
}

export interface EnumType {
  readonly kind: 'enum';
  readonly tag?: string;
  readonly size?: number;
  readonly signed: boolean;
  readonly enumerators: readonly Enumerator[];
}

export interface TypedefType {
  readonly kind: 'typedef';
  readonly name: string;
  readonly target: Type;
}

export interface ArrayType {
  readonly kind: 'array';
  readonly element: Type;
  /** Undefined for a flexible array member or an array of unknown bound. */
  readonly length?: number;
  /**
   * A C99 variable-length array's bound, known only in a frame: the DWARF expression that
   * computes it, or the (artificial) variable that holds it; `lower` is subtracted, and the
   * value is an upper bound (length - 1) unless `count`.
   */
  readonly dynamic?: { readonly expr?: Buffer; readonly variable?: Die; readonly lower: bigint; readonly count: boolean };
}

export interface FunctionType {
  readonly kind: 'function';
  readonly returns: Type;
  readonly params: readonly Type[];
  readonly variadic: boolean;
}

export interface QualifiedType {
  readonly kind: 'qualified';
  readonly qualifiers: readonly Qualifier[];
  readonly target: Type;
}

export type Type =
  | VoidType
  | IntType
  | BoolType
  | FloatType
  | PointerType
  | CompoundType
  | EnumType
  | TypedefType
  | ArrayType
  | FunctionType
  | QualifiedType;

export const voidType: VoidType = { kind: 'void' };

/** How many typedefs and qualifiers a chain may have before it is taken for a loop. */
const MAX_CHAIN = 64;

function loop(t: Type): DbgError {
  return new DbgError('corrupt', `type ${typeName(t)} contains itself more than ${MAX_CHAIN} levels deep (a loop in the debug info?)`);
}

/** The type under typedefs and qualifiers (what the bytes are). */
export function resolveType(t: Type): Type {
  let n = 0;
  while (t.kind === 'typedef' || t.kind === 'qualified') {
    if (++n > MAX_CHAIN) throw new DbgError('corrupt', `type ${typeName(t)} is a chain of more than ${MAX_CHAIN} typedefs or qualifiers (a loop in the debug info?)`);
    t = t.target;
  }
  return t;
}

/** The size in bytes, or undefined for void, functions, incomplete types and unbounded arrays. */
export function sizeOf(t: Type, depth = 0): number | undefined {
  if (depth > MAX_CHAIN) throw loop(t);
  const r = resolveType(t);
  switch (r.kind) {
    case 'void':
    case 'function':
      return undefined;
    case 'array': {
      if (r.length === undefined) return undefined;
      const e = sizeOf(r.element, depth + 1);
      return e === undefined ? undefined : e * r.length;
    }
    case 'struct':
    case 'union':
    case 'class':
    case 'enum':
      return r.size;
    case 'int':
    case 'bool':
    case 'float':
    case 'pointer':
      return r.size;
    default:
      return undefined;
  }
}

/** A struct, union or class (under typedefs and qualifiers). */
export function isCompound(t: Type): t is CompoundType {
  return t.kind === 'struct' || t.kind === 'union' || t.kind === 'class';
}

/**
 * The member called `name`, looking through anonymous struct and union members as C does;
 * bitOffset is from the start of `t`. Undefined when there is none.
 */
export function findMember(t: CompoundType, name: string, depth = 0): Member | undefined {
  if (depth > MAX_CHAIN) throw loop(t);
  for (const m of t.members) {
    if (m.name === name) return m;
    if (m.name === undefined) {
      const inner = resolveType(m.type);
      if (isCompound(inner)) {
        const f = findMember(inner, name, depth + 1);
        if (f) return { ...f, bitOffset: m.bitOffset + f.bitOffset, type: f.type };
      }
    }
  }
  return undefined;
}

function qualifierText(q: readonly Qualifier[]): string {
  return q.join(' ');
}

/** `struct task`, `unsigned int`, `char *`, `void (*)(int)`, with `decl` as the declarator when given. */
/** How a member is labelled in printed values: its name, `<Base>` for a C++ base class, none for an anonymous struct or union. */
export function memberLabel(m: Member): string | undefined {
  if (m.name !== undefined) return m.name;
  if (!m.base) return undefined;
  const t = resolveType(m.type);
  return `<${t.kind === 'struct' || t.kind === 'union' || t.kind === 'class' ? (t.tag ?? '{...}') : typeName(t)}>`;
}

export function typeName(t: Type, decl = '', depth = 0): string {
  if (depth > MAX_CHAIN) return `(a type nested more than ${MAX_CHAIN} deep)`;
  const d = depth + 1;
  const join = (base: string, inner: string) => (inner ? `${base} ${inner}` : base);
  switch (t.kind) {
    case 'void':
      return join('void', decl);
    case 'int':
    case 'bool':
    case 'float':
      return join(t.name, decl);
    case 'typedef':
      return join(t.name, decl);
    case 'struct':
    case 'union':
    case 'class':
      return join(`${t.kind} ${t.tag ?? '{...}'}`, decl);
    case 'enum':
      return join(`enum ${t.tag ?? '{...}'}`, decl);
    case 'qualified':
      if (t.target.kind === 'pointer') return typeName(t.target, `${qualifierText(t.qualifiers)}${decl ? ' ' + decl : ''}`, d);
      return `${qualifierText(t.qualifiers)} ${typeName(t.target, decl, d)}`;
    case 'pointer': {
      const sigil = t.reference ?? '*';
      const inner = `${sigil}${decl}`;
      const target = t.target.kind === 'qualified' ? t.target.target : t.target;
      if (target.kind === 'array' || target.kind === 'function') return typeName(t.target, `(${inner})`, d);
      return typeName(t.target, inner, d);
    }
    case 'array':
      return typeName(t.element, `${decl}[${t.length ?? ''}]`, d);
    case 'function': {
      const params = t.params.map((p) => typeName(p, '', d)).concat(t.variadic ? ['...'] : []);
      return typeName(t.returns, `${decl}(${params.length ? params.join(', ') : 'void'})`, d);
    }
  }
}
