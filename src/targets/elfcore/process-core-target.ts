import type { Registers } from '../../arch/arch.js';
import { X86_64 } from '../../arch/x86-64.js';
import { errors } from '../../common/errors.js';
import { ElfFile } from '../../symbols/elf-file.js';
import { SymbolSpace } from '../../symbols/symbol-space.js';
import type { Capabilities, Mapping, StopStatus, Target, ThreadInfo } from '../target.js';

export interface ProcessCoreOptions {
  /** The executable, when NT_FILE's path is wrong or absent. */
  readonly exe?: string;
  /** Prefix for every NT_FILE path, like gdb's `set sysroot`. */
  readonly sysroot?: string;
}

/** A Linux process core (gcore or kernel-written) as a read-only target. Work in progress. */
export class ProcessCoreTarget implements Target {
  readonly kind = 'process-core';
  readonly arch = X86_64;
  readonly caps: Capabilities = {};
  readonly symbols = new SymbolSpace();
  readonly warnings: string[] = [];
  readonly name: string;

  private constructor(
    readonly path: string,
    private readonly core: ElfFile,
    readonly options: ProcessCoreOptions,
  ) {
    this.name = `core "${path}"`;
  }

  static open(path: string, opts: ProcessCoreOptions = {}): ProcessCoreTarget {
    return new ProcessCoreTarget(path, ElfFile.open(path), opts);
  }

  readVirtual(addr: bigint, length: number): Buffer {
    throw errors.unsupported(this.name, `read of ${length} bytes at 0x${addr.toString(16)}`);
  }
  mappings(): readonly Mapping[] {
    return [];
  }
  threads(): readonly ThreadInfo[] {
    return [];
  }
  registers(thread: number): Registers {
    throw errors.badInput(`no thread ${thread} in ${this.name}`);
  }
  status(): StopStatus {
    return { reason: { kind: 'none' }, thread: 1, pc: 0n };
  }
  close(): void {
    this.core.close();
  }
}
