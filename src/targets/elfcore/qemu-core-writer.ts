/**
 * `::dump FILE`: a live x86-64 guest as an ELF core in QEMU's dump-guest-memory layout (the
 * physical flavour, as `dump-guest-memory FILE` writes it), which the kernel-dump target opens.
 * Any target with threads (vCPUs), registers and physical memory can be written: the emulator, and
 * QEMU's own stub under `dbg attach` (registers through g, RAM through physical-mode reads).
 *
 *   ELF64 header, ET_CORE, EM_X86_64
 *   program headers: PT_NOTE, then one PT_LOAD per physical range (p_paddr = p_vaddr, filesz = memsz)
 *   notes, QEMU's order: every vCPU's NT_PRSTATUS ("CORE", type 1, 336 bytes, pr_pid = cpu + 1,
 *     pr_reg = user_regs_struct at +112), then every vCPU's QEMUCPUState ("QEMU", type 0, 440 bytes):
 *       +0 u32 version = 1   +4 u32 size = 440   +8 rax rbx rcx rdx rsi rdi rsp rbp r8..r15 rip rflags
 *       +152 segments cs ds es fs gs ss ldt tr gdt idt, each { u32 selector, limit, flags, pad; u64 base }
 *       +392 cr0 cr1 cr2 cr3 cr4   +432 kernel_gs_base
 *   the bytes of each range (page-aligned)
 *
 * The bytes are laid out by the kernel-dump writer, which tests and benches use too.
 */

import { DbgError } from '../../common/errors.js';
import { need, type Target } from '../target.js';
import { writeVmcore, type QemuSegmentSpec, type VmcoreCpuSpec } from './kernel-vmcore-writer.js';

export type SegmentCaches = Partial<Record<'cs' | 'ds' | 'es' | 'fs' | 'gs' | 'ss' | 'ldt' | 'tr' | 'gdt' | 'idt', QemuSegmentSpec>>;

/**
 * Write `t` to `file`. `segments`: the hidden parts of a vCPU's segment registers (base, limit,
 * flags), where the target knows them; otherwise selectors from the registers, fs and gs bases from
 * fs_base and gs_base, and flat 64-bit descriptors.
 */
export function writeQemuCore(t: Target, file: string, segments?: (thread: number) => SegmentCaches): void {
  const phys = need(t, 'physical');
  const cpus: VmcoreCpuSpec[] = t.threads().map((th) => {
    const r = t.registers(th.index);
    const g = (n: string): bigint => r.get(n) ?? 0n;
    const regs: Record<string, bigint> = { orig_rax: BigInt.asUintN(64, -1n) };
    for (const [name, value] of r) regs[name] = BigInt.asUintN(64, value);
    const segs: SegmentCaches = segments?.(th.index) ?? { fs: { base: g('fs_base') }, gs: { base: g('gs_base') } };
    return { regs, pid: th.index, qemu: { cr: [g('cr0'), 0n, g('cr2'), g('cr3'), g('cr4')], segments: segs, kernelGsBase: g('k_gs_base') } };
  });
  const segmentsOut = phys.physicalRanges().map((rg) => ({
    paddr: rg.start,
    size: Number(rg.end - rg.start),
    fill: (offset: number, length: number) => phys.readPhysical(rg.start + BigInt(offset), length),
  }));
  try {
    writeVmcore(file, { cpus, segments: segmentsOut });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (!err.code) throw e;
    throw new DbgError('io', `cannot write core "${file}": ${err.code}`);
  }
}
