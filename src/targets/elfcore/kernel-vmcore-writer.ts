/**
 * Writes x86-64 kernel dumps in the layouts KernelDumpTarget reads: QEMU dump-guest-memory
 * (NT_PRSTATUS per CPU, then a QEMUCPUState note per CPU) or kdump (NT_PRSTATUS per CPU and a
 * VMCOREINFO note). Used by tests (edge cases), the bench (a 4 GiB sparse dump), and `::dump`
 * (qemu-core-writer.ts).
 *
 * File layout:
 *
 *   0x0    ELF64 header (ET_CORE, EM_X86_64)
 *   0x40   program headers: PT_NOTE, then one PT_LOAD per segment
 *   ...    notes (4-byte aligned)
 *   ...    segment data, each segment page-aligned; only the chunks given are written, the rest
 *          of the file is a hole (ftruncate), so a 4 GiB dump costs its headers on disk
 */

import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { X86_64 } from '../../arch/x86-64.js';

export interface QemuSegmentSpec {
  readonly selector?: number;
  readonly limit?: number;
  readonly flags?: number;
  readonly base?: bigint;
}

export interface VmcoreCpuSpec {
  /** General registers by dbg name (rax.., rip, eflags, cs.. gs, fs_base, gs_base); absent = 0. */
  readonly regs?: Readonly<Record<string, bigint>>;
  /** NT_PRSTATUS pr_pid (QEMU writes CPU index + 1). */
  readonly pid?: number;
  /** Present: a QEMU CPU-state note is written for this CPU. */
  readonly qemu?: {
    /** cr0..cr4. */
    readonly cr: readonly [bigint, bigint, bigint, bigint, bigint];
    readonly segments?: Partial<Record<'cs' | 'ds' | 'es' | 'fs' | 'gs' | 'ss' | 'ldt' | 'tr' | 'gdt' | 'idt', QemuSegmentSpec>>;
    readonly kernelGsBase?: bigint;
  };
}

export interface VmcoreSegmentSpec {
  readonly paddr: bigint;
  /** Default: paddr (a physical dump). */
  readonly vaddr?: bigint;
  /** p_filesz. */
  readonly size: number;
  /** p_memsz; default size. */
  readonly memsz?: bigint;
  /** Bytes to write at offsets inside the segment; everything else reads as zero. */
  readonly chunks?: readonly { readonly offset: number; readonly bytes: Buffer }[];
  /**
   * The segment's bytes, asked for in slices of FILL_SLICE (a live guest's RAM, read as it is
   * written rather than held whole); an all-zero slice is left a hole.
   */
  readonly fill?: (offset: number, length: number) => Buffer;
  /** Put the segment at this file offset instead of the next free one (to build overlaps and lies). */
  readonly fileOffset?: number;
}

export interface VmcoreSpec {
  readonly cpus: readonly VmcoreCpuSpec[];
  readonly vmcoreinfo?: string;
  readonly segments: readonly VmcoreSegmentSpec[];
  /** Cut the file to this many bytes after writing (a truncated dump). */
  readonly truncateTo?: number;
}

const FILL_SLICE = 1 << 20;

const QEMU_GP = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'eflags'];
const SEGS = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'ldt', 'tr', 'gdt', 'idt'] as const;

/** One ELF note: header, NUL-terminated name and descriptor, each padded to 4 bytes. */
export function note(name: string, type: number, desc: Buffer): Buffer {
  const n = Buffer.from(name + '\0', 'latin1');
  const pad = (x: number) => (x + 3) & ~3;
  const out = Buffer.alloc(12 + pad(n.length) + pad(desc.length));
  out.writeUInt32LE(n.length, 0);
  out.writeUInt32LE(desc.length, 4);
  out.writeUInt32LE(type, 8);
  n.copy(out, 12);
  desc.copy(out, 12 + pad(n.length));
  return out;
}

function prstatus(cpu: VmcoreCpuSpec, index: number): Buffer {
  const d = Buffer.alloc(336);
  d.writeInt32LE(cpu.pid ?? index + 1, 32);
  X86_64.prstatusRegisters.forEach((r, i) => d.writeBigUInt64LE(cpu.regs?.[r] ?? 0n, 112 + i * 8));
  return d;
}

function qemuState(cpu: VmcoreCpuSpec): Buffer {
  const q = cpu.qemu!;
  const d = Buffer.alloc(440);
  d.writeUInt32LE(1, 0);
  d.writeUInt32LE(440, 4);
  QEMU_GP.forEach((r, i) => d.writeBigUInt64LE(cpu.regs?.[r] ?? 0n, 8 + i * 8));
  SEGS.forEach((s, i) => {
    const seg = q.segments?.[s] ?? {};
    const o = 152 + i * 24;
    d.writeUInt32LE(seg.selector ?? Number(cpu.regs?.[s] ?? 0n), o);
    d.writeUInt32LE(seg.limit ?? 0xffffffff, o + 4);
    d.writeUInt32LE(seg.flags ?? (s === 'cs' ? 0xaf9b00 : 0xcf9300), o + 8);
    d.writeBigUInt64LE(seg.base ?? 0n, o + 16);
  });
  q.cr.forEach((v, i) => d.writeBigUInt64LE(v, 392 + i * 8));
  d.writeBigUInt64LE(q.kernelGsBase ?? 0n, 432);
  return d;
}

export function writeVmcore(path: string, spec: VmcoreSpec): void {
  const notes: Buffer[] = spec.cpus.map((c, i) => note('CORE', 1, prstatus(c, i)));
  for (const c of spec.cpus) if (c.qemu) notes.push(note('QEMU', 0, qemuState(c)));
  if (spec.vmcoreinfo !== undefined) notes.push(note('VMCOREINFO', 0, Buffer.from(spec.vmcoreinfo, 'latin1')));
  const noteData = Buffer.concat(notes);
  const phnum = 1 + spec.segments.length;
  const noteOff = 64 + 56 * phnum;
  let next = Math.ceil((noteOff + noteData.length) / 4096) * 4096;
  const offsets = spec.segments.map((s) => {
    if (s.fileOffset !== undefined) return s.fileOffset;
    const o = next;
    next += Math.ceil(s.size / 4096) * 4096;
    return o;
  });
  const end = Math.max(next, ...spec.segments.map((s, i) => offsets[i]! + s.size));

  const head = Buffer.alloc(noteOff);
  head.write('\x7fELF', 0, 'latin1');
  head[4] = 2; // ELFCLASS64
  head[5] = 1; // little-endian
  head[6] = 1; // EV_CURRENT
  head.writeUInt16LE(4, 16); // ET_CORE
  head.writeUInt16LE(62, 18); // EM_X86_64
  head.writeUInt32LE(1, 20);
  head.writeBigUInt64LE(64n, 32); // e_phoff
  head.writeUInt16LE(64, 52); // e_ehsize
  head.writeUInt16LE(56, 54); // e_phentsize
  head.writeUInt16LE(phnum, 56);
  const ph = (i: number, type: number, off: number, vaddr: bigint, paddr: bigint, filesz: number, memsz: bigint) => {
    const o = 64 + i * 56;
    head.writeUInt32LE(type, o);
    head.writeUInt32LE(type === 1 ? 7 : 0, o + 4);
    head.writeBigUInt64LE(BigInt(off), o + 8);
    head.writeBigUInt64LE(vaddr, o + 16);
    head.writeBigUInt64LE(paddr, o + 24);
    head.writeBigUInt64LE(BigInt(filesz), o + 32);
    head.writeBigUInt64LE(memsz, o + 40);
  };
  ph(0, 4, noteOff, 0n, 0n, noteData.length, BigInt(noteData.length));
  spec.segments.forEach((s, i) => ph(i + 1, 1, offsets[i]!, s.vaddr ?? s.paddr, s.paddr, s.size, s.memsz ?? BigInt(s.size)));

  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, spec.truncateTo ?? end);
    writeSync(fd, head, 0, head.length, 0);
    writeSync(fd, noteData, 0, noteData.length, noteOff);
    spec.segments.forEach((s, i) => {
      for (const c of s.chunks ?? []) writeSync(fd, c.bytes, 0, c.bytes.length, offsets[i]! + c.offset);
      for (let off = 0; s.fill && off < s.size; off += FILL_SLICE) {
        const b = s.fill(off, Math.min(FILL_SLICE, s.size - off));
        if (b.some((x) => x !== 0)) writeSync(fd, b, 0, b.length, offsets[i]! + off);
      }
    });
    if (spec.truncateTo !== undefined) ftruncateSync(fd, spec.truncateTo);
  } finally {
    closeSync(fd);
  }
}

/**
 * Builds 4-level page tables in a flat physical image, for tests and the bench: `map` adds a
 * mapping of one page (4 KiB, 2 MiB or 1 GiB), allocating tables from `nextTable` upwards.
 */
export class PageTableBuilder {
  /** Physical address -> 8-byte entries written. */
  readonly entries = new Map<bigint, bigint>();
  private next: bigint;

  constructor(
    readonly root: bigint,
    firstTable: bigint,
  ) {
    this.next = firstTable;
  }

  private table(entryAddr: bigint): bigint {
    const e = this.entries.get(entryAddr);
    if (e !== undefined && (e & 1n) === 1n) return e & 0x000ffffffffff000n;
    const t = this.next;
    this.next += 4096n;
    this.entries.set(entryAddr, t | 0x3n);
    return t;
  }

  /** Map virtual `va` to physical `pa` with a page of `size` bytes; `flags` default P|RW (0x3). */
  map(va: bigint, pa: bigint, size: 4096 | 0x200000 | 0x40000000, flags = 0x3n): void {
    const idx = (shift: bigint) => ((va >> shift) & 0x1ffn) * 8n;
    const pdpt = this.table(this.root + idx(39n));
    if (size === 0x40000000) {
      this.entries.set(pdpt + idx(30n), pa | flags | 0x80n);
      return;
    }
    const pd = this.table(pdpt + idx(30n));
    if (size === 0x200000) {
      this.entries.set(pd + idx(21n), pa | flags | 0x80n);
      return;
    }
    const pt = this.table(pd + idx(21n));
    this.entries.set(pt + idx(12n), pa | flags);
  }

  /** Set one raw entry (to build broken tables). */
  set(entryAddr: bigint, value: bigint): void {
    this.entries.set(entryAddr, value);
  }

  /** The entries as chunks of a segment starting at physical `segStart`. */
  chunks(segStart: bigint): { offset: number; bytes: Buffer }[] {
    return [...this.entries].map(([a, v]) => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(v);
      return { offset: Number(a - segStart), bytes: b };
    });
  }

  /** Tables allocated so far end below this physical address. */
  get end(): bigint {
    return this.next;
  }
}
