/**
 * Loading a kernel into the dbg machine and setting up the boot CPU.
 *
 * Which loader:
 *   - a multiboot v1 header (magic 0x1BADB002 in the first 8 KiB, 4-aligned, valid checksum) with
 *     the a.out-kludge flag (bit 16): loaded by the header's addresses, whatever the file format,
 *     exactly as QEMU's -kernel does; entered in 32-bit protected mode;
 *   - a multiboot header without the flag in an ELF32 file: PT_LOADs at p_paddr, 32-bit entry;
 *   - an ELF64 x86-64 file without a usable multiboot header (or a multiboot header without the
 *     kludge, which QEMU refuses for ELF64): PT_LOADs at p_paddr, entered in 64-bit long mode
 *     at e_entry with dbg's page tables, GDT and stack.
 *
 * Multiboot entry state (QEMU's): EAX = 0x2BADB002, EBX = 0x9500 (multiboot info), CS = 0x08 flat
 * 32-bit code, DS/ES/FS/GS/SS = 0x10 flat data, CR0 = PE|ET, paging off, EFLAGS = 0x2, other
 * general registers 0. The info: flags 0x24f (mem, boot device, cmdline, mods (none), mmap,
 * boot loader name); mem_lower = 639 KiB, mem_upper = RAM - 1 MiB - 128 KiB (in KiB, the top
 * 128 KiB being reserved, as SeaBIOS reserves them); cmdline "<file name> <cmdline>"; boot loader
 * name "qemu" (so that a kernel's view matches QEMU's); an e820-style memory map at 0x9000.
 *
 * Long-mode entry state: paging on with dbg's tables at the top of RAM (reserved area): RAM
 * identity-mapped with 2 MiB pages, plus every PT_LOAD whose p_vaddr differs from p_paddr mapped
 * with 4 KiB pages; GDT code 0x08 (64-bit) / data 0x10; RSP = top of a 16 KiB stack in the reserved
 * area; RAX = 0x2BADB002 and RBX = RDI = 0x9500 (the same multiboot info); RIP = e_entry.
 */

import { basename } from 'node:path';
import { DbgError, errors } from '../../common/errors.js';
import { BufferByteSource } from '../../common/byte-source.js';
import { ElfFile, PT_LOAD } from '../../symbols/elf-file.js';
import { RESERVED_TOP, type Machine } from './machine.js';
import { X86_REG } from './unicorn.js';
import { enterLongMode, enterProtectedMode32, flatGdt } from './x86-64-cpu.js';
import { writeBiosTables } from './devices/bios-tables.js';

export const MULTIBOOT_MAGIC = 0x1badb002;
export const MULTIBOOT_BOOTLOADER_MAGIC = 0x2badb002;
export const MBI_ADDR = 0x9500;
const MMAP_ADDR = 0x9000;
const CMDLINE_ADDR = 0x9600;
const LOADER_NAME_ADDR = 0x9700;
const EM_X86_64 = 62;
const EM_386 = 3;

export interface LoadedKernel {
  kind: 'multiboot' | 'elf64';
  entry: bigint;
  /** The ELF file, when the kernel is one (for symbols). */
  elf?: ElfFile;
  /** Physical ranges the loader filled, for messages. */
  segments: { phys: bigint; size: bigint }[];
}

interface MultibootHeader {
  offset: number;
  flags: number;
  headerAddr: number;
  loadAddr: number;
  loadEndAddr: number;
  bssEndAddr: number;
  entryAddr: number;
}

function findMultiboot(file: Buffer): MultibootHeader | undefined {
  const end = Math.min(file.length - 12, 8192 - 12);
  for (let o = 0; o <= end; o += 4) {
    if (file.readUInt32LE(o) !== MULTIBOOT_MAGIC) continue;
    const flags = file.readUInt32LE(o + 4);
    const sum = (MULTIBOOT_MAGIC + flags + file.readUInt32LE(o + 8)) >>> 0;
    if (sum !== 0) continue;
    const kludge = (flags & 0x10000) !== 0;
    if (kludge && o + 32 > file.length) continue;
    return {
      offset: o,
      flags,
      headerAddr: kludge ? file.readUInt32LE(o + 12) : 0,
      loadAddr: kludge ? file.readUInt32LE(o + 16) : 0,
      loadEndAddr: kludge ? file.readUInt32LE(o + 20) : 0,
      bssEndAddr: kludge ? file.readUInt32LE(o + 24) : 0,
      entryAddr: kludge ? file.readUInt32LE(o + 28) : 0,
    };
  }
  return undefined;
}

function place(m: Machine, name: string, phys: bigint, data: Buffer, memsz: bigint, what: string): void {
  const ramEnd = BigInt(m.ram.length - RESERVED_TOP);
  if (phys < 0n || phys + memsz > ramEnd) {
    throw errors.badInput(
      `${name}: ${what} at physical 0x${phys.toString(16)}-0x${(phys + memsz).toString(16)} lies outside guest RAM ` +
        `(0x0-0x${ramEnd.toString(16)} usable with ${m.ram.length >> 20} MiB); give more RAM with -m or relink the kernel`,
    );
  }
  m.ram.fill(0, Number(phys), Number(phys + memsz));
  data.copy(m.ram, Number(phys));
}

/** Load `file` (its bytes `image`) into `m` and set up vCPU 0. */
export function loadKernel(m: Machine, path: string, image: Buffer, cmdline = ''): LoadedKernel {
  const name = basename(path);
  const isElfFile = image.length >= 4 && image.readUInt32LE(0) === 0x464c457f;
  let elf: ElfFile | undefined;
  if (isElfFile) {
    elf = new ElfFile(new BufferByteSource(name, image));
    const mach = elf.header.machine;
    if (mach !== EM_X86_64 && mach !== EM_386) {
      throw errors.badInput(`${name}: an ELF file for machine ${mach} (${machineName(mach)}); the dbg machine runs x86-64 (EM_X86_64 = 62) or multiboot i386 kernels`);
    }
  }
  // What the BIOS leaves (data area, text screen, MP and ACPI tables); the kernel's segments may overwrite it.
  writeBiosTables(m.ram, m.vcpus.length);
  const mb = findMultiboot(image);
  if (mb && (mb.flags & 0x10000) !== 0) return loadMultibootKludge(m, name, image, mb, cmdline, elf);
  if (elf && !elf.is64 && mb) return loadMultibootElf32(m, name, elf, cmdline);
  if (elf && elf.is64) return loadElf64(m, name, elf, cmdline);
  if (elf) throw errors.badInput(`${name}: a 32-bit ELF without a multiboot header; the dbg machine boots ELF64 kernels or multiboot kernels`);
  throw errors.badInput(`${name}: not an ELF file and no multiboot header in its first 8 KiB (found ${describeStart(image)})`);
}

function describeStart(b: Buffer): string {
  if (b.length === 0) return 'an empty file';
  return `bytes ${b.subarray(0, 8).toString('hex')}${b.length > 8 ? '...' : ''}`;
}

function machineName(m: number): string {
  return ({ 3: 'i386', 40: 'ARM', 62: 'x86-64', 183: 'AArch64', 243: 'RISC-V', 8: 'MIPS', 20: 'PowerPC', 21: 'PowerPC64' } as Record<number, string>)[m] ?? 'unknown';
}

function loadMultibootKludge(m: Machine, name: string, image: Buffer, mb: MultibootHeader, cmdline: string, elf?: ElfFile): LoadedKernel {
  // QEMU: the file from (header offset - (header_addr - load_addr)) is copied to load_addr.
  if (mb.headerAddr < mb.loadAddr) throw errors.badInput(`${name}: multiboot header_addr 0x${mb.headerAddr.toString(16)} is below load_addr 0x${mb.loadAddr.toString(16)}`);
  const fileStart = mb.offset - (mb.headerAddr - mb.loadAddr);
  if (fileStart < 0) throw errors.badInput(`${name}: multiboot header at file offset 0x${mb.offset.toString(16)} cannot have header_addr - load_addr = 0x${(mb.headerAddr - mb.loadAddr).toString(16)}`);
  const loadSize = mb.loadEndAddr ? mb.loadEndAddr - mb.loadAddr : image.length - fileStart;
  if (loadSize < 0 || fileStart + loadSize > image.length) {
    throw errors.badInput(`${name}: multiboot load_end_addr 0x${mb.loadEndAddr.toString(16)} asks for ${loadSize} bytes from file offset 0x${fileStart.toString(16)}, past the end of the ${image.length}-byte file`);
  }
  const memEnd = mb.bssEndAddr ? Math.max(mb.bssEndAddr, mb.loadAddr + loadSize) : mb.loadAddr + loadSize;
  place(m, name, BigInt(mb.loadAddr), image.subarray(fileStart, fileStart + loadSize), BigInt(memEnd - mb.loadAddr), 'the multiboot image');
  bootMultiboot(m, name, BigInt(mb.entryAddr), cmdline);
  return { kind: 'multiboot', entry: BigInt(mb.entryAddr), ...(elf ? { elf } : {}), segments: [{ phys: BigInt(mb.loadAddr), size: BigInt(memEnd - mb.loadAddr) }] };
}

function loadSegments(m: Machine, name: string, elf: ElfFile): { phys: bigint; size: bigint }[] {
  const segs = elf.programHeaders().filter((p) => p.type === PT_LOAD && p.memsz > 0n);
  if (segs.length === 0) throw errors.badInput(`${name}: the ELF file has no PT_LOAD segment to load`);
  return segs.map((p) => {
    const data = p.filesz > 0 ? elf.source.read(p.offset, p.filesz) : Buffer.alloc(0);
    place(m, name, p.paddr, data, p.memsz, `PT_LOAD ${p.index} (vaddr 0x${p.vaddr.toString(16)})`);
    return { phys: p.paddr, size: p.memsz };
  });
}

function loadMultibootElf32(m: Machine, name: string, elf: ElfFile, cmdline: string): LoadedKernel {
  const segments = loadSegments(m, name, elf);
  // QEMU enters at e_entry translated to physical through the segment that holds it.
  let entry = elf.header.entry;
  for (const p of elf.loadSegments()) {
    if (entry >= p.vaddr && entry < p.vaddr + p.memsz) entry = entry - p.vaddr + p.paddr;
  }
  bootMultiboot(m, name, entry, cmdline);
  return { kind: 'multiboot', entry, elf, segments };
}

/** The multiboot information structure, memory map and strings (QEMU's layout). */
function writeMultibootInfo(m: Machine, name: string, cmdline: string): void {
  const ram = m.ram;
  const top = ram.length - RESERVED_TOP;
  // e820-style map: {u32 size = 20, u64 base, u64 length, u32 type}
  const map: [number, number, number][] = [
    [0, 0x9fc00, 1],
    [0x9fc00, 0x400, 2],
    [0xf0000, 0x10000, 2],
    [0x100000, top - 0x100000, 1],
    [top, RESERVED_TOP, 2],
  ];
  map.forEach(([base, len, type], i) => {
    const o = MMAP_ADDR + i * 24;
    ram.writeUInt32LE(20, o);
    ram.writeBigUInt64LE(BigInt(base), o + 4);
    ram.writeBigUInt64LE(BigInt(len), o + 12);
    ram.writeUInt32LE(type, o + 20);
  });
  const line = `${name} ${cmdline}`;
  ram.fill(0, CMDLINE_ADDR, LOADER_NAME_ADDR + 16);
  ram.write(line.slice(0, 255), CMDLINE_ADDR, 'latin1');
  ram.write('qemu', LOADER_NAME_ADDR, 'latin1');
  const mbi = Buffer.alloc(0x58);
  mbi.writeUInt32LE(0x24f, 0); // flags
  mbi.writeUInt32LE(639, 4); // mem_lower
  mbi.writeUInt32LE(Math.floor((top - 0x100000) / 1024), 8); // mem_upper
  mbi.writeUInt32LE(0x8000ffff, 12); // boot_device
  mbi.writeUInt32LE(CMDLINE_ADDR, 16); // cmdline
  mbi.writeUInt32LE(0, 20); // mods_count
  mbi.writeUInt32LE(0, 24); // mods_addr
  mbi.writeUInt32LE(map.length * 24, 44); // mmap_length
  mbi.writeUInt32LE(MMAP_ADDR, 48); // mmap_addr
  mbi.writeUInt32LE(LOADER_NAME_ADDR, 64); // boot_loader_name
  mbi.copy(ram, MBI_ADDR);
}

function bootMultiboot(m: Machine, name: string, entry: bigint, cmdline: string): void {
  writeMultibootInfo(m, name, cmdline);
  const gdtAddr = m.ram.length - RESERVED_TOP;
  flatGdt(false).copy(m.ram, gdtAddr);
  const e = m.vcpu(0).engine;
  enterProtectedMode32(e, BigInt(gdtAddr), 23);
  for (const r of [X86_REG.RCX, X86_REG.RDX, X86_REG.RSI, X86_REG.RDI, X86_REG.RBP, X86_REG.RSP]) e.writeReg(r, 0n);
  e.writeReg(X86_REG.RAX, BigInt(MULTIBOOT_BOOTLOADER_MAGIC));
  e.writeReg(X86_REG.RBX, BigInt(MBI_ADDR));
  e.writeReg(X86_REG.RIP, entry);
}

/**
 * dbg's boot page tables in the reserved top of RAM:
 *   top+0x0000 GDT   top+0x1000 PML4   top+0x2000 PDPT (low)   top+0x3000.. PDs (identity, 2 MiB)
 *   then PDPT/PD/PT pages for the kernel's higher-half segments, the stack at the end (16 KiB).
 */
function buildLongModeTables(m: Machine, name: string, elf: ElfFile): { cr3: bigint; gdt: bigint; stackTop: bigint } {
  const ram = m.ram;
  const base = ram.length - RESERVED_TOP;
  const stackTop = BigInt(ram.length);
  const stackBottom = ram.length - 0x4000;
  let next = base + 0x1000;
  const alloc = (): number => {
    if (next + 0x1000 > stackBottom) throw errors.badInput(`${name}: the kernel's segments need more boot page tables than dbg's reserved 128 KiB holds`);
    ram.fill(0, next, next + 0x1000);
    return (next += 0x1000) - 0x1000;
  };
  const pml4 = alloc();
  const entry = (table: number, index: number): number => {
    const o = table + index * 8;
    const cur = ram.readBigUInt64LE(o);
    if (cur & 1n) return Number(cur & 0x000f_ffff_ffff_f000n);
    const t = alloc();
    ram.writeBigUInt64LE(BigInt(t) | 0x3n, o);
    return t;
  };
  // Identity map of RAM, 2 MiB pages (RW, executable).
  for (let a = 0; a < ram.length; a += 0x200000) {
    const va = BigInt(a);
    const pdpt = entry(pml4, Number((va >> 39n) & 0x1ffn));
    const pd = entry(pdpt, Number((va >> 30n) & 0x1ffn));
    ram.writeBigUInt64LE(va | 0x83n, pd + Number((va >> 21n) & 0x1ffn) * 8);
  }
  // Segments linked elsewhere: 4 KiB pages.
  for (const p of elf.loadSegments()) {
    if (p.vaddr === p.paddr || p.memsz === 0n) continue;
    const w = (p.flags & 2) !== 0 ? 0x2n : 0n;
    const nx = (p.flags & 1) === 0 ? 1n << 63n : 0n;
    for (let off = 0n; off < p.memsz + (p.vaddr & 0xfffn); off += 0x1000n) {
      const va = (p.vaddr & ~0xfffn) + off;
      const pa = (p.paddr & ~0xfffn) + off;
      const pdpt = entry(pml4, Number((va >> 39n) & 0x1ffn));
      const pd = entry(pdpt, Number((va >> 30n) & 0x1ffn));
      const pdo = pd + Number((va >> 21n) & 0x1ffn) * 8;
      if (ram.readBigUInt64LE(pdo) & 0x80n) {
        throw errors.badInput(`${name}: PT_LOAD ${p.index} at vaddr 0x${p.vaddr.toString(16)} overlaps the identity map of RAM with a different physical address`);
      }
      const pt = entry(pd, Number((va >> 21n) & 0x1ffn));
      ram.writeBigUInt64LE(pa | 0x1n | w | nx, pt + Number((va >> 12n) & 0x1ffn) * 8);
    }
  }
  flatGdt(true).copy(ram, base);
  return { cr3: BigInt(pml4), gdt: BigInt(base), stackTop };
}

function loadElf64(m: Machine, name: string, elf: ElfFile, cmdline: string): LoadedKernel {
  if (elf.header.machine !== EM_X86_64) throw errors.badInput(`${name}: a 64-bit ELF for machine ${elf.header.machine}, not x86-64`);
  const segments = loadSegments(m, name, elf);
  writeMultibootInfo(m, name, cmdline);
  const { cr3, gdt, stackTop } = buildLongModeTables(m, name, elf);
  const e = m.vcpu(0).engine;
  enterLongMode(e, cr3, gdt, 23);
  for (const r of [X86_REG.RCX, X86_REG.RDX, X86_REG.RSI, X86_REG.RBP]) e.writeReg(r, 0n);
  e.writeReg(X86_REG.RAX, BigInt(MULTIBOOT_BOOTLOADER_MAGIC));
  e.writeReg(X86_REG.RBX, BigInt(MBI_ADDR));
  e.writeReg(X86_REG.RDI, BigInt(MBI_ADDR));
  e.writeReg(X86_REG.RSP, stackTop);
  e.writeReg(X86_REG.RIP, elf.header.entry);
  return { kind: 'elf64', entry: elf.header.entry, elf, segments };
}

export function assertNotEmpty(image: Buffer, path: string): void {
  if (image.length === 0) throw new DbgError('bad-input', `${basename(path)}: the file is empty; expected an ELF or multiboot kernel`);
}
