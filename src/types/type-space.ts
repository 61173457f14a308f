import { DbgError } from '../common/errors.js';
import { dwarfOf } from '../symbols/dwarf/dwarf-info.js';
import type { Module, SymbolSpace } from '../symbols/symbol-space.js';
import { DwarfTypes, type VariableInfo } from './dwarf-types.js';
import type { Type } from './type.js';

/**
 * The types of every loaded module, searched in load order (the executable or kernel first), as
 * SymbolSpace searches symbols. A module's DWARF is opened the first time a type is asked of it.
 */

const perModule = new WeakMap<Module, DwarfTypes | null>();

export function typesOf(m: Module): DwarfTypes | undefined {
  const hit = perModule.get(m);
  if (hit !== undefined) return hit ?? undefined;
  const d = m.elf ? dwarfOf(m.elf) : undefined;
  const t = d ? new DwarfTypes(d) : undefined;
  perModule.set(m, t ?? null);
  return t;
}

export class TypeSpace {
  constructor(readonly symbols: SymbolSpace) {}

  /**
   * Answers by name while the modules stay the same (SymbolSpace.version): a walker asks for
   * `struct task_struct` once per task, and each question would otherwise go through every
   * module's DWARF name lookup again.
   */
  private readonly answers = new Map<string, Type | undefined>();
  private answersFor = -1;

  /** Modules that have DWARF. */
  private withTypes(): { module: Module; types: DwarfTypes }[] {
    const out: { module: Module; types: DwarfTypes }[] = [];
    for (const m of this.symbols.modules) {
      const t = typesOf(m);
      if (t) out.push({ module: m, types: t });
    }
    return out;
  }

  /** The type called `name` (`struct task`, `pid_t`, `char *`; `mod`name` for one module), or undefined. */
  find(name: string): Type | undefined {
    if (this.answersFor !== this.symbols.version) {
      this.answers.clear();
      this.answersFor = this.symbols.version;
    }
    if (this.answers.has(name)) return this.answers.get(name);
    const t = this.search(name);
    this.answers.set(name, t);
    return t;
  }

  private search(name: string): Type | undefined {
    const tick = name.indexOf('`');
    const mods = this.withTypes();
    if (tick >= 0) {
      const modName = name.slice(0, tick);
      const m = mods.find((x) => x.module.name === modName || x.module.path === modName);
      return m?.types.lookup(name.slice(tick + 1), this.home(m.module, name.slice(tick + 1)));
    }
    for (const m of mods) {
      const t = m.types.lookup(name, this.home(m.module, name));
      if (t) return t;
    }
    return undefined;
  }

  /** The link-time address of a function whose unit likely defines type `name` (Module.typeHomes). */
  private home(m: Module, name: string): bigint | undefined {
    const fns = m.typeHomes?.get(name.replace(/[\s*]+$/, ''));
    for (const fn of fns ?? []) {
      const s = m.table.lookup(fn);
      if (s) return s.addr - (m.bias ?? 0n);
    }
    return undefined;
  }

  /** The type called `name`; DbgError('no-symbol') saying where it looked when there is none. */
  get(name: string): Type {
    const t = this.find(name);
    if (t) return t;
    throw new DbgError('no-symbol', `unknown type "${name}": ${this.where()}`);
  }

  /** The global variable called `name` in `module` (or any module). */
  variable(name: string, module?: Module): VariableInfo | undefined {
    if (module) return typesOf(module)?.variable(name);
    for (const m of this.withTypes()) {
      const v = m.types.variable(name);
      if (v) return v;
    }
    return undefined;
  }

  /** Where types were looked for, for messages. */
  where(): string {
    const mods = this.symbols.modules;
    if (mods.length === 0) return 'no module is loaded';
    const withTypes = this.withTypes().map((m) => m.module.name);
    if (withTypes.length === 0) return `no loaded module has DWARF debug info (${mods.map((m) => m.name).join(', ')}; build with -g)`;
    return `not defined in the debug info of ${withTypes.join(', ')}`;
  }
}
