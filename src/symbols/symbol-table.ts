import { STT_FILE, STT_FUNC, STT_GNU_IFUNC, STT_OBJECT, STT_SECTION, STT_TLS, type ElfSymbol } from './elf-file.js';

/** A symbol as dbg uses it: name, biased address, size, kind. */
export interface Sym {
  readonly name: string;
  /** Run-time address: the ELF value plus the module's load bias. */
  readonly addr: bigint;
  readonly size: bigint;
  readonly kind: 'func' | 'object' | 'other';
  readonly global: boolean;
  /** An ELF STT_GNU_IFUNC: `addr` is the resolver, which returns the function calls go to. */
  readonly ifunc?: true;
}

/**
 * A symbol as a listing prints it, without bigints: the address and size as two 32-bit words
 * each. rows() hands out one such object and changes it for each symbol: copy what you keep.
 */
export interface SymbolRow {
  readonly name: string;
  readonly addrHi: number;
  readonly addrLo: number;
  readonly sizeHi: number;
  readonly sizeLo: number;
  readonly kind: Sym['kind'];
  readonly global: boolean;
}

export interface SymbolMatch {
  readonly sym: Sym;
  readonly offset: bigint;
  /** True when `offset < size` (or the symbol is sizeless and nothing closer precedes it). */
  readonly inside: boolean;
}

/**
 * The symbols of one module: name -> symbol in O(1), address -> symbol+offset in O(log n).
 *
 * Built once from an ELF symbol list and a load bias (0 for a fixed executable, the load address
 * for a PIE or shared library). Section, file and TLS symbols are left out: they are not places
 * in the address space.
 */
export class SymbolTable {
  private readonly byName = new Map<string, Sym>();
  /** Sorted by address; at one address the best name for display first. */
  private readonly sorted: Sym[];

  constructor(
    readonly moduleName: string,
    symbols: Iterable<ElfSymbol>,
    readonly bias = 0n,
  ) {
    const list: Sym[] = [];
    for (const s of symbols) {
      if (!s.name || s.shndx === 0) continue; // undefined (imported) symbols
      if (s.type === STT_SECTION || s.type === STT_FILE || s.type === STT_TLS) continue;
      const kind = s.type === STT_FUNC || s.type === STT_GNU_IFUNC ? 'func' : s.type === STT_OBJECT ? 'object' : 'other';
      const sym: Sym = { name: s.name, addr: s.shndx === 0xfff1 ? s.value : s.value + bias, size: s.size, kind, global: s.bind !== 0, ...(s.type === STT_GNU_IFUNC ? { ifunc: true as const } : {}) };
      list.push(sym);
      const prev = this.byName.get(sym.name);
      if (!prev || (sym.global && !prev.global)) this.byName.set(sym.name, sym);
    }
    // Aliases at one address of equal rank (write and __write): the greatest name first, the one
    // gdb shows (its minimal symbols sort by name and a lookup takes the last).
    list.sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : rank(b) - rank(a) || (a.name < b.name ? 1 : a.name > b.name ? -1 : 0)));
    this.sorted = list;
  }

  get size(): number {
    return this.sorted.length;
  }

  /** size === 0, for a table that can tell without counting. */
  get empty(): boolean {
    return this.size === 0;
  }

  lookup(name: string): Sym | undefined {
    return this.byName.get(name);
  }

  /** The symbol at or before `addr`, or undefined when `addr` precedes every symbol. */
  resolve(addr: bigint): SymbolMatch | undefined {
    const a = this.sorted;
    let lo = 0;
    let hi = a.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (a[mid]!.addr <= addr) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0) return undefined;
    // Step back to the first (best-ranked) symbol at that address.
    const at = a[found]!.addr;
    let i = found;
    while (i > 0 && a[i - 1]!.addr === at) i--;
    // Prefer a sized symbol that contains addr among those at this address.
    let best = a[i]!;
    for (let j = i; j < a.length && a[j]!.addr === at; j++) {
      if (a[j]!.size > addr - at) {
        best = a[j]!;
        break;
      }
    }
    const offset = addr - best.addr;
    return { sym: best, offset, inside: best.size === 0n || offset < best.size };
  }

  /** All symbols in address order. */
  all(): readonly Sym[] {
    return this.sorted;
  }

  /** all() as listing rows, made one at a time (a table of 400,000 symbols prints without building 400,000 Syms). */
  *rows(): Generator<SymbolRow> {
    for (const s of this.all()) {
      const a = BigInt.asUintN(64, s.addr);
      const z = BigInt.asUintN(64, s.size);
      yield { name: s.name, addrHi: Number(a >> 32n), addrLo: Number(a & 0xffff_ffffn), sizeHi: Number(z >> 32n), sizeLo: Number(z & 0xffff_ffffn), kind: s.kind, global: s.global };
    }
  }
}

/** Display preference among symbols at one address: functions and objects, then globals. */
export function rank(s: Sym): number {
  return (s.kind === 'other' ? 0 : 2) + (s.global ? 1 : 0) + (s.size > 0n ? 4 : 0);
}
