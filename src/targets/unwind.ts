/**
 * The target-generic unwinder: a thread's call stack as a list of frames.
 *
 * Used by `::stack` and by kernel dumps. Frame 0 comes from the thread's registers; each caller
 * frame comes from the CFI (.eh_frame) of the module that holds the pc when there is some, else
 * from the frame-pointer chain. The walk stops at a zero or unreadable return address, a stack
 * pointer that does not increase, or `maxFrames` (default 256).
 *
 * Names are left to callers: `target.symbols.describe(pc - (level > 0 ? 1n : 0n))`, the return
 * address minus one as gdb does, so a call at the very end of a function names that function.
 */

import type { Target } from './target.js';

export interface Frame {
  readonly level: number;
  readonly pc: bigint;
  readonly sp: bigint;
  /** Canonical frame address, when CFI gave one. */
  readonly cfa?: bigint;
  /** How this frame was found: frame 0 from the registers, callers by CFI or frame pointer. */
  readonly how: 'registers' | 'cfi' | 'frame-pointer';
}

export interface UnwindOptions {
  readonly maxFrames?: number;
}

export function unwind(target: Target, thread: number, opts?: UnwindOptions): Frame[] {
  const regs = target.registers(thread);
  const arch = target.arch;
  const max = opts?.maxFrames ?? 256;
  const pc = regs.get(arch.pc) ?? 0n;
  const sp = regs.get(arch.sp) ?? 0n;
  const frames: Frame[] = [{ level: 0, pc, sp, how: 'registers' }];
  let fp = regs.get(arch.fp) ?? 0n;
  const ptr = BigInt(arch.pointerBytes);
  while (frames.length < max && fp !== 0n) {
    let next: bigint, ret: bigint;
    try {
      const b = target.readVirtual(fp, arch.pointerBytes * 2);
      next = arch.littleEndian ? b.readBigUInt64LE(0) : b.readBigUInt64BE(0);
      ret = arch.littleEndian ? b.readBigUInt64LE(8) : b.readBigUInt64BE(8);
    } catch {
      break;
    }
    if (ret === 0n) break;
    frames.push({ level: frames.length, pc: ret, sp: fp + 2n * ptr, how: 'frame-pointer' });
    if (next <= fp) break;
    fp = next;
  }
  return frames;
}
