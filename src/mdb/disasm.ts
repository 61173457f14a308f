/**
 * Disassembly through capstone-wasm, in AT&T syntax as MDB and gdb print x86.
 *
 * capstone-wasm needs `await loadCapstone()` once; after that decoding is synchronous, so
 * formats (`/i`) stay synchronous once the session has called `Disassembler.load()`.
 * Inputs are kept far below the 16 KiB at which capstone-wasm's heap is known to break.
 */

// Types only at load time: the package itself (~4 ms to load) comes in with the first ::dis.
import type { Capstone } from 'capstone-wasm';
import { errors } from '../common/errors.js';
import type { Arch } from '../arch/arch.js';

export interface Instruction {
  readonly addr: bigint;
  readonly size: number;
  readonly bytes: Buffer;
  readonly mnemonic: string;
  /** Operands as capstone prints them in AT&T syntax. */
  readonly operands: string;
  /** The branch or call target, when the operand is a direct address. */
  readonly target?: bigint;
}

/** Largest input handed to capstone in one call. */
export const MAX_DISASM_BYTES = 4096;

let loading: Promise<typeof import('capstone-wasm')> | undefined;
let capstone: typeof import('capstone-wasm') | undefined;
const handles = new Map<string, Capstone>();

export class Disassembler {
  private constructor(
    private readonly cs: Capstone,
    /** The architecture it decodes (dbg's name: 'x86-64', 'i386'). */
    readonly arch: string,
  ) {}

  /** The disassembler for `arch`; DbgError('unsupported') for an ISA capstone-wasm lacks here. */
  static async load(arch: Arch): Promise<Disassembler> {
    loading ??= import('capstone-wasm').then(async (m) => {
      await m.loadCapstone();
      return m;
    });
    capstone = await loading;
    return Disassembler.loaded(arch);
  }

  /** The disassembler, when load() has already run; undefined otherwise. */
  static loaded(arch: Arch): Disassembler {
    let cs = handles.get(arch.name);
    if (!cs) {
      if (arch.name !== 'x86-64' && arch.name !== 'i386') throw errors.unsupported(`the ${arch.name} architecture`, 'disassembly');
      if (!capstone) throw new Error('Disassembler.loaded() before Disassembler.load()');
      const { Capstone, Const } = capstone;
      cs = new Capstone(Const.CS_ARCH_X86, arch.name === 'i386' ? Const.CS_MODE_32 : Const.CS_MODE_64);
      cs.setOption(Const.CS_OPT_SYNTAX, Const.CS_OPT_SYNTAX_ATT);
      handles.set(arch.name, cs);
    }
    return new Disassembler(cs, arch.name);
  }

  /** Decode up to `count` instructions from `bytes` at `addr`; stops at the first undecodable byte. */
  decode(bytes: Buffer, addr: bigint, count: number): Instruction[] {
    const input = bytes.subarray(0, MAX_DISASM_BYTES);
    let raw;
    try {
      raw = this.cs.disasm(input, { address: addr, count });
    } catch {
      return []; // capstone-wasm throws when nothing decodes
    }
    const out: Instruction[] = [];
    let off = 0;
    for (const r of raw) {
      const at = addr + BigInt(off);
      const isBranch = /^(j|call|loop)/.test(r.mnemonic);
      const m = /^\*?(0x[0-9a-f]+)$/.exec(r.opStr);
      out.push({
        addr: at,
        size: r.size,
        bytes: Buffer.from(input.subarray(off, off + r.size)),
        mnemonic: r.mnemonic,
        operands: r.opStr,
        target: isBranch && m && !r.opStr.startsWith('*') ? BigInt(m[1]!) : undefined,
      });
      off += r.size;
    }
    return out;
  }
}

/**
 * One instruction as MDB prints it: mnemonic padded to 6, operands without blanks after commas,
 * and for a direct branch or call, or a %rip-relative operand, the symbol it reaches:
 * `call   0x401126 <foo+0x4>`, `movq   0x2e4f(%rip),%rax <counter>`. Immediates and displacements
 * are hex, as gdb, objdump and MDB print them (capstone writes some in decimal), and an immediate
 * that lies inside a symbol is named after it: `movq   $0xffffffff80102011 <log_buf>,%rdi`.
 */
export function formatInstruction(
  insn: Instruction,
  describe: (addr: bigint) => string | undefined,
  /** Names an immediate, when given: only an address inside a sized symbol should get a name. */
  describeImmediate?: (addr: bigint) => string | undefined,
): string {
  const ops = hexOperands(insn.mnemonic, insn.operands.replace(/, /g, ','), describeImmediate);
  let s = ops ? `${insn.mnemonic.padEnd(6)} ${ops}` : insn.mnemonic;
  let target = insn.target;
  const rip = /(-?)0x([0-9a-f]+)\(%rip\)/.exec(insn.operands);
  if (target === undefined && rip) {
    // %rip-relative operands address from the end of the instruction.
    const disp = BigInt('0x' + rip[2]!) * (rip[1] ? -1n : 1n);
    target = BigInt.asUintN(64, insn.addr + BigInt(insn.size) + disp);
  }
  if (target !== undefined) {
    const sym = describe(target);
    if (sym) s += ` <${sym}>`;
  }
  return s;
}

/**
 * A number in an AT&T operand list: an immediate (`$`) or a displacement, at the start of an
 * operand or after a segment prefix, and not a scale factor or a %st(i) index (those end in ")").
 */
const NUMBER = /(^|[,:(*])(\$?)(-?)(0x[0-9a-f]+|\d+)(?=([(,]|$))/g;

/** Immediates of at least this value are looked up as addresses; smaller ones are counts and flags. */
const SMALLEST_ADDRESS = 0x1000n;

function hexOperands(mnemonic: string, ops: string, describe: ((addr: bigint) => string | undefined) | undefined): string {
  // A negative immediate is printed at the operand size (movq $-1 is $0xffffffffffffffff), as objdump does.
  const bits = ({ b: 8, w: 16, l: 32 } as Record<string, number>)[mnemonic.at(-1) ?? ''] ?? 64;
  // An operand with an index and no displacement: (,%rdx,8) is 0x0(,%rdx,8) in gdb and objdump.
  ops = ops.replace(/(^|,)\(,/g, '$10x0(,');
  return ops.replace(NUMBER, (_all, lead: string, dollar: string, minus: string, digits: string, next: string) => {
    let value = BigInt(digits);
    if (next === '(') {
      // A displacement is a signed 32-bit field; capstone prints -0x80000000 as -18446744071562067968.
      const disp = BigInt.asIntN(32, BigInt.asUintN(64, minus ? -value : value));
      [minus, value] = disp < 0n ? ['-', -disp] : ['', disp];
    }
    if (dollar && minus) [minus, value] = ['', BigInt.asUintN(bits, -value)];
    let text = `${lead}${dollar}${minus}0x${value.toString(16)}`;
    if (describe && dollar && value >= SMALLEST_ADDRESS) {
      const sym = describe(value);
      if (sym) text += ` <${sym}>`;
    }
    return text;
  });
}
