/**
 * `::dump FILE`: the emulated machine as an ELF core in QEMU's dump-guest-memory layout (the
 * physical flavour, as `dump-guest-memory FILE` writes it), which the kernel-dump target opens.
 *
 *   ELF64 header, ET_CORE, EM_X86_64
 *   program headers: PT_NOTE, then one PT_LOAD for RAM (p_paddr = p_vaddr = 0, filesz = memsz)
 *   notes, QEMU's order: every vCPU's NT_PRSTATUS ("CORE", type 1, 336 bytes, pr_pid = cpu + 1,
 *     pr_reg = user_regs_struct at +112), then every vCPU's QEMUCPUState ("QEMU", type 0, 440 bytes):
 *       +0 u32 version = 1   +4 u32 size = 440   +8 rax rbx rcx rdx rsi rdi rsp rbp r8..r15 rip rflags
 *       +152 segments cs ds es fs gs ss ldt tr gdt idt, each { u32 selector, limit, flags, pad; u64 base }
 *       +392 cr0 cr1 cr2 cr3 cr4   +432 kernel_gs_base
 *   RAM bytes (page-aligned)
 *
 * The bytes are laid out by the kernel-dump writer, which tests and benches use too.
 */

import { DbgError } from '../../common/errors.js';
import { writeVmcore, type VmcoreCpuSpec } from '../elfcore/kernel-vmcore-writer.js';
import type { EmulatorTarget } from './emulator-target.js';
import { readSegmentCaches } from './x86-64-cpu.js';

export function writeQemuCore(t: EmulatorTarget, file: string): void {
  const m = t.machine;
  const cpus: VmcoreCpuSpec[] = m.vcpus.map((v) => {
    const r = m.registers(v.index);
    const g = (n: string): bigint => r.get(n) ?? 0n;
    const regs: Record<string, bigint> = { orig_rax: BigInt.asUintN(64, -1n) };
    for (const [name, value] of r) regs[name] = BigInt.asUintN(64, value);
    return {
      regs,
      pid: v.index + 1,
      qemu: { cr: [g('cr0'), 0n, g('cr2'), g('cr3'), g('cr4')], segments: readSegmentCaches(v.engine), kernelGsBase: g('k_gs_base') },
    };
  });
  try {
    writeVmcore(file, { cpus, segments: [{ paddr: 0n, size: m.ram.length, chunks: [{ offset: 0, bytes: m.ram }] }] });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (!err.code) throw e;
    throw new DbgError('io', `cannot write core "${file}": ${err.code}`);
  }
}
