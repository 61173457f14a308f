import type { Arch } from './arch.js';
import { x86Registers } from './x86-registers.js';

const gp = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'];

const registers = x86Registers(64, gp, 'rip', ['fs_base', 'gs_base', 'k_gs_base'], ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer']);

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
  aliases: ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi', 'eip'],
  // struct user_regs_struct, arch/x86/include/asm/user_64.h
  prstatusRegisters: [
    'r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx', 'rsi', 'rdi',
    'orig_rax', 'rip', 'cs', 'eflags', 'rsp', 'ss', 'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs',
  ],
};
