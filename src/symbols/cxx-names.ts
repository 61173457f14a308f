/**
 * Finding symbols by the names a person writes: C names as they are, C++ names unmangled.
 *
 *   kmain                   the symbol kmain (any name exactly as the symbol table has it)
 *   Scheduler::tick         every function whose demangled name, less its parameter list, is that:
 *                           an overload set whole; `max` also finds each `max<T>` instantiation
 *   ns::Foo::bar(int)       the one overload with those parameters, as the demangler writes them
 *                           (`char const*`, not `const char*`; spaces do not matter)
 *   _ZN2ns3Foo3barEi        a mangled name, exactly
 *
 * The demangled names of a symbol table are indexed on first use (one pass over its symbols) and
 * kept while the table lives.
 */

import { demangle, isMangled } from './demangle.js';
import type { Module, SymbolSpace } from './symbol-space.js';
import type { Sym, SymbolTable } from './symbol-table.js';

export interface NamedSymbol {
  readonly sym: Sym;
  /** The demangled name (the symbol's own for a C name). */
  readonly name: string;
  readonly module: Module;
}

type Hit = Omit<NamedSymbol, 'module'>;

interface CxxIndex {
  /** "ns::Foo::bar(int)" with spaces removed -> symbols. */
  readonly full: Map<string, Hit[]>;
  /** "ns::Foo::bar" -> symbols. */
  readonly base: Map<string, Hit[]>;
  /** "max" for "max<int>(int, int)": the base with template arguments removed. */
  readonly bare: Map<string, Hit[]>;
}

const indexes = new WeakMap<object, CxxIndex>();

function push(m: Map<string, Hit[]>, key: string, v: Hit): void {
  const l = m.get(key);
  if (l) l.push(v);
  else m.set(key, [v]);
}

/** Where the parameter list of a demangled function name starts, or -1 (a variable, a C name). */
function paramsStart(name: string): number {
  let depth = 0;
  for (let i = 0; i < name.length; i++) {
    const c = name[i];
    if (c === '<') depth++;
    else if (c === '>') depth--;
    else if (c === '(' && depth === 0) {
      if (name.startsWith('(anonymous namespace)', i)) {
        i += '(anonymous namespace)'.length - 1;
        continue;
      }
      if (name.endsWith('operator', i) && name[i + 1] === ')') {
        i++; // operator()
        continue;
      }
      return i;
    }
  }
  return -1;
}

function withoutTemplateArgs(name: string): string {
  let out = '';
  let depth = 0;
  for (const c of name) {
    if (c === '<') depth++;
    else if (c === '>') depth = Math.max(0, depth - 1);
    else if (depth === 0) out += c;
  }
  return out;
}

const squeeze = (s: string): string => s.replace(/\s+/g, '');

/** The demangled names of `table`'s functions, from its listing rows (no Sym for the others). */
function indexOf(table: SymbolTable): CxxIndex {
  let ix = indexes.get(table);
  if (ix) return ix;
  ix = { full: new Map(), base: new Map(), bare: new Map() };
  for (const r of table.rows()) {
    if (r.kind !== 'func' || !isMangled(r.name)) continue;
    const name = demangle(r.name);
    if (name === r.name) continue;
    const sym: Sym = { name: r.name, addr: (BigInt(r.addrHi) << 32n) | BigInt(r.addrLo), size: (BigInt(r.sizeHi) << 32n) | BigInt(r.sizeLo), kind: r.kind, global: r.global };
    const v = { sym, name };
    push(ix.full, squeeze(name), v);
    const p = paramsStart(name);
    const base = p < 0 ? name : name.slice(0, p);
    push(ix.base, squeeze(base), v);
    if (base.includes('<')) push(ix.bare, squeeze(withoutTemplateArgs(base)), v);
  }
  indexes.set(table, ix);
  return ix;
}

/**
 * Index the demangled names of every module of `space` now, so that the first lookup does not
 * pay for it (a server that answers BP= calls this before it listens).
 */
export function indexNames(space: SymbolSpace): void {
  for (const m of space.modules) indexOf(m.table);
}

/** True for a name that can only be a C++ one as a person writes it: `a::b`, `f(int)`, `max<int>`, `~Foo`. */
export function looksLikeCxx(name: string): boolean {
  return /::|[()<>~]/.test(name);
}

/**
 * The symbols `query` names (see the file comment), one per address (a constructor's C1 and C2
 * aliases are one), in address order; empty when nothing matches.
 */
export function findByName(space: SymbolSpace, query: string): NamedSymbol[] {
  const q = query.trim();
  const found: NamedSymbol[] = [];
  for (const m of space.modules) {
    const exact = m.table.lookup(q);
    if (exact) {
      found.push({ sym: { ...exact }, name: demangle(exact.name), module: m });
      continue;
    }
    const ix = indexOf(m.table);
    const key = squeeze(q);
    const hits = paramsStart(q) >= 0 ? ix.full.get(key) : (ix.base.get(key) ?? ix.bare.get(key));
    if (hits) found.push(...hits.map((h) => ({ ...h, module: m })));
  }
  const byAddr = new Map<bigint, NamedSymbol>();
  for (const f of found) if (!byAddr.has(f.sym.addr)) byAddr.set(f.sym.addr, f);
  return [...byAddr.values()].sort((a, b) => (a.sym.addr < b.sym.addr ? -1 : a.sym.addr > b.sym.addr ? 1 : 0));
}
