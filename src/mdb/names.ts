/**
 * Addresses as MDB names them: `sym+0x10` for the executable's symbols and
 * `libc.so.6`sym+0x10` for every other module's, so a name is never ambiguous yet the program's
 * own functions read plainly.
 */

import { symbolOffsetText } from '../symbols/symbol-text.js';
import type { Target } from '../targets/target.js';

/**
 * The name of `addr`, or undefined when no symbol holds it. `lookup` is the address to find the
 * symbol by when it differs (a return address minus one); the offset is always from `addr`.
 */
export function symbolName(target: Target, addr: bigint, lookup = addr): string | undefined {
  const r = target.symbols.resolve(lookup);
  if (!r || !r.inside) return undefined;
  const main = target.symbols.modules[0];
  return symbolOffsetText(r.sym.name, addr - r.sym.addr, r.module === main ? undefined : r.module.name);
}

/** symbolName, but only for an address inside a symbol of known size (a constant that names data or code). */
export function objectName(target: Target, addr: bigint): string | undefined {
  const r = target.symbols.resolve(addr);
  return r && r.sym.size > 0n && addr - r.sym.addr < r.sym.size ? symbolName(target, addr) : undefined;
}

/**
 * How every message names thread `index` (1-based, as ::thread selects it): the vCPU number on an
 * emulated or recorded machine (`vCPU 0`, as the guest, gdb's thread names and ::whowrote say),
 * the CPU of a kernel dump (`CPU 0`), else `thread 1`.
 */
export function threadName(target: Target, index: number): string {
  if (target.kind === 'emulator' || target.kind === 'replay') return `vCPU ${index - 1}`;
  if (target.kind === 'kernel-dump') return `CPU ${index - 1}`;
  return `thread ${index}`;
}
