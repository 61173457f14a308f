/**
 * A symbol table that answers address lookups without first building every symbol.
 *
 * A backtrace names a handful of addresses, but a full SymbolTable of libc decodes and sorts
 * thousands of names and bigints before the first answer: most of the time a core's first
 * backtrace takes. This table reads the raw ELF64 symbol entries into typed arrays (address,
 * size, rank), sorts an index once, and makes a Sym only for the symbols a lookup returns. Name
 * lookups and listings build the ordinary SymbolTable on first use and delegate to it, so every
 * answer is the one SymbolTable gives: same filtering, same order, same tie-breaking.
 *
 * Only for little-endian ELF64 files whose addresses fit in a double (user space); anything else
 * gets an ordinary SymbolTable from `symbolTableFor`.
 */

import { ElfFile, SHT_DYNSYM, SHT_SYMTAB, STT_FILE, STT_FUNC, STT_GNU_IFUNC, STT_OBJECT, STT_SECTION, STT_TLS } from '../../symbols/elf-file.js';
import { SymbolTable, type Sym, type SymbolMatch } from '../../symbols/symbol-table.js';

const ENTRY = 24; // sizeof(Elf64_Sym)
/** Bits of a sort key that hold the entry number: up to 2^18 symbols per table. */
const IDX = 18;

/** The table for `elf`'s symbols at load bias `bias`: compact when it can be, else the plain one. */
export function symbolTableFor(moduleName: string, elf: ElfFile, bias: bigint): SymbolTable {
  if (!elf.is64 || !elf.header.littleEndian) return new SymbolTable(moduleName, elf.symbols(), bias);
  const secs = elf.sections();
  const table = secs.find((s) => s.type === SHT_SYMTAB) ?? secs.find((s) => s.type === SHT_DYNSYM);
  if (!table) return new SymbolTable(moduleName, [], bias);
  const strSec = secs[table.link];
  if (!strSec) return new SymbolTable(moduleName, elf.symbols(), bias); // lets ElfFile report the corruption
  const compact = CompactSymbolTable.build(moduleName, elf, elf.sectionData(table), elf.sectionData(strSec), bias);
  return compact ?? new SymbolTable(moduleName, elf.symbols(), bias);
}

class CompactSymbolTable extends SymbolTable {
  private full?: SymbolTable;
  private readonly made = new Map<number, Sym>();

  private constructor(
    moduleName: string,
    private readonly elf: ElfFile,
    private readonly raw: Buffer,
    private readonly strings: Buffer,
    bias: bigint,
    /** Entry numbers of the kept symbols, in SymbolTable's order. */
    private readonly order: Uint32Array,
    /** Run-time address of order[i]. */
    private readonly addrs: Float64Array,
  ) {
    super(moduleName, [], bias);
  }

  static build(moduleName: string, elf: ElfFile, raw: Buffer, strings: Buffer, bias: bigint): CompactSymbolTable | undefined {
    const count = Math.floor(raw.length / ENTRY);
    // One aligned copy read as 32-bit words: far cheaper than thousands of Buffer reads.
    const w = new Uint32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + count * ENTRY));
    const addr = new Float64Array(count);
    const rank = new Uint8Array(count);
    // Absolute symbols (version names, constants) are not biased and lie far from the rest: two
    // groups, each with a small address span, sorted apart and merged.
    const keep: number[] = [];
    const keepAbs: number[] = [];
    const biasN = Number(bias);
    for (let i = 0; i < count; i++) {
      const o = i * 6;
      const nameOff = w[o]!;
      const info = w[o + 1]! & 0xff;
      const shndx = w[o + 1]! >>> 16;
      const type = info & 0xf;
      if (nameOff === 0 || shndx === 0 || type === STT_SECTION || type === STT_FILE || type === STT_TLS) continue;
      if (nameOff >= strings.length) return undefined; // SymbolTable's reader reports this as corrupt
      if (strings[nameOff] === 0) continue; // empty name
      // Numbers, not bigints: thousands of bigints are what this table exists to avoid.
      const a = w[o + 3]! * 0x1_0000_0000 + w[o + 2]! + (shndx === 0xfff1 ? 0 : biasN);
      if (!Number.isSafeInteger(a) || a < 0) return undefined;
      const kind = type === STT_FUNC || type === STT_GNU_IFUNC || type === STT_OBJECT ? 2 : 0;
      const sized = w[o + 4] !== 0 || w[o + 5] !== 0 ? 4 : 0;
      addr[i] = a;
      rank[i] = kind + (info >> 4 !== 0 ? 1 : 0) + sized;
      (shndx === 0xfff1 ? keepAbs : keep).push(i);
    }
    const main = sortGroup(keep, addr, rank);
    const abs = sortGroup(keepAbs, addr, rank);
    if (!main || !abs) return undefined;
    // Merge the two sorted groups: address up, rank down, entry up.
    const n = main.length + abs.length;
    const order = new Uint32Array(n);
    const addrs = new Float64Array(n);
    let x = 0;
    let y = 0;
    for (let k = 0; k < n; k++) {
      let take: number;
      if (y >= abs.length) take = main[x++]!;
      else if (x >= main.length) take = abs[y++]!;
      else {
        const p = main[x]!;
        const q = abs[y]!;
        const pFirst = addr[p]! < addr[q]! || (addr[p] === addr[q] && (rank[p]! > rank[q]! || (rank[p] === rank[q] && p < q)));
        take = pFirst ? main[x++]! : abs[y++]!;
      }
      order[k] = take;
      addrs[k] = addr[take]!;
    }
    return new CompactSymbolTable(moduleName, elf, raw, strings, bias, order, addrs);
  }

  override get size(): number {
    return this.order.length;
  }

  override lookup(name: string): Sym | undefined {
    return this.complete().lookup(name);
  }

  override all(): readonly Sym[] {
    return this.complete().all();
  }

  override resolve(addr: bigint): SymbolMatch | undefined {
    const a = this.addrs;
    const target = Number(addr);
    let lo = 0;
    let hi = a.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (a[mid]! <= target) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0) return undefined;
    const at = a[found]!;
    let i = found;
    while (i > 0 && a[i - 1] === at) i--;
    let j = found + 1;
    while (j < a.length && a[j] === at) j++;
    // The symbols at this address in SymbolTable's order: rank down, then name down.
    const here = [];
    for (let k = i; k < j; k++) here.push(this.sym(k));
    if (here.length > 1) here.sort((x, y) => rankOf(y) - rankOf(x) || (x.name < y.name ? 1 : x.name > y.name ? -1 : 0));
    let best = here[0]!;
    for (const s of here) {
      if (s.size > addr - s.addr) {
        best = s;
        break;
      }
    }
    const offset = addr - best.addr;
    return { sym: best, offset, inside: best.size === 0n || offset < best.size };
  }

  /** The Sym of the i-th symbol in address order, made once. */
  private sym(i: number): Sym {
    const hit = this.made.get(i);
    if (hit) return hit;
    const o = this.order[i]! * ENTRY;
    const raw = this.raw;
    const nameOff = raw.readUInt32LE(o);
    const info = raw[o + 4]!;
    const type = info & 0xf;
    const shndx = raw.readUInt16LE(o + 6);
    const value = raw.readBigUInt64LE(o + 8);
    const s: Sym = {
      name: cstringAt(this.strings, nameOff),
      addr: shndx === 0xfff1 ? value : value + this.bias,
      size: raw.readBigUInt64LE(o + 16),
      kind: type === STT_FUNC || type === STT_GNU_IFUNC ? 'func' : type === STT_OBJECT ? 'object' : 'other',
      global: info >> 4 !== 0,
    };
    this.made.set(i, s);
    return s;
  }

  private complete(): SymbolTable {
    this.full ??= new SymbolTable(this.moduleName, this.elf.symbols(), this.bias);
    return this.full;
  }
}

function cstringAt(b: Buffer, off: number): string {
  let end = b.indexOf(0, off);
  if (end < 0) end = b.length;
  return b.toString('utf8', off, end);
}

/**
 * Entries `group` sorted by address up, rank down, entry up, without a comparator function (slow
 * while code is cold): one number per symbol, sorted natively,
 *   ((address - min) * 8 + 7 - rank) * 2^IDX + entry      (exact while below 2^53)
 * Names only matter between aliases of equal rank; resolve() orders those few when it meets them.
 * Undefined when the group is too large or spread too wide for such keys.
 */
function sortGroup(group: readonly number[], addr: Float64Array, rank: Uint8Array): Uint32Array | undefined {
  if (group.length === 0) return new Uint32Array(0);
  let min = Infinity;
  let max = -Infinity;
  for (const i of group) {
    if (addr[i]! < min) min = addr[i]!;
    if (addr[i]! > max) max = addr[i]!;
  }
  if (group.length >= 2 ** IDX || max - min >= 2 ** (53 - IDX - 3)) return undefined;
  const keys = new Float64Array(group.length);
  for (let k = 0; k < group.length; k++) {
    const i = group[k]!;
    keys[k] = ((addr[i]! - min) * 8 + 7 - rank[i]!) * 2 ** IDX + i;
  }
  keys.sort();
  const out = new Uint32Array(group.length);
  for (let k = 0; k < keys.length; k++) out[k] = keys[k]! % 2 ** IDX;
  return out;
}

/** SymbolTable's display preference among symbols at one address. */
function rankOf(s: Sym): number {
  return (s.kind === 'other' ? 0 : 2) + (s.global ? 1 : 0) + (s.size > 0n ? 4 : 0);
}
