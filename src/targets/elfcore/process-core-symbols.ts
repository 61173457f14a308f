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
    const keep: number[] = [];
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
      keep.push(i);
    }
    // SymbolTable's order: address up, rank down, then name down. A comparator function is slow
    // while the code is still cold, so sort numeric keys natively (address * 8 + 7 - rank, exact
    // below 2^50); the few entries that share a key are ordered by name.
    const keys = new Float64Array(keep.length);
    const byKey = new Map<number, number[]>();
    for (let k = 0; k < keep.length; k++) {
      const i = keep[k]!;
      if (addr[i]! >= 2 ** 50) return undefined;
      const key = addr[i]! * 8 + 7 - rank[i]!;
      keys[k] = key;
      const list = byKey.get(key);
      if (list) list.push(i);
      else byKey.set(key, [i]);
    }
    keys.sort();
    const order = new Uint32Array(keep.length);
    const addrs = new Float64Array(keep.length);
    let n = 0;
    for (let k = 0; k < keys.length; k++) {
      if (k > 0 && keys[k] === keys[k - 1]) continue;
      const same = byKey.get(keys[k]!)!;
      if (same.length > 1) {
        const name = (i: number) => cstringAt(strings, w[i * 6]!);
        const names = new Map(same.map((i) => [i, name(i)]));
        same.sort((x, y) => (names.get(x)! < names.get(y)! ? 1 : names.get(x)! > names.get(y)! ? -1 : 0));
      }
      for (const i of same) {
        order[n] = i;
        addrs[n++] = addr[i]!;
      }
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
    let best = this.sym(i);
    for (let j = i; j < a.length && a[j] === at; j++) {
      const s = this.sym(j);
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
