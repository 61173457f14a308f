/**
 * Which CPU panicked, and why, as Linux records it:
 *
 *   panic_cpu         atomic_t: the CPU that entered panic() or crash_kexec() first; -1
 *                     (PANIC_CPU_INVALID) while nothing panicked. Read through any symbol source
 *                     (vmlinux, kallsyms), so it needs neither types nor VMCOREINFO.
 *   the crash notes   a kdump's NT_PRSTATUS of the panicking CPU was saved in __crash_kexec /
 *                     machine_crash_shutdown, and a CPU stopped by panic() has panic() among its
 *                     first frames: PANIC_FUNCTIONS names them (the caller checks the frames).
 *   the kernel log    "Kernel panic - not syncing: MSG" is the message; the "CPU: N PID:" line of
 *                     panic's dump_stack() follows it (Linux 6.1) or precedes it (older kernels).
 */

import type { LinuxPort } from './port.js';
import type { PrintkRecord } from './printk.js';

/** Functions a panicking CPU stops in (or under): panic() itself and the kdump entry path. */
export const PANIC_FUNCTIONS = /^(panic|vpanic|__crash_kexec|crash_kexec|machine_crash_shutdown|native_machine_crash_shutdown|crash_save_cpu)$/;

/** panic_cpu's value when it names one of the dump's CPUs; undefined when unknown or -1. */
export function panicCpu(port: LinuxPort): number | undefined {
  const at = port.symbol('panic_cpu');
  if (at === undefined) return undefined;
  try {
    const v = port.read(at, 4).readInt32LE(0);
    return v >= 0 && v < port.cpus ? v : undefined;
  } catch {
    return undefined;
  }
}

const PANIC_PREFIX = 'Kernel panic - not syncing: ';

/** The last panic record's message and the CPU its dump_stack() names (the nearest "CPU: N PID:" line). */
export function panicFromLog(log: readonly PrintkRecord[]): { message: string; cpu?: number } | undefined {
  let at = log.length - 1;
  while (at >= 0 && !log[at]!.text.startsWith(PANIC_PREFIX)) at--;
  if (at < 0) return undefined;
  const message = log[at]!.text.slice(PANIC_PREFIX.length).trim();
  const cpuOf = (i: number) => /^CPU: (\d+) PID: /.exec(log[i]?.text ?? '')?.[1];
  for (let d = 1; d <= 3; d++) {
    const m = cpuOf(at + d);
    if (m) return { message, cpu: Number(m) };
  }
  for (let i = at - 1; i >= 0 && i > at - 200; i--) {
    const m = cpuOf(i);
    if (m) return { message, cpu: Number(m) };
  }
  return { message };
}
