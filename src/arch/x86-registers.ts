import type { RegisterDef } from './arch.js';

/**
 * The registers `::regs` lists for an x86 architecture, in gdb's order: the general registers,
 * the pc, eflags, the segment selectors (32 bits wide, as gdb's feature files declare them), the
 * segment bases, then the control registers; `bits` is the width of all but eflags and selectors.
 */
export function x86Registers(bits: 32 | 64, gp: readonly string[], pc: string, bases: readonly string[], control: readonly string[]): RegisterDef[] {
  return [
    ...gp.map((name) => ({ name, bits, kind: 'general' as const })),
    { name: pc, bits, kind: 'pc' },
    { name: 'eflags', bits: 32, kind: 'flags' },
    ...['cs', 'ss', 'ds', 'es', 'fs', 'gs'].map((name) => ({ name, bits: 32, kind: 'segment' as const })),
    ...bases.map((name) => ({ name, bits, kind: 'segment-base' as const })),
    ...control.map((name) => ({ name, bits, kind: 'control' as const })),
  ];
}
