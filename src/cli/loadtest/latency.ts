/**
 * Latency figures of a run, all read through the one quantile definition (`quantile()`,
 * nearest rank), so the summary, the time slices and the HTML page agree for the same data.
 */
import { quantile } from '../../quantile.js';
import type { Recorder } from './recorder.js';

/** Percentiles of a latency, in ms (all 0 when `count` is 0). */
export interface Percentiles {
  readonly count: number;
  readonly min: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

/** Latency of the replies that ended in one slice of the run. */
export interface LatencyBucket {
  readonly fromMs: number;
  readonly toMs: number;
  readonly replies: number;
  readonly errors: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

/** One bar of the latency histogram. */
export interface HistogramBin {
  readonly fromMs: number;
  readonly toMs: number;
  readonly count: number;
}

/** `value` rounded to `digits` decimals. */
export function round(value: number, digits = 1): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function ascending(values: readonly number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

/** The value at quantile `q` of an ascending list, rounded to 0.1 ms; 0 for an empty list. */
function at(sorted: readonly number[], q: number): number {
  return round(quantile(sorted, q) ?? 0);
}

/** Count, min, mean, p50/p90/p99 and max of `values` (ms, in any order). */
export function percentiles(values: readonly number[]): Percentiles {
  if (values.length === 0) return { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, max: 0 };
  const sorted = ascending(values);
  const sum = sorted.reduce((total, value) => total + value, 0);
  return {
    count: sorted.length,
    min: at(sorted, 0),
    mean: round(sum / sorted.length),
    p50: at(sorted, 0.5),
    p90: at(sorted, 0.9),
    p99: at(sorted, 0.99),
    max: at(sorted, 1),
  };
}

/**
 * Reply latency and settled turns over the run, in equal slices of time: at most `count`, each
 * at least `minSliceMs` wide (narrower slices would show the rhythm of think times, not a trend).
 */
export function latencyBuckets(
  recorder: Recorder,
  durationMs: number,
  count = 60,
  minSliceMs = 500,
): LatencyBucket[] {
  const span = Math.max(1, durationMs);
  const slices = Math.max(1, Math.min(count, Math.ceil(span / minSliceMs)));
  const width = span / slices;
  const values: number[][] = Array.from({ length: slices }, () => []);
  const errors = new Array<number>(slices).fill(0);
  const slice = (t: number) => Math.min(slices - 1, Math.max(0, Math.floor(t / width)));
  recorder.replyAt.forEach((t, i) => {
    values[slice(t)]?.push(recorder.replyMs[i] as number);
  });
  for (const t of recorder.errorAt) errors[slice(t)] = (errors[slice(t)] ?? 0) + 1;
  return values.map((list, i) => {
    const { p50, p90, p99, max } = percentiles(list);
    return {
      fromMs: round(i * width, 0),
      toMs: round((i + 1) * width, 0),
      replies: list.length,
      errors: errors[i] ?? 0,
      p50,
      p90,
      p99,
      max,
    };
  });
}

/** The reply latency distribution in `count` equal bins up to p99.9 (the last bin holds the tail). */
export function latencyHistogram(recorder: Recorder, count = 40): HistogramBin[] {
  const sorted = ascending(recorder.replyMs);
  const low = sorted[0];
  if (low === undefined) return [];
  const high = Math.max(low + 1, quantile(sorted, 0.999) ?? low);
  const width = (high - low) / count;
  const bins = Array.from({ length: count }, (_, i) => ({
    fromMs: round(low + i * width),
    toMs: round(low + (i + 1) * width),
    count: 0,
  }));
  for (const value of sorted) {
    const index = Math.min(count - 1, Math.floor((value - low) / width));
    const bin = bins[index];
    if (bin) bin.count++;
  }
  const last = bins[count - 1];
  if (last) last.toMs = round(sorted[sorted.length - 1] as number);
  return bins;
}
