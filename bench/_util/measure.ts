/**
 * Shared benchmark helpers: warm up, repeat until a time budget is spent, report ops/s and the
 * ratio to a baseline measured in the same run.
 */
import { cpus, totalmem } from 'node:os';

export interface Measurement {
  readonly name: string;
  readonly opsPerSecond: number;
  readonly meanMicros: number;
  readonly iterations: number;
}

export interface MeasureOptions {
  /** Warm-up time in milliseconds. @default 200 */
  readonly warmupMs?: number;
  /** Measured time in milliseconds. @default 1000 */
  readonly durationMs?: number;
}

/** Runs `fn` repeatedly (awaiting it when it returns a promise) and reports its rate. */
export async function measure(
  name: string,
  fn: () => unknown,
  options: MeasureOptions = {},
): Promise<Measurement> {
  const warmupEnd = performance.now() + (options.warmupMs ?? 200);
  while (performance.now() < warmupEnd) await fn();
  const durationMs = options.durationMs ?? 1000;
  let iterations = 0;
  const start = performance.now();
  let elapsed = 0;
  // Batches keep the clock reads out of the measured cost of very fast operations.
  let batch = 1;
  while (elapsed < durationMs) {
    for (let i = 0; i < batch; i++) await fn();
    iterations += batch;
    elapsed = performance.now() - start;
    if (elapsed < durationMs / 10) batch *= 2;
  }
  return {
    name,
    opsPerSecond: (iterations / elapsed) * 1000,
    meanMicros: (elapsed * 1000) / iterations,
    iterations,
  };
}

/** A table of measurements with each one's ratio to the baseline (the first row). */
export function ratioTable(rows: readonly Measurement[]): string {
  const baseline = rows[0];
  if (!baseline) return '';
  const lines = [
    '| case | ops/s | mean | vs baseline |',
    '|---|---:|---:|---:|',
    ...rows.map(
      (row) =>
        `| ${row.name} | ${formatNumber(row.opsPerSecond)} | ${formatMicros(row.meanMicros)} | ${(row.opsPerSecond / baseline.opsPerSecond).toFixed(2)}× |`,
    ),
  ];
  return lines.join('\n');
}

export function formatNumber(value: number): string {
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(2);
}

export function formatMicros(micros: number): string {
  return micros >= 1000 ? `${(micros / 1000).toFixed(2)} ms` : `${micros.toFixed(2)} µs`;
}

/** One line describing the machine, printed with every result. */
export function machineDescription(): string {
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  return `${cpu}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}`;
}
