import { spawnSync } from 'node:child_process';

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
