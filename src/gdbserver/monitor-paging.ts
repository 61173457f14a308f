/**
 * QEMU's `info mem` and `info tlb` (target/i386/monitor.c) over the selected vCPU's page tables,
 * line for line as QEMU 7.2 prints them, so that a script written against QEMU's monitor reads
 * dbg's the same way:
 *
 *   info tlb   every present leaf entry:   VADDR: PADDR XGPDACTUW
 *              (addresses 16 hex digits, VADDR sign-extended from bit 47; the flag letters are the
 *              leaf entry's NX, G, PS, D, A, PCD, PWT, U/S, R/W bits, '-' when clear)
 *   info mem   runs of equal protection:   START-END SIZE urw
 *              (u and w from the U/S and R/W bits of every level above, ANDed as QEMU does)
 *
 * Three layouts, chosen as QEMU chooses: CR0.PG clear prints "PG disabled"; CR4.PAE with EFER.LMA
 * is 4-level long mode, without it PAE (a 4-entry PDPT); otherwise 2-level 32-bit paging (4 MiB
 * pages only with CR4.PSE). Tables are read from physical memory; one that cannot be read counts
 * as zeros (not present), as QEMU reads unbacked memory. 5-level paging (CR4.LA57) is refused.
 */

import { errors } from '../common/errors.js';
import { need, type Target } from '../targets/target.js';

const PRESENT = 1n;
const RW = 2n;
const USER = 4n;
const PWT = 8n;
const PCD = 0x10n;
const ACCESSED = 0x20n;
const DIRTY = 0x40n;
const PSE = 0x80n;
const GLOBAL = 0x100n;
const NX = 1n << 63n;
const PROT = USER | RW | PRESENT;

/** One level of a layout: its table size and the address bits one entry spans. */
interface Level {
  readonly entries: number;
  readonly shift: bigint;
  /** The physical address of the next table in an entry. */
  readonly next: bigint;
  /** The mask QEMU applies to a large-page entry at this level (none: no large pages here). */
  readonly large?: bigint;
  /** Whether this level's U/S and R/W bits count in `info mem` (a PAE PDPT's do not). */
  readonly inProt: boolean;
}

interface Layout {
  readonly entryBytes: 4 | 8;
  readonly levels: readonly Level[];
  /** The last level's mask (4 KiB pages). */
  readonly page: bigint;
  /** Where the address space ends (QEMU's last, flushing mem_print). */
  readonly end: bigint;
  readonly top: bigint;
}

const M52 = 0x3fffffffff000n;

function layout(target: Target, thread: number): Layout | undefined {
  const r = target.registers(thread);
  const cr0 = r.get('cr0');
  const cr3 = r.get('cr3');
  const cr4 = r.get('cr4') ?? 0n;
  if (cr3 === undefined) throw errors.unsupported(target.name, 'reading the page tables (no CR3)');
  if (cr0 !== undefined && !(cr0 & 0x80000000n)) return undefined;
  const efer = r.get('efer');
  const lma = efer !== undefined ? (efer & 0x400n) !== 0n : target.arch.name === 'x86-64';
  const pae = (cr4 & 0x20n) !== 0n || (cr0 === undefined && lma);
  if (pae && lma) {
    if (cr4 & 0x1000n) throw errors.unsupported(target.name, 'info mem/tlb with 5-level paging (CR4.LA57)');
    return {
      entryBytes: 8,
      levels: [
        { entries: 512, shift: 39n, next: M52, inProt: true },
        { entries: 512, shift: 30n, next: M52, large: 0x3ffffc0000000n, inProt: true },
        { entries: 512, shift: 21n, next: M52, large: 0x3ffffffe00000n, inProt: true },
        { entries: 512, shift: 12n, next: M52, inProt: true },
      ],
      page: M52,
      end: 1n << 48n,
      top: cr3 & M52,
    };
  }
  const u64 = (n: bigint): bigint => BigInt.asUintN(64, n);
  if (pae) {
    return {
      entryBytes: 8,
      levels: [
        { entries: 4, shift: 30n, next: M52, inProt: false },
        { entries: 512, shift: 21n, next: M52, large: u64(~((1n << 20n) - 1n)), inProt: true },
        { entries: 512, shift: 12n, next: M52, inProt: true },
      ],
      page: u64(~0xfffn),
      end: 1n << 32n,
      top: cr3 & u64(~0x1fn),
    };
  }
  return {
    entryBytes: 4,
    levels: [
      // QEMU's mask for a 4 MiB page keeps bit 21: printed as it prints it.
      { entries: 1024, shift: 22n, next: u64(~0xfffn), large: cr4 & 0x10n ? u64(~((1n << 21n) - 1n)) : undefined, inProt: true },
      { entries: 1024, shift: 12n, next: u64(~0xfffn), inProt: true },
    ],
    page: u64(~0xfffn),
    end: 1n << 32n,
    top: cr3 & 0xfffff000n,
  };
}

/** What the walk meets, in address order: a present leaf, or an entry that maps nothing. */
type Visit = { va: bigint; prot: bigint; leaf?: { entry: bigint; mask: bigint } };

function* walk(target: Target, l: Layout): Generator<Visit> {
  const phys = need(target, 'physical');
  const read = (addr: bigint, entries: number): bigint[] => {
    const out: bigint[] = new Array(entries).fill(0n);
    let b: Buffer;
    try {
      b = phys.readPhysical(addr, entries * l.entryBytes);
    } catch {
      return out;
    }
    for (let i = 0; i < entries; i++) out[i] = l.entryBytes === 8 ? b.readBigUInt64LE(i * 8) : BigInt(b.readUInt32LE(i * 4));
    return out;
  };
  function* level(depth: number, table: bigint, base: bigint, prot: bigint): Generator<Visit> {
    const lv = l.levels[depth]!;
    const last = depth === l.levels.length - 1;
    const entries = read(table, lv.entries);
    for (let i = 0; i < lv.entries; i++) {
      const e = entries[i]!;
      const va = base + (BigInt(i) << lv.shift);
      if (!(e & PRESENT)) {
        yield { va, prot: 0n };
        continue;
      }
      const p = lv.inProt ? prot & e : prot;
      if (last) yield { va, prot: p & PROT, leaf: { entry: e & ~PSE, mask: l.page } };
      else if (lv.large !== undefined && e & PSE) yield { va, prot: p & PROT, leaf: { entry: e, mask: lv.large } };
      else yield* level(depth + 1, e & lv.next, va, p);
    }
  }
  yield* level(0, l.top, 0n, PROT);
}

function canonical(a: bigint): bigint {
  return a & (1n << 47n) ? BigInt.asUintN(64, a | -(1n << 48n)) : a;
}

const hex16 = (a: bigint): string => a.toString(16).padStart(16, '0');

/** `info tlb`. */
export function infoTlb(target: Target, thread: number): string[] {
  const l = layout(target, thread);
  if (!l) return ['PG disabled'];
  const lines: string[] = [];
  for (const v of walk(target, l)) {
    if (!v.leaf) continue;
    const e = v.leaf.entry;
    const bit = (m: bigint, c: string): string => (e & m ? c : '-');
    const flags = bit(NX, 'X') + bit(GLOBAL, 'G') + bit(PSE, 'P') + bit(DIRTY, 'D') + bit(ACCESSED, 'A') + bit(PCD, 'C') + bit(PWT, 'T') + bit(USER, 'U') + bit(RW, 'W');
    lines.push(`${hex16(canonical(v.va))}: ${hex16(e & v.leaf.mask)} ${flags}`);
  }
  return lines;
}

/** `info mem`: QEMU's mem_print, called at every entry with that entry's start address. */
export function infoMem(target: Target, thread: number): string[] {
  const l = layout(target, thread);
  if (!l) return ['PG disabled'];
  const lines: string[] = [];
  let start: bigint | undefined;
  let last = 0n;
  const at = (end: bigint, prot: bigint): void => {
    if (prot === last) return;
    if (start !== undefined) {
      lines.push(`${hex16(canonical(start))}-${hex16(canonical(end))} ${hex16(canonical(end - start))} ${last & USER ? 'u' : '-'}r${last & RW ? 'w' : '-'}`);
    }
    start = prot !== 0n ? end : undefined;
    last = prot;
  };
  for (const v of walk(target, l)) at(v.va, v.prot);
  at(l.end, 0n);
  return lines;
}
