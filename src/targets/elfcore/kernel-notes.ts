/**
 * The notes of a kernel crash dump: per-CPU NT_PRSTATUS, QEMU's per-CPU state, VMCOREINFO.
 *
 * QEMU `dump-guest-memory` writes all NT_PRSTATUS notes ("CORE", type 1) first, then one "QEMU"
 * note (type 0) per CPU in the same order; kdump (/proc/vmcore, makedumpfile) writes one
 * NT_PRSTATUS per CPU and a "VMCOREINFO" note (type 0) of KEY=VALUE lines.
 */

import type { Registers } from '../../arch/arch.js';
import { errors } from '../../common/errors.js';

export interface QemuSegment {
  readonly selector: number;
  readonly limit: number;
  readonly flags: number;
  readonly base: bigint;
}

export interface QemuCpuState {
  readonly version: number;
  readonly regs: Registers;
  readonly segments: Record<(typeof SEGMENTS)[number], QemuSegment>;
  /** cr0, cr1, cr2, cr3, cr4. */
  readonly cr: readonly bigint[];
  readonly kernelGsBase?: bigint;
}

const QEMU_GP = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'eflags'];
const SEGMENTS = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'ldt', 'tr', 'gdt', 'idt'] as const;

/**
 * QEMU's QEMUCPUState (target/i386/arch_dump.c), version 1:
 *
 *   off  size  field
 *     0     4  version
 *     4     4  size (432 before kernel_gs_base was added, 440 after)
 *     8   144  rax rbx rcx rdx rsi rdi rsp rbp r8..r15 rip rflags (u64 each)
 *   152   240  10 x QEMUCPUSegment {u32 selector, limit, flags, pad; u64 base}:
 *              cs ds es fs gs ss ldt tr gdt idt
 *   392    40  cr[0..4]
 *   432     8  kernel_gs_base (size >= 440)
 */
export function parseQemuCpuState(desc: Buffer, file: string, noteOffset: number): QemuCpuState {
  if (desc.length < 432) {
    throw errors.corrupt(file, `QEMU CPU-state note at offset 0x${noteOffset.toString(16)} has ${desc.length} bytes; QEMUCPUState needs at least 432`);
  }
  const version = desc.readUInt32LE(0);
  if (version !== 1) {
    throw errors.corrupt(file, `QEMU CPU-state note at offset 0x${noteOffset.toString(16)} has version ${version}; dbg reads version 1`);
  }
  const regs: Registers = new Map();
  QEMU_GP.forEach((n, i) => regs.set(n, desc.readBigUInt64LE(8 + i * 8)));
  const segments = {} as Record<(typeof SEGMENTS)[number], QemuSegment>;
  SEGMENTS.forEach((n, i) => {
    const o = 152 + i * 24;
    segments[n] = { selector: desc.readUInt32LE(o), limit: desc.readUInt32LE(o + 4), flags: desc.readUInt32LE(o + 8), base: desc.readBigUInt64LE(o + 16) };
  });
  const cr = [0, 1, 2, 3, 4].map((i) => desc.readBigUInt64LE(392 + i * 8));
  const size = desc.readUInt32LE(4);
  const kernelGsBase = size >= 440 && desc.length >= 440 ? desc.readBigUInt64LE(432) : undefined;
  return { version, regs, segments, cr, kernelGsBase };
}

/**
 * VMCOREINFO: lines `KEY=VALUE`. SYMBOL(x) and KERNELOFFSET are hex without 0x; NUMBER(x),
 * OFFSET(x), SIZE(x), LENGTH(x), PAGESIZE are decimal (NUMBER may be negative).
 */
export class Vmcoreinfo {
  readonly entries = new Map<string, string>();

  constructor(
    readonly text: string,
    private readonly file: string,
  ) {
    for (const line of text.split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) this.entries.set(line.slice(0, eq), line.slice(eq + 1).trim());
    }
  }

  get(key: string): string | undefined {
    return this.entries.get(key);
  }

  private parse(key: string, radix: 10 | 16): bigint | undefined {
    const v = this.entries.get(key);
    if (v === undefined) return undefined;
    const ok = radix === 16 ? /^(0x)?[0-9a-f]+$/i.test(v) : /^-?\d+$/.test(v);
    if (!ok) throw errors.corrupt(this.file, `VMCOREINFO ${key}=${v} is not a ${radix === 16 ? 'hex' : 'decimal'} number`);
    return radix === 16 ? BigInt(v.startsWith('0x') || v.startsWith('0X') ? v : '0x' + v) : BigInt(v);
  }

  symbol(name: string): bigint | undefined {
    return this.parse(`SYMBOL(${name})`, 16);
  }
  number(name: string): bigint | undefined {
    return this.parse(`NUMBER(${name})`, 10);
  }
  get osrelease(): string | undefined {
    return this.get('OSRELEASE');
  }
  get pageSize(): number | undefined {
    const v = this.parse('PAGESIZE', 10);
    return v === undefined ? undefined : Number(v);
  }
  get kernelOffset(): bigint | undefined {
    return this.parse('KERNELOFFSET', 16);
  }
  get physBase(): bigint | undefined {
    const v = this.number('phys_base');
    return v === undefined ? undefined : BigInt.asUintN(64, v);
  }
  get buildId(): string | undefined {
    return this.get('BUILD-ID')?.toLowerCase();
  }
}
