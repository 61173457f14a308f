/**
 * How dbg prints a symbol's name, everywhere a name is printed (`::nm`, `::stack` and `$c`,
 * `::dis` labels, `::events`, stop messages, `sym+0x10` in formats, the contract's `SYM=`):
 * demangled as gdb prints it with `set print demangle on` (its default), so a C++ function reads
 * `ns::Foo::bar(int)`, not `_ZN2ns3Foo3barEi`. `::nm -m` prints the names as the symbol table
 * has them.
 *
 * Only printed names are demangled, one at a time as they are printed (a backtrace of a big C++
 * core demangles its frames' names, not its libraries' symbol tables).
 */

import { hex } from '../common/format.js';
import { demangle } from './demangle.js';

/** A symbol table's name as dbg shows it. */
export function symbolText(name: string): string {
  return demangle(name);
}

/**
 * `name`, `name+0x10` or `name-0x8`, with `module\`` before it when `module` is given (MDB's
 * qualified form for every module but the executable).
 */
export function symbolOffsetText(name: string, offset: bigint, module?: string): string {
  const text = module !== undefined ? `${module}\`${symbolText(name)}` : symbolText(name);
  return offset === 0n ? text : offset > 0n ? `${text}+${hex(offset)}` : `${text}-${hex(-offset)}`;
}
