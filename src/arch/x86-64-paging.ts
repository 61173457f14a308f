/**
 * x86-64 virtual -> physical translation: the 4-level (and 5-level, CR4.LA57) page walk the MMU
 * does, over any physical memory a caller can read 8 bytes of.
 *
 * The walker knows nothing of dumps or emulators: it takes `readPhys(addr, 8)` and the root table
 * (CR3 without its PCID / flag bits), so a kernel dump and the emulator share it.
 *
 *   63     48 47     39 38     30 29     21 20     12 11        0
 *   +--------+---------+---------+---------+---------+-----------+
 *   | sign   | PML4    | PDPT    | PD      | PT      | offset    |   4 KiB page
 *   +--------+---------+---------+---------+---------+-----------+
 *   PDPTE.PS = 1: bits 29..0 are the offset in a 1 GiB page; PDE.PS = 1: bits 20..0 in a 2 MiB page.
 *
 * An entry:  bit 0 P, 1 R/W, 2 U/S, 7 PS (PDPTE, PDE), 51..12 the next table or the page frame,
 * 63 XD (NX, when EFER.NXE). Rights combine over the levels: writable only if every level is,
 * executable only if no level has NX.
 *
 * Results:
 *   - a walk ends at a non-present entry: `fault` is 'PTE[13] = 0x0 (not present)' (the level's
 *     entry name, its index, its value), with every step so far;
 *   - a table the reader cannot read (outside the dump): `fault` names the table's physical
 *     address and the entry that pointed there; `faultKind` 'outside';
 *   - an entry pointing back at a table already on the walk (a loop): `faultKind` 'loop'.
 * The walker never throws for what it finds in the tables; only `readPhys` failures that are not
 * DbgError escape (bugs).
 *
 * A small TLB (keyed by root + 4 KiB virtual page) holds finished walks, so repeated translations
 * cost a Map lookup. Memory read through `readPhys` is assumed not to change between calls;
 * a caller whose memory changes (the emulator) calls `flush()` after a write to page tables or CR3.
 */

import { isDbgError } from '../common/errors.js';

// The same shapes as Translation / TranslationStep in targets/target.ts (structurally
// assignable), declared here so that arch/ does not import from targets/.
type PhysAddr = bigint;
type VirtAddr = bigint;

export interface TranslationStep {
  readonly level: string;
  readonly index: number;
  readonly entryAddr: PhysAddr;
  readonly entry: bigint;
}

/** Reads 8 bytes of physical memory as a little-endian integer; throws DbgError when absent. */
export type ReadPhys = (addr: PhysAddr, size: 8) => bigint;

export type WalkFaultKind = 'not-present' | 'outside' | 'loop' | 'reserved' | 'non-canonical';

/**
 * A translation. On results from the TLB, `steps` is a getter that walks (once per TLB slot) when
 * read: copy it by name (`steps: w.steps`), not with a spread.
 */
export interface Walk {
  readonly virt: VirtAddr;
  readonly phys?: PhysAddr;
  readonly pageSize?: number;
  readonly steps: readonly TranslationStep[];
  readonly fault?: string;
  readonly faultKind?: WalkFaultKind;
  readonly writable?: boolean;
  readonly user?: boolean;
  readonly executable?: boolean;
}

export interface PagingOptions {
  /** Physical-address bits to clear from every entry (AMD SME's C-bit: VMCOREINFO NUMBER(sme_mask)). */
  readonly clearMask?: bigint;
  /** TLB capacity in 4 KiB pages (default 65536). */
  readonly tlbEntries?: number;
  /**
   * An optional accelerator: the 4 KiB page at physical `page` (page-aligned, below 2^52) as
   * 1024 little-endian u32 words, or undefined when it cannot be read whole (the walker then asks
   * `readPhys` for the one entry, whose error says what is missing). With it, a walk runs on
   * numbers and costs no file reads once the tables are cached.
   */
  readonly tablePage?: (page: number) => Uint32Array | undefined;
}

const LEVELS = [
  { level: 'PML5', entry: 'PML5E', shift: 48 },
  { level: 'PML4', entry: 'PML4E', shift: 39 },
  { level: 'PDPT', entry: 'PDPTE', shift: 30 },
  { level: 'PD', entry: 'PDE', shift: 21 },
  { level: 'PT', entry: 'PTE', shift: 12 },
] as const;

const ADDR_MASK = 0x000f_ffff_ffff_f000n; // bits 51..12
const MASK64 = (1n << 64n) - 1n;
const TWO32 = 4294967296;
/** X86_64Paging's scratch words: an entry's low and high 32 bits, a walk's physical address. */
const LO = 0;
const HI = 1;
const PHYS = 2;
/** How many filled TLB slots a flush clears one by one before it clears the whole table instead. */
const FLUSH_LIST = 256;

/** One level of a walk (made only by full walks: the TLB path keeps numbers). */
class Step implements TranslationStep {
  readonly entryAddr: bigint;
  readonly entry: bigint;
  constructor(
    readonly level: string,
    readonly index: number,
    at: number,
    lo: number,
    hi: number,
  ) {
    this.entryAddr = BigInt(at);
    this.entry = (BigInt(hi) << 32n) | BigInt(lo);
  }
}

/** Outcome codes of `descend`. */
const OK = 0;
const NOT_PRESENT = 1;
const OUTSIDE = 2;
const LOOP = 3;
const RESERVED = 4;
const NON_CANONICAL = 5;

/**
 * A successful translation whose steps are found only if someone asks (::vtop does; a memory read
 * does not): the TLB keeps numbers, and the steps of a TLB slot once asked for, so millions of
 * translations leave little for the garbage collector.
 */
class CachedWalk implements Walk {
  private stepList?: readonly TranslationStep[];
  readonly writable: boolean;
  readonly user: boolean;
  readonly executable: boolean;
  constructor(
    private readonly walker: X86_64Paging,
    private readonly root: PhysAddr,
    private readonly levels: 4 | 5,
    private readonly slot: number,
    readonly virt: VirtAddr,
    readonly phys: PhysAddr,
    readonly pageSize: number,
    rights: number,
  ) {
    this.writable = (rights & 1) !== 0;
    this.user = (rights & 2) !== 0;
    this.executable = (rights & 4) !== 0;
  }
  get steps(): readonly TranslationStep[] {
    return (this.stepList ??= this.walker.stepsOf(this.slot, this.root, this.virt, this.levels));
  }
}

export class X86_64Paging {
  // A direct-mapped TLB: slot = 4 KiB page number modulo the size; all numbers, no objects.
  private readonly tlbSize: number;
  private readonly tlbTag: Float64Array; // virtual page number + 1 (0 = empty)
  private readonly tlbRoot: Float64Array; // root + levels - 4
  private readonly tlbBase: Float64Array; // physical address of the virtual page's first byte
  private readonly tlbInfo: Uint8Array; // log2(page size) << 3 | rights (W 1, U 2, X 4)
  private readonly tlbSteps: (readonly TranslationStep[] | undefined)[] = []; // filled when asked for
  // Slots filled since the last flush, so that a flush after a few translations (the emulator
  // flushes at every stop, and a debugger's single step reads a page or two) clears those alone
  // instead of the whole table; past FLUSH_LIST slots the table is cleared whole.
  private readonly filled = new Int32Array(FLUSH_LIST);
  private filledCount = 0;
  /** Address bits kept from an entry, as high (bits 51..32) and low (31..12) words. */
  private readonly keepHi: number;
  private readonly keepLo: number;
  private readonly tablePage?: (page: number) => Uint32Array | undefined;
  // Scratch results of readEntry and descend (no allocation on the hot path). The entry's words
  // and the physical address are kept in a Float64Array (LO, HI, PHYS), not in fields: a field
  // that first held a small integer and then a larger number (an entry with NX set, a frame above
  // 1 GiB) changed the walker's shape, which a walker made before it still had; code optimised on
  // one machine's walker was then thrown away on the next's (see seen).
  private readonly words = new Float64Array(3);
  private outShift = 0;
  private outRights = 0;
  private outLevel = 0;
  private outLoopAt = 0;
  /**
   * The table address read at each level of the walk under way. A Float64Array, not a number[]:
   * an array's elements kind (small integers, then doubles once a table address is stored as one)
   * is part of its map, so code V8 optimised on one walker's array met the next walker's fresh one
   * with another map and was thrown away ("wrong map" in descend) — at a GDB server's first step,
   * after its rehearsal had compiled it on a scratch machine's walker.
   */
  private readonly seen = new Float64Array(5);

  constructor(
    private readonly readPhys: ReadPhys,
    opts: PagingOptions = {},
  ) {
    let size = 1;
    while (size < (opts.tlbEntries ?? 65536)) size *= 2;
    this.tlbSize = size;
    this.tlbTag = new Float64Array(size);
    this.tlbRoot = new Float64Array(size);
    this.tlbBase = new Float64Array(size);
    this.tlbInfo = new Uint8Array(size);
    const keep = ADDR_MASK & ~(opts.clearMask ?? 0n);
    this.keepHi = Number(keep >> 32n);
    this.keepLo = Number(keep & 0xfffff000n);
    this.tablePage = opts.tablePage;
  }

  /** Forget every cached walk (after page tables or the memory under them changed). */
  flush(): void {
    if (this.filledCount > FLUSH_LIST) {
      this.tlbTag.fill(0);
      this.tlbSteps.length = 0;
    } else {
      for (let i = 0; i < this.filledCount; i++) {
        const slot = this.filled[i]!;
        this.tlbTag[slot] = 0;
        this.tlbSteps[slot] = undefined;
      }
    }
    this.filledCount = 0;
  }

  /**
   * Translate `virt` through the tables rooted at physical `root` (CR3's table address: the
   * caller strips PCID and flag bits, see `cr3Root`). `levels` is 4, or 5 with CR4.LA57.
   * Successful walks are cached per (root, 4 KiB page); faults are not.
   */
  translate(root: PhysAddr, virt: VirtAddr, levels: 4 | 5 = 4): Walk {
    if (virt < 0n || virt > MASK64) virt &= MASK64;
    const vhi = Number(virt >> 32n);
    const vlo = Number(virt & 0xffffffffn);
    const rootKey = Number(root) + levels - 4; // root is page-aligned: the low bits are free
    const vpn = vhi * 1048576 + (vlo >>> 12);
    const slot = vpn & (this.tlbSize - 1);
    if (this.tlbTag[slot] === vpn + 1 && this.tlbRoot[slot] === rootKey) {
      const info = this.tlbInfo[slot]!;
      return new CachedWalk(this, root, levels, slot, virt, BigInt(this.tlbBase[slot]! + (vlo & 0xfff)), 2 ** (info >> 3), info & 7);
    }
    const rootNum = Number(root);
    if (this.descend(rootNum, vhi, vlo, levels, undefined) !== OK) return this.walkNumbers(rootNum, virt, vhi, vlo, levels);
    const phys = this.words[PHYS]!;
    if (this.filledCount < FLUSH_LIST) this.filled[this.filledCount] = slot;
    this.filledCount++;
    this.tlbTag[slot] = vpn + 1;
    this.tlbRoot[slot] = rootKey;
    this.tlbBase[slot] = phys - (vlo & 0xfff);
    this.tlbInfo[slot] = (this.outShift << 3) | this.outRights;
    this.tlbSteps[slot] = undefined;
    return new CachedWalk(this, root, levels, slot, virt, BigInt(phys), 2 ** this.outShift, this.outRights);
  }

  /** The steps of a cached translation: from its TLB slot when still there, else walked again. */
  stepsOf(slot: number, root: PhysAddr, virt: VirtAddr, levels: 4 | 5): readonly TranslationStep[] {
    const vpn = Number(virt >> 32n) * 1048576 + (Number(virt & 0xffffffffn) >>> 12);
    const same = this.tlbTag[slot] === vpn + 1 && this.tlbRoot[slot] === Number(root) + levels - 4;
    const hit = same ? this.tlbSteps[slot] : undefined;
    if (hit) return hit;
    const steps = this.walk(root, virt, levels).steps;
    if (same) this.tlbSteps[slot] = steps;
    return steps;
  }

  /** The walk itself, uncached, with every step. */
  walk(root: PhysAddr, virt: VirtAddr, levels: 4 | 5 = 4): Walk {
    virt &= MASK64;
    return this.walkNumbers(Number(root), virt, Number(virt >> 32n), Number(virt & 0xffffffffn), levels);
  }

  /** Reads entry `index` of the table at `table` into words[LO] / words[HI]; false when it is outside. */
  private readEntry(table: number, index: number): boolean {
    const page = this.tablePage?.(table);
    if (page) {
      this.words[LO] = page[index * 2]!;
      this.words[HI] = page[index * 2 + 1]!;
      return true;
    }
    let e: bigint;
    try {
      e = this.readPhys(BigInt(table + index * 8), 8);
    } catch (err) {
      if (isDbgError(err)) return false;
      throw err;
    }
    this.words[LO] = Number(e & 0xffffffffn);
    this.words[HI] = Number(e >> 32n);
    return true;
  }

  /**
   * The walk on numbers. Returns an outcome code; on OK, words[PHYS] / outShift / outRights hold the
   * result; otherwise outLevel is the LEVELS index where it stopped (and outLoopAt, for a loop,
   * the index of the table it came back to). `steps`, when given, receives every entry read.
   */
  private descend(root: number, vhi: number, vlo: number, levels: 4 | 5, steps: Step[] | undefined): number {
    // Bits 63..47 (4-level) or 63..56 (5-level) must all be equal: vhi's top 17 or 8 bits.
    const topBits = levels === 5 ? vhi >>> 24 : vhi >>> 15;
    if (topBits !== 0 && topBits !== (levels === 5 ? 0xff : 0x1ffff)) return NON_CANONICAL;
    const first = levels === 5 ? 0 : 1;
    const seen = this.seen;
    let table = this.keep(Math.floor(root / TWO32), root >>> 0);
    let rights = 7;
    for (let i = first; i < LEVELS.length; i++) {
      const shift = LEVELS[i]!.shift;
      // Index bits: shift 48 -> vhi 16..24, 39 -> vhi 7..15, 30 -> vhi 0..6 + vlo 30..31, 21, 12 -> vlo.
      const index =
        shift === 48 ? (vhi >>> 16) & 0x1ff : shift === 39 ? (vhi >>> 7) & 0x1ff : shift === 30 ? ((vhi << 2) | (vlo >>> 30)) & 0x1ff : (vlo >>> shift) & 0x1ff;
      this.outLevel = i;
      for (let j = first; j < i; j++) {
        if (seen[j] === table) {
          this.outLoopAt = j;
          return LOOP;
        }
      }
      seen[i] = table;
      if (!this.readEntry(table, index)) return OUTSIDE;
      const lo = this.words[LO]!;
      const hi = this.words[HI]!;
      steps?.push(new Step(LEVELS[i]!.level, index, table + index * 8, lo, hi));
      if ((lo & 1) === 0) return NOT_PRESENT;
      if ((lo & 2) === 0) rights &= ~1;
      if ((lo & 4) === 0) rights &= ~2;
      if (hi >>> 31 !== 0) rights &= ~4;
      const ps = (lo & 0x80) !== 0;
      const leaf = shift === 12 || ((shift === 21 || shift === 30) && ps);
      if (!leaf && ps) return RESERVED;
      const next = this.keep(hi, lo);
      if (leaf) {
        const pageSize = 2 ** shift;
        // Offset bits come from the virtual address: vlo holds all of them (shift <= 30).
        this.words[PHYS] = next - (next % pageSize) + ((vlo & (pageSize - 1)) >>> 0);
        this.outShift = shift;
        this.outRights = rights;
        return OK;
      }
      table = next;
    }
    throw new Error('unreachable: the PT level is always a leaf');
  }

  /** A full walk, with steps and, when it fails, the fault in words. */
  private walkNumbers(root: number, virt: bigint, vhi: number, vlo: number, levels: 4 | 5): Walk {
    const steps: Step[] = [];
    const code = this.descend(root, vhi, vlo, levels, steps);
    const r = this.outRights;
    if (code === OK) {
      return { virt, phys: BigInt(this.words[PHYS]!), pageSize: 2 ** this.outShift, steps, writable: (r & 1) !== 0, user: (r & 2) !== 0, executable: (r & 4) !== 0 };
    }
    const lv = LEVELS[this.outLevel]!;
    const last = steps[steps.length - 1];
    const entryText = (st: Step, name: string) => `${name}[${st.index}] = 0x${st.entry.toString(16)}`;
    switch (code) {
      case NON_CANONICAL: {
        const bit = levels === 5 ? 56 : 47;
        return { virt, steps, faultKind: 'non-canonical', fault: `0x${virt.toString(16)} is not canonical (bits 63..${bit} must all equal bit ${bit} with ${levels}-level paging)` };
      }
      case NOT_PRESENT:
        return { virt, steps, faultKind: 'not-present', fault: `${entryText(last!, lv.entry)} (not present)` };
      case RESERVED:
        return { virt, steps, faultKind: 'reserved', fault: `${entryText(last!, lv.entry)} has PS set, which is reserved at this level` };
      case LOOP:
        return {
          virt,
          steps,
          faultKind: 'loop',
          fault: `page-table loop: ${entryText(last!, LEVELS[this.outLevel - 1]!.entry)} points back to the ${LEVELS[this.outLoopAt]!.level} at phys 0x${this.seen[this.outLoopAt]!.toString(16)}`,
        };
      default: {
        const from = last ? entryText(last, LEVELS[this.outLevel - 1]!.entry) : 'CR3';
        return { virt, steps, faultKind: 'outside', fault: `the ${lv.level} at phys 0x${this.seen[this.outLevel]!.toString(16)} (from ${from}) is not in the dump` };
      }
    }
  }

  /** The next-table / frame address in an entry (bits 51..12 less the clear mask), as a number. */
  private keep(hi: number, lo: number): number {
    return (hi & this.keepHi) * TWO32 + ((lo & this.keepLo) >>> 0);
  }
}

/** The root table address in a CR3 value: bits 51..12 (PCID, PWT, PCD and bit 63 cleared). */
export function cr3Root(cr3: bigint): PhysAddr {
  return cr3 & ADDR_MASK;
}
