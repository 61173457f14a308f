/**
 * native/ptrace's addon as TypeScript sees it (the C side: native/ptrace/ptrace.c). One process at
 * a time per dbg. Every function but the memory, breakpoint, policy and interrupt ones runs on the
 * addon's tracer thread; resume() is the only one that returns before the tracer is done.
 */

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { checkoutRoot } from '../../common/checkout-root.js';
import { DbgError } from '../../common/errors.js';

/** What the tracer reports when a resume ends (see the kinds in ptrace.c's header). */
export interface NativeStop {
  readonly kind: string;
  readonly tid: number;
  readonly sig: number;
  readonly code: number;
  readonly addr: bigint;
  readonly msg: number;
  readonly slot: number;
  readonly nr: number;
  readonly args: readonly bigint[];
  readonly rval: number;
  readonly err: string;
  /** The stopping thread's user_regs_struct, when it is still there. */
  readonly regs?: Buffer;
  /** The stop reply the tracer sent itself (resume's `ahead`), and how many of its bytes went. */
  readonly ahead?: { readonly bytes: Buffer; readonly written: number };
  /**
   * Requests resume() answered itself after stops it sent ahead (serveAhead), this many; then
   * `run` is the resume that ended here (one of them may have asked for it), and `parked` each
   * served point's flag as it is now (a view of the caller's buffer).
   */
  readonly served: number;
  readonly run: { readonly mode: number; readonly tid: number };
  readonly parked: Uint8Array;
}

export interface NativeEvent {
  readonly kind: string;
  readonly tid: number;
  readonly arg: number;
}

/** Register-set operations of regs(): GETREGS, SETREGS, GETREGSET/SETREGSET NT_X86_XSTATE. */
export const REGS_GET = 0;
export const REGS_SET = 1;
export const XSTATE_GET = 2;
export const XSTATE_SET = 3;

export interface PtraceAddon {
  /** Starts `path` stopped at its first instruction (after execve); returns its pid. Throws Error with errno. */
  spawn(path: string, argv: readonly string[], cwd: string | null, noRandomize: boolean): number;
  /** Attaches to every thread of `pid`, all stopped; throws Error with errno. */
  attach(pid: number): number;
  detach(): void;
  kill(): void;
  threads(): number[];
  regs(op: number, tid: number, buf: Buffer): number;
  setDebugRegs(slot: number, addr: bigint, dr7: bigint): void;
  readMemory(addr: bigint, into: Buffer): number;
  writeMemory(addr: bigint, data: Buffer): number;
  insertBreakpoint(addr: bigint): boolean;
  removeBreakpoint(addr: bigint): void;
  interrupt(): void;
  signalPolicy(sig: number, stop: number, pass: number): void;
  catchSyscall(nr: number, mask: number): void;
  catchEvents(threads: number, fork: number, vfork: number): void;
  drainEvents(): NativeEvent[];
  /**
   * mode 0: every thread runs; 1: `tid` alone; 2: `tid` steps one instruction. The stop is written
   * into `out` (STOP_BYTES, see decodeStop): true when it is there already (the resume ended
   * within a few milliseconds), else a promise that settles once it is.
   */
  resume(mode: number, tid: number, signal: number, out: Buffer, ahead?: boolean): true | Promise<void>;
  /**
   * The parts of the stop replies the tracer may send itself to descriptor `fd` when a resume asks
   * (`ahead`), the end of a step and a hit of a breakpoint at one of `plain`: their text up to the
   * thread id, and after it `registers` as pairs of (number on the wire, offset in
   * user_regs_struct). `breakpoint` '' sends no hit ahead; fd -1 nothing. See ptrace.c's send_ahead.
   */
  replyAhead(fd: number, step: string, breakpoint: string, registers: Int32Array, plain: BigUint64Array): void;
  /**
   * Whether a resume with `ahead` may go on to answer the client's next requests itself, after a
   * stop whose reply it sent (m, Z0/z0 of the points given, vCont;s of the stopped thread,
   * vCont;c, qXfer:threads: ptrace.c's serve_requests), the client's software breakpoints as
   * (address, kind), none parked, and qXfer:threads' document with a NUL for each thread's name and
   * the threads named ('': not answered). Only when the client is in no-ack mode and the server
   * has read all it sent.
   */
  serveAhead(on: boolean, points: BigUint64Array, kinds: Int32Array, threads: string, tids: Int32Array): void;
  pid(): number;
  /** A software write watchpoint in `slot` (0-15) on `length` bytes (0 frees the slot; at most 4096). */
  softWatch(slot: number, addr: bigint, length: number): void;
}

/** The bytes of a stop as resume() writes them (ptrace.c's SO_ offsets). */
export const SO_SENT = 216 + 27 * 8;
export const SO_REPLY = SO_SENT + 8;
const SO_RUN = SO_REPLY + 256;
const SO_SERVED = SO_RUN + 8;
const SO_PARKED = SO_SERVED + 4;
export const STOP_BYTES = SO_PARKED + 256;

/** The stop in `out` as resume() wrote it; `regs` is a view of `out`, valid until the next resume. */
export function decodeStop(out: Buffer): NativeStop {
  const nul = out.indexOf(0);
  const kind = out.toString('latin1', 0, nul >= 0 && nul < 24 ? nul : 24);
  const syscall = kind.startsWith('syscall');
  const errEnd = out.indexOf(0, 120);
  const replyLength = Math.min(out.readInt32LE(SO_SENT + 4), 256);
  return {
    kind,
    tid: out.readInt32LE(24),
    sig: out.readInt32LE(28),
    code: out.readInt32LE(32),
    slot: out.readInt32LE(36),
    nr: out.readInt32LE(40),
    addr: out.readBigUInt64LE(48),
    msg: Number(out.readBigInt64LE(56)),
    rval: Number(out.readBigInt64LE(64)),
    args: syscall ? [0, 1, 2, 3, 4, 5].map((i) => out.readBigUInt64LE(72 + i * 8)) : [],
    err: kind === 'error' ? out.toString('utf8', 120, errEnd >= 120 && errEnd < 216 ? errEnd : 216) : '',
    regs: out.readInt32LE(44) ? out.subarray(216, SO_SENT) : undefined,
    ahead: replyLength > 0 ? { bytes: out.subarray(SO_REPLY, SO_REPLY + replyLength), written: out.readInt32LE(SO_SENT) } : undefined,
    served: out.readInt32LE(SO_SERVED),
    run: { mode: out.readInt32LE(SO_RUN), tid: out.readInt32LE(SO_RUN + 4) },
    parked: out.subarray(SO_PARKED, STOP_BYTES),
  };
}

let addon: PtraceAddon | undefined;

/** The addon, or DbgError('unsupported') saying how to build it. */
export function ptraceAddon(): PtraceAddon {
  if (addon) return addon;
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new DbgError('unsupported', `live processes need Linux on x86-64 (this is ${process.platform} on ${process.arch})`);
  const root = checkoutRoot();
  const path = join(root, 'native', 'ptrace', 'build', 'Release', 'ptrace.node');
  if (!existsSync(path)) throw new DbgError('unsupported', `live processes need native/ptrace, which is not built: run node scripts/setup.mjs`);
  addon = createRequire(join(root, 'package.json'))(path) as PtraceAddon;
  return addon;
}
