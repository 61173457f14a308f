import { FileByteSource, type ByteSource } from '../common/byte-source.js';
import { DbgError, errors } from '../common/errors.js';

/**
 * A lazy ELF reader: ELF32 and ELF64, either byte order.
 *
 * Nothing is read until asked for, and then only the bytes asked for, through a ByteSource:
 * opening a 4 GiB core reads its ELF header, and its program headers when they are first used.
 * Section headers are optional (cores have none); when present they are checked against the file
 * size before any is used.
 *
 * Every structural lie (a table past the end of the file, a note whose size overruns its
 * segment, a string offset outside its table) is a DbgError('corrupt') that names the file, the
 * structure and the offset.
 */

export const ELFCLASS32 = 1;
export const ELFCLASS64 = 2;
export const ET_REL = 1;
export const ET_EXEC = 2;
export const ET_DYN = 3;
export const ET_CORE = 4;
export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
export const PT_NOTE = 4;
export const PT_GNU_EH_FRAME = 0x6474e550;
export const SHT_SYMTAB = 2;
export const SHT_NOTE = 7;
export const SHT_NOBITS = 8;
export const SHT_DYNSYM = 11;
export const STT_NOTYPE = 0;
export const STT_OBJECT = 1;
export const STT_FUNC = 2;
export const STT_SECTION = 3;
export const STT_FILE = 4;
export const STT_TLS = 6;
export const STT_GNU_IFUNC = 10;
export const NT_GNU_BUILD_ID = 3;

export interface ElfHeader {
  readonly class: 32 | 64;
  readonly littleEndian: boolean;
  readonly osabi: number;
  readonly type: number;
  readonly machine: number;
  readonly entry: bigint;
  readonly phoff: number;
  readonly shoff: number;
  readonly flags: number;
  readonly phentsize: number;
  readonly phnum: number;
  readonly shentsize: number;
  readonly shnum: number;
  readonly shstrndx: number;
}

export interface ProgramHeader {
  readonly index: number;
  readonly type: number;
  readonly flags: number;
  readonly offset: number;
  readonly vaddr: bigint;
  readonly paddr: bigint;
  readonly filesz: number;
  readonly memsz: bigint;
  readonly align: bigint;
}

export interface SectionHeader {
  readonly index: number;
  readonly name: string;
  readonly type: number;
  readonly flags: bigint;
  readonly addr: bigint;
  readonly offset: number;
  readonly size: number;
  readonly link: number;
  readonly info: number;
  readonly addralign: bigint;
  readonly entsize: bigint;
}

export interface ElfNote {
  readonly name: string;
  readonly type: number;
  readonly desc: Buffer;
  /** File offset of the note header, for messages. */
  readonly offset: number;
}

export interface ElfSymbol {
  readonly name: string;
  readonly value: bigint;
  readonly size: bigint;
  readonly type: number;
  readonly bind: number;
  readonly shndx: number;
}

const ELF_MAGIC = 0x464c457f; // "\x7fELF" read little-endian

/** True when the first bytes of `source` are an ELF identification. */
export function isElf(source: ByteSource): boolean {
  const b = source.readUpTo(0, 4);
  return b.length === 4 && b.readUInt32LE(0) === ELF_MAGIC;
}

export class ElfFile {
  readonly header: ElfHeader;
  private phdrs?: ProgramHeader[];
  private shdrs?: SectionHeader[];

  constructor(readonly source: ByteSource) {
    this.header = this.parseHeader();
  }

  static open(path: string): ElfFile {
    const src = FileByteSource.open(path);
    try {
      return new ElfFile(src);
    } catch (e) {
      src.close();
      throw e;
    }
  }

  get name(): string {
    return this.source.name;
  }
  get is64(): boolean {
    return this.header.class === 64;
  }

  close(): void {
    this.source.close();
  }

  // --- integers in the file's byte order ------------------------------------------------------

  u8(b: Buffer, o: number): number {
    return b[o]!;
  }
  u16(b: Buffer, o: number): number {
    return this.header.littleEndian ? b.readUInt16LE(o) : b.readUInt16BE(o);
  }
  u32(b: Buffer, o: number): number {
    return this.header.littleEndian ? b.readUInt32LE(o) : b.readUInt32BE(o);
  }
  u64(b: Buffer, o: number): bigint {
    return this.header.littleEndian ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o);
  }
  /** A pointer-sized field: 4 bytes in ELF32, 8 in ELF64. */
  addr(b: Buffer, o: number): bigint {
    return this.is64 ? this.u64(b, o) : BigInt(this.u32(b, o));
  }

  private corrupt(message: string): DbgError {
    return errors.corrupt(this.name, message);
  }

  /** An offset/size field as a number, refusing values past 2^53 (no real file is that big). */
  private offsetField(v: bigint, what: string): number {
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw this.corrupt(`${what} 0x${v.toString(16)} is impossibly large`);
    return Number(v);
  }

  // --- header ---------------------------------------------------------------------------------

  private parseHeader(): ElfHeader {
    const src = this.source;
    const ident = src.readUpTo(0, 16);
    if (ident.length < 4 || ident.readUInt32LE(0) !== ELF_MAGIC) {
      throw new DbgError('bad-input', `${src.name}: not an ELF file (no \\x7fELF magic at offset 0)`);
    }
    if (ident.length < 16) throw this.corrupt(`truncated ELF identification (${src.size} bytes)`);
    const cls = ident[4];
    if (cls !== ELFCLASS32 && cls !== ELFCLASS64) throw this.corrupt(`unknown ELF class ${cls} (expected 1 or 2)`);
    const data = ident[5];
    if (data !== 1 && data !== 2) throw this.corrupt(`unknown ELF data encoding ${data} (expected 1 or 2)`);
    const is64 = cls === ELFCLASS64;
    const ehsize = is64 ? 64 : 52;
    if (src.size < ehsize) throw this.corrupt(`truncated ELF header: file has ${src.size} bytes, header needs ${ehsize}`);
    const b = src.read(0, ehsize);
    const le = data === 1;
    const u16 = (o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const u64 = (o: number) => (le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
    const word = (o: number) => (is64 ? u64(o) : BigInt(u32(o)));
    const off = is64 ? [24, 32, 40, 48] : [24, 28, 32, 36];
    const [entryAt, phoffAt, shoffAt, flagsAt] = off as [number, number, number, number];
    const rest = flagsAt + 4;
    const header: ElfHeader = {
      class: is64 ? 64 : 32,
      littleEndian: le,
      osabi: ident[7]!,
      type: u16(16),
      machine: u16(18),
      entry: word(entryAt),
      phoff: this.offsetField(word(phoffAt), 'e_phoff'),
      shoff: this.offsetField(word(shoffAt), 'e_shoff'),
      flags: u32(flagsAt),
      phentsize: u16(rest + 2),
      phnum: u16(rest + 4),
      shentsize: u16(rest + 6),
      shnum: u16(rest + 8),
      shstrndx: u16(rest + 10),
    };
    return header;
  }

  // --- program headers ------------------------------------------------------------------------

  programHeaders(): readonly ProgramHeader[] {
    if (this.phdrs) return this.phdrs;
    const h = this.header;
    const out: ProgramHeader[] = [];
    let phnum = h.phnum;
    if (phnum === 0 || h.phoff === 0) {
      this.phdrs = out;
      return out;
    }
    const want = this.is64 ? 56 : 32;
    if (h.phentsize < want) throw this.corrupt(`e_phentsize ${h.phentsize} is smaller than a program header (${want})`);
    if (phnum === 0xffff) {
      // PN_XNUM: the real count is in section header 0's sh_info.
      const s0 = this.readSectionHeaderRaw(0);
      phnum = s0.info;
    }
    const tableEnd = h.phoff + phnum * h.phentsize;
    if (tableEnd > this.source.size) {
      throw this.corrupt(
        `program header table (${phnum} entries at offset 0x${h.phoff.toString(16)}) runs past the end of the file (size 0x${this.source.size.toString(16)}); the file is truncated`,
      );
    }
    const table = this.source.read(h.phoff, phnum * h.phentsize);
    for (let i = 0; i < phnum; i++) {
      const o = i * h.phentsize;
      out.push(
        this.is64
          ? {
              index: i,
              type: this.u32(table, o),
              flags: this.u32(table, o + 4),
              offset: this.offsetField(this.u64(table, o + 8), `program header ${i} p_offset`),
              vaddr: this.u64(table, o + 16),
              paddr: this.u64(table, o + 24),
              filesz: this.offsetField(this.u64(table, o + 32), `program header ${i} p_filesz`),
              memsz: this.u64(table, o + 40),
              align: this.u64(table, o + 48),
            }
          : {
              index: i,
              type: this.u32(table, o),
              offset: this.u32(table, o + 4),
              vaddr: BigInt(this.u32(table, o + 8)),
              paddr: BigInt(this.u32(table, o + 12)),
              filesz: this.u32(table, o + 16),
              memsz: BigInt(this.u32(table, o + 20)),
              flags: this.u32(table, o + 24),
              align: BigInt(this.u32(table, o + 28)),
            },
      );
    }
    this.phdrs = out;
    return out;
  }

  loadSegments(): ProgramHeader[] {
    return this.programHeaders().filter((p) => p.type === PT_LOAD);
  }

  // --- section headers ------------------------------------------------------------------------

  private readSectionHeaderRaw(i: number, table?: Buffer): Omit<SectionHeader, 'name'> & { nameOff: number } {
    const h = this.header;
    const size = this.is64 ? 64 : 40;
    // From the whole table when the caller read it at once (one pread instead of one per header).
    const b = table ? table.subarray(i * h.shentsize, i * h.shentsize + size) : this.source.read(h.shoff + i * h.shentsize, size);
    if (this.is64) {
      return {
        index: i,
        nameOff: this.u32(b, 0),
        type: this.u32(b, 4),
        flags: this.u64(b, 8),
        addr: this.u64(b, 16),
        offset: this.offsetField(this.u64(b, 24), `section ${i} sh_offset`),
        size: this.offsetField(this.u64(b, 32), `section ${i} sh_size`),
        link: this.u32(b, 40),
        info: this.u32(b, 44),
        addralign: this.u64(b, 48),
        entsize: this.u64(b, 56),
      };
    }
    return {
      index: i,
      nameOff: this.u32(b, 0),
      type: this.u32(b, 4),
      flags: BigInt(this.u32(b, 8)),
      addr: BigInt(this.u32(b, 12)),
      offset: this.u32(b, 16),
      size: this.u32(b, 20),
      link: this.u32(b, 24),
      info: this.u32(b, 28),
      addralign: BigInt(this.u32(b, 32)),
      entsize: BigInt(this.u32(b, 36)),
    };
  }

  /** Section headers; empty when the file has none (normal for cores). */
  sections(): readonly SectionHeader[] {
    if (this.shdrs) return this.shdrs;
    const h = this.header;
    if (h.shoff === 0 || h.shnum === 0) {
      // shnum 0 with shoff set means SHN_UNDEF-extended numbering: count is in section 0's sh_size.
      if (h.shoff !== 0 && h.shnum === 0 && this.source.size >= h.shoff + (this.is64 ? 64 : 40)) {
        const n = this.readSectionHeaderRaw(0).size;
        return (this.shdrs = this.readSections(n));
      }
      return (this.shdrs = []);
    }
    return (this.shdrs = this.readSections(h.shnum));
  }

  private readSections(shnum: number): SectionHeader[] {
    const h = this.header;
    const want = this.is64 ? 64 : 40;
    if (h.shentsize < want) throw this.corrupt(`e_shentsize ${h.shentsize} is smaller than a section header (${want})`);
    const end = h.shoff + shnum * h.shentsize;
    if (end > this.source.size) {
      throw this.corrupt(
        `section header table (${shnum} entries at offset 0x${h.shoff.toString(16)}) runs past the end of the file (size 0x${this.source.size.toString(16)})`,
      );
    }
    const table = this.source.read(h.shoff, shnum * h.shentsize);
    const raw = Array.from({ length: shnum }, (_, i) => this.readSectionHeaderRaw(i, table));
    let shstrndx = h.shstrndx;
    if (shstrndx === 0xffff && raw.length > 0) shstrndx = raw[0]!.link; // SHN_XINDEX
    const strtab = shstrndx < raw.length ? raw[shstrndx]! : undefined;
    const names = strtab && strtab.type !== SHT_NOBITS ? this.source.readUpTo(strtab.offset, strtab.size) : Buffer.alloc(0);
    return raw.map(({ nameOff, ...s }) => ({ ...s, name: cstring(names, nameOff) }));
  }

  section(name: string): SectionHeader | undefined {
    return this.sections().find((s) => s.name === name);
  }

  /** The bytes of a section (empty for SHT_NOBITS). Corrupt if it runs past the end of the file. */
  sectionData(s: SectionHeader): Buffer {
    if (s.type === SHT_NOBITS || s.size === 0) return Buffer.alloc(0);
    if (s.offset + s.size > this.source.size) {
      throw this.corrupt(
        `section ${s.name || s.index} (0x${s.size.toString(16)} bytes at offset 0x${s.offset.toString(16)}) runs past the end of the file (size 0x${this.source.size.toString(16)})`,
      );
    }
    return this.source.read(s.offset, s.size);
  }

  // --- notes ----------------------------------------------------------------------------------

  /**
   * Every note in PT_NOTE segments, or in SHT_NOTE sections when there are no program headers.
   * A note whose sizes overrun its container is corrupt; the message names its index and offset.
   */
  notes(): ElfNote[] {
    const out: ElfNote[] = [];
    const segs = this.programHeaders().filter((p) => p.type === PT_NOTE);
    if (segs.length > 0) {
      for (const p of segs) this.parseNotes(p.offset, p.filesz, Number(p.align) === 8 ? 8 : 4, `PT_NOTE segment ${p.index}`, out);
    } else {
      for (const s of this.sections().filter((s) => s.type === SHT_NOTE)) {
        this.parseNotes(s.offset, s.size, Number(s.addralign) === 8 ? 8 : 4, `section ${s.name}`, out);
      }
    }
    return out;
  }

  private parseNotes(offset: number, size: number, align: number, where: string, out: ElfNote[]): void {
    if (offset + size > this.source.size) {
      throw this.corrupt(
        `${where} (0x${size.toString(16)} bytes at offset 0x${offset.toString(16)}) runs past the end of the file (size 0x${this.source.size.toString(16)}); the file is truncated`,
      );
    }
    const buf = this.source.read(offset, size);
    const pad = (n: number) => (n + align - 1) & ~(align - 1);
    let o = 0;
    let i = 0;
    while (o + 12 <= buf.length) {
      const namesz = this.u32(buf, o);
      const descsz = this.u32(buf, o + 4);
      const type = this.u32(buf, o + 8);
      const nameAt = o + 12;
      // The descriptor is aligned relative to the note's start: with 8-byte alignment
      // (.note.gnu.property) "GNU\0" after the 12-byte header already ends on a boundary.
      const descAt = o + pad(12 + namesz);
      if (namesz > buf.length || descsz > buf.length || descAt + descsz > buf.length) {
        throw this.corrupt(
          `note ${i} at offset 0x${(offset + o).toString(16)} in ${where} claims namesz ${namesz} and descsz ${descsz}, which run past the end of its segment (0x${size.toString(16)} bytes)`,
        );
      }
      const name = buf.toString('latin1', nameAt, nameAt + namesz).replace(/\0+$/, '');
      out.push({ name, type, desc: buf.subarray(descAt, descAt + descsz), offset: offset + o });
      o = descAt + pad(descsz);
      i++;
    }
  }

  buildId(): string | undefined {
    let notes: ElfNote[];
    try {
      notes = this.notes();
    } catch {
      return undefined;
    }
    const n = notes.find((n) => n.name === 'GNU' && n.type === NT_GNU_BUILD_ID);
    return n?.desc.toString('hex');
  }

  // --- symbols --------------------------------------------------------------------------------

  /** Symbols of `.symtab`, or of `.dynsym` when the file is stripped. */
  symbols(): ElfSymbol[] {
    const symtab = this.sections().find((s) => s.type === SHT_SYMTAB);
    if (symtab) return this.readSymbols(symtab);
    return this.dynamicSymbols();
  }

  dynamicSymbols(): ElfSymbol[] {
    const dynsym = this.sections().find((s) => s.type === SHT_DYNSYM);
    return dynsym ? this.readSymbols(dynsym) : [];
  }

  private readSymbols(table: SectionHeader): ElfSymbol[] {
    const secs = this.sections();
    const strSec = secs[table.link];
    if (!strSec) throw this.corrupt(`symbol table ${table.name} links to string table ${table.link}, which does not exist`);
    const data = this.sectionData(table);
    const strings = this.sectionData(strSec);
    const entsize = this.is64 ? 24 : 16;
    const count = Math.floor(data.length / entsize);
    const out: ElfSymbol[] = new Array(count);
    const le = this.header.littleEndian;
    let n = 0;
    for (let i = 0; i < count; i++) {
      const o = i * entsize;
      let nameOff: number, value: bigint, size: bigint, info: number, shndx: number;
      if (this.is64) {
        nameOff = le ? data.readUInt32LE(o) : data.readUInt32BE(o);
        info = data[o + 4]!;
        shndx = le ? data.readUInt16LE(o + 6) : data.readUInt16BE(o + 6);
        value = le ? data.readBigUInt64LE(o + 8) : data.readBigUInt64BE(o + 8);
        size = le ? data.readBigUInt64LE(o + 16) : data.readBigUInt64BE(o + 16);
      } else {
        nameOff = le ? data.readUInt32LE(o) : data.readUInt32BE(o);
        value = BigInt(le ? data.readUInt32LE(o + 4) : data.readUInt32BE(o + 4));
        size = BigInt(le ? data.readUInt32LE(o + 8) : data.readUInt32BE(o + 8));
        info = data[o + 12]!;
        shndx = le ? data.readUInt16LE(o + 14) : data.readUInt16BE(o + 14);
      }
      if (nameOff >= strings.length && nameOff !== 0) {
        throw this.corrupt(`symbol ${i} of ${table.name} has name offset 0x${nameOff.toString(16)} outside its string table (0x${strings.length.toString(16)} bytes)`);
      }
      out[n++] = { name: cstring(strings, nameOff), value, size, type: info & 0xf, bind: info >> 4, shndx };
    }
    out.length = n;
    return out;
  }

  // --- file-backed memory ---------------------------------------------------------------------

  /**
   * Bytes of the loaded image at `vaddr` (unbiased link-time address), from the PT_LOAD that
   * covers it: file bytes up to p_filesz, zeros up to p_memsz. Undefined when no segment covers it.
   */
  readLoaded(vaddr: bigint, length: number): Buffer | undefined {
    for (const p of this.loadSegments()) {
      if (vaddr < p.vaddr || vaddr + BigInt(length) > p.vaddr + p.memsz) continue;
      const rel = Number(vaddr - p.vaddr);
      const n = rel < p.filesz ? Math.min(length, p.filesz - rel) : 0;
      if (n >= 1 << 16 && this.source.readInto && p.offset + rel + n <= this.source.size) {
        // A table of megabytes (a kernel's ORC) straight into its buffer: no cached pages, no second copy.
        const out = Buffer.allocUnsafe(length);
        this.source.readInto(p.offset + rel, out, 0, n);
        return out.fill(0, n);
      }
      const out = Buffer.alloc(length);
      if (n > 0) this.source.readUpTo(p.offset + rel, n).copy(out);
      return out;
    }
    return undefined;
  }
}

function cstring(buf: Buffer, off: number): string {
  if (off >= buf.length) return '';
  let end = buf.indexOf(0, off);
  if (end < 0) end = buf.length;
  return buf.toString('utf8', off, end);
}
