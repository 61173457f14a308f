/**
 * What dbg knows about an instruction-set architecture, in one object per ISA.
 *
 * Targets, the unwinder, the command language and the GDB server all take register names, widths
 * and numbering from here, so adding an ISA is adding one file beside x86-64.ts.
 */

export type RegisterKind =
  | 'general'
  | 'pc'
  | 'flags'
  | 'segment'
  | 'segment-base'
  | 'control'
  | 'float'
  | 'vector';

export interface RegisterDef {
  readonly name: string;
  readonly bits: number;
  readonly kind: RegisterKind;
}

/** Register values by name. A target returns every register it knows; absent means unknown. */
export type Registers = Map<string, bigint>;

export interface Arch {
  /** dbg's name: 'x86-64'. */
  readonly name: string;
  /** gdb's `set architecture` name, used in target.xml: 'i386:x86-64'. */
  readonly gdbArch: string;
  readonly pointerBytes: number;
  readonly littleEndian: boolean;
  /** ELF e_machine. */
  readonly elfMachine: number;
  /** Every register dbg tracks, in display order (`::regs`). */
  readonly registers: readonly RegisterDef[];
  readonly pc: string;
  readonly sp: string;
  readonly fp: string;
  /** DWARF register number -> name, for CFI unwinding. Index = DWARF number. */
  readonly dwarfRegisters: readonly string[];
  /** DWARF column that holds the return address in CFI. */
  readonly dwarfReturnColumn: number;
  /**
   * The general registers as NT_PRSTATUS's pr_reg stores them (Linux's user_regs_struct),
   * each one pointer-sized, in order.
   */
  readonly prstatusRegisters: readonly string[];
  /**
   * Names a target of this architecture may report besides its own registers, left out of
   * `::regs`: the other x86 width's view of the same registers (an x86-64 CPU running 32-bit code
   * still has rax..r15; a GDB client told i386 keeps asking for eax after the switch to long mode).
   */
  readonly aliases?: readonly string[];
}
