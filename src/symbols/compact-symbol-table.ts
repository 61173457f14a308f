/**
 * A symbol table that answers lookups without first building every symbol.
 *
 * A backtrace names a handful of addresses and `init_task::print` one name, but a full
 * SymbolTable of libc, a kernel (120,000 symbols) or a big C++ program (400,000) decodes and
 * sorts every name and bigint before the first answer. This table keeps the raw ELF64 entries
 * and string table as read from the file, and builds what a question needs the first time it is
 * asked, each piece in typed arrays:
 *
 *   piece          built by                      used by
 *   -------------  ----------------------------  ------------------------------------------
 *   entries        .symtab and .strtab read      everything (nothing is read at open)
 *                  (mapped with native/symtab)
 *   kept           one pass over the entries     size, the name index
 *   address index  a radix sort                  resolve(), all(), rows()
 *   name index     a hash of the names' bytes    lookup() after the first few (a scan before)
 *
 * The passes over every entry (the check of the names' offsets, the address index) run in C when
 * native/symtab is built: they run once, so in JavaScript they run interpreted, 30-60 ms of CPU
 * for a kernel's table against 10-20 ms (mostly new pages) there. Without it, resolve() answers
 * from address buckets until a listing needs the sorted index.
 *
 * A Sym (strings, bigints) is made only for a symbol a lookup returns, and a name is decoded
 * only when it is printed. Every answer is the one SymbolTable gives: same filtering, same order,
 * same tie-breaking (test/symbols/compact-symbol-table.test.ts checks it symbol by symbol).
 *
 * Only for little-endian ELF64 files; anything else gets an ordinary SymbolTable from
 * `symbolTableFor`.
 */

import { FileByteSource } from '../common/byte-source.js';
import { ElfFile, SHT_DYNSYM, SHT_NOBITS, SHT_SYMTAB, STT_FILE, STT_FUNC, STT_GNU_IFUNC, STT_OBJECT, STT_SECTION, STT_TLS, type SectionHeader } from './elf-file.js';
import { symtabAddon, type SymtabAddon } from '../common/symtab-addon.js';
import { U64Keys } from '../common/u64-keys.js';
import { rank, SymbolTable, type Sym, type SymbolMatch, type SymbolRow } from './symbol-table.js';

const ENTRY = 24; // sizeof(Elf64_Sym)
const WORD = 0x1_0000_0000;
/** Bits of keySort's low key word that hold a position (the rank above them). */
const POS = 29;
const SHN_ABS = 0xfff1;

/** The table for `elf`'s symbols at load bias `bias`: compact when it can be, else the plain one. */
export function symbolTableFor(moduleName: string, elf: ElfFile, bias: bigint): SymbolTable {
  if (!elf.is64 || !elf.header.littleEndian) return new SymbolTable(moduleName, elf.symbols(), bias);
  const secs = elf.sections();
  const table = secs.find((s) => s.type === SHT_SYMTAB) ?? secs.find((s) => s.type === SHT_DYNSYM);
  if (!table) return new SymbolTable(moduleName, [], bias);
  const strSec = secs[table.link];
  if (!strSec) return new SymbolTable(moduleName, elf.symbols(), bias); // lets ElfFile report the corruption
  return new CompactSymbolTable(moduleName, elf, table, strSec, bias);
}

/** The raw entries: bytes, the same bytes as 32-bit words (6 per entry), the string table. */
interface Entries {
  readonly raw: Buffer;
  readonly w: Uint32Array;
  readonly strings: Buffer;
  readonly count: number;
}

/** Each kept symbol's run-time address as two 32-bit words and its rank (SymbolTable's), by entry number. */
interface AddressWords {
  readonly his: Uint32Array;
  readonly los: Uint32Array;
  readonly ranks: Uint8Array;
  /** Whether every kept symbol's address has the same high word. */
  readonly oneHigh: boolean;
}

/**
 * The kept symbols whose addresses share one high word, bucketed by address, unsorted: bucket k
 * holds those whose low word is in [min + k * 2^shift, min + (k + 1) * 2^shift), as a list of
 * entry numbers plus one from heads[k] through `links` (0 ends it; `links` shared by the groups of
 * a table). Built in two passes, no sort; about 4 symbols a bucket.
 */
interface AddressBuckets {
  readonly high: number;
  readonly min: number;
  readonly shift: number;
  readonly heads: Uint32Array;
  readonly links: Uint32Array;
}

/** Symbols in SymbolTable's order: entry numbers and run-time addresses as two 32-bit words. */
interface AddressIndex {
  readonly order: Uint32Array;
  readonly hi: Uint32Array;
  readonly lo: Uint32Array;
}

export class CompactSymbolTable extends SymbolTable {
  /** Tables below this many symbols are sorted by keySort, others by radixSort (tests lower it to check both). */
  static keySortLimit = 2 ** 18;
  /**
   * Name lookups answered by a scan of the string table before the hash index is built (tests
   * lower it). A scan of libstdc++'s table costs about 1 ms, its index 30-50 ms while the code is
   * cold: a C++ backtrace's tail calls ask each table about 5 names.
   */
  static scanLimit = 32;
  /** Whether the whole-table passes may run in native/symtab when it is built (tests turn it off to check the JavaScript ones). */
  static native = true;
  private entriesRead?: Entries;
  /** Entry numbers of the kept symbols, in entry order (what a name lookup searches). */
  private keptList?: Uint32Array;
  private index?: AddressIndex;
  private wordsMade?: AddressWords;
  /** Address buckets of each high word, by high word up. */
  private buckets?: AddressBuckets[];
  /** Syms made so far, by entry number. */
  private readonly made = new Map<number, Sym>();
  private names?: NameIndex;
  private scans = 0;
  /** The answers of the scans so far, by name. */
  private readonly scanned = new Map<string, number | undefined>();
  private everything?: readonly Sym[];

  constructor(
    moduleName: string,
    private readonly elf: ElfFile,
    private readonly symSec: SectionHeader,
    private readonly strSec: SectionHeader,
    bias: bigint,
  ) {
    super(moduleName, [], bias);
    const b = BigInt.asUintN(64, bias);
    this.biasHi = Number(b >> 32n);
    this.biasLo = Number(b & 0xffff_ffffn);
  }

  /** The bias's words, added to each non-absolute symbol's value. */
  private readonly biasHi: number;
  private readonly biasLo: number;

  private entries(): Entries {
    if (this.entriesRead) return this.entriesRead;
    const raw = this.mapped(this.symSec) ?? this.elf.sectionData(this.symSec);
    const strings = this.mapped(this.strSec) ?? this.elf.sectionData(this.strSec);
    const count = Math.floor(raw.length / ENTRY);
    // As 32-bit words (a copy only when the bytes are not 4-aligned): far cheaper than thousands
    // of Buffer reads.
    const w = raw.byteOffset % 4 === 0 ? new Uint32Array(raw.buffer, raw.byteOffset, count * 6) : new Uint32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + count * ENTRY));
    // SymbolTable's reader refuses a name outside the string table; so does this one, with its message.
    const addon = this.addon();
    let bad = false;
    if (addon) bad = addon.badName(raw, strings.length) >= 0;
    else for (let i = 0; i < count && !bad; i++) bad = w[i * 6]! >= strings.length && w[i * 6] !== 0;
    if (bad) this.elf.symbols();
    return (this.entriesRead = { raw, w, strings, count });
  }

  /** Whether entry `i` is a symbol SymbolTable keeps: named, defined, a place in the address space. */
  private static keeps(w: Uint32Array, strings: Buffer, i: number): boolean {
    const o = i * 6;
    const nameOff = w[o]!;
    const shndx = w[o + 1]! >>> 16;
    const type = w[o + 1]! & 0xf;
    return nameOff !== 0 && shndx !== 0 && type !== STT_SECTION && type !== STT_FILE && type !== STT_TLS && strings[nameOff] !== 0;
  }

  private kept(): Uint32Array {
    if (this.keptList) return this.keptList;
    const { w, strings, count } = this.entries();
    const kept = new Uint32Array(count);
    let n = 0;
    for (let i = 0; i < count; i++) if (CompactSymbolTable.keeps(w, strings, i)) kept[n++] = i;
    return (this.keptList = kept.slice(0, n));
  }

  override get size(): number {
    return this.kept().length;
  }

  override get empty(): boolean {
    if (this.keptList) return this.keptList.length === 0;
    const { w, strings, count } = this.entries();
    for (let i = 0; i < count; i++) if (CompactSymbolTable.keeps(w, strings, i)) return false;
    return true;
  }

  /** As SymbolTable: the first global symbol of that name, else the first one, in entry order. */
  override lookup(name: string): Sym | undefined {
    if (name === '') return undefined;
    const e = this.entries();
    const global = (i: number) => (e.w[i * 6 + 1]! & 0xff) >> 4 !== 0;
    // A few names by searching the string table; a session that asks for more gets the hash index.
    if (!this.names && this.scanned.has(name)) {
      const i = this.scanned.get(name);
      return i === undefined ? undefined : this.sym(i);
    }
    if (!this.names && this.scans++ < CompactSymbolTable.scanLimit) {
      const i = this.scanFor(Buffer.from(name, 'utf8'), global);
      this.scanned.set(name, i); // a kernel dump's open and ::ps ask for init_task twice
      return i === undefined ? undefined : this.sym(i);
    }
    this.names ??= new NameIndex(e.raw, e.strings, this.kept());
    const i = this.names.find(name, global);
    return i === undefined ? undefined : this.sym(i);
  }

  /**
   * NameIndex.find without an index: the string table is searched (natively) for the name, and
   * the entries for the offsets where it was found. A name may also be the tail of a longer one
   * (the linker merges suffixes), so every place the bytes end in a NUL counts. The entries are
   * found natively too: each offset's 4 bytes searched in the table's bytes, kept where they are
   * an entry's st_name. A pass of JS over a kernel's 119,000 entries cost ~7 ms per name cold.
   */
  private scanFor(want: Buffer, preferred: (entry: number) => boolean): number | undefined {
    const { raw, w, strings, count } = this.entries();
    const needle = Buffer.concat([want, Buffer.of(0)]);
    const named: number[] = [];
    const word = Buffer.alloc(4);
    for (let p = strings.indexOf(needle); p >= 0; p = strings.indexOf(needle, p + 1)) {
      word.writeUInt32LE(p); // st_name, little-endian: the compact table reads only little-endian files
      for (let q = raw.indexOf(word); q >= 0 && q < count * ENTRY; q = raw.indexOf(word, q + 1)) if (q % ENTRY === 0) named.push(q / ENTRY);
    }
    named.sort((x, y) => x - y);
    let first: number | undefined;
    for (const i of named) {
      if (!CompactSymbolTable.keeps(w, strings, i)) continue;
      if (preferred(i)) return i;
      first ??= i;
    }
    return first;
  }

  override all(): readonly Sym[] {
    if (this.everything) return this.everything;
    const { order } = this.addressIndex();
    const out: Sym[] = new Array(order.length);
    for (let k = 0; k < order.length; k++) out[k] = this.sym(order[k]!);
    return (this.everything = out);
  }

  override *rows(): Generator<SymbolRow> {
    const { order, hi, lo } = this.addressIndex();
    const { w, strings } = this.entries();
    const row = { name: '', addrHi: 0, addrLo: 0, sizeHi: 0, sizeLo: 0, kind: 'other' as Sym['kind'], global: false };
    for (let k = 0; k < order.length; k++) {
      const o = order[k]! * 6;
      const info = w[o + 1]! & 0xff;
      const type = info & 0xf;
      const at = w[o]!;
      let end = strings.indexOf(0, at);
      if (end < 0) end = strings.length;
      row.name = strings.toString('utf8', at, end);
      row.addrHi = hi[k]!;
      row.addrLo = lo[k]!;
      row.sizeLo = w[o + 4]!;
      row.sizeHi = w[o + 5]!;
      row.kind = type === STT_FUNC || type === STT_GNU_IFUNC ? 'func' : type === STT_OBJECT ? 'object' : 'other';
      row.global = info >> 4 !== 0;
      yield row;
    }
  }

  /**
   * As SymbolTable. A backtrace resolves a few hundred addresses in tables of thousands of
   * symbols: they are answered from address buckets (no sort), or from the sorted index once a
   * listing has made it.
   */
  override resolve(addr: bigint): SymbolMatch | undefined {
    if (addr < 0n) return undefined;
    const a = addr > 0xffff_ffff_ffff_ffffn ? 0xffff_ffff_ffff_ffffn : addr;
    const th = Number(a >> 32n);
    const tl = Number(a & 0xffff_ffffn);
    // With native/symtab the sorted index is cheaper to make than the buckets in JavaScript.
    const at = this.index || this.addon() ? this.atOrBelowSorted(th, tl) : this.atOrBelowBucketed(th, tl);
    if (!at) return undefined;
    // The first sized symbol that holds addr, else the first.
    let best = this.sym(at[0]!);
    for (const e of at) {
      const s = this.sym(e);
      if (s.size > addr - s.addr) {
        best = s;
        break;
      }
    }
    const offset = addr - best.addr;
    return { sym: best, offset, inside: best.size === 0n || offset < best.size };
  }

  /** The entries at the greatest address at or below (th, tl), in SymbolTable's order, from the sorted index. */
  private atOrBelowSorted(th: number, tl: number): Uint32Array | undefined {
    const { order, hi: his, lo: los } = this.addressIndex();
    const atOrBefore = (k: number) => his[k]! < th || (his[k] === th && los[k]! <= tl);
    let lo = 0;
    let hi = his.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (atOrBefore(mid)) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0) return undefined;
    const same = (k: number) => his[k] === his[found] && los[k] === los[found];
    let i = found;
    while (i > 0 && same(i - 1)) i--;
    return order.subarray(i, found + 1);
  }

  /** The same from the address buckets: those of th's high word, else of the nearest one below. */
  private atOrBelowBucketed(th: number, tl: number): number[] | undefined {
    const groups = this.addressBuckets();
    for (let g = groups.length - 1; g >= 0; g--) {
      if (groups[g]!.high > th) continue;
      const at = this.atOrBelowIn(groups[g]!, groups[g]!.high < th ? 0xffff_ffff : tl);
      if (at) return at;
    }
    return undefined;
  }

  /** The entries at the greatest low word at or below `limit` in one high word's buckets, in SymbolTable's order. */
  private atOrBelowIn(group: AddressBuckets, limit: number): number[] | undefined {
    const { min, shift, heads, links } = group;
    const { w, strings } = this.entries();
    if (limit < min) return undefined;
    // The bucket of limit, else the nearest one below with a symbol: all of those are below limit.
    for (let k = Math.min(heads.length - 1, (limit - min) >>> shift); k >= 0; k--) {
      let best = -1;
      for (let e = heads[k]!; e !== 0; e = links[e - 1]!) {
        const l = this.lowWord(w, e - 1);
        if (l <= limit && l > best) best = l;
      }
      if (best < 0) continue;
      const at: number[] = [];
      for (let e = heads[k]!; e !== 0; e = links[e - 1]!) if (this.lowWord(w, e - 1) === best) at.push(e - 1);
      if (at.length > 1) {
        // SymbolTable's order at one address: rank up, then the greatest name, then entry order.
        const names = new Map<number, string>();
        const name = (e: number): string => {
          let n = names.get(e);
          if (n === undefined) names.set(e, (n = cstringAt(strings, w[e * 6]!)));
          return n;
        };
        at.sort((p, q) => {
          const [rp, rq] = [CompactSymbolTable.rankOf(w, p), CompactSymbolTable.rankOf(w, q)];
          if (rp !== rq) return rp - rq;
          const [np, nq] = [name(p), name(q)];
          return np < nq ? 1 : np > nq ? -1 : p - q;
        });
      }
      return at;
    }
    return undefined;
  }

  /** Entry e's run-time address: its high word (the bias applied unless it is absolute). */
  private highWord(w: Uint32Array, e: number): number {
    const o = e * 6;
    if (w[o + 1]! >>> 16 === SHN_ABS) return w[o + 3]!;
    return (w[o + 3]! + this.biasHi + (w[o + 2]! + this.biasLo >= WORD ? 1 : 0)) >>> 0;
  }

  /** Its low word. */
  private lowWord(w: Uint32Array, e: number): number {
    const o = e * 6;
    return w[o + 1]! >>> 16 === SHN_ABS ? w[o + 2]! : (w[o + 2]! + this.biasLo) >>> 0;
  }

  /** SymbolTable's rank of entry e: functions and objects first, then globals, then sized ones (0 best). */
  private static rankOf(w: Uint32Array, e: number): number {
    const o = e * 6;
    const info = w[o + 1]! & 0xff;
    const type = info & 0xf;
    const kind = type === STT_FUNC || type === STT_GNU_IFUNC || type === STT_OBJECT ? 2 : 0;
    const sized = w[o + 4] !== 0 || w[o + 5] !== 0 ? 4 : 0;
    return 7 - (kind + (info >> 4 !== 0 ? 1 : 0) + sized);
  }

  /**
   * The kept symbols split by the high word of their address (usually one, a few absolute or
   * per-CPU symbols aside), each bucketed: two passes over the raw entries, addresses computed
   * where they lie, no function called per entry. These loops run once, in the interpreter: a
   * kernel's 119,000 entries through a kept list, address arrays and a map of each high word's
   * members, or through a call per entry and pass, cost 60-130 ms of CPU on a loaded machine.
   */
  private addressBuckets(): AddressBuckets[] {
    if (this.buckets) return this.buckets;
    const { w, strings, count } = this.entries();
    const [bh, bl] = [this.biasHi, this.biasLo];
    // Pass 1: each entry's group (1 + its high word's index; 0 not kept; 255 look it up), and each
    // group's size and range of low words.
    const grp = new Uint8Array(count);
    const group = new Map<number, number>();
    const highs: number[] = [];
    const mins: number[] = [];
    const maxs: number[] = [];
    const sizes: number[] = [];
    let lastHigh = -1;
    let g = -1;
    for (let i = 0; i < count; i++) {
      const o = i * 6;
      const nameOff = w[o]!;
      const shndx = w[o + 1]! >>> 16;
      const type = w[o + 1]! & 0xf;
      if (nameOff === 0 || shndx === 0 || type === STT_SECTION || type === STT_FILE || type === STT_TLS || strings[nameOff] === 0) continue;
      let l = w[o + 2]!;
      let h = w[o + 3]!;
      if (shndx !== SHN_ABS) {
        l += bl;
        h = (h + bh + (l >= WORD ? 1 : 0)) >>> 0;
        l >>>= 0;
      }
      if (h !== lastHigh) {
        lastHigh = h;
        g = group.get(h) ?? -1;
        if (g < 0) {
          group.set(h, (g = highs.length));
          highs.push(h);
          mins.push(l);
          maxs.push(l);
          sizes.push(0);
        }
      }
      grp[i] = g < 254 ? g + 1 : 255;
      sizes[g]!++;
      if (l < mins[g]!) mins[g] = l;
      if (l > maxs[g]!) maxs[g] = l;
    }
    const links = new Uint32Array(count);
    const made: AddressBuckets[] = highs.map((high, k) => {
      const n = sizes[k]!;
      let buckets = 2; // at least 2, so that shift stays below 32 (>>> takes its count mod 32)
      while (buckets * 4 < n) buckets *= 2;
      let shift = 0;
      while (Math.floor((maxs[k]! - mins[k]!) / 2 ** shift) >= buckets) shift++;
      return { high, min: mins[k]!, shift, heads: new Uint32Array(buckets), links };
    });
    // Pass 2: each kept entry onto the front of its bucket's list.
    for (let i = 0; i < count; i++) {
      const gi = grp[i]!;
      if (gi === 0) continue;
      const b = made[gi < 255 ? gi - 1 : group.get(this.highWord(w, i))!]!;
      const o = i * 6;
      const l = w[o + 1]! >>> 16 === SHN_ABS ? w[o + 2]! : (w[o + 2]! + bl) >>> 0;
      const slot = (l - b.min) >>> b.shift;
      links[i] = b.heads[slot]!;
      b.heads[slot] = i + 1;
    }
    return (this.buckets = made.sort((x, y) => x.high - y.high));
  }

  /** The Sym of entry `e`, made once. */
  private sym(e: number): Sym {
    const hit = this.made.get(e);
    if (hit) return hit;
    const o = e * ENTRY;
    const { raw, strings } = this.entries();
    const info = raw[o + 4]!;
    const type = info & 0xf;
    const shndx = raw.readUInt16LE(o + 6);
    const value = raw.readBigUInt64LE(o + 8);
    const s: Sym = {
      name: cstringAt(strings, raw.readUInt32LE(o)),
      addr: shndx === SHN_ABS ? value : value + this.bias,
      size: raw.readBigUInt64LE(o + 16),
      kind: type === STT_FUNC || type === STT_GNU_IFUNC ? 'func' : type === STT_OBJECT ? 'object' : 'other',
      global: info >> 4 !== 0,
      ...(type === STT_GNU_IFUNC ? { ifunc: true as const } : {}),
    };
    this.made.set(e, s);
    return s;
  }

  /**
   * Tables of fewer than 2^18 symbols: one native sort of 64-bit keys, the low word in the high
   * half and (rank, position in `kept`) in the low (U64Keys), then the runs of each high word in
   * order. Native, so it is fast even the first time (a radix sort's loops run cold in the
   * interpreter for a table that is sorted once).
   */
  private static keySort(kept: Uint32Array, his: Uint32Array, los: Uint32Array, ranks: Uint8Array): Uint32Array {
    const n = kept.length;
    const keys = new U64Keys(n);
    let oneHigh = true;
    const h0 = n > 0 ? his[kept[0]!]! : 0;
    for (let j = 0; j < n; j++) {
      const e = kept[j]!;
      keys.set(j, los[e]!, ranks[e]! * 2 ** POS + j);
      if (his[e] !== h0) oneHigh = false;
    }
    keys.sort();
    const byLow = new Uint32Array(n);
    for (let j = 0; j < n; j++) byLow[j] = kept[keys.lo(j) & (2 ** POS - 1)]!;
    if (oneHigh) return byLow;
    const highs = new Set<number>();
    for (let j = 0; j < n; j++) highs.add(his[kept[j]!]!);
    const order = new Uint32Array(n);
    let k = 0;
    for (const h of [...highs].sort((x, y) => x - y)) for (let j = 0; j < n; j++) if (his[byLow[j]!] === h) order[k++] = byLow[j]!;
    return order;
  }

  /** Bigger tables: a stable LSD radix sort (rank, then the address's digits; the high word's only when they differ). */
  private static radixSort(kept: Uint32Array, his: Uint32Array, los: Uint32Array, ranks: Uint8Array, oneHigh: boolean): Uint32Array {
    const n = kept.length;
    let a = kept.slice();
    let b = new Uint32Array(n);
    const bits = 16;
    const mask = 0xffff;
    const counts = new Uint32Array(0x10000);
    const pass = (digit: (e: number) => number): void => {
      counts.fill(0);
      for (let j = 0; j < n; j++) counts[digit(a[j]!)]!++;
      let sum = 0;
      for (let d = 0; d <= mask; d++) {
        const c = counts[d]!;
        counts[d] = sum;
        sum += c;
      }
      for (let j = 0; j < n; j++) {
        const e = a[j]!;
        b[counts[digit(e)]!++] = e;
      }
      [a, b] = [b, a];
    };
    const word = (words: Uint32Array): void => {
      for (let shift = 0; shift < 32; shift += bits) pass((e) => (words[e]! >>> shift) & mask);
    };
    pass((e) => ranks[e]!);
    word(los);
    if (!oneHigh) word(his);
    return a;
  }

  /** Each kept symbol's run-time address (two words) and rank, by entry number; whether one high word holds them all. */
  private addressWords(): AddressWords {
    if (this.wordsMade) return this.wordsMade;
    const { w, count } = this.entries();
    const kept = this.kept();
    const n = kept.length;
    const his = new Uint32Array(count);
    const los = new Uint32Array(count);
    const ranks = new Uint8Array(count);
    let oneHigh = true;
    // Numbers, not bigints: thousands of bigints are what this table exists to avoid.
    for (let j = 0; j < n; j++) {
      const i = kept[j]!;
      const h = this.highWord(w, i);
      his[i] = h;
      los[i] = this.lowWord(w, i);
      ranks[i] = CompactSymbolTable.rankOf(w, i);
      if (h !== his[kept[0]!]) oneHigh = false;
    }
    return (this.wordsMade = { his, los, ranks, oneHigh });
  }

  /**
   * A section mapped by native/symtab instead of read, when the file is open (a FileByteSource)
   * and holds it: no new memory for a kernel's 5.3 MB of .symtab and .strtab, only the page
   * cache's pages, mapped 16 at a time as they are touched.
   */
  private mapped(sec: SectionHeader): Buffer | undefined {
    const src = this.elf.source;
    const fd = src instanceof FileByteSource ? src.descriptor() : undefined;
    // At an offset of 8n only: the entries are read as 32-bit words where they lie.
    if (fd === undefined || sec.type === SHT_NOBITS || sec.size === 0 || sec.offset % 8 !== 0 || sec.offset + sec.size > src.size) return undefined;
    return this.addon()?.map(fd, sec.offset, sec.size) ?? undefined;
  }

  /** native/symtab, unless it is not built or tests turned it off. */
  private addon(): SymtabAddon | null {
    return CompactSymbolTable.native ? symtabAddon() : null;
  }

  /** order[j..k) (symbols of one address and rank), the greatest name first, stably. */
  private byNameDown(order: Uint32Array, j: number, k: number): void {
    const { w, strings } = this.entries();
    const run = Array.from(order.subarray(j, k), (x) => ({ x, name: cstringAt(strings, w[x * 6]!) }));
    run.sort((p, q) => (p.name < q.name ? 1 : p.name > q.name ? -1 : 0));
    run.forEach((r, m) => (order[j + m] = r.x));
  }

  /**
   * The kept symbols sorted as SymbolTable sorts them: address up, rank down, name down (keySort
   * or radixSort, then a name sort inside the rare runs of equal address and rank).
   */
  private addressIndex(): AddressIndex {
    if (this.index) return this.index;
    const { raw, w, strings } = this.entries();
    const inC = this.addon()?.order(raw, strings, this.biasHi, this.biasLo);
    if (inC) {
      const { order, runs } = inC;
      for (let r = 0; r < runs.length; r += 2) this.byNameDown(order, runs[r]!, runs[r + 1]!);
      return (this.index = inC);
    }
    const kept = this.kept();
    const n = kept.length;
    const { his, los, ranks, oneHigh } = this.addressWords();
    const order = n < CompactSymbolTable.keySortLimit ? CompactSymbolTable.keySort(kept, his, los, ranks) : CompactSymbolTable.radixSort(kept, his, los, ranks, oneHigh);
    // Aliases of equal rank at one address (write and __write): the greatest name first.
    for (let j = 0; j + 1 < n; ) {
      const e = order[j]!;
      let k = j + 1;
      while (k < n && los[order[k]!] === los[e] && his[order[k]!] === his[e] && ranks[order[k]!] === ranks[e]) k++;
      if (k - j > 1) this.byNameDown(order, j, k);
      j = k;
    }
    const hi = new Uint32Array(n);
    const lo = new Uint32Array(n);
    for (let k = 0; k < n; k++) {
      hi[k] = his[order[k]!]!;
      lo[k] = los[order[k]!]!;
    }
    return (this.index = { order, hi, lo });
  }
}

/**
 * Symbol names by the FNV-1a hash of their bytes, in an open-addressing table of entry numbers:
 * built from the string table's bytes without making a single string.
 */
class NameIndex {
  private readonly slots: Int32Array;
  private readonly hashes: Uint32Array;
  private readonly mask: number;

  constructor(
    private readonly raw: Buffer,
    private readonly strings: Buffer,
    kept: Uint32Array,
  ) {
    let size = 16;
    while (size < kept.length * 2) size *= 2;
    this.mask = size - 1;
    this.slots = new Int32Array(size).fill(-1);
    this.hashes = new Uint32Array(size);
    const s = strings;
    // In entry order, so the entries of one name lie along its probe sequence in entry order.
    for (const e of kept) {
      let h = 0x811c9dc5;
      for (let p = raw.readUInt32LE(e * ENTRY); p < s.length && s[p] !== 0; p++) h = Math.imul(h ^ s[p]!, 0x01000193);
      h >>>= 0;
      let slot = h & this.mask;
      while (this.slots[slot] !== -1) slot = (slot + 1) & this.mask;
      this.slots[slot] = e;
      this.hashes[slot] = h;
    }
  }

  /** The first entry named `name` for which `preferred` holds, else the first entry so named. */
  find(name: string, preferred: (entry: number) => boolean): number | undefined {
    const want = Buffer.from(name, 'utf8');
    let h = 0x811c9dc5;
    for (const b of want) h = Math.imul(h ^ b, 0x01000193);
    h >>>= 0;
    let first: number | undefined;
    for (let slot = h & this.mask; this.slots[slot] !== -1; slot = (slot + 1) & this.mask) {
      const e = this.slots[slot]!;
      if (this.hashes[slot] !== h || !nameIs(this.raw, this.strings, e, want)) continue;
      if (preferred(e)) return e;
      first ??= e;
    }
    return first;
  }
}

/** Whether entry `e` of `raw` is named `want` (its bytes). */
function nameIs(raw: Buffer, strings: Buffer, e: number, want: Buffer): boolean {
  const at = raw.readUInt32LE(e * ENTRY);
  const end = at + want.length;
  return end < strings.length && strings[end] === 0 && strings[at] === want[0] && strings.compare(want, 0, want.length, at, end) === 0;
}

function cstringAt(b: Buffer, off: number): string {
  let end = b.indexOf(0, off);
  if (end < 0) end = b.length;
  return b.toString('utf8', off, end);
}
