import { DbgError } from '../../common/errors.js';
import { U64Keys } from '../../common/u64-keys.js';
import { DW_AT, DW_FORM } from './dwarf-constants.js';
import { DwarfCursor } from './dwarf-cursor.js';
import type { Die, DwarfInfo, DwarfUnit } from './dwarf-info.js';

/**
 * Address ranges and location lists: where a DIE's code lies (DW_AT_low_pc/high_pc or
 * DW_AT_ranges) and where a variable lives at a given pc (DW_AT_location as an expression or a
 * location list). Addresses are link-time addresses of the file.
 *
 *   .debug_ranges (DWARF 2-4):  { addr start; addr end }... until (0, 0); (~0, base) sets the base
 *   .debug_loc    (DWARF 2-4):  { addr start; addr end; u16 len; expr }... until (0, 0); (~0, base)
 *   .debug_rnglists / .debug_loclists (DWARF 5): u8 kind, then per kind:
 *     RLE/LLE  0 end_of_list   1 base_addressx idx   2 startx_endx idx idx   3 startx_length idx len
 *              4 offset_pair off off   5 (rng) base_address a | (loc) default_location
 *              6 (rng) start_end a a | (loc) base_address a   7 (rng) start_length a len
 *              | (loc) start_end a a   8 (loc) start_length a len
 *     a location entry is followed by a ULEB128 length and the expression.
 *   DW_FORM_rnglistx / loclistx index a table of offsets after the unit's *_base.
 */

export interface AddrRange {
  readonly start: bigint;
  readonly end: bigint;
}

/** A location list entry: the expression that holds over [start, end). */
export interface LocEntry extends AddrRange {
  readonly expr: Buffer;
}

/** The most entries one list may have before it is taken for garbage. */
const MAX_ENTRIES = 1_000_000;

function corrupt(d: DwarfInfo, u: DwarfUnit, msg: string): DbgError {
  return new DbgError('corrupt', `${d.name}: unit at 0x${u.offset.toString(16)}: ${msg}`);
}

/** The address in .debug_addr at `index` for unit `u`. */
function addrx(d: DwarfInfo, u: DwarfUnit, index: number): bigint {
  return d.formAddress(u, { at: 0, form: DW_FORM.addrx, value: index })!;
}

/** The unit's base address for list entries: its root's DW_AT_low_pc (0 when none). */
export function unitBase(d: DwarfInfo, u: DwarfUnit): bigint {
  return d.root(u).address(DW_AT.low_pc) ?? 0n;
}

/**
 * The offset in `section` that a DW_FORM_rnglistx / loclistx index names: the table of offsets
 * after the base the unit's root gives (DW_AT_rnglists_base / loclists_base).
 */
function listxOffset(d: DwarfInfo, u: DwarfUnit, section: string, baseAt: number, index: number): number {
  const buf = d.sections.get(section);
  if (!buf) throw corrupt(d, u, `uses an index into ${section}, which the file does not have`);
  const baseAttr = d.root(u).attr(baseAt);
  const base = baseAttr && typeof baseAttr.value === 'number' ? baseAttr.value : u.offsetSize === 8 ? 20 : 12;
  const c = new DwarfCursor(buf, base + index * u.offsetSize, d.sections.littleEndian, `${d.name}: ${section}`);
  return base + c.offset(u.offsetSize);
}

/** The address ranges of a DIE (empty when it has none: a declaration, an abstract instance). */
export function dieRanges(die: Die): AddrRange[] {
  const d = die.dwarf;
  const u = die.unit;
  const low = die.address(DW_AT.low_pc);
  const highAttr = die.attr(DW_AT.high_pc);
  if (low !== undefined && highAttr) {
    const high = d.formAddress(u, highAttr) ?? low + (die.constant(DW_AT.high_pc) ?? 0n);
    return high > low ? [{ start: low, end: high }] : [];
  }
  const r = die.attr(DW_AT.ranges);
  if (!r) return [];
  const v = typeof r.value === 'bigint' ? Number(r.value) : typeof r.value === 'number' ? r.value : undefined;
  if (v === undefined) throw corrupt(d, u, `${die.describe()} has DW_AT_ranges of form 0x${r.form.toString(16)}`);
  const base = die.tag === 0x11 || die.tag === 0x41 ? (low ?? 0n) : unitBase(d, u);
  if (u.version >= 5) {
    const off = r.form === DW_FORM.rnglistx ? listxOffset(d, u, '.debug_rnglists', DW_AT.rnglists_base, v) : v;
    return readLists(d, u, '.debug_rnglists', off, base, false).map(({ start, end }) => ({ start, end }));
  }
  return readLists(d, u, '.debug_ranges', v, base, false).map(({ start, end }) => ({ start, end }));
}

/**
 * Ranges sorted by start, ties in their first order: `order` is each range's index in `rs`,
 * numbered where the ranges are made (not by a copy of each here). A library's ranges span far
 * less than 2^32 bytes: each becomes one 64-bit key (offset from the lowest start, then its
 * index), sorted natively (U64Keys) — a comparator over bigints, while the code is still cold,
 * costs tens of ms for libstdc++'s 12,000 ranges.
 */
export function sortByStart<R extends { readonly start: bigint; readonly order: number }>(rs: readonly R[]): R[] {
  if (rs.length === 0) return [];
  let min = rs[0]!.start;
  let max = min;
  for (const r of rs) {
    if (r.start < min) min = r.start;
    if (r.start > max) max = r.start;
  }
  if (max - min >= 1n << 32n) return [...rs].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.order - b.order));
  const keys = new U64Keys(rs.length);
  for (let i = 0; i < rs.length; i++) keys.set(i, Number(rs[i]!.start - min), i);
  keys.sort();
  const out: R[] = new Array(rs.length);
  for (let k = 0; k < rs.length; k++) out[k] = rs[keys.lo(k)]!;
  return out;
}

/** The index of the last of `rs` (sorted by start) that starts at or below `pc`; -1 when none does. */
export function lastStartAtOrBelow(rs: readonly { readonly start: bigint }[], pc: bigint): number {
  let lo = 0;
  let hi = rs.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (rs[mid]!.start <= pc) lo = mid + 1;
    else hi = mid - 1;
  }
  return hi;
}

/** Whether a DIE's code covers link-time address `pc`. */
export function dieCovers(die: Die, pc: bigint): boolean {
  return dieRanges(die).some((r) => pc >= r.start && pc < r.end);
}

/**
 * What DW_AT_location (or DW_AT_frame_base) of a DIE is at link-time `pc`: the expression,
 * 'none' when the variable has no location there (optimized out), undefined when the DIE has no
 * such attribute at all.
 */
export function locationAt(die: Die, at: number, pc: bigint): Buffer | 'none' | undefined {
  const a = die.attr(at);
  if (!a) return undefined;
  if (Buffer.isBuffer(a.value)) return a.value;
  const d = die.dwarf;
  const u = die.unit;
  const v = typeof a.value === 'bigint' ? Number(a.value) : typeof a.value === 'number' ? a.value : undefined;
  if (v === undefined) throw corrupt(d, u, `${die.describe()} has a location of form 0x${a.form.toString(16)}`);
  const base = unitBase(d, u);
  let list: LocEntry[];
  if (u.version >= 5) {
    const off = a.form === DW_FORM.loclistx ? listxOffset(d, u, '.debug_loclists', DW_AT.loclists_base, v) : v;
    list = readLists(d, u, '.debug_loclists', off, base, true);
  } else list = readLists(d, u, '.debug_loc', v, base, true);
  for (const e of list) if (pc >= e.start && pc < e.end) return e.expr;
  return 'none';
}

/** Reads one range list (locations false) or location list (true) starting at `off`. */
function readLists(d: DwarfInfo, u: DwarfUnit, section: string, off: number, baseIn: bigint, locations: boolean): LocEntry[] {
  const buf = d.sections.get(section);
  if (!buf) throw corrupt(d, u, `refers to ${section}, which the file does not have`);
  if (off >= buf.length) throw corrupt(d, u, `list offset 0x${off.toString(16)} is outside ${section} (0x${buf.length.toString(16)} bytes)`);
  const c = new DwarfCursor(buf, off, d.sections.littleEndian, `${d.name}: ${section}`);
  const out: LocEntry[] = [];
  const empty = Buffer.alloc(0);
  const size = u.addressSize;
  const maxAddr = size === 8 ? 0xffffffffffffffffn : (1n << BigInt(size * 8)) - 1n;
  let base = baseIn;
  const expr = (): Buffer => (locations ? (section === '.debug_loc' ? c.bytes(c.u16()) : c.bytes(c.uleb())) : empty);
  for (let n = 0; ; n++) {
    if (n > MAX_ENTRIES) throw corrupt(d, u, `list at 0x${off.toString(16)} of ${section} has more than ${MAX_ENTRIES} entries`);
    if (section === '.debug_ranges' || section === '.debug_loc') {
      const a = c.address(size);
      const b = c.address(size);
      if (a === 0n && b === 0n) return out;
      if (a === maxAddr) {
        base = b;
        continue;
      }
      out.push({ start: base + a, end: base + b, expr: expr() });
      continue;
    }
    const at = c.pos;
    const kind = c.u8();
    // Kinds 5-8 mean different things in the two sections (loclists insert default_location at 5).
    const k = locations && kind >= 5 ? kind - 1 : kind;
    switch (locations && kind === 5 ? -1 : k) {
      case 0:
        return out;
      case -1: // DW_LLE_default_location: no range of its own; a fallback we do not need
        expr();
        break;
      case 1:
        base = addrx(d, u, c.uleb());
        break;
      case 2: {
        const s = addrx(d, u, c.uleb());
        const e = addrx(d, u, c.uleb());
        out.push({ start: s, end: e, expr: expr() });
        break;
      }
      case 3: {
        const s = addrx(d, u, c.uleb());
        const len = c.ulebBig();
        out.push({ start: s, end: s + len, expr: expr() });
        break;
      }
      case 4: {
        const s = c.ulebBig();
        const e = c.ulebBig();
        out.push({ start: base + s, end: base + e, expr: expr() });
        break;
      }
      case 5:
        base = c.address(size);
        break;
      case 6: {
        const s = c.address(size);
        const e = c.address(size);
        out.push({ start: s, end: e, expr: expr() });
        break;
      }
      case 7: {
        const s = c.address(size);
        const len = c.ulebBig();
        out.push({ start: s, end: s + len, expr: expr() });
        break;
      }
      default:
        throw corrupt(d, u, `unknown ${locations ? 'DW_LLE' : 'DW_RLE'} entry kind 0x${kind.toString(16)} at offset 0x${at.toString(16)} of ${section}`);
    }
  }
}

const loclistUnits = new WeakMap<DwarfUnit, boolean>();

/**
 * Whether any DIE of unit `u` has a location list (not a single expression): gdb's sign that the
 * unit was optimized and its locations can be trusted at a function's first instruction, so a
 * breakpoint there is not moved past a prologue. Read once per unit.
 */
export function unitHasLocationLists(d: DwarfInfo, u: DwarfUnit): boolean {
  const hit = loclistUnits.get(u);
  if (hit !== undefined) return hit;
  let found = false;
  const isList = (form: number): boolean =>
    form === DW_FORM.sec_offset || form === DW_FORM.loclistx || (u.version < 4 && (form === DW_FORM.data4 || form === DW_FORM.data8));
  const walk = (parent: Die, depth: number): void => {
    if (found || depth > 64 || !parent.hasChildren) return;
    d.eachChild(u, parent.next, (c) => {
      const a = c.attr(DW_AT.location);
      if (a && isList(a.form)) found = true;
      else walk(c, depth + 1);
      return !found;
    });
  };
  walk(d.root(u), 0);
  loclistUnits.set(u, found);
  return found;
}
