/**
 * What dbg's Linux knowledge (src/os/linux/) needs of whatever holds a Linux kernel's memory: the
 * narrow port through which kallsyms, the printk ring, tasks and panic discovery read. The
 * kernel-dump target implements it (KernelDumpTarget.linux); nothing here imports a target.
 *
 *   read(addr, n)      kernel virtual memory, as the kernel sees it (any CPU's kernel half)
 *   symbol(name)       a kernel symbol's run-time address (KASLR applied), from vmlinux, the
 *                      kernel's own kallsyms or VMCOREINFO's SYMBOL() lines
 *   linkValue(name)    its value in the symbol file (a per-CPU variable's offset in each CPU's area)
 *   vmcoreinfo         the dump's VMCOREINFO, when it has one
 *   objects()          vmlinux's types (DWARF) as typed objects over read(), when a vmlinux is loaded
 *   cpus               how many CPUs the dump has notes for
 */

import { DbgError } from '../../common/errors.js';
import type { ObjectSpace } from '../../types/typed-object.js';

export interface VmcoreinfoView {
  get(key: string): string | undefined;
  symbol(name: string): bigint | undefined;
  number(name: string): bigint | undefined;
}

export interface LinuxPort {
  /** How messages name the dump: `kernel dump "vmcore"`. */
  readonly name: string;
  read(addr: bigint, length: number): Buffer;
  symbol(name: string): bigint | undefined;
  linkValue(name: string): bigint | undefined;
  readonly vmcoreinfo?: VmcoreinfoView;
  objects(): ObjectSpace | undefined;
  readonly cpus: number;
}

export function readU64(port: LinuxPort, addr: bigint): bigint {
  return port.read(addr, 8).readBigUInt64LE(0);
}

export function readU32(port: LinuxPort, addr: bigint): number {
  return port.read(addr, 4).readUInt32LE(0);
}

/** vmlinux's types (`type` among them), or a one-line error saying that `what` needs them. */
export function needObjects(port: LinuxPort, what: string, type = 'struct task_struct'): ObjectSpace {
  const o = port.objects();
  if (!o || !o.types.find(type)) {
    throw new DbgError('no-symbol', `${what} needs the kernel's types: open ${port.name.replace(/^kernel dump /, 'the dump ')} with --symbols vmlinux (a vmlinux with DWARF, e.g. Debian's linux-image-*-dbg)`);
  }
  return o;
}

/** x86-64: where the kernel image is mapped (arch/x86/include/asm/page_64_types.h); symbols below it are offsets (per-CPU) or constants. */
export const START_KERNEL_MAP = 0xffffffff80000000n;
