/**
 * Call frame information from `.eh_frame` (and `.debug_frame`): for a code address, the rule that
 * finds the caller's frame — how to compute the canonical frame address (CFA) and where each
 * callee-saved register and the return address were saved.
 *
 * Addresses here are link-time (unbiased) addresses of the ELF file; the unwinder adds and removes
 * the module's load bias.
 *
 * Lookup is by `.eh_frame_hdr`'s sorted table (binary search, nothing parsed but the one FDE and
 * its CIE) when the file has one, else by an index of every FDE built once on first use. Parsed
 * CIEs are cached. One EhFrame per ElfFile (`EhFrame.of(elf)`).
 *
 *   .eh_frame_hdr:  u8 version (1) | u8 eh_frame_ptr_enc | u8 fde_count_enc | u8 table_enc
 *                   eh_frame_ptr (encoded) | fde_count (encoded)
 *                   fde_count x { initial_location, fde_address } (table_enc, relative to the hdr)
 *
 *   CIE:  length (u32, or 0xffffffff + u64) | id (0 in .eh_frame, ~0 in .debug_frame) | version
 *         augmentation string | [address_size, segment_size (version 4)] | code_align (uleb)
 *         data_align (sleb) | return column | [augmentation data ('z')] | initial instructions
 *   FDE:  length | CIE pointer | pc_begin | pc_range | [augmentation data ('z')] | instructions
 */

import { DbgError, errors } from '../common/errors.js';
import { PT_GNU_EH_FRAME, type ElfFile } from './elf-file.js';

/** How the CFA is computed. */
export type CfaRule = { readonly kind: 'reg-offset'; readonly reg: number; readonly offset: bigint } | { readonly kind: 'expr'; readonly expr: Buffer };

/** Where a register of the caller is: DWARF's register rules. */
export type RegisterRule =
  | { readonly kind: 'undefined' }
  | { readonly kind: 'same' }
  | { readonly kind: 'offset'; readonly offset: bigint } // saved at CFA + offset
  | { readonly kind: 'val-offset'; readonly offset: bigint } // the value is CFA + offset
  | { readonly kind: 'register'; readonly reg: number } // saved in another register
  | { readonly kind: 'expr'; readonly expr: Buffer } // saved at the address the expression computes
  | { readonly kind: 'val-expr'; readonly expr: Buffer }; // the value is what the expression computes

/** The unwind rules in effect at one address. */
export interface UnwindRow {
  readonly cfa: CfaRule;
  /** Rules by DWARF register number; a register without one keeps its value ("same value"). */
  readonly registers: ReadonlyMap<number, RegisterRule>;
  readonly returnColumn: number;
  /** The function is a signal trampoline ('S' augmentation): its caller's pc is not a return address. */
  readonly signalFrame: boolean;
  /** The FDE's range (link-time addresses). */
  readonly start: bigint;
  readonly end: bigint;
}

interface Cie {
  readonly codeAlign: bigint;
  readonly dataAlign: bigint;
  readonly returnColumn: number;
  readonly fdeEncoding: number;
  readonly hasAugData: boolean;
  readonly signalFrame: boolean;
  readonly addressSize: number;
  readonly instructions: Buffer;
}

interface Fde {
  readonly cie: Cie;
  readonly start: bigint;
  readonly end: bigint;
  readonly instructions: Buffer;
}

interface IndexEntry {
  readonly start: bigint;
  readonly end: bigint;
  /** Offset of the FDE in the frame section. */
  readonly offset: number;
}

// DW_EH_PE_* pointer encodings.
const PE_OMIT = 0xff;
const PE_PCREL = 0x10;
const PE_DATAREL = 0x30;
const PE_INDIRECT = 0x80;

/** A cursor over a little- or big-endian byte buffer that knows the address of its first byte. */
class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    readonly base: bigint,
    readonly le: boolean,
    readonly where: string,
    pos = 0,
  ) {
    this.pos = pos;
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.length) {
      throw errors.corrupt(this.where, `CFI runs past the end of its section (read of ${n} bytes at offset 0x${this.pos.toString(16)} of 0x${this.buf.length.toString(16)})`);
    }
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.le ? this.buf.readUInt16LE(this.pos) : this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.le ? this.buf.readUInt32LE(this.pos) : this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): bigint {
    this.need(8);
    const v = this.le ? this.buf.readBigUInt64LE(this.pos) : this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  uleb(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const b = this.u8();
      result |= BigInt(b & 0x7f) << shift;
      shift += 7n;
      if ((b & 0x80) === 0) return result;
    }
  }
  sleb(): bigint {
    let result = 0n;
    let shift = 0n;
    let b: number;
    do {
      b = this.u8();
      result |= BigInt(b & 0x7f) << shift;
      shift += 7n;
    } while (b & 0x80);
    if (b & 0x40) result -= 1n << shift;
    return result;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  cstring(): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw errors.corrupt(this.where, `unterminated string at offset 0x${this.pos.toString(16)}`);
    const s = this.buf.toString('latin1', this.pos, end);
    this.pos = end + 1;
    return s;
  }
  /** A pointer in DW_EH_PE encoding `enc`; `dataBase` for datarel. Indirect pointers are not followed. */
  encoded(enc: number, addressSize: number, dataBase = 0n): bigint {
    const at = this.base + BigInt(this.pos);
    let v: bigint;
    switch (enc & 0x0f) {
      case 0x00:
        v = addressSize === 8 ? this.u64() : BigInt(this.u32());
        break;
      case 0x01:
        v = this.uleb();
        break;
      case 0x02:
        v = BigInt(this.u16());
        break;
      case 0x03:
        v = BigInt(this.u32());
        break;
      case 0x04:
        v = this.u64();
        break;
      case 0x09:
        v = this.sleb();
        break;
      case 0x0a:
        v = BigInt.asIntN(16, BigInt(this.u16()));
        break;
      case 0x0b:
        v = BigInt.asIntN(32, BigInt(this.u32()));
        break;
      case 0x0c:
        v = BigInt.asIntN(64, this.u64());
        break;
      default:
        throw errors.corrupt(this.where, `unknown pointer encoding 0x${enc.toString(16)} at offset 0x${(this.pos - 1).toString(16)}`);
    }
    switch (enc & 0x70) {
      case PE_PCREL:
        v += at;
        break;
      case PE_DATAREL:
        v += dataBase;
        break;
    }
    return BigInt.asUintN(addressSize * 8, v);
  }
}

const cache = new WeakMap<ElfFile, EhFrame | null>();
const debugCache = new WeakMap<ElfFile, EhFrame | null>();

export class EhFrame {
  private readonly cies = new Map<number, Cie>();
  private index?: IndexEntry[];

  private constructor(
    private readonly elf: ElfFile,
    /** The frame section's bytes and the link-time address of its first byte. */
    private readonly section: Buffer,
    private readonly sectionAddr: bigint,
    private readonly isDebugFrame: boolean,
    /** `.eh_frame_hdr` binary-search table, when usable: entries of 2 x sdata4, datarel. */
    private readonly hdrTable?: { buf: Buffer; count: number; hdrAddr: bigint },
  ) {}

  /** The `.eh_frame` CFI of `elf`, or undefined when it has none. Built once per file. */
  static of(elf: ElfFile): EhFrame | undefined {
    const hit = cache.get(elf);
    if (hit !== undefined) return hit ?? undefined;
    let eh: EhFrame | undefined;
    try {
      eh = EhFrame.load(elf);
    } catch (e) {
      if (!(e instanceof DbgError)) throw e;
      eh = undefined;
    }
    cache.set(elf, eh ?? null);
    return eh;
  }

  /**
   * The `.debug_frame` CFI of `elf`, or undefined. Compilers put CFI there instead of `.eh_frame`
   * for code built with -g but without unwind tables; the unwinder asks it second.
   */
  static debugFrameOf(elf: ElfFile): EhFrame | undefined {
    const hit = debugCache.get(elf);
    if (hit !== undefined) return hit ?? undefined;
    let eh: EhFrame | undefined;
    try {
      const sec = elf.section('.debug_frame');
      if (sec && sec.size > 0) eh = new EhFrame(elf, elf.sectionData(sec), 0n, true);
    } catch (e) {
      if (!(e instanceof DbgError)) throw e;
    }
    debugCache.set(elf, eh ?? null);
    return eh;
  }

  private static load(elf: ElfFile): EhFrame | undefined {
    const le = elf.header.littleEndian;
    const ptr = elf.is64 ? 8 : 4;
    const hdrSeg = elf.programHeaders().find((p) => p.type === PT_GNU_EH_FRAME);
    const ehSec = elf.section('.eh_frame');
    if (hdrSeg) {
      const hdr = elf.readLoaded(hdrSeg.vaddr, Number(hdrSeg.memsz));
      if (hdr && hdr.length >= 4 && hdr[0] === 1) {
        const r = new Reader(hdr, hdrSeg.vaddr, le, `${elf.name} .eh_frame_hdr`, 4);
        const ehPtrEnc = hdr[1]!;
        const countEnc = hdr[2]!;
        const tableEnc = hdr[3]!;
        const ehFrameAddr = r.encoded(ehPtrEnc, ptr, hdrSeg.vaddr);
        const section = ehSec && ehSec.addr === ehFrameAddr ? elf.sectionData(ehSec) : readToSegmentEnd(elf, ehFrameAddr);
        if (section) {
          let table: { buf: Buffer; count: number; hdrAddr: bigint } | undefined;
          if (countEnc !== PE_OMIT && tableEnc === 0x3b) {
            const count = Number(r.encoded(countEnc, ptr, hdrSeg.vaddr));
            if (r.pos + count * 8 <= hdr.length) table = { buf: hdr.subarray(r.pos, r.pos + count * 8), count, hdrAddr: hdrSeg.vaddr };
          }
          return new EhFrame(elf, section, ehFrameAddr, false, table);
        }
      }
    }
    if (ehSec && ehSec.size > 0) return new EhFrame(elf, elf.sectionData(ehSec), ehSec.addr, false);
    return undefined;
  }

  private get where(): string {
    return `${this.elf.name} ${this.isDebugFrame ? '.debug_frame' : '.eh_frame'}`;
  }

  /** The unwind rules in effect at link-time address `pc`, or undefined when no FDE covers it. */
  rowFor(pc: bigint): UnwindRow | undefined {
    const off = this.findFde(pc);
    if (off === undefined) return undefined;
    const fde = this.parseFde(off);
    if (!fde || pc < fde.start || pc >= fde.end) return undefined;
    return this.execute(fde, pc);
  }

  private findFde(pc: bigint): number | undefined {
    const t = this.hdrTable;
    if (t) {
      const le = this.elf.header.littleEndian;
      const at = (i: number, o: number) => t.hdrAddr + BigInt(le ? t.buf.readInt32LE(i * 8 + o) : t.buf.readInt32BE(i * 8 + o));
      let lo = 0;
      let hi = t.count - 1;
      let found = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (at(mid, 0) <= pc) {
          found = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      if (found < 0) return undefined;
      const off = at(found, 4) - this.sectionAddr;
      return off >= 0n && off < BigInt(this.section.length) ? Number(off) : undefined;
    }
    const idx = this.buildIndex();
    let lo = 0;
    let hi = idx.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (idx[mid]!.start <= pc) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    // Ranges may nest or overlap in odd files: look back a little for one that covers pc.
    for (let i = found; i >= 0 && i > found - 4; i--) if (pc < idx[i]!.end) return idx[i]!.offset;
    return undefined;
  }

  /** Every FDE of the section, sorted by start: built once, when there is no usable hdr table. */
  private buildIndex(): IndexEntry[] {
    if (this.index) return this.index;
    const out: IndexEntry[] = [];
    const buf = this.section;
    const le = this.elf.header.littleEndian;
    let off = 0;
    while (off + 4 <= buf.length) {
      const r = new Reader(buf, this.sectionAddr, le, this.where, off);
      const { length, contentAt } = this.entryLength(r);
      if (length === 0) {
        if (this.isDebugFrame) break;
        off = contentAt;
        continue; // a zero terminator in .eh_frame; keep going in case sections were concatenated
      }
      const next = contentAt + length;
      if (next > buf.length) break;
      if (!this.isCie(r)) {
        const fde = this.parseFde(off);
        if (fde && fde.end > fde.start) out.push({ start: fde.start, end: fde.end, offset: off });
      }
      off = next;
    }
    out.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    return (this.index = out);
  }

  private entryLength(r: Reader): { length: number; contentAt: number; is64: boolean } {
    const l32 = r.u32();
    if (l32 === 0xffffffff) {
      const l64 = r.u64();
      return { length: Number(l64), contentAt: r.pos, is64: true };
    }
    return { length: l32, contentAt: r.pos, is64: false };
  }

  /** Reads the CIE id / CIE pointer at r and says whether this entry is a CIE. Leaves r after it. */
  private isCie(r: Reader, is64 = false): boolean {
    if (this.isDebugFrame) {
      const id = is64 ? r.u64() : BigInt(r.u32());
      return id === (is64 ? 0xffffffffffffffffn : 0xffffffffn);
    }
    return r.u32() === 0;
  }

  private parseCie(off: number): Cie {
    const hit = this.cies.get(off);
    if (hit) return hit;
    const r = new Reader(this.section, this.sectionAddr, this.elf.header.littleEndian, this.where, off);
    const { length, contentAt, is64 } = this.entryLength(r);
    const end = contentAt + length;
    if (end > this.section.length) throw errors.corrupt(this.where, `CIE at offset 0x${off.toString(16)} claims ${length} bytes, past the end of the section`);
    if (!this.isCie(r, is64)) throw errors.corrupt(this.where, `entry at offset 0x${off.toString(16)} is referenced as a CIE but is not one`);
    const version = r.u8();
    const aug = r.cstring();
    let addressSize = this.elf.is64 ? 8 : 4;
    if (version >= 4) {
      addressSize = r.u8();
      r.u8(); // segment selector size
    }
    const codeAlign = r.uleb();
    const dataAlign = r.sleb();
    const returnColumn = version === 1 ? r.u8() : Number(r.uleb());
    let fdeEncoding = 0;
    let signalFrame = false;
    const hasAugData = aug.startsWith('z');
    if (hasAugData) {
      const augLen = Number(r.uleb());
      const augEnd = r.pos + augLen;
      for (const c of aug.slice(1)) {
        if (c === 'R') fdeEncoding = r.u8();
        else if (c === 'L') r.u8();
        else if (c === 'P') {
          const enc = r.u8();
          r.encoded(enc & ~PE_INDIRECT, addressSize);
        } else if (c === 'S') signalFrame = true;
        else break; // unknown augmentation: the length lets us skip the rest
      }
      r.pos = augEnd;
    } else if (aug.includes('S')) signalFrame = true;
    const cie: Cie = { codeAlign, dataAlign, returnColumn, fdeEncoding, hasAugData, signalFrame, addressSize, instructions: this.section.subarray(r.pos, end) };
    this.cies.set(off, cie);
    return cie;
  }

  private parseFde(off: number): Fde | undefined {
    const le = this.elf.header.littleEndian;
    const r = new Reader(this.section, this.sectionAddr, le, this.where, off);
    const { length, contentAt, is64 } = this.entryLength(r);
    const end = contentAt + length;
    if (length === 0 || end > this.section.length) return undefined;
    const idAt = r.pos;
    const id = this.isDebugFrame ? (is64 ? Number(r.u64()) : r.u32()) : r.u32();
    if (!this.isDebugFrame && id === 0) return undefined;
    const cieOff = this.isDebugFrame ? id : idAt - id;
    if (cieOff < 0 || cieOff >= this.section.length) {
      throw errors.corrupt(this.where, `FDE at offset 0x${off.toString(16)} points to a CIE at 0x${cieOff.toString(16)}, outside the section`);
    }
    const cie = this.parseCie(cieOff);
    const start = this.isDebugFrame ? r.encoded(0, cie.addressSize) : r.encoded(cie.fdeEncoding, cie.addressSize);
    const range = this.isDebugFrame ? r.encoded(0, cie.addressSize) : r.encoded(cie.fdeEncoding & 0x0f, cie.addressSize);
    if (cie.hasAugData) {
      const n = Number(r.uleb());
      r.pos += n;
    }
    if (r.pos > end) throw errors.corrupt(this.where, `FDE at offset 0x${off.toString(16)} is shorter than its header`);
    return { cie, start, end: start + range, instructions: this.section.subarray(r.pos, end) };
  }

  /** Runs the CIE's initial instructions, then the FDE's up to `pc`. */
  private execute(fde: Fde, pc: bigint): UnwindRow {
    const cie = fde.cie;
    const state: RowState = { cfa: { kind: 'reg-offset', reg: 0, offset: 0n }, regs: new Map() };
    runCfa(cie.instructions, cie, state, undefined, fde.start, undefined, this.where, this.elf.header.littleEndian);
    const initial = new Map(state.regs);
    runCfa(fde.instructions, cie, state, initial, fde.start, pc, this.where, this.elf.header.littleEndian);
    return { cfa: state.cfa, registers: state.regs, returnColumn: cie.returnColumn, signalFrame: cie.signalFrame, start: fde.start, end: fde.end };
  }
}

interface RowState {
  cfa: CfaRule;
  regs: Map<number, RegisterRule>;
}

/** The DW_CFA_* interpreter: applies `code` to `state` for locations up to and including `pc`. */
function runCfa(
  code: Buffer,
  cie: Cie,
  state: RowState,
  initial: Map<number, RegisterRule> | undefined,
  start: bigint,
  pc: bigint | undefined,
  where: string,
  le: boolean,
): void {
  const r = new Reader(code, 0n, le, where);
  const stack: RowState[] = [];
  let loc = start;
  const advance = (delta: bigint): boolean => {
    loc += delta * cie.codeAlign;
    return pc !== undefined && loc > pc;
  };
  const restore = (reg: number) => {
    const rule = initial?.get(reg);
    if (rule) state.regs.set(reg, rule);
    else state.regs.delete(reg);
  };
  const da = cie.dataAlign;
  while (r.pos < code.length) {
    const op = r.u8();
    const hi = op & 0xc0;
    const low = op & 0x3f;
    if (hi === 0x40) {
      if (advance(BigInt(low))) return;
      continue;
    }
    if (hi === 0x80) {
      state.regs.set(low, { kind: 'offset', offset: r.uleb() * da });
      continue;
    }
    if (hi === 0xc0) {
      restore(low);
      continue;
    }
    switch (op) {
      case 0x00: // nop
        break;
      case 0x01: // set_loc
        loc = r.encoded(cie.fdeEncoding, cie.addressSize);
        if (pc !== undefined && loc > pc) return;
        break;
      case 0x02:
        if (advance(BigInt(r.u8()))) return;
        break;
      case 0x03:
        if (advance(BigInt(r.u16()))) return;
        break;
      case 0x04:
        if (advance(BigInt(r.u32()))) return;
        break;
      case 0x05: {
        const reg = Number(r.uleb());
        state.regs.set(reg, { kind: 'offset', offset: r.uleb() * da });
        break;
      }
      case 0x06:
        restore(Number(r.uleb()));
        break;
      case 0x07:
        state.regs.set(Number(r.uleb()), { kind: 'undefined' });
        break;
      case 0x08:
        state.regs.set(Number(r.uleb()), { kind: 'same' });
        break;
      case 0x09: {
        const reg = Number(r.uleb());
        state.regs.set(reg, { kind: 'register', reg: Number(r.uleb()) });
        break;
      }
      case 0x0a: // remember_state
        stack.push({ cfa: state.cfa, regs: new Map(state.regs) });
        break;
      case 0x0b: {
        // restore_state: the whole row comes back, the CFA rule included, as libgcc and gdb do.
        const s = stack.pop();
        if (s) {
          state.cfa = s.cfa;
          state.regs = s.regs;
        }
        break;
      }
      case 0x0c: {
        const reg = Number(r.uleb());
        state.cfa = { kind: 'reg-offset', reg, offset: r.uleb() };
        break;
      }
      case 0x0d: {
        const reg = Number(r.uleb());
        state.cfa = { kind: 'reg-offset', reg, offset: state.cfa.kind === 'reg-offset' ? state.cfa.offset : 0n };
        break;
      }
      case 0x0e: {
        const offset = r.uleb();
        state.cfa = { kind: 'reg-offset', reg: state.cfa.kind === 'reg-offset' ? state.cfa.reg : 0, offset };
        break;
      }
      case 0x0f:
        state.cfa = { kind: 'expr', expr: r.bytes(Number(r.uleb())) };
        break;
      case 0x10: {
        const reg = Number(r.uleb());
        state.regs.set(reg, { kind: 'expr', expr: r.bytes(Number(r.uleb())) });
        break;
      }
      case 0x11: {
        const reg = Number(r.uleb());
        state.regs.set(reg, { kind: 'offset', offset: r.sleb() * da });
        break;
      }
      case 0x12: {
        const reg = Number(r.uleb());
        state.cfa = { kind: 'reg-offset', reg, offset: r.sleb() * da };
        break;
      }
      case 0x13: {
        const offset = r.sleb() * da;
        state.cfa = { kind: 'reg-offset', reg: state.cfa.kind === 'reg-offset' ? state.cfa.reg : 0, offset };
        break;
      }
      case 0x14: {
        const reg = Number(r.uleb());
        state.regs.set(reg, { kind: 'val-offset', offset: r.uleb() * da });
        break;
      }
      case 0x15: {
        const reg = Number(r.uleb());
        state.regs.set(reg, { kind: 'val-offset', offset: r.sleb() * da });
        break;
      }
      case 0x16: {
        const reg = Number(r.uleb());
        state.regs.set(reg, { kind: 'val-expr', expr: r.bytes(Number(r.uleb())) });
        break;
      }
      case 0x2e: // GNU_args_size
        r.uleb();
        break;
      case 0x2f: {
        // GNU_negative_offset_extended
        const reg = Number(r.uleb());
        state.regs.set(reg, { kind: 'offset', offset: -r.uleb() * da });
        break;
      }
      default:
        throw errors.corrupt(where, `unknown call frame instruction 0x${op.toString(16)} at offset 0x${(r.pos - 1).toString(16)}`);
    }
  }
}

/** What a DWARF expression may ask of the frame it is evaluated in. */
export interface ExprContext {
  /** The value of DWARF register `n`; throws when unknown. */
  register(n: number): bigint;
  /** `size` bytes of memory at `addr` as an unsigned integer; throws when unreadable. */
  readMemory(addr: bigint, size: number): bigint;
  readonly addressSize: number;
  readonly littleEndian: boolean;
  /** DW_OP_fbreg's base: the function's DW_AT_frame_base (location expressions only). */
  frameBase?(): bigint;
  /** DW_OP_call_frame_cfa: the frame's CFA (location expressions only). */
  cfa?(): bigint;
  /** DW_OP_addrx / DW_OP_GNU_addr_index: entry `index` of the unit's .debug_addr. */
  addressAt?(index: number): bigint;
  /** The run-time address of link-time `addr` (DW_OP_addr in a relocated module). */
  relocate?(addr: bigint): bigint;
  /** DW_OP_entry_value: the value `expr` (a register, usually) had at the function's entry. */
  entryValue?(expr: Buffer): bigint;
}

/**
 * Evaluates a DWARF location expression (the subset CFI uses: literals, registers, arithmetic,
 * comparisons, branches, dereference) and returns the top of the stack. `initial` is pushed first
 * (the CFA, for register rules).
 */
export function evalDwarfExpr(expr: Buffer, ctx: ExprContext, initial?: bigint, where = 'DWARF expression'): bigint {
  const bits = BigInt(ctx.addressSize * 8);
  const mask = (1n << bits) - 1n;
  const s: bigint[] = initial === undefined ? [] : [initial];
  const r = new Reader(expr, 0n, ctx.littleEndian, where);
  const pop = (): bigint => {
    const v = s.pop();
    if (v === undefined) throw errors.corrupt(where, 'DWARF expression pops an empty stack');
    return v;
  };
  const signed = (v: bigint) => BigInt.asIntN(Number(bits), v);
  let steps = 0;
  while (r.pos < expr.length) {
    if (++steps > 10_000) throw errors.corrupt(where, 'DWARF expression runs for more than 10000 steps');
    const op = r.u8();
    if (op >= 0x30 && op <= 0x4f) s.push(BigInt(op - 0x30)); // lit0..31
    else if (op >= 0x50 && op <= 0x6f) s.push(ctx.register(op - 0x50)); // reg0..31
    else if (op >= 0x70 && op <= 0x8f) s.push((ctx.register(op - 0x70) + r.sleb()) & mask); // breg0..31
    else {
      switch (op) {
        case 0x03: {
          const a = ctx.addressSize === 8 ? r.u64() : BigInt(r.u32());
          s.push(ctx.relocate ? ctx.relocate(a) : a);
          break;
        }
        case 0x06:
          s.push(ctx.readMemory(pop(), ctx.addressSize));
          break;
        case 0x08:
          s.push(BigInt(r.u8()));
          break;
        case 0x09:
          s.push(BigInt.asUintN(Number(bits), BigInt.asIntN(8, BigInt(r.u8()))));
          break;
        case 0x0a:
          s.push(BigInt(r.u16()));
          break;
        case 0x0b:
          s.push(BigInt.asUintN(Number(bits), BigInt.asIntN(16, BigInt(r.u16()))));
          break;
        case 0x0c:
          s.push(BigInt(r.u32()));
          break;
        case 0x0d:
          s.push(BigInt.asUintN(Number(bits), BigInt.asIntN(32, BigInt(r.u32()))));
          break;
        case 0x0e:
          s.push(r.u64());
          break;
        case 0x0f:
          s.push(r.u64());
          break;
        case 0x10:
          s.push(r.uleb());
          break;
        case 0x11:
          s.push(r.sleb() & mask);
          break;
        case 0x12:
          s.push(s[s.length - 1] ?? pop());
          break;
        case 0x13:
          pop();
          break;
        case 0x14:
          s.push(s[s.length - 2] ?? pop());
          break;
        case 0x15: {
          const i = r.u8();
          const v = s[s.length - 1 - i];
          if (v === undefined) throw errors.corrupt(where, `DW_OP_pick ${i} beyond the stack`);
          s.push(v);
          break;
        }
        case 0x16: {
          const a = pop();
          const b = pop();
          s.push(a, b);
          break;
        }
        case 0x17: {
          const a = pop();
          const b = pop();
          const c = pop();
          s.push(a, c, b);
          break;
        }
        case 0x19: {
          const v = signed(pop());
          s.push((v < 0n ? -v : v) & mask);
          break;
        }
        case 0x1a:
          s.push(pop() & pop());
          break;
        case 0x1b: {
          const b = signed(pop());
          const a = signed(pop());
          if (b === 0n) throw errors.corrupt(where, 'DWARF expression divides by zero');
          s.push((a / b) & mask);
          break;
        }
        case 0x1c: {
          const b = pop();
          s.push((pop() - b) & mask);
          break;
        }
        case 0x1d: {
          const b = pop();
          if (b === 0n) throw errors.corrupt(where, 'DWARF expression divides by zero');
          s.push(pop() % b);
          break;
        }
        case 0x1e:
          s.push((pop() * pop()) & mask);
          break;
        case 0x1f:
          s.push(-pop() & mask);
          break;
        case 0x20:
          s.push(~pop() & mask);
          break;
        case 0x21:
          s.push(pop() | pop());
          break;
        case 0x22:
          s.push((pop() + pop()) & mask);
          break;
        case 0x23:
          s.push((pop() + r.uleb()) & mask);
          break;
        case 0x24: {
          const b = pop();
          s.push((pop() << b) & mask);
          break;
        }
        case 0x25: {
          const b = pop();
          s.push(pop() >> b);
          break;
        }
        case 0x26: {
          const b = pop();
          s.push((signed(pop()) >> b) & mask);
          break;
        }
        case 0x27:
          s.push(pop() ^ pop());
          break;
        case 0x28: {
          const off = BigInt.asIntN(16, BigInt(r.u16()));
          if (pop() !== 0n) r.pos += Number(off);
          break;
        }
        case 0x29:
        case 0x2a:
        case 0x2b:
        case 0x2c:
        case 0x2d:
        case 0x2e: {
          const b = signed(pop());
          const a = signed(pop());
          const res = op === 0x29 ? a === b : op === 0x2a ? a >= b : op === 0x2b ? a > b : op === 0x2c ? a <= b : op === 0x2d ? a < b : a !== b;
          s.push(res ? 1n : 0n);
          break;
        }
        case 0x2f: {
          const off = Number(BigInt.asIntN(16, BigInt(r.u16())));
          r.pos += off;
          break;
        }
        case 0x90:
          s.push(ctx.register(Number(r.uleb())));
          break;
        case 0x92: {
          const reg = Number(r.uleb());
          s.push((ctx.register(reg) + r.sleb()) & mask);
          break;
        }
        case 0x94: {
          const n = r.u8();
          s.push(ctx.readMemory(pop(), n));
          break;
        }
        case 0x96: // nop
          break;
        case 0x91: // fbreg
          if (!ctx.frameBase) throw errors.corrupt(where, 'DW_OP_fbreg outside a function');
          s.push((ctx.frameBase() + r.sleb()) & mask);
          break;
        case 0x9c: // call_frame_cfa
          if (!ctx.cfa) throw errors.corrupt(where, 'DW_OP_call_frame_cfa without a frame');
          s.push(ctx.cfa());
          break;
        case 0xa1: // addrx
        case 0xfb: {
          const i = Number(r.uleb());
          if (!ctx.addressAt) throw errors.corrupt(where, 'DW_OP_addrx without a unit');
          const a = ctx.addressAt(i);
          s.push(ctx.relocate ? ctx.relocate(a) : a);
          break;
        }
        case 0xa3: // entry_value: the value at the function's entry, known only from the caller's call site
        case 0xf3: {
          const n = Number(r.uleb());
          if (r.pos + n > expr.length) throw errors.corrupt(where, 'DW_OP_entry_value runs past the expression');
          const sub = expr.subarray(r.pos, r.pos + n);
          r.pos += n;
          if (!ctx.entryValue) throw new DbgError('unsupported', 'the value is known only at the function\'s entry (DW_OP_entry_value)');
          s.push(ctx.entryValue(sub));
          break;
        }
        default:
          throw errors.corrupt(where, `unsupported DWARF operation 0x${op.toString(16)} in CFI`);
      }
    }
    if (r.pos < 0 || r.pos > expr.length) throw errors.corrupt(where, 'DWARF expression branches outside itself');
  }
  return pop();
}

/** The bytes from link-time `addr` to the end of the file-backed part of its PT_LOAD. */
function readToSegmentEnd(elf: ElfFile, addr: bigint): Buffer | undefined {
  for (const p of elf.loadSegments()) {
    if (addr < p.vaddr || addr >= p.vaddr + BigInt(p.filesz)) continue;
    const len = Number(p.vaddr + BigInt(p.filesz) - addr);
    return elf.readLoaded(addr, len);
  }
  return undefined;
}
