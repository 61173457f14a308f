/**
 * Per-CPU variables: vmlinux links them in .data..percpu at 0, so a symbol's value is its offset
 * in every CPU's area, and CPU N's copy is at __per_cpu_offset[N] + that offset (as the kernel's
 * per_cpu_ptr() and drgn's per_cpu() compute it).
 */

import { DbgError } from '../../common/errors.js';
import { hex } from '../../common/format.js';
import { readU64, START_KERNEL_MAP, type LinuxPort } from './port.js';

/** CPU `cpu`'s copy of the per-CPU variable `name`. */
export function perCpuAddress(port: LinuxPort, name: string, cpu: number): bigint {
  const off = port.linkValue(name);
  if (off === undefined) throw new DbgError('no-symbol', `unknown symbol "${name}"`);
  if (off >= START_KERNEL_MAP || off >= 1n << 32n) throw new DbgError('bad-input', `${name} is not a per-CPU variable: its value ${hex(off)} is an address, not an offset in .data..percpu`);
  const offsets = port.symbol('__per_cpu_offset');
  if (offsets === undefined) throw new DbgError('no-symbol', `${port.name}: the kernel has no __per_cpu_offset array (a uniprocessor kernel?)`);
  if (!Number.isInteger(cpu) || cpu < 0 || cpu >= port.cpus) throw new DbgError('bad-input', `no CPU ${cpu}: the dump has CPUs 0..${port.cpus - 1}`);
  return readU64(port, offsets + BigInt(cpu) * 8n) + off;
}
