import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** One figure a benchmark reports, ideally as a ratio to a baseline measured in the same run. */
export interface BenchResult {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  /** The goal as text, e.g. '<= 0.5x gdb'. */
  readonly goal?: string;
  /** Whether the goal was met; undefined when the figure has no goal. */
  readonly ok?: boolean;
  /** What the figure was compared against, e.g. 'gdb -batch: 0.153 s'. */
  readonly baseline?: string;
}

export type BenchFn = () => Promise<BenchResult[]>;

/** Run a command to its end: wall milliseconds, stdout and stderr; an exit other than 0 throws with its stderr. */
export function timed(cmd: string, args: readonly string[]): { ms: number; stdout: string; stderr: string } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 << 20 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr.slice(0, 2000)}`);
  return { ms, stdout: r.stdout, stderr: r.stderr };
}

/**
 * This process's peak RSS in KiB, as the kernel's VmHWM for it (/proc/self/status). Not
 * getrusage's ru_maxrss (process.resourceUsage().maxRSS), which in a child started by fork + exec
 * also counts the parent's memory at the fork: Linux carries the forked copy's high-water mark
 * across exec, so a 30 MB child of a 180 MB bench runner reports 180 MB.
 */
export function peakRssKiB(): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  if (!m) throw new Error('no VmHWM in /proc/self/status');
  return Number(m[1]);
}

/** The same for a Python oracle script (drgn): an expression that evaluates to VmHWM in KiB. */
export const PYTHON_PEAK_RSS_KIB = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM:')).split()[1])";
