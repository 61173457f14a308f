import { X86_64 } from '../../arch/x86-64.js';
import type { Registers } from '../../arch/arch.js';
import { errors } from '../../common/errors.js';
import { ElfFile, ET_CORE } from '../../symbols/elf-file.js';
import { SymbolSpace } from '../../symbols/symbol-space.js';
import type { Capabilities, Mapping, StopStatus, Target, ThreadInfo, VirtAddr } from '../target.js';

/** True when `elf` is a kernel crash dump (kdump ELF vmcore or QEMU dump-guest-memory). */
export function isKernelDump(elf: ElfFile): boolean {
  if (elf.header.type !== ET_CORE) return false;
  return elf.notes().some((n) => n.name === 'VMCOREINFO' || n.name === 'QEMU');
}

/** A kernel crash dump opened as a target (skeleton: filled in by the following commits). */
export class KernelDumpTarget implements Target {
  readonly kind = 'kernel-dump';
  readonly arch = X86_64;
  readonly caps: Capabilities = {};
  readonly symbols = new SymbolSpace();

  private constructor(
    readonly name: string,
    private readonly elf: ElfFile,
  ) {}

  static open(path: string, _opts?: { symbols?: string[] }): KernelDumpTarget {
    return new KernelDumpTarget(`kernel dump "${path}"`, ElfFile.open(path));
  }

  readVirtual(addr: VirtAddr, length: number, _thread?: number): Buffer {
    throw errors.unsupported(this.name, `read of ${length} bytes at 0x${addr.toString(16)}`);
  }
  mappings(): readonly Mapping[] {
    return [];
  }
  threads(): readonly ThreadInfo[] {
    return [];
  }
  registers(thread: number): Registers {
    throw errors.badInput(`no thread ${thread}`);
  }
  status(): StopStatus {
    return { reason: { kind: 'none' }, thread: 1, pc: 0n };
  }
  close(): void {
    this.elf.close();
  }
}
