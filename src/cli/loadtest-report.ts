/**
 * What a load test measured and how it is told: a recorder fed while the run goes (HDR
 * histograms for latency percentiles, per-turn points for charts, resource samples), the
 * report built from it (also the JSON report), the `--fail-on` verdict, and the terminal table.
 */
import { build, type Histogram } from 'hdr-histogram-js';
import {
  crosses,
  type FailMetric,
  type FailRule,
  type LoadtestOptions,
} from './loadtest-options.js';
import type { WorkerFigures } from './loadtest-target.js';

/** One reading of the process while the run goes. */
export interface Sample {
  /** Milliseconds since the first send. */
  readonly tMs: number;
  readonly rssBytes: number;
  /** Live session workers (embedded dedicated placement), null when not known. */
  readonly liveWorkers: number | null;
  /** Sends not settled yet. */
  readonly inFlight: number;
  /** Sends settled so far (replies and typed errors). */
  readonly settled: number;
  readonly errors: number;
  /** CPU of the whole process since the previous sample, % of one core. */
  readonly cpuPercent: number;
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

/** The outcome of one `--fail-on` rule. */
export interface FailOutcome {
  readonly expr: string;
  readonly metric: FailMetric;
  readonly actual: number;
  readonly failed: boolean;
}

/** The load test report: what `--json` prints and the HTML page shows. */
export interface LoadtestReport {
  readonly version: 1;
  readonly title: string;
  readonly verdict: 'pass' | 'fail';
  /** Why the run failed (lost turns, crossed thresholds); empty when it passed. */
  readonly reasons: readonly string[];
  /** 0 passed, 1 failed. */
  readonly exitCode: 0 | 1;
  readonly startedAt: string;
  /** From the first send until every send settled or was given up on. */
  readonly durationMs: number;
  /** Starting the target (mock LLM, store, supervisor) before the first send. */
  readonly setupMs: number;
  readonly target: {
    readonly kind: 'embedded' | 'gateway';
    readonly description: string;
  };
  readonly config: {
    readonly sessions: number;
    readonly turns: number;
    readonly concurrency: number;
    readonly thinkMs: number;
    readonly thinkFrom: 'reply' | 'send';
    readonly rampS: number;
    readonly messageBytes: number;
    readonly seed: number;
    readonly turnTimeoutMs: number;
    /** Embedded target only. */
    readonly placement: string | null;
    readonly maxLive: number | null;
    readonly warmPool: number | null;
    readonly firstTokenMs: number | null;
    readonly tokensPerSecond: number | null;
    readonly toolCalls: number | null;
    readonly busyPolicy: string | null;
    readonly store: string | null;
    readonly url: string | null;
  };
  readonly counts: {
    readonly sessions: number;
    readonly turnsPlanned: number;
    readonly turnsSent: number;
    readonly replies: number;
    readonly errors: number;
    /** Sent, and by the end neither a reply nor a typed error. */
    readonly lost: number;
    /** Settled, but only after `turnTimeoutMs` (the session had moved on). */
    readonly late: number;
  };
  readonly throughput: {
    readonly repliesPerSecond: number;
    readonly turnsPerSecond: number;
  };
  /** Send → reply, replies only. */
  readonly latencyMs: Percentiles;
  /** Send → first text delta of the reply. */
  readonly ttftMs: Percentiles;
  readonly errorsByCode: Readonly<Record<string, number>>;
  /** Why turns were lost (no answer in time, a stream cut short, an error without a code). */
  readonly lostByReason: Readonly<Record<string, number>>;
  readonly workers: (WorkerFigures & { readonly peakLive: number }) | null;
  readonly resources: {
    readonly peakRssBytes: number;
    readonly startRssBytes: number;
    readonly cpuUserMs: number;
    readonly cpuSystemMs: number;
    /** CPU time over the run's duration, % of one core (200 % = two cores busy). */
    readonly cpuAvgPercent: number;
    readonly cpuPeakPercent: number;
    readonly cores: number;
    readonly note: string;
  };
  readonly failOn: readonly FailOutcome[];
  readonly timeline: {
    readonly samples: readonly Sample[];
    readonly latency: readonly LatencyBucket[];
    readonly histogram: readonly HistogramBin[];
  };
  /** Where the HTML report was written. */
  htmlPath: string | null;
}

/** Collects what a run measures; cheap enough to feed from every send. */
export class Recorder {
  readonly #latency: Histogram = build({ numberOfSignificantValueDigits: 3 });
  readonly #ttft: Histogram = build({ numberOfSignificantValueDigits: 3 });
  /** Per reply: when it ended (ms since start) and its latency (ms). */
  readonly replyAt: number[] = [];
  readonly replyMs: number[] = [];
  readonly errorAt: number[] = [];
  readonly samples: Sample[] = [];
  readonly errorsByCode: Record<string, number> = {};
  readonly lostByReason: Record<string, number> = {};
  sent = 0;
  replies = 0;
  errors = 0;
  late = 0;
  #ttftCount = 0;
  #ttftMin = Number.POSITIVE_INFINITY;
  #latencyMin = Number.POSITIVE_INFINITY;
  #ttftSum = 0;
  #latencySum = 0;

  /** A reply: its latency and, when text arrived, its time to first token. */
  reply(atMs: number, latencyMs: number, ttftMs: number | undefined): void {
    this.replies++;
    this.replyAt.push(atMs);
    this.replyMs.push(latencyMs);
    this.#latency.recordValue(toMicros(latencyMs));
    this.#latencySum += latencyMs;
    this.#latencyMin = Math.min(this.#latencyMin, latencyMs);
    if (ttftMs !== undefined) {
      this.#ttft.recordValue(toMicros(ttftMs));
      this.#ttftCount++;
      this.#ttftSum += ttftMs;
      this.#ttftMin = Math.min(this.#ttftMin, ttftMs);
    }
  }

  error(atMs: number, code: string): void {
    this.errors++;
    this.errorAt.push(atMs);
    this.errorsByCode[code] = (this.errorsByCode[code] ?? 0) + 1;
  }

  lost(reason: string): void {
    this.lostByReason[reason] = (this.lostByReason[reason] ?? 0) + 1;
  }

  /** Keeps at most ~2,000 samples by merging neighbours when there are too many. */
  sample(sample: Sample): void {
    this.samples.push(sample);
    if (this.samples.length <= 2_000) return;
    const merged: Sample[] = [];
    for (let i = 0; i < this.samples.length; i += 2) {
      const a = this.samples[i] as Sample;
      const b = this.samples[i + 1];
      merged.push(
        b
          ? {
              ...b,
              rssBytes: Math.max(a.rssBytes, b.rssBytes),
              cpuPercent: (a.cpuPercent + b.cpuPercent) / 2,
            }
          : a,
      );
    }
    this.samples.splice(0, this.samples.length, ...merged);
  }

  latencyPercentiles(): Percentiles {
    return percentiles(this.#latency, this.replies, this.#latencySum, this.#latencyMin);
  }

  ttftPercentiles(): Percentiles {
    return percentiles(this.#ttft, this.#ttftCount, this.#ttftSum, this.#ttftMin);
  }
}

function toMicros(ms: number): number {
  return Math.max(1, Math.round(ms * 1000));
}

function round(value: number, digits = 1): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function percentiles(histogram: Histogram, count: number, sum: number, min: number): Percentiles {
  if (count === 0) return { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, max: 0 };
  const max = round(histogram.maxValue / 1000);
  // A percentile is the top of its HDR bucket, which may lie just above the largest value.
  const at = (p: number) => Math.min(max, round(histogram.getValueAtPercentile(p) / 1000));
  return {
    count,
    min: round(min),
    mean: round(sum / count),
    p50: at(50),
    p90: at(90),
    p99: at(99),
    max,
  };
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index] as number;
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
    list.sort((a, b) => a - b);
    return {
      fromMs: round(i * width, 0),
      toMs: round((i + 1) * width, 0),
      replies: list.length,
      errors: errors[i] ?? 0,
      p50: round(quantile(list, 0.5)),
      p90: round(quantile(list, 0.9)),
      p99: round(quantile(list, 0.99)),
      max: round(list[list.length - 1] ?? 0),
    };
  });
}

/** The reply latency distribution in `count` equal bins up to p99.9 (the last bin holds the tail). */
export function latencyHistogram(recorder: Recorder, count = 40): HistogramBin[] {
  const sorted = [...recorder.replyMs].sort((a, b) => a - b);
  if (sorted.length === 0) return [];
  const low = sorted[0] as number;
  const high = Math.max(low + 1, quantile(sorted, 0.999));
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

/** The value of a `--fail-on` metric in a report. */
export function metricValue(report: LoadtestReport, metric: FailMetric): number {
  switch (metric) {
    case 'p50':
    case 'p90':
    case 'p99':
    case 'max':
    case 'mean':
      return report.latencyMs[metric];
    case 'ttft-p50':
      return report.ttftMs.p50;
    case 'ttft-p99':
      return report.ttftMs.p99;
    case 'error-rate':
      return report.counts.turnsSent === 0 ? 0 : report.counts.errors / report.counts.turnsSent;
    case 'errors':
      return report.counts.errors;
    case 'lost':
      return report.counts.lost;
    case 'throughput':
      return report.throughput.repliesPerSecond;
    case 'rss-mb':
      return report.resources.peakRssBytes / (1024 * 1024);
    case 'cpu':
      return report.resources.cpuAvgPercent;
  }
}

/** What {@link buildReport} needs besides the recorder. */
export interface ReportInput {
  readonly options: LoadtestOptions;
  readonly recorder: Recorder;
  readonly kind: 'embedded' | 'gateway';
  readonly description: string;
  readonly startedAt: Date;
  readonly setupMs: number;
  readonly durationMs: number;
  readonly lost: number;
  readonly workers: WorkerFigures | undefined;
  readonly cpu: NodeJS.CpuUsage;
  readonly startRssBytes: number;
  readonly cores: number;
}

/** Builds the report, evaluates `--fail-on` and decides the verdict. */
export function buildReport(input: ReportInput): LoadtestReport {
  const { options, recorder } = input;
  const embedded = input.kind === 'embedded';
  const seconds = Math.max(input.durationMs, 1) / 1000;
  const samples = recorder.samples;
  const cpuMs = (input.cpu.user + input.cpu.system) / 1000;
  const peakLive = samples.reduce((peak, s) => Math.max(peak, s.liveWorkers ?? 0), 0);
  const report: LoadtestReport = {
    version: 1,
    title: options.title,
    verdict: 'pass',
    reasons: [],
    exitCode: 0,
    startedAt: input.startedAt.toISOString(),
    durationMs: Math.round(input.durationMs),
    setupMs: Math.round(input.setupMs),
    target: { kind: input.kind, description: input.description },
    config: {
      sessions: options.sessions,
      turns: options.turns,
      concurrency: options.concurrency,
      thinkMs: options.thinkMs,
      thinkFrom: options.thinkFrom,
      rampS: options.rampS,
      messageBytes: options.messageBytes,
      seed: options.seed,
      turnTimeoutMs: options.turnTimeoutMs,
      placement: embedded ? options.placement : null,
      maxLive:
        embedded && options.placement === 'dedicated'
          ? (input.workers?.maxLiveSessions ?? null)
          : null,
      warmPool: embedded && options.placement === 'dedicated' ? options.warmPool : null,
      firstTokenMs: embedded ? options.firstTokenMs : null,
      tokensPerSecond: embedded ? options.tokensPerSecond : null,
      toolCalls: embedded ? options.toolCalls : null,
      busyPolicy: embedded ? options.busyPolicy : null,
      store: embedded ? options.store : null,
      url: embedded ? null : (options.url ?? null),
    },
    counts: {
      sessions: options.sessions,
      turnsPlanned: options.sessions * options.turns,
      turnsSent: recorder.sent,
      replies: recorder.replies,
      errors: recorder.errors,
      lost: input.lost,
      late: recorder.late,
    },
    throughput: {
      repliesPerSecond: round(recorder.replies / seconds),
      turnsPerSecond: round((recorder.replies + recorder.errors) / seconds),
    },
    latencyMs: recorder.latencyPercentiles(),
    ttftMs: recorder.ttftPercentiles(),
    errorsByCode: { ...recorder.errorsByCode },
    lostByReason: { ...recorder.lostByReason },
    workers: input.workers ? { ...input.workers, peakLive } : null,
    resources: {
      peakRssBytes: samples.reduce((peak, s) => Math.max(peak, s.rssBytes), input.startRssBytes),
      startRssBytes: input.startRssBytes,
      cpuUserMs: Math.round(input.cpu.user / 1000),
      cpuSystemMs: Math.round(input.cpu.system / 1000),
      cpuAvgPercent: round((cpuMs / Math.max(input.durationMs, 1)) * 100),
      cpuPeakPercent: round(samples.reduce((peak, s) => Math.max(peak, s.cpuPercent), 0)),
      cores: input.cores,
      note: embedded
        ? 'one process: session worker threads, the supervisor, the mock LLM and the load generator share its RSS and CPU'
        : 'the load generator process only; the gateway runs elsewhere',
    },
    failOn: [],
    timeline: {
      samples,
      latency: latencyBuckets(recorder, input.durationMs),
      histogram: latencyHistogram(recorder),
    },
    htmlPath: null,
  };
  return judge(report, options.failOn);
}

function judge(report: LoadtestReport, rules: readonly FailRule[]): LoadtestReport {
  const failOn = rules.map((rule) => {
    const actual = round(metricValue(report, rule.metric), 4);
    return { expr: rule.expr, metric: rule.metric, actual, failed: crosses(rule, actual) };
  });
  const reasons: string[] = [];
  if (report.counts.lost > 0) {
    reasons.push(
      `${report.counts.lost} lost turn${report.counts.lost === 1 ? '' : 's'} (sent, never answered with a reply or a typed error)`,
    );
  }
  for (const outcome of failOn) {
    if (outcome.failed) reasons.push(`--fail-on ${outcome.expr} (actual ${outcome.actual})`);
  }
  const failed = reasons.length > 0;
  return {
    ...report,
    failOn,
    reasons,
    verdict: failed ? 'fail' : 'pass',
    exitCode: failed ? 1 : 0,
  };
}

/** `1,234`, `12.3`. */
export function formatNumber(value: number, digits = 0): string {
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** Milliseconds as `850 ms` or `1.25 s`. */
export function formatMs(ms: number): string {
  if (ms < 10) return `${formatNumber(ms, Number.isInteger(ms) ? 0 : 1)} ms`;
  if (ms < 1_000) return `${formatNumber(ms)} ms`;
  return `${formatNumber(ms / 1000, 2)} s`;
}

/** Bytes as MiB or GiB. */
export function formatBytes(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  return mib >= 1024 ? `${formatNumber(mib / 1024, 2)} GiB` : `${formatNumber(mib)} MiB`;
}

function plural(count: number, word: string, many = `${word}s`): string {
  return `${formatNumber(count)} ${count === 1 ? word : many}`;
}

function byCode(counts: Readonly<Record<string, number>>): string {
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  return entries.length === 0
    ? 'none'
    : entries.map(([code, count]) => `${code} ×${formatNumber(count)}`).join(', ');
}

/** The report as a terminal table. */
export function formatTable(report: LoadtestReport): string {
  const { counts, latencyMs: l, ttftMs: f, resources: r, workers: w } = report;
  const rows: [string, string][] = [
    ['target', report.target.description],
    [
      'load',
      `${plural(counts.sessions, 'session')} × ${plural(report.config.turns, 'turn')}, ` +
        `concurrency ${formatNumber(report.config.concurrency)}, think ${formatMs(report.config.thinkMs)} ±50% (after ${report.config.thinkFrom}), ` +
        `ramp ${formatNumber(report.config.rampS, 1)} s, ${plural(report.config.messageBytes, 'byte')} per message, seed ${report.config.seed}`,
    ],
    [
      'turns',
      `${formatNumber(counts.turnsSent)} sent, ${formatNumber(counts.replies)} replies, ` +
        `${formatNumber(counts.errors)} errors, ${formatNumber(counts.lost)} lost` +
        (counts.late > 0 ? ` (${formatNumber(counts.late)} answered after the turn timeout)` : ''),
    ],
    [
      'duration',
      `${formatMs(report.durationMs)} (setup ${formatMs(report.setupMs)} before the first send)`,
    ],
    [
      'throughput',
      `${formatNumber(report.throughput.repliesPerSecond, 1)} replies/s ` +
        `(${formatNumber(report.throughput.turnsPerSecond, 1)} turns/s settled)`,
    ],
    [
      'turn latency',
      l.count === 0
        ? 'no replies'
        : `p50 ${formatMs(l.p50)}  p90 ${formatMs(l.p90)}  p99 ${formatMs(l.p99)}  max ${formatMs(l.max)}  (mean ${formatMs(l.mean)})`,
    ],
    [
      'first token',
      f.count === 0
        ? 'no text events'
        : `p50 ${formatMs(f.p50)}  p99 ${formatMs(f.p99)}  (send → first text delta)`,
    ],
    ['errors', byCode(report.errorsByCode)],
  ];
  if (counts.lost > 0) rows.push(['lost', byCode(report.lostByReason)]);
  if (w) {
    rows.push([
      'workers',
      w.placement === 'pooled'
        ? `pooled placement (shared thread pool, no worker per session); ${plural(w.restarts, 'restart')}, ${plural(w.crashes, 'crash', 'crashes')}`
        : `${formatNumber(w.starts)} started (${formatNumber(w.warmStarts)} from the warm pool), ` +
          `${plural(w.restarts, 'restart')}, ${formatNumber(w.crashes)} crashes, ` +
          `peak ${formatNumber(w.peakLive)} live (limit ${formatNumber(w.maxLiveSessions)}), ` +
          `${formatNumber(w.passivations)} passivated`,
    ]);
    rows.push(['tool calls', `${formatNumber(w.toolCallsRun)} host tool calls run`]);
  }
  rows.push([
    'memory / CPU',
    `peak RSS ${formatBytes(r.peakRssBytes)} (from ${formatBytes(r.startRssBytes)}); ` +
      `CPU ${formatNumber((r.cpuUserMs + r.cpuSystemMs) / 1000, 1)} s, ` +
      `${formatNumber(r.cpuAvgPercent)}% of a core on average, peak ${formatNumber(r.cpuPeakPercent)}% (${r.cores} cores)`,
  ]);
  rows.push(['', r.note]);
  for (const outcome of report.failOn) {
    rows.push([
      'fail-on',
      `${outcome.expr}: ${outcome.actual} → ${outcome.failed ? 'FAIL' : 'ok'}`,
    ]);
  }
  rows.push(['result', report.verdict === 'pass' ? 'PASS' : `FAIL: ${report.reasons.join('; ')}`]);
  const width = Math.max(...rows.map(([label]) => label.length));
  const lines = rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`);
  return `${report.title}\n${lines.join('\n')}\n`;
}
