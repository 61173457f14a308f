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
