/**
 * Latency samples and their percentiles, computed exactly from the sorted samples (nearest
 * rank): benchmarks here record at most a few hundred thousand samples, so no histogram is
 * needed and no precision is lost.
 */

export interface LatencySummary {
  readonly count: number;
  readonly mean: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** The `q` quantile (0..1) of ascending `sorted` samples by nearest rank; NaN when empty. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil(q * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))] ?? Number.NaN;
}

/** Summarises samples in milliseconds (any unit works; the summary keeps it). */
export function summarize(samples: readonly number[]): LatencySummary {
  const sorted = [...samples].sort((a, b) => a - b);
  let sum = 0;
  for (const sample of sorted) sum += sample;
  return {
    count: sorted.length,
    mean: sorted.length === 0 ? Number.NaN : sum / sorted.length,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: sorted.at(-1) ?? Number.NaN,
  };
}

/** Records durations; `time()` measures one awaited call with `performance.now()`. */
export class LatencyRecorder {
  readonly #samples: number[] = [];

  record(ms: number): void {
    this.#samples.push(ms);
  }

  /** Awaits `fn`, and records its duration only if it resolves. */
  async time<T>(fn: () => Promise<T>): Promise<T> {
    const start = performance.now();
    const result = await fn();
    this.record(performance.now() - start);
    return result;
  }

  get count(): number {
    return this.#samples.length;
  }

  summary(): LatencySummary {
    return summarize(this.#samples);
  }
}

/** Milliseconds with a precision that suits their size: 0.42 ms, 12.3 ms, 1,234 ms. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  return `${Math.round(ms).toLocaleString('en-US')} ms`;
}
