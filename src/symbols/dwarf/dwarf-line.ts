import { DbgError } from '../../common/errors.js';
import { DW_AT, DW_FORM } from './dwarf-constants.js';
import { DwarfCursor } from './dwarf-cursor.js';
import type { DwarfInfo, DwarfUnit } from './dwarf-info.js';
import { arangesOf } from './dwarf-aranges.js';
import { dieRanges, lastStartAtOrBelow, sortByStart, type AddrRange } from './dwarf-ranges.js';

/**
 * Line tables (.debug_line, DWARF 2-5): which source line each instruction came from.
 *
 * A unit's DW_AT_stmt_list points at its line program. The program is run once, when the unit is
 * first asked about, into rows sorted by address within each sequence. Which unit holds an
 * address comes from .debug_aranges when the file has it, else from each unit's
 * DW_AT_low_pc/high_pc/ranges; both are read once, headers and root DIEs only.
 *
 * Header:
 *   unit_length (u32, or 0xffffffff + u64), u16 version, [v5: u8 address_size, u8 seg_sel_size],
 *   header_length (offset), u8 min_inst_length, [v4+: u8 max_ops_per_inst], u8 default_is_stmt,
 *   s8 line_base, u8 line_range, u8 opcode_base, u8 standard_opcode_lengths[opcode_base - 1],
 *   v2-4: include_directories (strings until ""), file_names ({string, uleb dir, mtime, length} until "")
 *   v5:   u8 dir_format_count, {uleb content, uleb form}..., uleb dir_count, dirs...,
 *         u8 file_format_count, {uleb content, uleb form}..., uleb file_count, files...
 * File numbers are 1-based before DWARF 5 (directory 0 is the unit's comp_dir), 0-based in 5.
 */

export interface LineRow {
  /** Link-time address. */
  readonly addr: bigint;
  readonly file: number;
  readonly line: number;
  readonly column: number;
  readonly isStmt: boolean;
  /** The first address past a sequence: a row that only ends the one before it. */
  readonly end: boolean;
}

export interface LineFile {
  /** The name as gdb shows it: the entry's name, under its directory unless that is the unit's own. */
  readonly name: string;
  /** The absolute path where the source is expected (comp_dir joined), for reading it. */
  readonly path: string;
}

export interface LineTable {
  readonly unit: DwarfUnit;
  readonly files: ReadonlyMap<number, LineFile>;
  /** Sequences, each sorted by address and ended by an `end` row. */
  readonly sequences: readonly (readonly LineRow[])[];
}

export interface SourcePlace {
  readonly file: LineFile;
  readonly line: number;
  /** The row's address and the next row's: the instructions of that line here. */
  readonly start: bigint;
  readonly end: bigint;
}

/** Rows past this in one program are taken for garbage. */
const MAX_ROWS = 50_000_000;

function joinPath(dir: string, name: string): string {
  if (name.startsWith('/') || dir === '') return name;
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

export class DwarfLines {
  private readonly tables = new Map<DwarfUnit, LineTable | null>();
  /** Every unit's ranges sorted by start (`order`: as read), and the largest end up to each. */
  private unitRanges?: { start: bigint; end: bigint; unit: DwarfUnit; order: number }[];
  private maxEnds?: bigint[];

  constructor(readonly dwarf: DwarfInfo) {}

  private corrupt(off: number, msg: string): DbgError {
    return new DbgError('corrupt', `${this.dwarf.name}: .debug_line: line program at 0x${off.toString(16)}: ${msg}`);
  }

  /** The line table of unit `u`; undefined when it has none (no DW_AT_stmt_list). */
  table(u: DwarfUnit): LineTable | undefined {
    const hit = this.tables.get(u);
    if (hit !== undefined) return hit ?? undefined;
    const root = this.dwarf.root(u);
    const a = root.attr(DW_AT.stmt_list);
    const off = a && typeof a.value === 'number' ? a.value : a && typeof a.value === 'bigint' ? Number(a.value) : undefined;
    const t = off === undefined ? undefined : this.parse(u, off, root.string(DW_AT.comp_dir) ?? '', root.string(DW_AT.name));
    this.tables.set(u, t ?? null);
    return t;
  }

  /** The place of link-time address `pc`: the row that covers it in the unit that holds it. */
  placeOf(pc: bigint): SourcePlace | undefined {
    for (const u of this.unitsAt(pc)) {
      const t = this.table(u);
      if (!t) continue;
      for (const seq of t.sequences) {
        if (seq.length < 2 || pc < seq[0]!.addr || pc >= seq[seq.length - 1]!.addr) continue;
        // the last row at or below pc
        let lo = 0;
        let hi = seq.length - 1;
        while (lo < hi) {
          const mid = (lo + hi + 1) >> 1;
          if (seq[mid]!.addr <= pc) lo = mid;
          else hi = mid - 1;
        }
        // Several rows may share an address: gdb takes the last of them, or the statement among
        // them when the last is not one; the line runs to the next row.
        let at = lo;
        if (!seq[at]!.isStmt) {
          let k = at;
          while (k > 0 && seq[k - 1]!.addr === seq[k]!.addr && !seq[k]!.isStmt) k--;
          if (seq[k]!.isStmt) at = k;
        }
        const row = seq[at]!;
        if (row.line === 0) return undefined;
        const next = lo + 1;
        const file = t.files.get(row.file);
        if (!file) return undefined;
        return { file, line: row.line, start: row.addr, end: seq[next]!.addr };
      }
    }
    return undefined;
  }

  /**
   * Units whose code covers `pc` (usually one), in the order of their ranges. The units
   * .debug_aranges says cover pc, when it says so of any (their headers alone are read); else
   * every unit's ranges, read once (aranges, and the root DIEs of the units it does not describe).
   */
  unitsAt(pc: bigint): DwarfUnit[] {
    const described: DwarfUnit[] = [];
    for (const off of arangesOf(this.dwarf).unitOffsetsAt(pc)) {
      const u = this.dwarf.unitAt(off);
      if (u) described.push(u);
    }
    if (described.length > 0) return described;
    const rs = this.ranges();
    const maxEnd = this.maxEnds!;
    // The last range starting at or below pc; those before it can cover pc only while the
    // largest end so far is past pc.
    const hi = lastStartAtOrBelow(rs, pc);
    const hits: { start: bigint; end: bigint; unit: DwarfUnit; order: number }[] = [];
    for (let i = hi; i >= 0 && maxEnd[i]! > pc; i--) if (pc < rs[i]!.end) hits.push(rs[i]!);
    hits.sort((a, b) => a.order - b.order);
    const out: DwarfUnit[] = [];
    for (const h of hits) if (!out.includes(h.unit)) out.push(h.unit);
    return out;
  }

  /** Every unit's line table, for searches by file name. */
  *allTables(): Generator<LineTable> {
    for (const u of this.dwarf.units()) {
      if (u.inTypes || (u.unitType !== 1 && u.unitType !== 3)) continue;
      const t = this.table(u);
      if (t) yield t;
    }
  }

  private ranges(): { start: bigint; end: bigint; unit: DwarfUnit; order: number }[] {
    if (this.unitRanges) return this.unitRanges;
    const out: { start: bigint; end: bigint; unit: DwarfUnit; order: number }[] = [];
    const units = this.dwarf.units().filter((u) => !u.inTypes);
    const aranges = arangesOf(this.dwarf);
    const byOffset = new Map(units.map((u) => [u.offset, u]));
    for (const r of aranges.ranges) {
      const unit = byOffset.get(r.unitOffset);
      if (unit) out.push({ start: r.start, end: r.end, unit, order: out.length });
    }
    const covered = new Set(units.filter((u) => aranges.described.has(u.offset)));
    for (const u of units) {
      if (covered.has(u)) continue;
      try {
        for (const r of dieRanges(this.dwarf.root(u)) as AddrRange[]) out.push({ start: r.start, end: r.end, unit: u, order: out.length });
      } catch (e) {
        if (!(e instanceof DbgError)) throw e;
      }
    }
    const sorted = sortByStart(out);
    let max = 0n;
    this.maxEnds = sorted.map((r) => (max = r.end > max ? r.end : max));
    this.unitRanges = sorted;
    return sorted;
  }

  private parse(u: DwarfUnit, off: number, compDir: string, unitName?: string): LineTable {
    const sec = this.dwarf.sections.paged('.debug_line');
    if (!sec) throw new DbgError('corrupt', `${this.dwarf.name}: unit at 0x${u.offset.toString(16)} has DW_AT_stmt_list but the file has no .debug_line`);
    const buf = sec.buf;
    if (off >= buf.length) throw this.corrupt(off, `is outside .debug_line (0x${buf.length.toString(16)} bytes), named by unit 0x${u.offset.toString(16)}`);
    sec.need(off, 12);
    const c = new DwarfCursor(buf, off, this.dwarf.sections.littleEndian, `${this.dwarf.name}: .debug_line`);
    const { length, offsetSize: osz, end } = c.initialLength('unit length');
    if (end > buf.length) throw this.corrupt(off, `claims 0x${length.toString(16)} bytes, past the end of the section`);
    sec.need(off, end - off);
    const version = c.u16();
    if (version < 2 || version > 5) throw this.corrupt(off, `has version ${version} (dbg reads 2 to 5)`);
    let addressSize = u.addressSize;
    if (version >= 5) {
      addressSize = c.u8();
      c.u8();
    }
    const headerLength = c.offset(osz);
    const programStart = c.pos + headerLength;
    if (programStart > end) throw this.corrupt(off, `header length 0x${headerLength.toString(16)} runs past the program`);
    const minInst = c.u8();
    if (version >= 4) c.u8(); // max_ops_per_inst: VLIW only
    const defaultIsStmt = c.u8() !== 0;
    const lineBase = (c.u8() << 24) >> 24;
    const lineRange = c.u8();
    if (lineRange === 0) throw this.corrupt(off, 'has line_range 0');
    const opcodeBase = c.u8();
    if (opcodeBase === 0) throw this.corrupt(off, 'has opcode_base 0');
    const lengths = [0];
    for (let i = 1; i < opcodeBase; i++) lengths.push(c.u8());

    const dirs: string[] = [];
    const rawFiles: { name: string; dir: number }[] = [];
    if (version >= 5) {
      const entries = (what: string): Map<number, string | number>[] => {
        const nfmt = c.u8();
        const fmt: [number, number][] = [];
        for (let i = 0; i < nfmt; i++) fmt.push([c.uleb(), c.uleb()]);
        const n = c.uleb();
        if (n > end - c.pos) throw this.corrupt(off, `claims ${n} ${what}, more than its bytes can hold`);
        const out: Map<number, string | number>[] = [];
        for (let i = 0; i < n; i++) {
          const e = new Map<number, string | number>();
          for (const [content, form] of fmt) e.set(content, this.lineForm(u, c, form, osz, off));
          out.push(e);
        }
        return out;
      };
      for (const e of entries('directories')) dirs.push(String(e.get(1) ?? ''));
      for (const e of entries('files')) rawFiles.push({ name: String(e.get(1) ?? ''), dir: Number(e.get(2) ?? 0) });
    } else {
      dirs.push(compDir);
      for (;;) {
        const s = c.cstring();
        if (s === '') break;
        dirs.push(s);
      }
      rawFiles.push({ name: '', dir: 0 }); // file 0 is unused before DWARF 5
      for (;;) {
        const name = c.cstring();
        if (name === '') break;
        const dir = c.uleb();
        c.uleb();
        c.uleb();
        rawFiles.push({ name, dir });
      }
    }
    const comp = version >= 5 ? (dirs[0] ?? compDir) : compDir;
    const unitPath = unitName !== undefined ? joinPath(compDir, unitName) : undefined;
    const files = new Map<number, LineFile>();
    rawFiles.forEach((f, i) => {
      if (version < 5 && i === 0) return;
      const dir = dirs[f.dir] ?? '';
      const path = joinPath(comp, joinPath(dir, f.name));
      // As gdb names files: the unit's own source file by the unit's name (DW_AT_name, however
      // DWARF 5 spells its directory), the others under their directory except DWARF 2-4's
      // directory 0 (the unit's own).
      const name = path === unitPath ? unitName! : version < 5 && f.dir === 0 ? f.name : joinPath(dir, f.name);
      files.set(i, { name, path });
    });

    // The state machine.
    c.pos = programStart;
    const sequences: LineRow[][] = [];
    let rows: LineRow[] = [];
    let total = 0;
    let addr = 0n;
    let file = 1;
    let line = 1;
    let column = 0;
    let isStmt = defaultIsStmt;
    const reset = () => {
      addr = 0n;
      file = 1;
      line = 1;
      column = 0;
      isStmt = defaultIsStmt;
    };
    // gdb's table, which its answers come from, keeps a row of an unchanged line and file only
    // while the line has had no non-zero discriminator (loop bodies), and drops line-0 rows.
    let lastFile = -1;
    let lastLine = -1;
    let discriminator = 0;
    let lineHasDiscriminator = false;
    const emit = (endSeq: boolean) => {
      if (++total > MAX_ROWS) throw this.corrupt(off, `has more than ${MAX_ROWS} rows`);
      if (!endSeq) {
        const keep = line !== 0 && (file !== lastFile || line !== lastLine || !lineHasDiscriminator);
        discriminator = 0;
        if (line === 0) return;
        lastFile = file;
        lastLine = line;
        if (!keep) return;
      }
      rows.push({ addr, file, line, column, isStmt, end: endSeq });
    };
    const mask = addressSize === 8 ? 0xffffffffffffffffn : (1n << BigInt(addressSize * 8)) - 1n;
    while (c.pos < end) {
      const at = c.pos;
      const op = c.u8();
      if (op >= opcodeBase) {
        const adj = op - opcodeBase;
        addr = (addr + BigInt(Math.floor(adj / lineRange) * minInst)) & mask;
        const delta = lineBase + (adj % lineRange);
        line += delta;
        if (delta !== 0) lineHasDiscriminator = discriminator !== 0;
        emit(false);
        continue;
      }
      switch (op) {
        case 0: {
          const len = c.uleb();
          const next = c.pos + len;
          if (len === 0 || next > end) throw this.corrupt(off, `extended opcode at 0x${at.toString(16)} has length ${len}`);
          const sub = c.u8();
          if (sub === 1) {
            // As gdb: rows at the address the sequence ends at are empty lines; they go.
            while (rows.length > 0 && rows[rows.length - 1]!.addr === addr) rows.pop();
            emit(true);
            rows.sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0));
            sequences.push(rows);
            rows = [];
            reset();
            lastFile = -1;
            lastLine = -1;
            discriminator = 0;
            lineHasDiscriminator = false;
          } else if (sub === 2) addr = c.address(len - 1);
          else if (sub === 4) {
            discriminator = c.uleb();
            lineHasDiscriminator ||= discriminator !== 0;
          }
          c.pos = next; // define_file, set_discriminator and vendor opcodes are skipped
          break;
        }
        case 1:
          emit(false);
          break;
        case 2:
          addr = (addr + c.ulebBig() * BigInt(minInst)) & mask;
          break;
        case 3: {
          const delta = c.sleb();
          line += delta;
          if (delta !== 0) lineHasDiscriminator = discriminator !== 0;
          break;
        }
        case 4:
          file = c.uleb();
          break;
        case 5:
          column = c.uleb();
          break;
        case 6:
          isStmt = !isStmt;
          break;
        case 8:
          addr = (addr + BigInt(Math.floor((255 - opcodeBase) / lineRange) * minInst)) & mask;
          break;
        case 9:
          addr = (addr + BigInt(c.u16())) & mask;
          break;
        default:
          for (let i = 0; i < (lengths[op] ?? 0); i++) c.ulebBig();
      }
    }
    // A program that stops without end_sequence: its open rows are dropped, as gdb drops them.
    return { unit: u, files, sequences };
  }

  /** One attribute of a DWARF 5 directory or file entry. */
  private lineForm(u: DwarfUnit, c: DwarfCursor, form: number, osz: 4 | 8, off: number): string | number {
    const str = (section: string, at: number): string => {
      const sec = this.dwarf.sections.paged(section);
      if (!sec || at >= sec.buf.length) throw this.corrupt(off, `names string 0x${at.toString(16)} outside ${section}`);
      return sec.cstring(at);
    };
    switch (form) {
      case DW_FORM.string:
        return c.cstring();
      case DW_FORM.line_strp:
        return str('.debug_line_str', c.offset(osz));
      case DW_FORM.strp:
        return str('.debug_str', c.offset(osz));
      case DW_FORM.udata:
        return c.uleb();
      case DW_FORM.data1:
        return c.u8();
      case DW_FORM.data2:
        return c.u16();
      case DW_FORM.data4:
        return c.u32();
      case DW_FORM.data8:
        c.u64();
        return 0;
      case DW_FORM.data16:
        c.skip(16);
        return 0;
      case DW_FORM.block:
        c.skip(c.uleb());
        return 0;
      case DW_FORM.strx:
      case DW_FORM.strx1:
      case DW_FORM.strx2:
      case DW_FORM.strx3:
      case DW_FORM.strx4: {
        const idx = form === DW_FORM.strx ? c.uleb() : form === DW_FORM.strx1 ? c.u8() : form === DW_FORM.strx2 ? c.u16() : form === DW_FORM.strx3 ? c.u24() : c.u32();
        return this.dwarf.formString(u, { at: 0, form, value: idx }) ?? '';
      }
      default:
        throw this.corrupt(off, `uses form 0x${form.toString(16)} in its directory or file table, which a line table cannot use`);
    }
  }
}

const cache = new WeakMap<DwarfInfo, DwarfLines>();

/** The line tables of a file's DWARF, shared. */
export function linesOf(d: DwarfInfo): DwarfLines {
  let l = cache.get(d);
  if (!l) {
    l = new DwarfLines(d);
    cache.set(d, l);
  }
  return l;
}
