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
}

const LEVELS = [
  { level: 'PML5', entry: 'PML5E', shift: 48n },
  { level: 'PML4', entry: 'PML4E', shift: 39n },
  { level: 'PDPT', entry: 'PDPTE', shift: 30n },
  { level: 'PD', entry: 'PDE', shift: 21n },
  { level: 'PT', entry: 'PTE', shift: 12n },
] as const;

const ADDR_MASK = 0x000f_ffff_ffff_f000n; // bits 51..12
const P = 1n;
const RW = 2n;
const US = 4n;
const PS = 0x80n;
const NX = 1n << 63n;
const MASK64 = (1n << 64n) - 1n;

interface TlbEntry {
  readonly pageBase: PhysAddr; // physical address of the virtual 4 KiB page's first byte
  readonly pageSize: number;
  readonly steps: readonly TranslationStep[];
  readonly writable: boolean;
  readonly user: boolean;
  readonly executable: boolean;
}

export class X86_64Paging {
  private readonly tlb = new Map<bigint, Map<bigint, TlbEntry>>();
  private tlbCount = 0;
  private readonly tlbMax: number;
  private readonly keep: bigint;

  constructor(
    private readonly readPhys: ReadPhys,
    opts: PagingOptions = {},
  ) {
    this.tlbMax = opts.tlbEntries ?? 65536;
    this.keep = ADDR_MASK & ~(opts.clearMask ?? 0n);
  }

  /** Forget every cached walk (after page tables or the memory under them changed). */
  flush(): void {
    this.tlb.clear();
    this.tlbCount = 0;
  }

  /**
   * Translate `virt` through the tables rooted at physical `root` (CR3's table address: the
   * caller strips PCID and flag bits, see `cr3Root`). `levels` is 4, or 5 with CR4.LA57.
   */
  translate(root: PhysAddr, virt: VirtAddr, levels: 4 | 5 = 4): Walk {
    virt &= MASK64;
    const key = root | BigInt(levels - 4); // root is page-aligned: the low bit is free
    const vpn = virt >> 12n;
    let perRoot = this.tlb.get(key);
    const hit = perRoot?.get(vpn);
    if (hit) {
      return {
        virt,
        phys: hit.pageBase + (virt & 0xfffn),
        pageSize: hit.pageSize,
        steps: hit.steps,
        writable: hit.writable,
        user: hit.user,
        executable: hit.executable,
      };
    }
    const w = this.walk(root, virt, levels);
    if (w.phys !== undefined) {
      if (this.tlbCount >= this.tlbMax) this.flush();
      if (!perRoot || this.tlbCount === 0) {
        perRoot = this.tlb.get(key) ?? new Map();
        this.tlb.set(key, perRoot);
      }
      perRoot.set(vpn, {
        pageBase: w.phys - (virt & 0xfffn),
        pageSize: w.pageSize!,
        steps: w.steps,
        writable: w.writable!,
        user: w.user!,
        executable: w.executable!,
      });
      this.tlbCount++;
    }
    return w;
  }

  /** The walk itself, uncached. */
  walk(root: PhysAddr, virt: VirtAddr, levels: 4 | 5 = 4): Walk {
    virt &= MASK64;
    const steps: TranslationStep[] = [];
    const topBit = levels === 5 ? 56n : 47n;
    const upper = virt >> topBit;
    if (upper !== 0n && upper !== MASK64 >> topBit) {
      return {
        virt,
        steps,
        faultKind: 'non-canonical',
        fault: `0x${virt.toString(16)} is not canonical (bits 63..${topBit} must all equal bit ${topBit} with ${levels}-level paging)`,
      };
    }
    const chain = levels === 5 ? LEVELS : LEVELS.slice(1);
    const tables: PhysAddr[] = [];
    let table = root & this.keep;
    let writable = true;
    let user = true;
    let executable = true;
    for (let i = 0; i < chain.length; i++) {
      const lv = chain[i]!;
      const index = Number((virt >> lv.shift) & 0x1ffn);
      const loopAt = tables.indexOf(table);
      if (loopAt >= 0) {
        const prev = steps[steps.length - 1]!;
        return {
          virt,
          steps,
          faultKind: 'loop',
          fault: `page-table loop: ${chain[i - 1]!.entry}[${prev.index}] = 0x${prev.entry.toString(16)} points back to the ${chain[loopAt]!.level} at phys 0x${table.toString(16)}`,
        };
      }
      tables.push(table);
      const entryAddr = table + BigInt(index * 8);
      let entry: bigint;
      try {
        entry = this.readPhys(entryAddr, 8);
      } catch (e) {
        if (!isDbgError(e)) throw e;
        const from =
          i === 0 ? 'CR3' : `${chain[i - 1]!.entry}[${steps[i - 1]!.index}] = 0x${steps[i - 1]!.entry.toString(16)}`;
        return {
          virt,
          steps,
          faultKind: 'outside',
          fault: `the ${lv.level} at phys 0x${table.toString(16)} (from ${from}) is not in the dump`,
        };
      }
      steps.push({ level: lv.level, index, entryAddr, entry });
      if ((entry & P) === 0n) {
        return { virt, steps, faultKind: 'not-present', fault: `${lv.entry}[${index}] = 0x${entry.toString(16)} (not present)` };
      }
      writable &&= (entry & RW) !== 0n;
      user &&= (entry & US) !== 0n;
      executable &&= (entry & NX) === 0n;
      const leaf = lv.level === 'PT' || ((lv.level === 'PD' || lv.level === 'PDPT') && (entry & PS) !== 0n);
      if (!leaf && (entry & PS) !== 0n) {
        return { virt, steps, faultKind: 'reserved', fault: `${lv.entry}[${index}] = 0x${entry.toString(16)} has PS set, which is reserved at this level` };
      }
      if (leaf) {
        const pageSize = 1 << Number(lv.shift);
        const offMask = BigInt(pageSize - 1);
        const frame = entry & this.keep & ~offMask;
        return { virt, phys: frame | (virt & offMask), pageSize, steps, writable, user, executable };
      }
      table = entry & this.keep;
    }
    throw new Error('unreachable: the PT level is always a leaf');
  }
}

/** The root table address in a CR3 value: bits 51..12 (PCID, PWT, PCD and bit 63 cleared). */
export function cr3Root(cr3: bigint): PhysAddr {
  return cr3 & ADDR_MASK;
}
