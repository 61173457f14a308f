import { BufferByteSource } from '../common/byte-source.js';
import { DbgError } from '../common/errors.js';
import { ElfFile, SHT_SYMTAB } from './elf-file.js';

/**
 * A relocatable object (a Linux module's .ko) seen where it was loaded: an in-memory copy of the
 * file in which each section the caller places has its run-time address as sh_addr, and the
 * debug sections (.debug_*) have their RELA relocations applied. Its DWARF then speaks run-time
 * addresses (a module of bias 0), and is read by the same code as any other file's.
 *
 *   Elf64_Rela (24 bytes): +0 r_offset u64 | +8 r_info u64 (symbol << 32 | type) | +16 r_addend s64
 *   Elf64_Sym  (24 bytes): +0 st_name u32 | +4 st_info | +5 st_other | +6 st_shndx u16 | +8 st_value u64
 *
 * S + A is written at r_offset of the target section, where S is the symbol's value plus the
 * run-time address of its section when that section is placed (SHF_ALLOC), plus 0 when its
 * section is not loaded (a debug section: offsets into .debug_str, .debug_line...). A relocation
 * against a loaded section the caller did not place (a freed init section) is left undone: its
 * DWARF ranges then name no run-time address. x86-64 only (R_X86_64_NONE, 64, PC32, 32, 32S).
 *
 * A relocation outside its section, of a symbol the table lacks, or of a type this does not
 * apply is DbgError('corrupt') naming the relocation section and the entry.
 */

const SHT_RELA = 4;
const SHF_ALLOC = 0x2n;
const SHN_LORESERVE = 0xff00;
const SHN_ABS = 0xfff1;
const R_X86_64_NONE = 0;
const R_X86_64_64 = 1;
const R_X86_64_PC32 = 2;
const R_X86_64_32 = 10;
const R_X86_64_32S = 11;
const MASK64 = (1n << 64n) - 1n;

/** `elf` (ET_REL, x86-64 ELF64 little-endian) with section `i` at run-time address `bases.get(i)`. */
export function placedObject(elf: ElfFile, bases: ReadonlyMap<number, bigint>): ElfFile {
  const h = elf.header;
  const file = Buffer.from(elf.source.read(0, elf.source.size)); // a copy: the relocations write into it
  const sections = elf.sections();
  const symtab = sections.find((s) => s.type === SHT_SYMTAB);
  for (const [i, base] of bases) {
    if (i <= 0 || i >= sections.length) continue;
    file.writeBigUInt64LE(base & MASK64, h.shoff + i * h.shentsize + 16); // Elf64_Shdr.sh_addr
  }
  const syms = symtab ? file.subarray(symtab.offset, symtab.offset + symtab.size) : Buffer.alloc(0);
  const count = Math.floor(syms.length / 24);
  for (const rela of sections) {
    const target = sections[rela.info];
    if (rela.type !== SHT_RELA || !target || !target.name.startsWith('.debug_')) continue;
    const where = (k: number) => `${elf.name}: ${rela.name} entry ${k}`;
    const data = file.subarray(rela.offset, rela.offset + rela.size);
    for (let k = 0; k + 24 <= data.length; k += 24) {
      const offset = data.readBigUInt64LE(k);
      const type = data.readUInt32LE(k + 8);
      const sym = data.readUInt32LE(k + 12);
      const addend = data.readBigInt64LE(k + 16);
      if (type === R_X86_64_NONE) continue;
      const width = type === R_X86_64_64 ? 8 : type === R_X86_64_32 || type === R_X86_64_32S || type === R_X86_64_PC32 ? 4 : 0;
      if (width === 0) throw new DbgError('corrupt', `${where(k / 24)}: relocation type ${type}, which dbg does not apply to debug sections (64, PC32, 32, 32S)`);
      if (offset + BigInt(width) > BigInt(target.size)) {
        throw new DbgError('corrupt', `${where(k / 24)}: offset 0x${offset.toString(16)} is outside ${target.name} (0x${target.size.toString(16)} bytes)`);
      }
      if (sym >= count) throw new DbgError('corrupt', `${where(k / 24)}: symbol ${sym}, but the symbol table has ${count}`);
      const shndx = syms.readUInt16LE(sym * 24 + 6);
      let s = syms.readBigUInt64LE(sym * 24 + 8);
      if (shndx !== SHN_ABS && shndx !== 0 && shndx < SHN_LORESERVE) {
        const sec = sections[shndx];
        if (sec && (sec.flags & SHF_ALLOC) !== 0n) {
          const base = bases.get(shndx);
          if (base === undefined) continue; // a section the kernel did not keep, or nobody placed
          s += base;
        }
      }
      let value = s + addend;
      const at = target.offset + Number(offset);
      if (type === R_X86_64_PC32) value -= (bases.get(target.index) ?? 0n) + offset;
      if (width === 8) file.writeBigUInt64LE(value & MASK64, at);
      else file.writeUInt32LE(Number(value & 0xffff_ffffn), at);
    }
  }
  return new ElfFile(new BufferByteSource(elf.name, file));
}
