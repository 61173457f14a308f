import { DbgError } from '../../common/errors.js';
import type { ElfFile } from '../elf-file.js';
import { DW_AT, DW_FORM, DW_TAG, DW_UT } from './dwarf-constants.js';
import { arangesOf } from './dwarf-aranges.js';
import { DwarfCursor } from './dwarf-cursor.js';
import { findAltFile, findSeparateDebug } from './debug-files.js';
import { nameIndexOf, type NameIndex } from './dwarf-name-index.js';
import { DwarfSections } from './dwarf-sections.js';

/**
 * A lazy reader of the debugging information entries (DIEs) of one ELF file, DWARF 2 to 5.
 *
 * Opening costs nothing; the first question reads the unit headers of .debug_info (and, for
 * DWARF 4 type units, .debug_types): a few bytes per unit. A DIE is decoded only when asked for,
 * by its offset. A name lookup builds, once, an index of the *top-level* DIEs of every unit (the
 * children of each unit's root: types, globals, functions), stepping over their subtrees by
 * DW_AT_sibling: on a kernel that is a small part of the DIEs.
 *
 * A DIE is named by a `DieRef`: its offset in .debug_info, or TYPES_BASE plus its offset in
 * .debug_types, so one number identifies a DIE of either section.
 *
 * Every inconsistency (a unit longer than its section, an abbreviation code its table lacks, a
 * reference outside the section, an unknown form) is DbgError('corrupt') naming the file, the
 * unit and the offset; the rest of the file stays readable.
 */

export type DieRef = number;
export const TYPES_BASE = 2 ** 45;
/** DieRefs at or past this are DIEs of the DWZ supplementary file (DW_FORM_GNU_ref_alt, ref_sup). */
export const ALT_BASE = 2 ** 47;

export type AttrValue = number | bigint | string | Buffer | boolean;

export interface Attr {
  readonly at: number;
  readonly form: number;
  /**
   * As the form encodes it: numbers for constants, offsets and indexes (bigint when 8 bytes or
   * LEB128 do not fit a number), Buffer for blocks/exprloc/data16, string for DW_FORM_string,
   * true for flags. String, address and reference forms are resolved by the Die accessors.
   */
  readonly value: AttrValue;
}

interface AbbrevSpec {
  readonly at: number;
  readonly form: number;
  readonly implicit?: bigint;
}

interface Abbrev {
  readonly tag: number;
  readonly hasChildren: boolean;
  readonly specs: readonly AbbrevSpec[];
}

export interface DwarfUnit {
  /** Offset of the unit header in its section. */
  readonly offset: number;
  readonly inTypes: boolean;
  readonly version: number;
  readonly unitType: number;
  readonly offsetSize: 4 | 8;
  readonly addressSize: number;
  readonly abbrevOffset: number;
  /** DieRef of the root DIE. */
  readonly root: DieRef;
  /** DieRef one past the last byte of the unit. */
  readonly end: DieRef;
  readonly typeSignature?: bigint;
  /** DieRef of the type a type unit describes. */
  readonly typeDie?: DieRef;
}

interface UnitBases {
  strOffsets: number;
  addr: number;
}

export class Die {
  constructor(
    readonly dwarf: DwarfInfo,
    readonly unit: DwarfUnit,
    readonly id: DieRef,
    readonly tag: number,
    readonly hasChildren: boolean,
    readonly attrs: readonly Attr[],
    /** DieRef just past this DIE's attributes: its first child, if it has children. */
    readonly next: DieRef,
  ) {}

  attr(at: number): Attr | undefined {
    for (const a of this.attrs) if (a.at === at) return a;
    return undefined;
  }

  has(at: number): boolean {
    return this.attr(at) !== undefined;
  }

  get name(): string | undefined {
    return this.string(DW_AT.name);
  }

  string(at: number): string | undefined {
    const a = this.attr(at);
    return a ? this.dwarf.formString(this.unit, a) : undefined;
  }

  /** An unsigned constant (byte_size, count, data_member_location as a constant...). */
  uint(at: number): number | undefined {
    const a = this.attr(at);
    if (!a) return undefined;
    const v = constantOf(a);
    if (v === undefined) return undefined;
    if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
    return Number(v);
  }

  /** A constant as bigint, signed when the form is sdata (or implicit_const). */
  constant(at: number): bigint | undefined {
    const a = this.attr(at);
    return a ? constantOf(a) : undefined;
  }

  flag(at: number): boolean {
    const a = this.attr(at);
    return a !== undefined && a.value !== 0 && a.value !== false;
  }

  /** The DIE an attribute of a reference form points at. */
  ref(at: number): DieRef | undefined {
    const a = this.attr(at);
    return a ? this.dwarf.formRef(this.unit, a, this.id) : undefined;
  }

  /** The DIE an attribute refers to, decoded. */
  refDie(at: number): Die | undefined {
    const r = this.ref(at);
    return r === undefined ? undefined : this.dwarf.die(r);
  }

  address(at: number): bigint | undefined {
    const a = this.attr(at);
    return a ? this.dwarf.formAddress(this.unit, a) : undefined;
  }

  /** The children, decoded in order (empty when the DIE has none). */
  children(): Die[] {
    return this.hasChildren ? this.dwarf.childrenAt(this.unit, this.next) : [];
  }

  describe(): string {
    return `DIE 0x${(this.id % TYPES_BASE).toString(16)}${this.id >= TYPES_BASE ? ' in .debug_types' : ''}`;
  }
}

function constantOf(a: Attr): bigint | undefined {
  const v = a.value;
  if (typeof v === 'number') return BigInt(v);
  if (typeof v === 'bigint') return v;
  if (typeof v === 'boolean') return v ? 1n : 0n;
  return undefined;
}

/** The most bytes a unit header takes (64-bit DWARF 5 type unit). */
const UNIT_HEADER_MAX = 48;

/** How many DIEs deep a subtree may nest before it is taken for a loop. */
const MAX_DEPTH = 1000;

/** A top-level DIE firstInUnit has passed: its entry, its DW_AT_name (not read), its C++ scope. */
interface ScannedName {
  readonly entry: NameEntry;
  readonly name: Attr;
  readonly prefix: string;
}

export interface NameEntry {
  readonly ref: DieRef;
  readonly tag: number;
  /** True for DW_AT_declaration DIEs (a struct only declared, an extern variable). */
  readonly declaration: boolean;
}

export class DwarfInfo {
  readonly sections: DwarfSections;
  private unitList?: DwarfUnit[];
  /** The .debug_info units whose headers have been read, in order, and where the next starts. */
  private readonly infoUnits: DwarfUnit[] = [];
  private infoEnd = 0;
  /** Units past infoEnd read by their offset alone (unitAt), reused when the headers in order reach them. */
  private readonly lone = new Map<number, DwarfUnit>();
  private readonly abbrevCache = new Map<number, Map<number, Abbrev>>();
  private readonly bases = new Map<DwarfUnit, UnitBases>();
  private readonly signatures = new Map<bigint, DwarfUnit>();
  private names?: Map<string, NameEntry[]>;
  private readonly dieCache = new Map<DieRef, Die>();

  private altInfo?: DwarfInfo | null;

  /**
   * `refBias` is ALT_BASE for a DWZ supplementary file: the references its DIEs make are then
   * numbered in the space of the file that uses it.
   */
  constructor(
    readonly elf: ElfFile,
    private readonly refBias = 0,
  ) {
    this.sections = new DwarfSections(elf);
  }

  /** The DWZ supplementary file (.gnu_debugaltlink), opened on first use; undefined when none. */
  get alt(): DwarfInfo | undefined {
    if (this.altInfo === undefined) {
      const f = this.refBias ? undefined : findAltFile(this.elf);
      this.altInfo = f ? new DwarfInfo(f, ALT_BASE) : null;
    }
    return this.altInfo ?? undefined;
  }

  /** A reference as this file numbers its own DIEs (a supplementary file's refs carry ALT_BASE). */
  private localRef(r: DieRef | undefined): DieRef | undefined {
    return r === undefined ? undefined : r - this.refBias;
  }

  private needAlt(what: string): DwarfInfo {
    const a = this.alt;
    if (!a) throw this.corrupt(`${what} is in a DWZ supplementary file (.gnu_debugaltlink), which ${this.elf.section('.gnu_debugaltlink') ? 'was not found (or its build-id differs)' : 'the file does not name'}`);
    return a;
  }

  /** True when the file has a .debug_info section (compressed or not). */
  get present(): boolean {
    return this.sections.has('.debug_info');
  }

  get name(): string {
    return this.elf.name;
  }

  private corrupt(msg: string): DbgError {
    return new DbgError('corrupt', `${this.elf.name}: ${msg}`);
  }

  // --- units ----------------------------------------------------------------------------------

  /** Every unit of .debug_info and .debug_types, from their headers only. */
  units(): readonly DwarfUnit[] {
    if (this.unitList) return this.unitList;
    while (this.nextInfoUnit());
    const out = [...this.infoUnits];
    const lazy = this.sections.lazy('.debug_types');
    if (lazy) {
      const buf = lazy.buf;
      const c = new DwarfCursor(buf, 0, this.sections.littleEndian, `${this.elf.name}: .debug_types`);
      while (c.pos < buf.length) {
        lazy.fill(c.pos, UNIT_HEADER_MAX); // the header only: a unit's DIEs are read when asked for
        const u = this.readUnitHeader(c, true);
        out.push(u);
        if (u.typeSignature !== undefined) this.signatures.set(u.typeSignature, u);
        c.pos = u.end - TYPES_BASE;
      }
    }
    this.unitList = out;
    return out;
  }

  /**
   * The units in file order, their headers read only as far as the caller goes: a name found in
   * the fifth of a kernel's 2,000 units costs five headers, not 2,000 reads.
   */
  *eachUnit(): Generator<DwarfUnit> {
    if (this.unitList) return yield* this.unitList;
    for (let i = 0; i < this.infoUnits.length || this.nextInfoUnit(); i++) yield this.infoUnits[i]!;
    yield* this.units().slice(this.infoUnits.length);
  }

  /** Reads the header of the next unit of .debug_info into infoUnits; false at the end. */
  private nextInfoUnit(): boolean {
    const lazy = this.sections.lazy('.debug_info');
    if (!lazy || this.infoEnd >= lazy.buf.length) return false;
    const c = new DwarfCursor(lazy.buf, this.infoEnd, this.sections.littleEndian, `${this.elf.name}: .debug_info`);
    lazy.fill(c.pos, UNIT_HEADER_MAX); // the header only: a unit's DIEs are read when asked for
    const u = this.lone.get(this.infoEnd) ?? this.readUnitHeader(c, false);
    this.lone.delete(this.infoEnd);
    this.infoUnits.push(u);
    if (u.typeSignature !== undefined) this.signatures.set(u.typeSignature, u);
    this.infoEnd = u.end;
    return true;
  }

  /*
   * Unit headers:
   *   v2-4 .debug_info:  length, u16 version, offset abbrev, u8 address_size
   *   v4 .debug_types:   ... then u64 type_signature, offset type_offset
   *   v5:                length, u16 version, u8 unit_type, u8 address_size, offset abbrev,
   *                      then u64 signature + offset type_offset (type units),
   *                      or u64 dwo_id (skeleton, split_compile)
   * `length` is u32, or 0xffffffff then u64 for 64-bit DWARF (offsets become 8 bytes).
   */
  private readUnitHeader(c: DwarfCursor, inTypes: boolean): DwarfUnit {
    const base = inTypes ? TYPES_BASE : 0;
    const offset = c.pos;
    const { length, offsetSize, end } = c.initialLength('unit length');
    if (offsetSize === 4 && length >= 0xfffffff0) throw this.corrupt(`unit at 0x${offset.toString(16)} has reserved length 0x${length.toString(16)}`);
    if (end > c.buf.length) {
      throw this.corrupt(`unit at 0x${offset.toString(16)} of ${inTypes ? '.debug_types' : '.debug_info'} claims 0x${length.toString(16)} bytes, past the end of the section (0x${c.buf.length.toString(16)})`);
    }
    const version = c.u16();
    if (version < 2 || version > 5) throw this.corrupt(`unit at 0x${offset.toString(16)} has DWARF version ${version} (dbg reads 2 to 5)`);
    let unitType: number = DW_UT.compile;
    let addressSize: number;
    let abbrevOffset: number;
    let typeSignature: bigint | undefined;
    let typeDie: DieRef | undefined;
    if (version >= 5) {
      unitType = c.u8();
      addressSize = c.u8();
      abbrevOffset = c.offset(offsetSize);
      if (unitType === DW_UT.type || unitType === DW_UT.split_type) {
        typeSignature = c.u64();
        typeDie = offset + c.offset(offsetSize) + base;
      } else if (unitType === DW_UT.skeleton || unitType === DW_UT.split_compile) c.skip(8);
      else if (unitType !== DW_UT.compile && unitType !== DW_UT.partial) throw this.corrupt(`unit at 0x${offset.toString(16)} has unknown unit type 0x${unitType.toString(16)}`);
    } else {
      abbrevOffset = c.offset(offsetSize);
      addressSize = c.u8();
      if (inTypes) {
        unitType = DW_UT.type;
        typeSignature = c.u64();
        typeDie = offset + c.offset(offsetSize) + base;
      }
    }
    if (addressSize !== 4 && addressSize !== 8 && addressSize !== 2) throw this.corrupt(`unit at 0x${offset.toString(16)} has address size ${addressSize}`);
    if (c.pos > end) throw this.corrupt(`unit at 0x${offset.toString(16)} is shorter than its header`);
    return { offset, inTypes, version, unitType, offsetSize, addressSize, abbrevOffset, root: c.pos + base, end: end + base, typeSignature, typeDie };
  }

  /**
   * The .debug_info unit whose header is at `offset` (as .debug_aranges names units), or
   * undefined when none starts there. Past the headers read so far, only that header is read:
   * the units before it stay unread.
   */
  unitAt(offset: number): DwarfUnit | undefined {
    if (this.unitList || offset < this.infoEnd) {
      const us = this.infoUnits;
      let lo = 0;
      let hi = us.length - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (us[mid]!.offset === offset) return us[mid];
        if (us[mid]!.offset < offset) lo = mid + 1;
        else hi = mid - 1;
      }
      return undefined;
    }
    const hit = this.lone.get(offset);
    if (hit) return hit;
    const lazy = this.sections.lazy('.debug_info');
    if (!lazy || !Number.isSafeInteger(offset) || offset < 0 || offset >= lazy.buf.length) return undefined;
    lazy.fill(offset, UNIT_HEADER_MAX);
    const u = this.readUnitHeader(new DwarfCursor(lazy.buf, offset, this.sections.littleEndian, `${this.elf.name}: .debug_info`), false);
    this.lone.set(offset, u);
    return u;
  }

  /** The unit holding a DieRef (binary search over the headers). */
  unitOf(ref: DieRef): DwarfUnit {
    // Headers are read only up to the unit that holds the reference.
    if (!this.unitList && ref < TYPES_BASE && ref >= this.infoEnd) {
      for (const u of this.lone.values()) if (ref >= u.offset && ref < u.end) return u;
      while (ref >= this.infoEnd && this.nextInfoUnit());
    }
    const us = this.unitList ?? (ref < TYPES_BASE && ref < this.infoEnd ? this.infoUnits : this.units());
    let lo = 0;
    let hi = us.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const u = us[mid]!;
      const start = u.offset + (u.inTypes ? TYPES_BASE : 0);
      if (ref < start) hi = mid - 1;
      else if (ref >= u.end) lo = mid + 1;
      else return u;
    }
    throw this.corrupt(`DIE reference 0x${ref.toString(16)} is outside every unit`);
  }

  // --- abbreviations --------------------------------------------------------------------------

  /** The first read of an abbreviation table (grown 4x while the table runs past it; tests lower it). */
  static abbrevWindow = 16 << 10;

  /**
   * The abbreviation table of a unit, read once. A large .debug_abbrev is read in pieces from the
   * table's offset on, as far as the table goes: a kernel's is 5 MB of tables of a few KB each, and
   * reading it whole cost ~20 ms of a cold type lookup.
   */
  private abbrevs(u: DwarfUnit): Map<number, Abbrev> {
    const hit = this.abbrevCache.get(u.abbrevOffset);
    if (hit) return hit;
    const sec = this.sections.paged('.debug_abbrev');
    if (!sec) throw this.corrupt('has .debug_info but no .debug_abbrev');
    const size = sec.buf.length;
    if (u.abbrevOffset >= size) throw this.corrupt(`unit at 0x${u.offset.toString(16)} points at abbreviation table 0x${u.abbrevOffset.toString(16)}, past the end of .debug_abbrev`);
    for (let window = DwarfInfo.abbrevWindow; ; window *= 4) {
      const end = Math.min(size, u.abbrevOffset + window);
      sec.need(u.abbrevOffset, end - u.abbrevOffset);
      // Bytes past `end` are not read yet: a table that runs into them is read again, further.
      const table = this.abbrevTable(u, end === size ? sec.buf : sec.buf.subarray(0, end), end < size);
      if (table) {
        this.abbrevCache.set(u.abbrevOffset, table);
        return table;
      }
    }
  }

  /** The table at u.abbrevOffset in `buf`; undefined when `partial` and it runs past buf's end. */
  private abbrevTable(u: DwarfUnit, buf: Buffer, partial: boolean): Map<number, Abbrev> | undefined {
    const c = new DwarfCursor(buf, u.abbrevOffset, this.sections.littleEndian, `${this.elf.name}: .debug_abbrev`);
    try {
      return this.readAbbrevs(u, c);
    } catch (e) {
      if (partial && e instanceof DbgError && c.pos >= buf.length - 16) return undefined;
      throw e;
    }
  }

  private readAbbrevs(u: DwarfUnit, c: DwarfCursor): Map<number, Abbrev> {
    const table = new Map<number, Abbrev>();
    for (;;) {
      const code = c.uleb();
      if (code === 0) break;
      const tag = c.uleb();
      const hasChildren = c.u8() !== 0;
      const specs: AbbrevSpec[] = [];
      for (;;) {
        const at = c.uleb();
        const form = c.uleb();
        if (at === 0 && form === 0) break;
        specs.push(form === DW_FORM.implicit_const ? { at, form, implicit: c.slebBig() } : { at, form });
      }
      if (table.has(code)) throw this.corrupt(`abbreviation table 0x${u.abbrevOffset.toString(16)} defines code ${code} twice`);
      table.set(code, { tag, hasChildren, specs });
    }
    return table;
  }

  // --- DIEs -----------------------------------------------------------------------------------

  private readonly loadedUnits = new Set<DwarfUnit>();

  private cursorAt(ref: DieRef): DwarfCursor {
    const inTypes = ref >= TYPES_BASE;
    const lazy = this.sections.lazy(inTypes ? '.debug_types' : '.debug_info')!;
    const u = this.unitOf(ref);
    if (!this.loadedUnits.has(u)) {
      lazy.fill(u.offset, u.end - (inTypes ? TYPES_BASE : 0) - u.offset);
      this.loadedUnits.add(u);
    }
    const buf = lazy.buf;
    return new DwarfCursor(buf, ref - (inTypes ? TYPES_BASE : 0), this.sections.littleEndian, `${this.elf.name}: ${inTypes ? '.debug_types' : '.debug_info'}`);
  }

  /** The DIE at `ref`. Corrupt if `ref` is not the start of a DIE (a null entry, outside a unit). */
  die(ref: DieRef): Die {
    if (ref >= ALT_BASE) {
      if (this.refBias) ref -= this.refBias;
      else return this.needAlt(`DIE 0x${(ref - ALT_BASE).toString(16)}`).die(ref);
    }
    const hit = this.dieCache.get(ref);
    if (hit) return hit;
    const u = this.unitOf(ref);
    const d = this.readDie(u, this.cursorAt(ref));
    if (!d) throw this.corrupt(`DIE reference 0x${ref.toString(16)} (unit 0x${u.offset.toString(16)}) points at a null entry`);
    if (this.dieCache.size > 200_000) this.dieCache.clear();
    this.dieCache.set(ref, d);
    return d;
  }

  /** The root DIE of a unit. */
  root(u: DwarfUnit): Die {
    return this.die(u.root);
  }

  /** Decodes the DIE at the cursor; undefined for a null entry (the end of a sibling list). */
  private readDie(u: DwarfUnit, c: DwarfCursor): Die | undefined {
    const base = u.inTypes ? TYPES_BASE : 0;
    const start = c.pos + base;
    if (start >= u.end) throw this.corrupt(`unit at 0x${u.offset.toString(16)}: DIE list runs past the end of the unit at 0x${(start - base).toString(16)}`);
    const code = c.uleb();
    if (code === 0) return undefined;
    const ab = this.abbrevs(u).get(code);
    if (!ab) throw this.corrupt(`unit at 0x${u.offset.toString(16)}: DIE at 0x${(start - base).toString(16)} uses abbreviation code ${code}, which table 0x${u.abbrevOffset.toString(16)} does not define`);
    const attrs: Attr[] = new Array(ab.specs.length);
    for (let i = 0; i < ab.specs.length; i++) {
      const s = ab.specs[i]!;
      attrs[i] = { at: s.at, form: s.form, value: s.form === DW_FORM.implicit_const ? s.implicit! : this.readForm(u, c, s.form, start) };
    }
    return new Die(this, u, start, ab.tag, ab.hasChildren, attrs, c.pos + base);
  }

  private readForm(u: DwarfUnit, c: DwarfCursor, form: number, at: DieRef): AttrValue {
    switch (form) {
      case DW_FORM.addr:
        return c.address(u.addressSize);
      case DW_FORM.data1:
      case DW_FORM.ref1:
      case DW_FORM.flag:
      case DW_FORM.strx1:
      case DW_FORM.addrx1:
        return c.u8();
      case DW_FORM.data2:
      case DW_FORM.ref2:
      case DW_FORM.strx2:
      case DW_FORM.addrx2:
        return c.u16();
      case DW_FORM.strx3:
      case DW_FORM.addrx3:
        return c.u24();
      case DW_FORM.data4:
      case DW_FORM.ref4:
      case DW_FORM.strx4:
      case DW_FORM.addrx4:
      case DW_FORM.ref_sup4:
        return c.u32();
      case DW_FORM.data8:
      case DW_FORM.ref_sig8:
      case DW_FORM.ref_sup8:
        return c.u64();
      case DW_FORM.ref8: {
        return c.u64num('ref8');
      }
      case DW_FORM.data16:
        return c.bytes(16);
      case DW_FORM.sdata:
        return c.slebBig();
      case DW_FORM.udata:
        return c.ulebBig();
      case DW_FORM.ref_udata:
      case DW_FORM.strx:
      case DW_FORM.addrx:
      case DW_FORM.loclistx:
      case DW_FORM.rnglistx:
      case DW_FORM.GNU_addr_index:
      case DW_FORM.GNU_str_index:
        return c.uleb();
      case DW_FORM.string:
        return c.cstring();
      case DW_FORM.strp:
      case DW_FORM.line_strp:
      case DW_FORM.sec_offset:
      case DW_FORM.strp_sup:
      case DW_FORM.GNU_ref_alt:
      case DW_FORM.GNU_strp_alt:
        return c.offset(u.offsetSize);
      case DW_FORM.ref_addr:
        return u.version <= 2 ? Number(c.address(u.addressSize)) : c.offset(u.offsetSize);
      case DW_FORM.block1:
        return c.bytes(c.u8());
      case DW_FORM.block2:
        return c.bytes(c.u16());
      case DW_FORM.block4:
        return c.bytes(c.u32());
      case DW_FORM.block:
      case DW_FORM.exprloc:
        return c.bytes(c.uleb());
      case DW_FORM.flag_present:
        return true;
      case DW_FORM.indirect: {
        const f = c.uleb();
        if (f === DW_FORM.indirect || f === DW_FORM.implicit_const) throw this.corrupt(`DIE at 0x${(at % TYPES_BASE).toString(16)}: DW_FORM_indirect names form 0x${f.toString(16)}`);
        return this.readForm(u, c, f, at);
      }
      default:
        throw this.corrupt(`unit at 0x${u.offset.toString(16)}: DIE at 0x${(at % TYPES_BASE).toString(16)} uses unknown attribute form 0x${form.toString(16)}`);
    }
  }

  /** The children of a DIE whose first child is at `first`, decoded, skipping their subtrees. */
  childrenAt(u: DwarfUnit, first: DieRef): Die[] {
    const out: Die[] = [];
    this.eachChild(u, first, (d) => {
      out.push(d);
    });
    return out;
  }

  /**
   * Calls `f` on each child starting at `first`, stepping over grandchildren by DW_AT_sibling or,
   * without it, by decoding the subtree. Stops early when `f` returns false.
   */
  eachChild(u: DwarfUnit, first: DieRef, f: (d: Die) => boolean | void): void {
    const base = u.inTypes ? TYPES_BASE : 0;
    const c = this.cursorAt(first);
    for (let n = 0; ; n++) {
      if (c.pos + base >= u.end) return; // a unit may end without the final null entry
      const d = this.readDie(u, c);
      if (!d) return;
      if (f(d) === false) return;
      if (!d.hasChildren) continue;
      const sib = this.localRef(d.ref(DW_AT.sibling));
      if (sib !== undefined && sib > d.id && sib <= u.end) c.pos = sib - base;
      else this.skipSubtree(u, c);
    }
  }

  private skipSubtree(u: DwarfUnit, c: DwarfCursor): void {
    const base = u.inTypes ? TYPES_BASE : 0;
    let depth = 1;
    while (depth > 0) {
      if (c.pos + base >= u.end) return;
      const d = this.readDie(u, c);
      if (!d) depth--;
      else if (d.hasChildren) {
        const sib = this.localRef(d.ref(DW_AT.sibling));
        if (sib !== undefined && sib > d.id && sib <= u.end) c.pos = sib - base;
        else if (++depth > MAX_DEPTH) throw this.corrupt(`unit at 0x${u.offset.toString(16)}: DIEs nest deeper than ${MAX_DEPTH} at 0x${c.pos.toString(16)}`);
      }
    }
  }

  // --- forms that need the unit's context -----------------------------------------------------

  private unitBases(u: DwarfUnit): UnitBases {
    let b = this.bases.get(u);
    if (b) return b;
    // DWARF 5 defaults: the first entry after the section's 8-byte (32-bit) header.
    b = { strOffsets: u.offsetSize === 8 ? 16 : 8, addr: u.offsetSize === 8 ? 16 : 8 };
    this.bases.set(u, b);
    const root = this.root(u);
    const so = root.attr(DW_AT.str_offsets_base);
    if (so && typeof so.value === 'number') b.strOffsets = so.value;
    const ab = root.attr(DW_AT.addr_base) ?? root.attr(0x2133 /* DW_AT_GNU_addr_base */);
    if (ab && typeof ab.value === 'number') b.addr = ab.value;
    return b;
  }

  sectionString(section: string, off: number): string {
    const sec = this.sections.paged(section);
    if (!sec) throw this.corrupt(`a string refers to ${section}, which the file does not have`);
    if (off >= sec.buf.length) throw this.corrupt(`string offset 0x${off.toString(16)} is outside ${section} (0x${sec.buf.length.toString(16)} bytes)`);
    return sec.cstring(off);
  }

  formString(u: DwarfUnit, a: Attr): string | undefined {
    switch (a.form) {
      case DW_FORM.string:
        return a.value as string;
      case DW_FORM.strp:
        return this.sectionString('.debug_str', a.value as number);
      case DW_FORM.line_strp:
        return this.sectionString('.debug_line_str', a.value as number);
      case DW_FORM.strx:
      case DW_FORM.strx1:
      case DW_FORM.strx2:
      case DW_FORM.strx3:
      case DW_FORM.strx4:
      case DW_FORM.GNU_str_index: {
        const table = this.sections.get('.debug_str_offsets');
        if (!table) throw this.corrupt(`unit at 0x${u.offset.toString(16)} uses DW_FORM_strx but the file has no .debug_str_offsets`);
        const at = this.unitBases(u).strOffsets + (a.value as number) * u.offsetSize;
        if (at + u.offsetSize > table.length) throw this.corrupt(`string index ${a.value as number} of unit 0x${u.offset.toString(16)} is outside .debug_str_offsets`);
        const c = new DwarfCursor(table, at, this.sections.littleEndian, `${this.elf.name}: .debug_str_offsets`);
        return this.sectionString('.debug_str', c.offset(u.offsetSize));
      }
      case DW_FORM.strp_sup:
      case DW_FORM.GNU_strp_alt:
        return this.needAlt(`string 0x${(a.value as number).toString(16)}`).sectionString('.debug_str', a.value as number);
      default:
        return undefined;
    }
  }

  formAddress(u: DwarfUnit, a: Attr): bigint | undefined {
    if (a.form === DW_FORM.addr) return a.value as bigint;
    const indexed: number[] = [DW_FORM.addrx, DW_FORM.addrx1, DW_FORM.addrx2, DW_FORM.addrx3, DW_FORM.addrx4, DW_FORM.GNU_addr_index];
    if (!indexed.includes(a.form)) return undefined;
    const table = this.sections.get('.debug_addr');
    if (!table) throw this.corrupt(`unit at 0x${u.offset.toString(16)} uses DW_FORM_addrx but the file has no .debug_addr`);
    const at = this.unitBases(u).addr + (a.value as number) * u.addressSize;
    if (at + u.addressSize > table.length) throw this.corrupt(`address index ${a.value as number} of unit 0x${u.offset.toString(16)} is outside .debug_addr`);
    return new DwarfCursor(table, at, this.sections.littleEndian, `${this.elf.name}: .debug_addr`).address(u.addressSize);
  }

  formRef(u: DwarfUnit, a: Attr, from: DieRef): DieRef | undefined {
    const base = u.inTypes ? TYPES_BASE : 0;
    let target: number;
    switch (a.form) {
      case DW_FORM.ref1:
      case DW_FORM.ref2:
      case DW_FORM.ref4:
      case DW_FORM.ref8:
      case DW_FORM.ref_udata:
        target = u.offset + base + (a.value as number);
        if (target >= u.end) throw this.corrupt(`DIE at 0x${(from - base).toString(16)} refers to 0x${(target - base).toString(16)}, outside its unit (0x${u.offset.toString(16)}..0x${(u.end - base).toString(16)})`);
        return target + this.refBias;
      case DW_FORM.ref_addr:
        target = a.value as number;
        if (target >= (this.sections.lazy('.debug_info')?.buf.length ?? 0)) throw this.corrupt(`DIE at 0x${(from - base).toString(16)} refers to 0x${target.toString(16)}, outside .debug_info`);
        return target + this.refBias;
      case DW_FORM.GNU_ref_alt:
      case DW_FORM.ref_sup4:
      case DW_FORM.ref_sup8:
        if (this.refBias) throw this.corrupt(`DIE at 0x${(from - base).toString(16)} of a supplementary file refers to another supplementary file`);
        return ALT_BASE + Number(a.value);
      case DW_FORM.ref_sig8: {
        this.units();
        const tu = this.signatures.get(a.value as bigint);
        if (!tu || tu.typeDie === undefined) throw this.corrupt(`DIE at 0x${(from - base).toString(16)} refers to type signature 0x${(a.value as bigint).toString(16)}, which no type unit defines`);
        return tu.typeDie + this.refBias;
      }
      default:
        return undefined;
    }
  }

  // --- name index -----------------------------------------------------------------------------

  /**
   * Top-level DIEs called `name`: types, variables, functions at the top of a unit (and inside
   * C++ namespaces, under "ns::name"). Built on first use from the unit roots' children.
   */
  lookup(name: string): readonly NameEntry[] {
    const own = (this.indexedLookup(name) ?? this.nameIndex().get(name) ?? []).map((e) => (this.refBias ? { ...e, ref: e.ref + this.refBias } : e));
    // DWZ moves shared types into the supplementary file's partial units.
    const alt = this.altInfo !== null && this.elf.section('.gnu_debugaltlink') ? this.alt?.lookup(name) : undefined;
    return alt && alt.length > 0 ? own.concat(alt) : own;
  }

  /** How many units' top levels name lookups have read: what an index saves (tests). */
  unitsScanned = 0;
  private index?: NameIndex | null;
  private readonly perUnit = new Map<DwarfUnit, Map<string, NameEntry[]>>();
  /** How far firstInUnit has read each unit's top level, and what it passed. */
  private readonly unitScans = new Map<DwarfUnit, { readonly seen: ScannedName[]; next: DieRef | undefined }>();

  /**
   * The name through the file's .gdb_index or .debug_names: the top level of only the units it
   * names is read. Undefined when the file has no index, or for a qualified C++ name that
   * .debug_names (which keeps plain names) cannot answer: then every unit is read.
   */
  private indexedLookup(name: string): NameEntry[] | undefined {
    if (this.names) return undefined;
    // Type units are left to the full walk: the indexes name them in ways that differ by version.
    if (this.index === undefined) {
      const index = nameIndexOf(this.sections, this.elf.name);
      this.index = !index || this.units().some((u) => u.typeSignature !== undefined) ? null : index;
    }
    if (!this.index || (this.index.kind === '.debug_names' && name.includes('::'))) return undefined;
    const byOffset = new Map(this.units().filter((u) => !u.inTypes).map((u) => [u.offset, u]));
    const out: NameEntry[] = [];
    const hits = this.index.lookup(name);
    if (hits.length === 0 && name.split(' ').every((w) => BASE_TYPE_WORDS.has(w))) {
      // Indexes leave base types out; nearly every unit defines the ones it uses.
      for (const u of byOffset.values()) {
        const e = this.unitNames(u).get(name);
        if (e) return [...e];
      }
      return out;
    }
    for (const hit of hits) {
      const u = byOffset.get(hit.unit);
      if (!u) throw this.corrupt(`${this.index.kind} names unit 0x${hit.unit.toString(16)}, which .debug_info does not have`);
      for (const e of this.unitNames(u).get(name) ?? []) if (!out.some((o) => o.ref === e.ref)) out.push(e);
    }
    return out;
  }

  /** The top-level names of one unit (read once). */
  private unitNames(u: DwarfUnit): Map<string, NameEntry[]> {
    let m = this.perUnit.get(u);
    if (m) return m;
    m = new Map();
    this.indexUnit(u, m);
    this.perUnit.set(u, m);
    return m;
  }

  /**
   * The first top-level DIE called `name` that `accept` takes: through the index when the file
   * has one, else reading units in order only until one has it (a type defined early in a kernel
   * costs a few units, not thousands). Then the DWZ supplementary file. With `near` (a link-time
   * code address), the units .debug_aranges says hold that code are asked first: a type defined
   * late in a kernel, next to the code that uses it, costs one unit, not hundreds.
   *
   * `accept` must be a pure test of the entry: it is asked before the DIE's name is read (see
   * firstInUnit), so also about DIEs of other names.
   */
  find(name: string, accept: (e: NameEntry) => boolean, near?: bigint): NameEntry | undefined {
    const bias = (e: NameEntry | undefined) => (e && this.refBias ? { ...e, ref: e.ref + this.refBias } : e);
    if (near !== undefined && !this.names) {
      for (const off of arangesOf(this).unitOffsetsAt(near)) {
        const u = this.unitAt(off);
        const hit = u && this.firstInUnit(u, name, accept);
        if (hit) return bias(hit);
      }
    }
    const viaIndex = this.names ? undefined : this.indexedLookup(name);
    if (this.names || viaIndex) {
      const hit = bias((viaIndex ?? this.names!.get(name) ?? []).find(accept));
      if (hit) return hit;
    } else {
      for (const u of this.eachUnit()) {
        const hit = this.firstInUnit(u, name, accept);
        if (hit) return bias(hit);
      }
    }
    return this.elf.section('.gnu_debugaltlink') ? this.alt?.find(name, accept) : undefined;
  }

  /**
   * unitNames(u).get(name)?.find(accept) without indexing the unit when it has not been: its top
   * level is read in order only up to the first DIE `accept` takes that has the name, and a name
   * is compared only for a DIE that `accept` takes, where it lies (nameIs). The DIEs passed are
   * kept (unitScans), so the next name asked of the unit reads on from there. A kernel's task_struct
   * is the 100th of 1,667 DIEs in the head64.c unit, whose names are spread over all of
   * .debug_str's 3.4 MB: indexing that unit cost ~80 ms cold (every DIE and string decoded, most
   * of .debug_str read); this reads 96 DIEs and compares 25 names, each by a read of its 12 bytes.
   */
  private firstInUnit(u: DwarfUnit, name: string, accept: (e: NameEntry) => boolean): NameEntry | undefined {
    const known = this.perUnit.get(u);
    if (known) return known.get(name)?.find(accept);
    let scan = this.unitScans.get(u);
    if (!scan) {
      this.unitsScanned++;
      const root = this.root(u);
      this.unitScans.set(u, (scan = { seen: [], next: root.hasChildren ? root.next : undefined }));
    }
    const bytes = new Map<string, Buffer>();
    const matches = (x: ScannedName): boolean => {
      if (!accept(x.entry) || !name.startsWith(x.prefix)) return false;
      const bare = name.slice(x.prefix.length);
      let b = bytes.get(bare);
      if (!b) bytes.set(bare, (b = Buffer.from(bare, 'utf8')));
      return this.nameIs(u, x.name, bare, b);
    };
    for (const x of scan.seen) if (matches(x)) return x.entry;
    while (scan.next !== undefined) {
      const from = scan.seen.length;
      scan.next = this.scanTopLevel(u, scan.next, scan.seen);
      for (let i = from; i < scan.seen.length; i++) if (matches(scan.seen[i]!)) return scan.seen[i]!.entry;
    }
    return undefined;
  }

  /**
   * Reads the top-level DIE at `at` into `seen` (a namespace with all it holds, under its prefix,
   * as indexUnit names them) and returns where the next one starts, or undefined at the end.
   */
  private scanTopLevel(u: DwarfUnit, at: DieRef, seen: ScannedName[]): DieRef | undefined {
    const base = u.inTypes ? TYPES_BASE : 0;
    if (at >= u.end) return undefined; // a unit may end without the final null entry
    const c = this.cursorAt(at);
    const d = this.readDie(u, c);
    if (!d) return undefined;
    const add = (x: Die, prefix: string): void => {
      const name = INDEXED_TAGS.has(x.tag) ? x.attr(DW_AT.name) : undefined;
      if (name) seen.push({ entry: { ref: x.id, tag: x.tag, declaration: x.flag(DW_AT.declaration) }, name, prefix });
    };
    const walk = (first: DieRef, prefix: string, depth: number): void => {
      this.eachChild(u, first, (x) => {
        add(x, prefix);
        if (x.tag === DW_TAG.namespace && x.hasChildren && depth < 8) walk(x.next, `${prefix}${x.name ?? '(anonymous namespace)'}::`, depth + 1);
      });
    };
    add(d, '');
    if (d.tag === DW_TAG.namespace && d.hasChildren) walk(d.next, `${d.name ?? '(anonymous namespace)'}::`, 1);
    if (!d.hasChildren) return d.next;
    const sib = this.localRef(d.ref(DW_AT.sibling));
    if (sib !== undefined && sib > d.id && sib <= u.end) return sib;
    this.skipSubtree(u, c);
    return c.pos + base;
  }

  /** Whether the name `a` (a DW_AT_name of unit u) is `name` (`bytes` its UTF-8): one in .debug_str is compared where it lies, not decoded. */
  private nameIs(u: DwarfUnit, a: Attr, name: string, bytes: Buffer): boolean {
    if (a.form !== DW_FORM.strp) return this.formString(u, a) === name;
    const sec = this.sections.paged('.debug_str');
    const off = a.value as number;
    if (!sec || off >= sec.buf.length) return this.formString(u, a) === name; // its message
    return sec.isString(off, bytes);
  }

  private nameIndex(): Map<string, NameEntry[]> {
    if (this.names) return this.names;
    const names = new Map<string, NameEntry[]>();
    for (const u of this.units()) {
      for (const [k, list] of this.unitNames(u)) {
        const old = names.get(k);
        if (old) old.push(...list);
        else names.set(k, [...list]);
      }
    }
    this.perUnit.clear();
    this.unitScans.clear();
    this.names = names;
    return names;
  }

  private readonly scopes = new Map<DwarfUnit, Map<DieRef, string>>();
  /** The children of a scope, by its first child's ref: their refs in order, and those that are scopes themselves. */
  private readonly scopeLevels = new Map<DieRef, { readonly ids: DieRef[]; readonly scopes: (Die | undefined)[] }>();

  /**
   * The C++ scope a DIE is declared in, as a prefix of its name: `geo::` for a struct in
   * namespace geo, `Outer::` for a class nested in Outer; empty elsewhere (inside a function, in
   * other languages). Found by descending from the unit's root into the namespace or class whose
   * children's refs enclose the DIE's, reading each level's children once (stepping over their
   * subtrees): a libstdc++ unit declares thousands of classes, of which a backtrace names a few.
   */
  scopePrefix(d: Die): string {
    let m = this.scopes.get(d.unit);
    if (!m) this.scopes.set(d.unit, (m = new Map()));
    const hit = m.get(d.id);
    if (hit !== undefined) return hit;
    let prefix = '';
    const root = this.root(d.unit);
    if (root.hasChildren && CPLUSPLUS.has(root.uint(DW_AT.language) ?? 0)) {
      let first = root.next;
      for (let depth = 0; ; depth++) {
        const { ids, scopes } = this.scopeLevel(d.unit, first);
        // The last child at or before the DIE: the DIE itself, or the subtree that holds it.
        let lo = 0;
        let hi = ids.length - 1;
        while (lo <= hi) {
          const mid = (lo + hi) >> 1;
          if (ids[mid]! <= d.id) lo = mid + 1;
          else hi = mid - 1;
        }
        const c = hi >= 0 ? scopes[hi] : undefined;
        if (hi >= 0 && ids[hi] === d.id) break;
        if (!c || depth >= 8) {
          prefix = '';
          break;
        }
        prefix += `${c.name ?? (c.tag === DW_TAG.namespace ? '(anonymous namespace)' : '{...}')}::`;
        first = c.next;
      }
    }
    m.set(d.id, prefix);
    return prefix;
  }

  private scopeLevel(u: DwarfUnit, first: DieRef): { readonly ids: DieRef[]; readonly scopes: (Die | undefined)[] } {
    let level = this.scopeLevels.get(first);
    if (level) return level;
    const ids: DieRef[] = [];
    const scopes: (Die | undefined)[] = [];
    this.eachChild(u, first, (c) => {
      ids.push(c.id);
      scopes.push(c.hasChildren && SCOPE_TAGS.has(c.tag) ? c : undefined);
    });
    this.scopeLevels.set(first, (level = { ids, scopes }));
    return level;
  }

  private indexUnit(u: DwarfUnit, names: Map<string, NameEntry[]>): void {
    this.unitsScanned++;
    const add = (d: Die, prefix: string): void => {
      const n = d.name;
      if (n === undefined) return;
      const key = prefix + n;
      const e: NameEntry = { ref: d.id, tag: d.tag, declaration: d.flag(DW_AT.declaration) };
      const list = names.get(key);
      if (list) list.push(e);
      else names.set(key, [e]);
    };
    const walk = (u: DwarfUnit, first: DieRef, prefix: string, depth: number): void => {
      this.eachChild(u, first, (d) => {
        if (INDEXED_TAGS.has(d.tag)) add(d, prefix);
        if (d.tag === DW_TAG.namespace && d.hasChildren && depth < 8) walk(u, d.next, `${prefix}${d.name ?? '(anonymous namespace)'}::`, depth + 1);
      });
    };
    const root = this.root(u);
    if (root.hasChildren) walk(u, root.next, '', 0);
  }
}

/** DW_LANG_C_plus_plus, _03, _11, _14. */
const CPLUSPLUS = new Set([0x4, 0x19, 0x1a, 0x21]);
/** DIEs whose children are named inside them (`ns::x`, `Outer::Inner`). */
const SCOPE_TAGS = new Set<number>([DW_TAG.namespace, DW_TAG.structure_type, DW_TAG.class_type, DW_TAG.union_type]);

/** The words C and C++ base type names are made of. */
const BASE_TYPE_WORDS = new Set(['unsigned', 'signed', 'char', 'short', 'int', 'long', 'float', 'double', '_Bool', 'bool', '__int128', 'wchar_t', 'char8_t', 'char16_t', 'char32_t', 'complex', '_Complex', '_Float128', '__float128']);

const INDEXED_TAGS = new Set<number>([
  DW_TAG.base_type,
  DW_TAG.structure_type,
  DW_TAG.union_type,
  DW_TAG.class_type,
  DW_TAG.enumeration_type,
  DW_TAG.typedef,
  DW_TAG.variable,
  DW_TAG.subprogram,
  DW_TAG.unspecified_type,
]);

const cache = new WeakMap<ElfFile, DwarfInfo | null>();

/**
 * The DWARF of an ELF file, shared by everyone who asks: its own, or its separate debug file's
 * (build-id, .gnu_debuglink; see debug-files.ts); undefined when neither has .debug_info.
 */
export function dwarfOf(elf: ElfFile): DwarfInfo | undefined {
  const hit = cache.get(elf);
  if (hit !== undefined) return hit ?? undefined;
  let d: DwarfInfo | undefined = new DwarfInfo(elf);
  if (!d.present) {
    const sep = findSeparateDebug(elf);
    d = sep ? new DwarfInfo(sep) : undefined;
    if (d && !d.present) d = undefined;
  }
  cache.set(elf, d ?? null);
  return d;
}
