import { DbgError } from '../../common/errors.js';
import { DwarfCursor } from './dwarf-cursor.js';
import type { DwarfSections } from './dwarf-sections.js';

/**
 * The name indexes a linker or gdb-add-index leaves in a file, so that a name lookup reads the
 * units that define the name and no other:
 *
 *   .gdb_index (versions 7 and 8), all little-endian:
 *     u32 version, cu_list, types_cu_list, address_area, symbol_table, constant_pool (offsets)
 *     cu_list: { u64 offset, u64 length }...; types_cu_list: { u64 offset, type_offset, signature }...
 *     symbol_table: 2^k slots { u32 name, u32 cu_vector } (offsets into constant_pool; 0,0 empty),
 *       open addressing: h = hash(name), slot h & (n-1), step ((h * 17) & (n-1)) | 1
 *     cu_vector: u32 count, u32 entries (bits 0-23: unit index, types units after the CUs)
 *   .debug_names (DWARF 5): unit_length, u16 version, u16 pad, u32 comp_unit_count,
 *     local_type_unit_count, foreign_type_unit_count, bucket_count, name_count, abbrev_table_size,
 *     augmentation_string_size, augmentation string, CU offsets, TU offsets, foreign TU signatures,
 *     buckets, hashes, string offsets (.debug_str), entry offsets, abbreviations
 *     { uleb code, uleb tag, { uleb DW_IDX, uleb form }... 0 0 }... 0, entry pool
 *     { uleb abbrev code, attributes }... 0 per name. DW_IDX_compile_unit 1, type_unit 2, die_offset 3.
 *
 * Answers are unit offsets in .debug_info (gdb_index) or DIE offsets (debug_names); a damaged
 * index is DbgError('corrupt') naming the section and offset.
 */

export interface IndexHit {
  /** The unit's offset in .debug_info. */
  readonly unit: number;
  /** The DIE's offset in .debug_info, when the index gives it (.debug_names). */
  readonly die?: number;
}

export interface NameIndex {
  readonly kind: '.gdb_index' | '.debug_names';
  lookup(name: string): IndexHit[];
}

function gdbHash(name: string, version: number): number {
  let r = 0;
  for (const ch of Buffer.from(name, 'utf8')) {
    const c = version >= 5 && ch >= 0x41 && ch <= 0x5a ? ch + 32 : ch;
    r = (Math.imul(r, 67) + c - 113) >>> 0;
  }
  return r;
}

/** The file's name index, or undefined when it has none (or one of a version dbg does not read). */
export function nameIndexOf(sections: DwarfSections, file: string): NameIndex | undefined {
  const gi = sections.get('.gdb_index');
  if (gi) return gdbIndex(gi, `${file}: .gdb_index`);
  const dn = sections.get('.debug_names');
  if (dn) return debugNames(dn, sections, `${file}: .debug_names`);
  return undefined;
}

function gdbIndex(buf: Buffer, where: string): NameIndex | undefined {
  const c = new DwarfCursor(buf, 0, true, where);
  const version = c.u32();
  if (version < 7 || version > 8) return undefined; // older versions lack what we need; walk the DIEs
  const cuList = c.u32();
  const typesList = c.u32();
  c.u32();
  const symtab = c.u32();
  const pool = c.u32();
  if (!(cuList <= typesList && typesList <= symtab && symtab <= pool && pool <= buf.length)) throw new DbgError('corrupt', `${where}: header offsets 0x${cuList.toString(16)}, 0x${typesList.toString(16)}, 0x${symtab.toString(16)}, 0x${pool.toString(16)} are out of order or past the section (0x${buf.length.toString(16)} bytes)`);
  const cus: number[] = [];
  for (let at = cuList; at + 16 <= typesList; at += 16) cus.push(Number(buf.readBigUInt64LE(at)));
  const slots = (pool - symtab) / 8;
  if (slots === 0 || (slots & (slots - 1)) !== 0) throw new DbgError('corrupt', `${where}: symbol table of ${slots} slots is not a power of two`);
  return {
    kind: '.gdb_index',
    lookup(name) {
      const h = gdbHash(name, version);
      const step = ((Math.imul(h, 17) >>> 0) & (slots - 1)) | 1;
      let i = h & (slots - 1);
      for (let probes = 0; probes < slots; probes++, i = (i + step) & (slots - 1)) {
        const nameOff = buf.readUInt32LE(symtab + i * 8);
        const vecOff = buf.readUInt32LE(symtab + i * 8 + 4);
        if (nameOff === 0 && vecOff === 0) return [];
        const s = new DwarfCursor(buf, pool + nameOff, true, where);
        if (s.cstring() !== name) continue;
        const v = new DwarfCursor(buf, pool + vecOff, true, where);
        const n = v.u32();
        if (n > (buf.length - v.pos) / 4) throw new DbgError('corrupt', `${where}: CU vector at 0x${(pool + vecOff).toString(16)} claims ${n} entries`);
        const out: IndexHit[] = [];
        for (let k = 0; k < n; k++) {
          const idx = v.u32() & 0xffffff;
          const unit = cus[idx];
          if (unit !== undefined && !out.some((o) => o.unit === unit)) out.push({ unit });
        }
        return out;
      }
      return [];
    },
  };
}

function debugNames(buf: Buffer, sections: DwarfSections, where: string): NameIndex | undefined {
  // Every name of every index in the section, read once into a map.
  const names = new Map<string, IndexHit[]>();
  const str = sections.get('.debug_str');
  const c = new DwarfCursor(buf, 0, sections.littleEndian, where);
  while (c.pos < buf.length) {
    const start = c.pos;
    const { length: len, offsetSize: osz, end } = c.initialLength('length');
    if (end > buf.length) throw new DbgError('corrupt', `${where}: index at 0x${start.toString(16)} claims 0x${len.toString(16)} bytes, past the end of the section`);
    const version = c.u16();
    if (version !== 5) throw new DbgError('corrupt', `${where}: index at 0x${start.toString(16)} has version ${version} (expected 5)`);
    c.u16();
    const cuCount = c.u32();
    const ltuCount = c.u32();
    const ftuCount = c.u32();
    const bucketCount = c.u32();
    const nameCount = c.u32();
    const abbrevSize = c.u32();
    const augSize = c.u32();
    c.skip((augSize + 3) & ~3);
    const cus: number[] = [];
    for (let i = 0; i < cuCount; i++) cus.push(c.offset(osz));
    c.skip(ltuCount * osz + ftuCount * 8 + bucketCount * 4 + (bucketCount > 0 ? nameCount * 4 : 0));
    const strOffs: number[] = [];
    for (let i = 0; i < nameCount; i++) strOffs.push(c.offset(osz));
    const entryOffs: number[] = [];
    for (let i = 0; i < nameCount; i++) entryOffs.push(c.offset(osz));
    const abbrevStart = c.pos;
    const abbrevs = new Map<number, [number, number][]>();
    for (;;) {
      const code = c.uleb();
      if (code === 0) break;
      c.uleb(); // tag
      const attrs: [number, number][] = [];
      for (;;) {
        const idx = c.uleb();
        const form = c.uleb();
        if (idx === 0 && form === 0) break;
        attrs.push([idx, form]);
      }
      abbrevs.set(code, attrs);
    }
    const pool = abbrevStart + abbrevSize;
    for (let i = 0; i < nameCount; i++) {
      if (!str || strOffs[i]! >= str.length) throw new DbgError('corrupt', `${where}: name ${i} of the index at 0x${start.toString(16)} is outside .debug_str`);
      const z = str.indexOf(0, strOffs[i]!);
      const name = str.toString('utf8', strOffs[i]!, z < 0 ? str.length : z);
      const e = new DwarfCursor(buf, pool + entryOffs[i]!, sections.littleEndian, where);
      const hits = names.get(name) ?? [];
      for (let guard = 0; guard < 100_000; guard++) {
        const at = e.pos;
        const code = e.uleb();
        if (code === 0) break;
        const attrs = abbrevs.get(code);
        if (!attrs) throw new DbgError('corrupt', `${where}: entry at 0x${at.toString(16)} uses abbreviation ${code}, which the index does not define`);
        let cu = cuCount === 1 ? cus[0] : undefined;
        let die: number | undefined;
        for (const [idx, form] of attrs) {
          const v = formValue(e, form, osz, at);
          if (idx === 1) cu = cus[v];
          else if (idx === 3) die = v;
        }
        // gdb-add-index writes no DW_IDX_die_offset: the unit alone is the answer then.
        if (cu !== undefined && !hits.some((h) => h.unit === cu && h.die === (die === undefined ? undefined : cu + die))) hits.push(die !== undefined ? { unit: cu, die: cu + die } : { unit: cu });
      }
      if (hits.length > 0) names.set(name, hits);
    }
    c.pos = end;
  }
  return { kind: '.debug_names', lookup: (name) => names.get(name) ?? [] };
}

function formValue(c: DwarfCursor, form: number, osz: 4 | 8, at: number): number {
  switch (form) {
    case 0x0b: // data1
    case 0x11: // ref1
    case 0x0c: // flag
      return c.u8();
    case 0x05: // data2
    case 0x12: // ref2
      return c.u16();
    case 0x06: // data4
    case 0x13: // ref4
      return c.u32();
    case 0x07: // data8
    case 0x14: // ref8
      return c.u64num('index value');
    case 0x0f: // udata
    case 0x15: // ref_udata
      return c.uleb();
    case 0x19: // flag_present
      return 1;
    case 0x17: // sec_offset
      return c.offset(osz);
    default:
      throw new DbgError('corrupt', `${c.where}: entry at 0x${at.toString(16)} uses form 0x${form.toString(16)}, which a name index cannot use`);
  }
}
