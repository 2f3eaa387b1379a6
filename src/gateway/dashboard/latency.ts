/** The latency figures of the dashboard's chart, read through the one quantile definition. */
import { quantile } from '../../quantile.js';

export interface Latency {
  /** The durations, ascending. */
  readonly sorted: readonly number[];
  readonly p50: number | undefined;
  readonly p95: number | undefined;
  readonly max: number | undefined;
}

export function latencyOf(durationsMs: readonly number[]): Latency {
  const sorted = [...durationsMs].sort((a, b) => a - b);
  return {
    sorted,
    p50: quantile(sorted, 0.5),
    p95: quantile(sorted, 0.95),
    max: sorted.at(-1),
  };
}
