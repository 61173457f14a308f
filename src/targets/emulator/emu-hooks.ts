/**
 * The native hook addon (native/emu, built by scripts/setup.d/20-native.mjs): instruction counting,
 * breakpoints and watchpoints in C on one Unicorn engine. See native/emu/emu.c for the counting rule.
 */

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DbgError } from '../../common/errors.js';

export const enum HookStop {
  None = 0,
  Limit = 1,
  Breakpoint = 2,
  Watch = 3,
  Interrupt = 4,
  BadMemory = 5,
  BadInsn = 6,
  Request = 7,
  /** The vCPU came back to a state it was in (emu.c, "Spin detection"): it stopped before that instruction. */
  Spin = 9,
}

/** Access bits of a watchpoint (0 = a breakpoint). */
export const WATCH_READ = 1;
export const WATCH_WRITE = 2;
export const WATCH_EXEC = 4;

/**
 * The spin detector's state, as emuHooks().spin moves it:
 *   [on, base, prevEnd, prevPc, pc, snapAt, until, regs x 16]
 * `base`: the quantum's instructions before the slice; positions (`snapAt`, `until`) count in the
 * quantum. SPIN_NONE in `prevPc`: the next instruction is no branch target; in `pc`: no snapshot.
 */
export const SPIN_WORDS = 23;
export const SPIN_NONE = 0xffff_ffff_ffff_ffffn;
/** A snapshot as spinLog gives it: [seq, pc, snapAt, regs x 16]; at most SPIN_LOG a slice. */
export const SPIN_LOG_WORDS = 19;
export const SPIN_LOG = 8;

export type HookCtx = { readonly __hookCtx: unique symbol };

export interface HookResult {
  kind: HookStop;
  id: number;
  access: number;
  size: number;
  intno: number;
  pc: bigint;
  addr: bigint;
  counterAtStop: bigint;
  value: bigint;
  counter: bigint;
  lastPc: bigint;
  /** The engine's RIP, RFLAGS and CR2 after the run. */
  rip: bigint;
  rflags: bigint;
  cr2: bigint;
}

interface Addon {
  /** Guest RAM of `bytes` (a multiple of 4 KiB), zero-filled, asked to be backed by huge pages (emu.c, allocRam). */
  allocRam(bytes: number): Buffer;
  /** `counting` false: no counting hook (only to measure Unicorn's own speed); `fast`: a fast engine (emu.c). */
  create(engine: bigint, ram: Buffer, counting?: boolean, fast?: boolean): HookCtx;
  destroy(ctx: HookCtx): void;
  arm(ctx: HookCtx, limit: bigint, skipPc: bigint): void;
  requestStop(ctx: HookCtx): void;
  counter(ctx: HookCtx): bigint;
  /** How the last run stopped and where the engine is (emu.c, js_result), into `out` (14 entries). */
  result(ctx: HookCtx, out: BigUint64Array): void;
  /** The engine's RIP, RFLAGS and CR2 into `out` (3 entries), in one call. */
  state(ctx: HookCtx, out: BigUint64Array): void;
  /**
   * The spin detector (emu.c, "Spin detection") into the engine before a slice (`write`), or back
   * into `state` (SPIN_WORDS entries) after it, then the number of snapshots the slice took
   * (spinLog); a fast engine's is its exact engine's.
   */
  spin(ctx: HookCtx, state: BigUint64Array, write: boolean): number;
  /**
   * The snapshots the last slice took into `out` from word `at` (room for SPIN_LOG of them), each
   * [seq, pc, snapAt, regs x 16] (SPIN_LOG_WORDS): `seq` is the slice's quantum start `seq` plus
   * the snapshot's position in the quantum; their number.
   */
  spinLog(ctx: HookCtx, out: BigUint64Array, at: number, seq: bigint): number;
  /** The end (pc + length) of the instruction at virtual `pc`, as the vCPU decodes it now; `pc` when unreadable. */
  insnEnd(ctx: HookCtx, pc: bigint): bigint;
  add(ctx: HookCtx, id: number, begin: bigint, end: bigint, bits: number): void;
  remove(ctx: HookCtx, id: number): boolean;
  /** One slice as arm() + uc_emu_start on `exact` would run it, with `fast` running where nothing can stop. Returns the uc_err. */
  runFast(fast: HookCtx, exact: HookCtx, limit: bigint, skipPc: bigint): number;
  /** Drop translated code of [begin, end) (after a debugger write into code). */
  invalidate(ctx: HookCtx, begin: bigint, end: bigint): void;
  /** Device registers at [begin, begin + size), not open bus: a fast engine hands every access to the exact one. */
  guard(ctx: HookCtx, begin: bigint, size: bigint): void;
  /** A recorder's block sink (native/common/block-sink.h) hears of every block this fast engine runs; null disconnects. */
  recordTo(fast: HookCtx, sink: bigint | null): void;
  /** A guarded register at `addr` reads as `value` until the next call: a fast engine answers it without a hand-over. */
  guardValue(ctx: HookCtx, addr: bigint, size: bigint, value: bigint): void;
  /** An interrupt waits for RFLAGS.IF: the next slice ends where the guest opens interrupts (`on` false: no longer). */
  waitInterrupt(ctx: HookCtx, on: boolean): void;
  /** Drop the engine's TLB entries (after CR0/CR3/CR4/EFER or a whole CPU state were written from outside). */
  flushTlb(ctx: HookCtx): void;
  /** null when the engine's TLB entries lead to guest-physical addresses (emu.c, "Physical addresses"), else why not. */
  physical(ctx: HookCtx): string | null;
  /** The whole pages of a RAM buffer no one uses any more back to the kernel (they read as zeros after). */
  releaseRam(ram: Buffer): void;
}

let addon: Addon | undefined;

export function emuHooks(): Addon {
  if (addon) return addon;
  const here = dirname(fileURLToPath(import.meta.url));
  // src/targets/emulator (ts via vitest) or dist/src/targets/emulator (compiled)
  const roots = [join(here, '..', '..', '..'), join(here, '..', '..', '..', '..')];
  const file = roots.map((r) => join(r, 'native', 'emu', 'build', 'Release', 'dbg_emu.node')).find((f) => existsSync(f));
  if (!file) throw new DbgError('unsupported', 'the emulator hook addon native/emu is not built: run `node scripts/setup.mjs`');
  addon = createRequire(import.meta.url)(file) as Addon;
  return addon;
}

const resultBuf = new BigUint64Array(14);

export function hookResult(ctx: HookCtx): HookResult {
  const r = resultBuf;
  emuHooks().result(ctx, r);
  return {
    kind: Number(r[0]),
    id: Number(BigInt.asIntN(32, r[1]!)),
    access: Number(r[2]),
    size: Number(r[3]),
    intno: Number(r[4]),
    pc: r[5]!,
    addr: r[6]!,
    counterAtStop: r[7]!,
    value: r[8]!,
    counter: r[9]!,
    lastPc: r[10]!,
    rip: r[11]!,
    rflags: r[12]!,
    cr2: r[13]!,
  };
}
