/**
 * MDB's `file` target: a file's bytes, with no process, threads or registers.
 *
 * Two views, as mdb has them:
 *   - raw (`dbg open --raw FILE`, and any file that is not ELF): virtual address = file offset,
 *     one mapping [0, size);
 *   - ELF object (an executable, a shared library, a relocatable object opened without --raw):
 *     virtual address = the link-time address of the PT_LOAD segments (file bytes up to p_filesz,
 *     zeros up to p_memsz), with the file's .symtab (else .dynsym) as one module, so `main/i` and
 *     `::dis main` work on an executable that never ran. A PIE's addresses are its link-time ones
 *     (from 0), as mdb and `gdb FILE` show them before the program runs.
 *
 * Reads are lazy (a ByteSource), so opening a multi-GiB raw image costs nothing.
 */

import { basename } from 'node:path';
import type { Registers } from '../../arch/arch.js';
import { X86_64 } from '../../arch/x86-64.js';
import { x86ArchOfElf } from '../../arch/x86-mode.js';
import type { Arch } from '../../arch/arch.js';
import { FileByteSource, type ByteSource } from '../../common/byte-source.js';
import { DbgError } from '../../common/errors.js';
import { hexAddr } from '../../common/format.js';
import { ElfFile, ET_CORE, ET_DYN, ET_EXEC } from '../../symbols/elf-file.js';
import { SymbolSpace } from '../../symbols/symbol-space.js';
import { symbolTableFor } from '../../symbols/compact-symbol-table.js';
import type { Capabilities, Mapping, StopStatus, Target, ThreadInfo, VirtAddr } from '../target.js';

const PT_INTERP = 3;
const PF_X = 1;
const PF_W = 2;
const PF_R = 4;

export class FileTarget implements Target {
  readonly kind = 'file';
  readonly caps: Capabilities = {};
  readonly symbols = new SymbolSpace();
  readonly warnings: string[] = [];
  readonly name: string;
  private readonly maps: Mapping[];
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly source: ByteSource,
    readonly arch: Arch,
    private readonly elf: ElfFile | undefined,
  ) {
    if (elf) {
      const pie = elf.header.type === ET_DYN && elf.programHeaders().some((p) => p.type === PT_INTERP);
      const kind = elf.header.type === ET_EXEC || pie ? 'executable' : elf.header.type === ET_DYN ? 'shared object' : elf.header.type === ET_CORE ? 'core file' : 'ELF object';
      this.name = `${kind} "${path}"`;
      this.maps = elf
        .loadSegments()
        .filter((p) => p.memsz > 0n)
        .map((p) => ({
          start: p.vaddr,
          end: p.vaddr + p.memsz,
          perms: (p.flags & PF_R ? 'r' : '-') + (p.flags & PF_W ? 'w' : '-') + (p.flags & PF_X ? 'x' : '-'),
          name: path,
          fileOffset: BigInt(p.offset),
        }))
        .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
      const table = symbolTableFor(basename(path), elf, 0n);
      if (table.empty) this.warnings.push(`"${path}" has no symbol table (stripped?)`);
      const start = this.maps[0]?.start;
      const end = this.maps.reduce<bigint | undefined>((m, s) => (m === undefined || s.end > m ? s.end : m), undefined);
      this.symbols.add({ name: basename(path), path, table, elf, bias: 0n, ...(start !== undefined && end !== undefined ? { start, end } : {}) });
    } else {
      this.name = `raw file "${path}"`;
      this.maps = [{ start: 0n, end: BigInt(source.size), perms: 'r--', name: path, fileOffset: 0n }];
    }
  }

  /** The file's bytes at their offsets. Throws DbgError('not-found'/'io') when it cannot be opened. */
  static raw(path: string): FileTarget {
    return new FileTarget(path, FileByteSource.open(path), X86_64, undefined);
  }

  /** An ELF file viewed at its link-time addresses, with its symbols. */
  static elf(path: string, elf: ElfFile = ElfFile.open(path)): FileTarget {
    const x86 = x86ArchOfElf(elf.header.machine, elf.is64);
    if (!x86) {
      // Bytes and symbols still make sense; only disassembly and registers are x86 specific.
      return new FileTarget(path, elf.source, { ...X86_64, name: `elf-machine-${elf.header.machine}`, pointerBytes: elf.is64 ? 8 : 4 }, elf);
    }
    return new FileTarget(path, elf.source, x86, elf);
  }

  readVirtual(addr: VirtAddr, length: number): Buffer {
    this.checkOpen();
    if (length === 0) return Buffer.alloc(0);
    const end = addr + BigInt(length);
    if (!this.elf) {
      if (addr < 0n || end > BigInt(this.source.size)) {
        const first = addr < 0n || addr >= BigInt(this.source.size) ? addr : BigInt(this.source.size);
        throw this.unmapped(addr, length, first, `beyond the end of the file (size ${hexAddr(BigInt(this.source.size), 0)})`);
      }
      return Buffer.from(this.source.read(Number(addr), length));
    }
    const out = Buffer.alloc(length);
    let at = addr;
    while (at < end) {
      const m = this.maps.find((s) => at >= s.start && at < s.end);
      if (!m) throw this.unmapped(addr, length, at, `not in any PT_LOAD segment of the file${this.nearest(at)}`);
      const n = Number((m.end < end ? m.end : end) - at);
      const bytes = this.elf.readLoaded(at, n);
      if (!bytes) throw this.unmapped(addr, length, at, 'not in any PT_LOAD segment of the file');
      bytes.copy(out, Number(at - addr));
      at += BigInt(n);
    }
    return out;
  }

  mappings(): readonly Mapping[] {
    return this.maps;
  }

  threads(): readonly ThreadInfo[] {
    return [];
  }

  registers(thread: number): Registers {
    throw new DbgError('unsupported', `registers are not supported by ${this.name}: a file has no threads (asked for thread ${thread})`);
  }

  status(): StopStatus {
    return { reason: { kind: 'none' }, thread: 0, pc: 0n };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.source.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new DbgError('state', `${this.name} is closed`);
  }

  private unmapped(addr: bigint, length: number, first: bigint, why: string): DbgError {
    return new DbgError('unmapped', `read of ${length} bytes at ${hexAddr(addr, 0)} failed: ${hexAddr(first, 0)} is ${why} in ${this.name}`);
  }

  private nearest(at: bigint): string {
    let best: Mapping | undefined;
    let dist = -1n;
    for (const m of this.maps) {
      const d = at < m.start ? m.start - at : at - m.end;
      if (dist < 0n || d < dist) {
        best = m;
        dist = d;
      }
    }
    return best ? ` (nearest ${hexAddr(best.start, 0)}-${hexAddr(best.end - 1n, 0)})` : '';
  }
}
