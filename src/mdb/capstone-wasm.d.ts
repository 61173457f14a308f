// capstone-wasm 1.0.3 ships types (dist/index.d.ts) but its package.json "exports" does not point
// NodeNext resolution at them; this declares the part dbg uses.
declare module 'capstone-wasm' {
  export interface Insn {
    id: number;
    address: number | bigint;
    size: number;
    bytes: Uint8Array;
    mnemonic: string;
    opStr: string;
  }
  export class Capstone {
    constructor(arch: number, mode: number);
    setOption(opt: number, value: number): number;
    close(): void;
    disasm(data: number[] | Uint8Array, options?: { address?: number | bigint; count?: number }): Insn[];
  }
  export const Const: {
    readonly CS_ARCH_X86: number;
    readonly CS_MODE_32: number;
    readonly CS_MODE_64: number;
    readonly CS_OPT_SYNTAX: number;
    readonly CS_OPT_SYNTAX_ATT: number;
  };
  export function loadCapstone(args?: Record<string, unknown>): Promise<void>;
}
