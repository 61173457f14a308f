import { DbgError } from '../../common/errors.js';
import { DwarfCursor } from './dwarf-cursor.js';
import type { DwarfInfo } from './dwarf-info.js';
import { lastStartAtOrBelow, sortByStart } from './dwarf-ranges.js';

/**
 * .debug_aranges: which unit's code covers an address, without reading the units. A kernel has
 * 2,000 units whose headers alone cost 2,000 reads of a 160 MB section; the aranges are one read of
 * 160 KB.
 *
 * Set:
 *   unit_length (u32, or 0xffffffff + u64), u16 version (2), debug_info_offset (offset),
 *   u8 address_size, u8 segment_selector_size, padding to a multiple of 2 * address_size,
 *   then (address, length) pairs until (0, 0).
 */

export interface Arange {
  /** Link-time addresses, end exclusive. */
  readonly start: bigint;
  readonly end: bigint;
  /** The unit's offset in .debug_info. */
  readonly unitOffset: number;
  /** The range's index in the section's order (DwarfAranges.ranges). */
  readonly order: number;
}

/** Questions answered by scanning the ranges before they are sorted for binary search. */
const SCANNED_QUERIES = 32;

export class DwarfAranges {
  /** Every range, in the order the section has them. */
  readonly ranges: readonly Arange[];
  /** Units that have a set (even an empty one: a unit without code is described by it too). */
  readonly described: ReadonlySet<number>;
  private sorted?: readonly Arange[];
  private queries = 0;
  private maxEnds?: readonly bigint[];

  constructor(d: DwarfInfo) {
    const out: Arange[] = [];
    const described = new Set<number>();
    const buf = d.sections.get('.debug_aranges');
    if (buf) {
      const c = new DwarfCursor(buf, 0, d.sections.littleEndian, `${d.name}: .debug_aranges`);
      while (c.pos < buf.length) {
        const start = c.pos;
        const { length: len, offsetSize: osz, end } = c.initialLength('length');
        if (end > buf.length) throw new DbgError('corrupt', `${d.name}: .debug_aranges: set at 0x${start.toString(16)} claims 0x${len.toString(16)} bytes, past the end of the section`);
        c.u16();
        const unitOffset = c.offset(osz);
        described.add(unitOffset);
        const asz = c.u8();
        c.u8();
        if (asz !== 2 && asz !== 4 && asz !== 8) throw new DbgError('corrupt', `${d.name}: .debug_aranges: set at 0x${start.toString(16)} has address size ${asz} (expected 2, 4 or 8)`);
        const tuple = asz * 2;
        c.pos = start + Math.ceil((c.pos - start) / tuple) * tuple;
        while (c.pos + tuple <= end) {
          const a = c.address(asz);
          const l = c.address(asz);
          if (a === 0n && l === 0n) break;
          out.push({ start: a, end: a + l, unitOffset, order: out.length });
        }
        c.pos = end;
      }
    }
    this.ranges = out;
    this.described = described;
  }

  /** Offsets of the units whose ranges cover link-time `pc`, in the order of their sets. */
  unitOffsetsAt(pc: bigint): number[] {
    if (!this.sorted && ++this.queries <= SCANNED_QUERIES) {
      // A few questions (a type's home, a short stack) cost less as scans than one sort.
      const out: number[] = [];
      for (const r of this.ranges) if (pc >= r.start && pc < r.end && !out.includes(r.unitOffset)) out.push(r.unitOffset);
      return out;
    }
    if (!this.sorted) {
      this.sorted = sortByStart(this.ranges);
      let max = 0n;
      this.maxEnds = this.sorted.map((r) => (max = r.end > max ? r.end : max));
    }
    const rs = this.sorted;
    const hits: Arange[] = [];
    // Ranges before the last one starting at or below pc cover it only while the largest end so far is past it.
    for (let i = lastStartAtOrBelow(rs, pc); i >= 0 && this.maxEnds![i]! > pc; i--) if (pc < rs[i]!.end) hits.push(rs[i]!);
    hits.sort((a, b) => a.order - b.order);
    const out: number[] = [];
    for (const h of hits) if (!out.includes(h.unitOffset)) out.push(h.unitOffset);
    return out;
  }
}

const cache = new WeakMap<DwarfInfo, DwarfAranges>();

/** The aranges of a file's DWARF, read once. */
export function arangesOf(d: DwarfInfo): DwarfAranges {
  let a = cache.get(d);
  if (!a) cache.set(d, (a = new DwarfAranges(d)));
  return a;
}
