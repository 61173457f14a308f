import type { Arch, RegisterDef } from './arch.js';

const gp = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'];

const registers: RegisterDef[] = [
  ...gp.map((name) => ({ name, bits: 64, kind: 'general' as const })),
  { name: 'rip', bits: 64, kind: 'pc' },
  { name: 'eflags', bits: 32, kind: 'flags' },
  ...['cs', 'ss', 'ds', 'es', 'fs', 'gs'].map((name) => ({ name, bits: 32, kind: 'segment' as const })),
  { name: 'fs_base', bits: 64, kind: 'segment-base' },
  { name: 'gs_base', bits: 64, kind: 'segment-base' },
  { name: 'k_gs_base', bits: 64, kind: 'segment-base' },
  { name: 'cr0', bits: 64, kind: 'control' },
  { name: 'cr2', bits: 64, kind: 'control' },
  { name: 'cr3', bits: 64, kind: 'control' },
  { name: 'cr4', bits: 64, kind: 'control' },
  { name: 'cr8', bits: 64, kind: 'control' },
  { name: 'efer', bits: 64, kind: 'control' },
];

/**
 * x86-64 (AMD64). Segment registers are 32 bits wide because gdb's i386:x86-64 feature
 * description declares them so.
 */
export const X86_64: Arch = {
  name: 'x86-64',
  gdbArch: 'i386:x86-64',
  pointerBytes: 8,
  littleEndian: true,
  elfMachine: 62, // EM_X86_64
  registers,
  pc: 'rip',
  sp: 'rsp',
  fp: 'rbp',
  // System V AMD64 psABI, figure 3.36.
  dwarfRegisters: ['rax', 'rdx', 'rcx', 'rbx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip'],
  dwarfReturnColumn: 16,
  // struct user_regs_struct, arch/x86/include/asm/user_64.h
  prstatusRegisters: [
    'r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx', 'rsi', 'rdi',
    'orig_rax', 'rip', 'cs', 'eflags', 'rsp', 'ss', 'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs',
  ],
};
