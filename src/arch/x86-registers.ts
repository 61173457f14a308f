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

/**
 * The x87, SSE and (x86-64) AVX registers, as gdb names them: st0..st7 (80-bit), the x87 control
 * registers, xmm0..xmm(N-1), mxcsr, and ymm0h.. (the AVX upper halves).
 */
export function x86FpRegisters(xmm: 8 | 16, avx: boolean): RegisterDef[] {
  return [
    ...[0, 1, 2, 3, 4, 5, 6, 7].map((i) => ({ name: `st${i}`, bits: 80, kind: 'float' as const })),
    ...['fctrl', 'fstat', 'ftag', 'fiseg', 'fioff', 'foseg', 'fooff', 'fop'].map((name) => ({ name, bits: 32, kind: 'float' as const })),
    ...Array.from({ length: xmm }, (_, i) => ({ name: `xmm${i}`, bits: 128, kind: 'vector' as const })),
    { name: 'mxcsr', bits: 32, kind: 'vector' },
    ...(avx ? Array.from({ length: xmm }, (_, i) => ({ name: `ymm${i}h`, bits: 128, kind: 'vector' as const })) : []),
  ];
}
