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
  private parsed?: { readonly ranges: readonly Arange[]; readonly described: ReadonlySet<number> };
  private sorted?: readonly Arange[];
  private queries = 0;
  private maxEnds?: readonly bigint[];

  constructor(private readonly d: DwarfInfo) {}

  /** Every range, in the order the section has them. */
  get ranges(): readonly Arange[] {
    return this.parse().ranges;
  }

  /** Units that have a set (even an empty one: a unit without code is described by it too). */
  get described(): ReadonlySet<number> {
    return this.parse().described;
  }

  private parse(): { readonly ranges: readonly Arange[]; readonly described: ReadonlySet<number> } {
    if (this.parsed) return this.parsed;
    const out: Arange[] = [];
    const described = new Set<number>();
    this.eachSet((c, unitOffset, asz, end) => {
      described.add(unitOffset);
      const tuple = asz * 2;
      while (c.pos + tuple <= end) {
        const a = c.address(asz);
        const l = c.address(asz);
        if (a === 0n && l === 0n) break;
        out.push({ start: a, end: a + l, unitOffset, order: out.length });
      }
    });
    return (this.parsed = { ranges: out, described });
  }

  /** Calls `f` on each set with a cursor at its first tuple, its unit, address size and end; the headers checked. */
  private eachSet(f: (c: DwarfCursor, unitOffset: number, asz: number, end: number) => void): void {
    const d = this.d;
    const buf = d.sections.get('.debug_aranges');
    if (!buf) return;
    const c = new DwarfCursor(buf, 0, d.sections.littleEndian, `${d.name}: .debug_aranges`);
    while (c.pos < buf.length) {
      const start = c.pos;
      const { length: len, offsetSize: osz, end } = c.initialLength('length');
      if (end > buf.length) throw new DbgError('corrupt', `${d.name}: .debug_aranges: set at 0x${start.toString(16)} claims 0x${len.toString(16)} bytes, past the end of the section`);
      c.u16();
      const unitOffset = c.offset(osz);
      const asz = c.u8();
      c.u8();
      if (asz !== 2 && asz !== 4 && asz !== 8) throw new DbgError('corrupt', `${d.name}: .debug_aranges: set at 0x${start.toString(16)} has address size ${asz} (expected 2, 4 or 8)`);
      const tuple = asz * 2;
      c.pos = start + Math.ceil((c.pos - start) / tuple) * tuple;
      f(c, unitOffset, asz, end);
      c.pos = end;
    }
  }

  /**
   * unitOffsetsAt before the ranges are parsed: the tuples compared where they lie, as 32-bit
   * words. A kernel's 10,000 ranges made into objects with bigints cost ~30 ms cold, for the one
   * question a type's home asks.
   */
  private scanRaw(pc: bigint): number[] {
    const out: number[] = [];
    const ph = Number(pc >> 32n);
    const pl = Number(pc & 0xffff_ffffn);
    const le = this.d.sections.littleEndian;
    this.eachSet((c, unitOffset, asz, end) => {
      const b = c.buf;
      if (asz === 8 && le && (b.byteOffset + c.pos) % 4 === 0) {
        // The usual case as 32-bit words: [start lo, start hi, length lo, length hi] per range.
        const w = new Uint32Array(b.buffer, b.byteOffset + c.pos, Math.floor((end - c.pos) / 16) * 4);
        for (let i = 0; i < w.length; i += 4) {
          const sl = w[i]!;
          const sh = w[i + 1]!;
          const ll = w[i + 2]!;
          const lh = w[i + 3]!;
          if (sh === 0 && sl === 0 && lh === 0 && ll === 0) break;
          if (sh > ph || (sh === ph && sl > pl)) continue;
          const el = sl + ll;
          const eh = sh + lh + (el >= 2 ** 32 ? 1 : 0);
          if ((ph < eh || (ph === eh && pl < el % 2 ** 32)) && !out.includes(unitOffset)) out.push(unitOffset);
        }
        return;
      }
      const word = (p: number): number => (asz === 2 ? (le ? b.readUInt16LE(p) : b.readUInt16BE(p)) : le ? b.readUInt32LE(p) : b.readUInt32BE(p));
      // Where an address's high and low words lie (the high word is 0 below 8 bytes).
      const hiAt = asz === 8 ? (le ? 4 : 0) : -1;
      const loAt = asz === 8 && !le ? 4 : 0;
      for (let p = c.pos; p + asz * 2 <= end; p += asz * 2) {
        const q = p + asz;
        const sh = hiAt < 0 ? 0 : word(p + hiAt);
        const sl = word(p + loAt);
        const lh = hiAt < 0 ? 0 : word(q + hiAt);
        const ll = word(q + loAt);
        if (sh === 0 && sl === 0 && lh === 0 && ll === 0) break;
        if (sh > ph || (sh === ph && sl > pl)) continue;
        let el = sl + ll;
        let eh = sh + lh;
        if (el >= 2 ** 32) {
          el -= 2 ** 32;
          eh += 1;
        }
        if ((ph < eh || (ph === eh && pl < el)) && !out.includes(unitOffset)) out.push(unitOffset);
      }
    });
    return out;
  }

  /** Offsets of the units whose ranges cover link-time `pc`, in the order of their sets. */
  unitOffsetsAt(pc: bigint): number[] {
    if (!this.sorted && ++this.queries <= SCANNED_QUERIES) {
      // A few questions (a type's home, a short stack) cost less as scans than one sort.
      if (!this.parsed) return this.scanRaw(pc);
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
