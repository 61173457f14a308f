import type { Arch } from './arch.js';
import { x86Registers } from './x86-registers.js';

const gp = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'];

const registers = x86Registers(32, gp, 'eip', ['fs_base', 'gs_base'], ['cr0', 'cr2', 'cr3', 'cr4', 'efer']);

/**
 * IA-32 (i386): a 32-bit guest, or an x86-64 CPU outside 64-bit mode. Registers are listed in
 * gdb's order (gdb/features/i386/32bit-core.xml), which is also the `pushal` order reversed.
 */
export const I386: Arch = {
  name: 'i386',
  gdbArch: 'i386',
  pointerBytes: 4,
  littleEndian: true,
  elfMachine: 3, // EM_386
  registers,
  pc: 'eip',
  sp: 'esp',
  fp: 'ebp',
  // System V i386 psABI, table 2.14: eax ecx edx ebx esp ebp esi edi, return address in column 8.
  dwarfRegisters: ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi', 'eip'],
  dwarfReturnColumn: 8,
  // struct user_regs_struct, arch/x86/include/asm/user_32.h
  aliases: [
    ...['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip'],
    ...['k_gs_base', 'cr8'],
  ],
  prstatusRegisters: ['ebx', 'ecx', 'edx', 'esi', 'edi', 'ebp', 'eax', 'ds', 'es', 'fs', 'gs', 'orig_eax', 'eip', 'cs', 'eflags', 'esp', 'ss'],
};
