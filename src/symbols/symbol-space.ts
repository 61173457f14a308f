import { errors } from '../common/errors.js';
import type { ElfFile } from './elf-file.js';
import type { SymbolMatch, Sym, SymbolTable } from './symbol-table.js';
import { symbolOffsetText } from './symbol-text.js';
import { findByName, looksLikeCxx, type NamedSymbol } from './cxx-names.js';
import { hex } from '../common/format.js';

/** A module whose symbols are loaded: the executable, a library, the kernel. */
export interface Module {
  /** Short name as MDB shows it: the file's basename ("libc.so.6"). */
  readonly name: string;
  /** The file the symbols came from. */
  readonly path: string;
  readonly table: SymbolTable;
  /** Run-time address range the module occupies, when known. */
  readonly start?: bigint;
  readonly end?: bigint;
  /** The ELF file the module was loaded from, when there is one: the unwinder reads its CFI. */
  readonly elf?: ElfFile;
  /** Run-time address minus link-time address (0 for a fixed-address executable). */
  readonly bias?: bigint;
  /**
   * Where the module's DWARF defines some types: a type's name (`struct inactive_task_frame`) ->
   * functions of the module whose unit defines it, tried in order. A type looked up by name is
   * looked for there first (TypeSpace), instead of through the units in order.
   */
  readonly typeHomes?: ReadonlyMap<string, readonly string[]>;
}

export interface ResolvedAddress extends SymbolMatch {
  readonly module: Module;
}

/**
 * Every module's symbols, searched together.
 *
 * Names may be qualified as MDB writes them, `module`symbol` ("libc.so.6`malloc"); unqualified
 * names are looked up in load order (the executable first), as gdb does. A C++ function may be
 * named as it is written rather than mangled (`Scheduler::tick`, `ns::Foo::bar(int)`: see
 * cxx-names.ts) when that names one function. Listeners hear of each
 * module added, so deferred breakpoints can arm when their symbol appears.
 */
export class SymbolSpace {
  private readonly mods: Module[] = [];
  private readonly listeners: ((m: Module) => void)[] = [];
  private readonly deferred: { readonly start: bigint; readonly end: bigint; readonly load: () => void }[] = [];

  /** The modules loaded so far (a deferred one appears once it is used; loadDeferred() brings them all). */
  get modules(): readonly Module[] {
    return this.mods;
  }

  /** Changes each time a module is added, replaced or removed: what a cache of answers checks. */
  get version(): number {
    return this.changes;
  }
  private changes = 0;

  /**
   * Modules that are loaded on first use (a kernel's loadable modules, whose discovery reads the
   * dump): `load` adds them, once, the first time a name is not found among the modules loaded so
   * far, an address in [start, end) is resolved, or loadDeferred() is called.
   */
  defer(start: bigint, end: bigint, load: () => void): void {
    this.deferred.push({ start, end, load });
  }

  /** Load the deferred modules (only those whose range holds `addr`, when given). True if any was. */
  loadDeferred(addr?: bigint): boolean {
    const due = this.deferred.filter((d) => addr === undefined || (addr >= d.start && addr < d.end));
    if (due.length === 0) return false;
    // Out of the list before they run: a loader that looks names up does not start itself again.
    for (const d of due) this.deferred.splice(this.deferred.indexOf(d), 1);
    for (const d of due) d.load();
    return true;
  }

  add(module: Module): void {
    this.changes++;
    this.mods.push(module);
    for (const l of this.listeners) l(module);
  }

  /** Put `next` where `old` was (a module whose load address became known), telling the listeners. */
  replace(old: Module, next: Module): void {
    this.changes++;
    const i = this.mods.indexOf(old);
    if (i < 0) return this.add(next);
    this.mods[i] = next;
    for (const l of this.listeners) l(next);
  }

  /** Drop `module` (a library the process unloaded, an image replaced by exec). */
  remove(module: Module): void {
    this.changes++;
    const i = this.mods.indexOf(module);
    if (i >= 0) this.mods.splice(i, 1);
  }

  onAdd(listener: (m: Module) => void): void {
    this.listeners.push(listener);
  }

  /** The symbol called `name` (or the one C++ function so written), or undefined. */
  find(name: string): (Sym & { module: Module }) | undefined {
    const exact = this.findExact(name);
    if (exact || !looksLikeCxx(name)) return exact;
    const cxx = this.findCxx(name);
    return cxx.length === 1 ? { ...cxx[0]!.sym, module: cxx[0]!.module } : undefined;
  }

  /**
   * The C++ functions `name` stands for, written unmangled; [] for a name that cannot be C++.
   * With `bare`, also a name without a scope (`max` for every `max<T>`), which costs a plain C
   * program one pass over its function names.
   */
  findCxx(name: string, bare = false): NamedSymbol[] {
    return (bare || looksLikeCxx(name)) && !name.includes('`') ? findByName(this, name) : [];
  }

  private findExact(name: string): (Sym & { module: Module }) | undefined {
    const found = this.findLoaded(name);
    return found || this.deferred.length === 0 || !this.loadDeferred() ? found : this.findLoaded(name);
  }

  /** find() among the modules loaded so far: deferred ones are not loaded for it (a kernel's own globals). */
  findLoaded(name: string): (Sym & { module: Module }) | undefined {
    const tick = name.indexOf('`');
    if (tick >= 0) {
      const modName = name.slice(0, tick);
      const symName = name.slice(tick + 1);
      const mod = this.mods.find((m) => m.name === modName || m.path === modName || stripVersion(m.name) === modName);
      const s = mod?.table.lookup(symName);
      return s && mod ? { ...s, module: mod } : undefined;
    }
    for (const m of this.mods) {
      const s = m.table.lookup(name);
      if (s) return { ...s, module: m };
    }
    return undefined;
  }

  /** The address of `name`; DbgError('no-symbol') when no module defines it. */
  lookup(name: string): bigint {
    const s = this.find(name);
    if (!s) {
      const cxx = this.findCxx(name);
      if (cxx.length > 1) {
        const list = cxx.slice(0, 8).map((c) => `${c.name} at ${hex(c.sym.addr)}`).join(', ');
        throw errors.badInput(`"${name}" names ${cxx.length} functions (${list}${cxx.length > 8 ? ', …' : ''}): give the parameters, as in ${cxx[0]!.name}`);
      }
      const where = this.mods.length === 0 ? 'any symbol table (none is loaded)' : `${this.mods.map((m) => m.name).join(', ')}`;
      throw errors.noSymbol(name, where);
    }
    return s.addr;
  }

  /** symbol+offset for `addr`: the module whose range holds it, else the nearest preceding symbol. */
  resolve(addr: bigint): ResolvedAddress | undefined {
    if (this.deferred.length > 0) this.loadDeferred(addr);
    let best: ResolvedAddress | undefined;
    for (const m of this.mods) {
      if (m.start !== undefined && m.end !== undefined && (addr < m.start || addr >= m.end)) continue;
      const r = m.table.resolve(addr);
      if (!r) continue;
      const cand = { ...r, module: m };
      if (!best || (cand.inside && !best.inside) || (cand.inside === best.inside && cand.offset < best.offset)) best = cand;
    }
    return best;
  }

  /** `sym+0x12` as MDB and gdb print a code address, or undefined when nothing sensible is near. */
  describe(addr: bigint, qualify = false): string | undefined {
    const r = this.resolve(addr);
    if (!r || !r.inside) return undefined;
    return symbolOffsetText(r.sym.name, r.offset, qualify && this.mods.length > 1 ? r.module.name : undefined);
  }
}

function stripVersion(name: string): string {
  return name.replace(/\.so(\.\d+)*$/, '');
}

