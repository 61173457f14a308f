/**
 * Which of dbg's two x86 architectures a CPU state or an ELF file is.
 *
 * An x86 CPU runs 64-bit code only in long mode (EFER.LMA) with a 64-bit code segment (CS.L):
 * that is x86-64. Real mode, protected mode, and compatibility mode under a 64-bit kernel run
 * 16- or 32-bit code with 32-bit registers: i386, as QEMU's gdbstub reads them (it reports the
 * low 32 bits of each register unless CS is 64-bit).
 */

import type { Arch } from './arch.js';
import { I386 } from './i386.js';
import { X86_64 } from './x86-64.js';

const EFER_LMA = 0x400n;

/** The architecture of a CPU in this state: `cs64` is the code segment's L bit. */
export function x86ArchOfMode(efer: bigint, cs64: boolean): Arch {
  return (efer & EFER_LMA) !== 0n && cs64 ? X86_64 : I386;
}

/** The x86 architecture of an ELF file, or undefined for another machine. */
export function x86ArchOfElf(machine: number, is64: boolean): Arch | undefined {
  if (machine === X86_64.elfMachine && is64) return X86_64;
  if (machine === I386.elfMachine && !is64) return I386;
  return undefined;
}
