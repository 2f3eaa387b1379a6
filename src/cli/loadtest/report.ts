/**
 * The load test report (also what `--json` prints): built from the recorder once the run has
 * ended, with the `--fail-on` verdict.
 */
import { crosses, type FailMetric, type FailRule } from './fail-on.js';
import {
  type HistogramBin,
  type LatencyBucket,
  latencyBuckets,
  latencyHistogram,
  type Percentiles,
  percentiles,
  round,
} from './latency.js';
import type { LoadtestOptions } from './options.js';
import type { Recorder, Sample } from './recorder.js';
import type { WorkerFigures } from './target.js';

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
    readonly mcpToolCalls: number | null;
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

function configOf(input: ReportInput): LoadtestReport['config'] {
  const { options } = input;
  const embedded = input.kind === 'embedded';
  const dedicated = embedded && options.placement === 'dedicated';
  return {
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
    maxLive: dedicated ? (input.workers?.maxLiveSessions ?? null) : null,
    warmPool: dedicated ? options.warmPool : null,
    firstTokenMs: embedded ? options.firstTokenMs : null,
    tokensPerSecond: embedded ? options.tokensPerSecond : null,
    toolCalls: embedded ? options.toolCalls : null,
    mcpToolCalls: embedded ? options.mcpToolCalls : null,
    busyPolicy: embedded ? options.busyPolicy : null,
    store: embedded ? options.store : null,
    url: embedded ? null : (options.url ?? null),
  };
}

function resourcesOf(input: ReportInput): LoadtestReport['resources'] {
  const samples = input.recorder.samples;
  const cpuMs = (input.cpu.user + input.cpu.system) / 1000;
  return {
    peakRssBytes: samples.reduce((peak, s) => Math.max(peak, s.rssBytes), input.startRssBytes),
    startRssBytes: input.startRssBytes,
    cpuUserMs: Math.round(input.cpu.user / 1000),
    cpuSystemMs: Math.round(input.cpu.system / 1000),
    cpuAvgPercent: round((cpuMs / Math.max(input.durationMs, 1)) * 100),
    cpuPeakPercent: round(samples.reduce((peak, s) => Math.max(peak, s.cpuPercent), 0)),
    cores: input.cores,
    note:
      input.kind === 'embedded'
        ? 'one process: session worker threads, the supervisor, the mock LLM and the load generator share its RSS and CPU'
        : 'the load generator process only; the gateway runs elsewhere',
  };
}

/** Builds the report, evaluates `--fail-on` and decides the verdict. */
export function buildReport(input: ReportInput): LoadtestReport {
  const { options, recorder } = input;
  const seconds = Math.max(input.durationMs, 1) / 1000;
  const samples = recorder.samples;
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
    config: configOf(input),
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
    latencyMs: percentiles(recorder.replyMs),
    ttftMs: percentiles(recorder.ttftMs),
    errorsByCode: { ...recorder.errorsByCode },
    lostByReason: { ...recorder.lostByReason },
    workers: input.workers ? { ...input.workers, peakLive } : null,
    resources: resourcesOf(input),
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
