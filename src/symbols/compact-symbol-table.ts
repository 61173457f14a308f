/**
 * A symbol table that answers lookups without first building every symbol.
 *
 * A backtrace names a handful of addresses and `init_task::print` one name, but a full
 * SymbolTable of libc or of a kernel (120,000 symbols) decodes and sorts every name and bigint
 * before the first answer: most of the time a core's first backtrace or a vmlinux's first
 * `::print` takes. This table reads the raw ELF64 symbol entries into typed arrays (address as two
 * 32-bit words, rank), sorts an index once, hashes the names' bytes on the first name lookup, and
 * makes a Sym only for the symbols a lookup returns. Listings build the ordinary SymbolTable on
 * first use and delegate to it, so every answer is the one SymbolTable gives: same filtering, same
 * order, same tie-breaking.
 *
 * Only for little-endian ELF64 files with fewer than 2^18 symbols; anything else gets an ordinary
 * SymbolTable from `symbolTableFor`.
 */

import { ElfFile, SHT_DYNSYM, SHT_SYMTAB, STT_FILE, STT_FUNC, STT_GNU_IFUNC, STT_OBJECT, STT_SECTION, STT_TLS } from './elf-file.js';
import { rank, SymbolTable, type Sym, type SymbolMatch } from './symbol-table.js';

const ENTRY = 24; // sizeof(Elf64_Sym)
/** Bits of a sort key that hold the entry number: up to 2^18 symbols per table. */
const IDX = 18;
const WORD = 0x1_0000_0000;
const SHN_ABS = 0xfff1;

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
  /** Syms made so far, by entry number. */
  private readonly made = new Map<number, Sym>();
  private names?: NameIndex;
  private scans = 0;

  private constructor(
    moduleName: string,
    private readonly elf: ElfFile,
    private readonly raw: Buffer,
    private readonly strings: Buffer,
    bias: bigint,
    /** Entry numbers of the kept symbols, in SymbolTable's order. */
    private readonly order: Uint32Array,
    /** Run-time address of order[i]: high and low 32 bits. */
    private readonly hi: Uint32Array,
    private readonly lo: Uint32Array,
    /** Entry numbers of the kept symbols, in entry order (what a name lookup searches). */
    private readonly kept: Uint32Array,
  ) {
    super(moduleName, [], bias);
  }

  static build(moduleName: string, elf: ElfFile, raw: Buffer, strings: Buffer, bias: bigint): CompactSymbolTable | undefined {
    const count = Math.floor(raw.length / ENTRY);
    if (count >= 2 ** IDX) return undefined;
    // The entries as 32-bit words (a copy only when the bytes are not 4-aligned): far cheaper
    // than thousands of Buffer reads.
    const w =
      raw.byteOffset % 4 === 0 ? new Uint32Array(raw.buffer, raw.byteOffset, count * 6) : new Uint32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + count * ENTRY));
    const hi = new Uint32Array(count);
    const lo = new Uint32Array(count);
    const kept = new Uint32Array(count);
    // Sort keys, one per kept entry, sorted natively (a comparator function is slow while code is
    // cold): (low word * 8 + 7 - rank) * 2^IDX + entry, below 2^53 (32 + 3 + 18 bits).
    const keys = new Float64Array(count);
    let n = 0;
    const biasB = BigInt.asUintN(64, bias);
    const biasHi = Number(biasB >> 32n);
    const biasLo = Number(biasB & 0xffff_ffffn);
    // The high words in use: a handful (user space and absolute symbols, or a kernel's text and
    // its per-CPU section at 0).
    const highs: number[] = [];
    let lastHigh = -1;
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
      let l = w[o + 2]!;
      let h = w[o + 3]!;
      if (shndx !== SHN_ABS) {
        l += biasLo;
        h = (h + biasHi + (l >= WORD ? 1 : 0)) >>> 0;
        l >>>= 0;
      }
      hi[i] = h;
      lo[i] = l;
      const kind = type === STT_FUNC || type === STT_GNU_IFUNC || type === STT_OBJECT ? 2 : 0;
      const sized = w[o + 4] !== 0 || w[o + 5] !== 0 ? 4 : 0;
      keys[n] = (l * 8 + 7 - (kind + (info >> 4 !== 0 ? 1 : 0) + sized)) * 2 ** IDX + i;
      if (h !== lastHigh && !highs.includes(h)) highs.push(h);
      lastHigh = h;
      kept[n++] = i;
    }
    // Sorted by low word, rank down, entry up; then the groups of one high word each, in order.
    // Names only matter between aliases of equal rank; resolve() orders those few when it meets them.
    const sorted = keys.subarray(0, n).sort();
    const byLow = new Uint32Array(n);
    for (let j = 0; j < n; j++) byLow[j] = sorted[j]! - Math.floor(sorted[j]! / 2 ** IDX) * 2 ** IDX;
    const order = highs.length === 1 ? byLow : new Uint32Array(n);
    const his = new Uint32Array(n);
    const los = new Uint32Array(n);
    let k = 0;
    for (const h of highs.sort((a, b) => a - b)) {
      for (let j = 0; j < n; j++) {
        const i = byLow[j]!;
        if (hi[i] !== h) continue;
        order[k] = i;
        his[k] = h;
        los[k] = lo[i]!;
        k++;
      }
    }
    return new CompactSymbolTable(moduleName, elf, raw, strings, bias, order, his, los, kept.slice(0, n));
  }

  override get size(): number {
    return this.order.length;
  }

  /** As SymbolTable: the first global symbol of that name, else the first one, in entry order. */
  override lookup(name: string): Sym | undefined {
    if (this.full) return this.full.lookup(name);
    const global = (e: number) => this.raw[e * ENTRY + 4]! >> 4 !== 0;
    // A few names by a scan of the entries; a session that asks for more gets the hash index.
    if (!this.names && this.scans++ < 4) {
      const e = scanFor(this.raw, this.strings, this.kept, Buffer.from(name, 'utf8'), global);
      return e === undefined ? undefined : this.sym(e);
    }
    this.names ??= new NameIndex(this.raw, this.strings, this.kept);
    const entry = this.names.find(name, global);
    return entry === undefined ? undefined : this.sym(entry);
  }

  override all(): readonly Sym[] {
    return this.complete().all();
  }

  override resolve(addr: bigint): SymbolMatch | undefined {
    if (addr < 0n) return undefined;
    const a = addr > 0xffff_ffff_ffff_ffffn ? 0xffff_ffff_ffff_ffffn : addr;
    const th = Number(a >> 32n);
    const tl = Number(a & 0xffff_ffffn);
    const his = this.hi;
    const los = this.lo;
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
    let j = found + 1;
    while (j < his.length && same(j)) j++;
    // The symbols at this address in SymbolTable's order: rank down, then name down.
    const here = [];
    for (let k = i; k < j; k++) here.push(this.sym(this.order[k]!));
    if (here.length > 1) here.sort((x, y) => rank(y) - rank(x) || (x.name < y.name ? 1 : x.name > y.name ? -1 : 0));
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

  /** The Sym of entry `e`, made once. */
  private sym(e: number): Sym {
    const hit = this.made.get(e);
    if (hit) return hit;
    const o = e * ENTRY;
    const raw = this.raw;
    const info = raw[o + 4]!;
    const type = info & 0xf;
    const shndx = raw.readUInt16LE(o + 6);
    const value = raw.readBigUInt64LE(o + 8);
    const s: Sym = {
      name: cstringAt(this.strings, raw.readUInt32LE(o)),
      addr: shndx === SHN_ABS ? value : value + this.bias,
      size: raw.readBigUInt64LE(o + 16),
      kind: type === STT_FUNC || type === STT_GNU_IFUNC ? 'func' : type === STT_OBJECT ? 'object' : 'other',
      global: info >> 4 !== 0,
    };
    this.made.set(e, s);
    return s;
  }

  private complete(): SymbolTable {
    this.full ??= new SymbolTable(this.moduleName, this.elf.symbols(), this.bias);
    return this.full;
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
      if (this.hashes[slot] !== h || !this.named(e, want)) continue;
      if (preferred(e)) return e;
      first ??= e;
    }
    return first;
  }

  private named(e: number, want: Buffer): boolean {
    return nameIs(this.raw, this.strings, e, want);
  }
}

/** Whether entry `e` of `raw` is named `want` (its bytes). */
function nameIs(raw: Buffer, strings: Buffer, e: number, want: Buffer): boolean {
  const at = raw.readUInt32LE(e * ENTRY);
  const end = at + want.length;
  return end < strings.length && strings[end] === 0 && strings[at] === want[0] && strings.compare(want, 0, want.length, at, end) === 0;
}

/** NameIndex.find by one pass over the entries, for a table asked for only a few names. */
function scanFor(raw: Buffer, strings: Buffer, kept: Uint32Array, want: Buffer, preferred: (entry: number) => boolean): number | undefined {
  let first: number | undefined;
  for (const e of kept) {
    if (!nameIs(raw, strings, e, want)) continue;
    if (preferred(e)) return e;
    first ??= e;
  }
  return first;
}

function cstringAt(b: Buffer, off: number): string {
  let end = b.indexOf(0, off);
  if (end < 0) end = b.length;
  return b.toString('utf8', off, end);
}
