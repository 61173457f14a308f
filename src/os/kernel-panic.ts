/**
 * A panicked kernel on any target that has threads and symbols (a live or replayed guest): the
 * vCPU with a panic function at its pc or among its first frames, and the message the kernel
 * left in `panic_msg` (a pointer to the formatted string: the sample kernel's, and what dumps
 * read too). Kernel dumps have more sources (Linux's panic_cpu, the kernel log): see
 * KernelDumpTarget.status().
 */

import { DbgError } from '../common/errors.js';
import type { Target } from '../targets/target.js';
import { unwind } from '../targets/unwind.js';
import { PANIC_FUNCTIONS } from './linux/panic.js';

export interface KernelPanic {
  readonly thread: number;
  /** The panic function the thread is in, and at which frame (0: its pc). */
  readonly fn: string;
  readonly level: number;
  readonly message: string;
}

/** The first thread in a panic function (at its pc, else among its first 16 frames). */
export function findKernelPanic(t: Target): KernelPanic | undefined {
  const named = (pc: bigint) => {
    const r = t.symbols.resolve(pc);
    return r?.inside && PANIC_FUNCTIONS.test(r.sym.name) ? r.sym.name : undefined;
  };
  const threads = t.threads().map((x) => x.index);
  let hit: { thread: number; level: number; fn: string } | undefined;
  for (const th of threads) {
    const fn = named(t.registers(th).get('rip') ?? 0n);
    if (fn) {
      hit = { thread: th, level: 0, fn };
      break;
    }
  }
  for (const th of hit ? [] : threads) {
    let frames;
    try {
      frames = unwind(t, th, { maxFrames: 16 });
    } catch (e) {
      if (e instanceof DbgError) continue;
      throw e;
    }
    const f = frames.slice(1).find((x) => named(x.pc - 1n));
    if (f) {
      hit = { thread: th, level: f.level, fn: named(f.pc - 1n)! };
      break;
    }
  }
  if (!hit) return undefined;
  return { ...hit, message: panicMessage(t, hit.thread) ?? `${t.threads().find((x) => x.index === hit.thread)?.name ?? `thread ${hit.thread}`} is in ${hit.fn}()` };
}

/** The string `panic_msg` points to, when the kernel has one and set it. */
function panicMessage(t: Target, thread: number): string | undefined {
  const s = t.symbols.find('panic_msg');
  if (!s) return undefined;
  try {
    const p = t.readVirtual(s.addr, 8, thread).readBigUInt64LE(0);
    if (p === 0n) return undefined;
    const b = t.readVirtual(p, 256, thread);
    const z = b.indexOf(0);
    return b.toString('latin1', 0, z >= 0 ? z : b.length);
  } catch (e) {
    if (e instanceof DbgError) return undefined;
    throw e;
  }
}
