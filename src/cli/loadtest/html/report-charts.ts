/**
 * The charts of a load test report: latency over time, the latency histogram, throughput,
 * memory, live workers and turns in flight, and CPU, each built from the report's timeline.
 */
import type { LoadtestReport } from '../report.js';
import { histogramChart, type Line, lineChart } from './charts.js';

const seconds = (ms: number) => ms / 1000;
const OVER_TIME = 's since the first send';

/** The figures of the "Over time" section, as HTML. */
export function reportCharts(report: LoadtestReport): string[] {
  const { timeline } = report;
  const xMax = seconds(Math.max(report.durationMs, 1));
  const buckets = timeline.latency;
  const mid = (bucket: { fromMs: number; toMs: number }) =>
    seconds((bucket.fromMs + bucket.toMs) / 2);
  const perSecond = (count: number, bucket: { fromMs: number; toMs: number }) =>
    count / Math.max(seconds(bucket.toMs - bucket.fromMs), 1e-3);
  const quantileLine = (label: 'p50' | 'p90' | 'p99', color: string): Line => ({
    label,
    color,
    points: buckets.map((b) => [mid(b), b.replies > 0 ? b[label] : Number.NaN]),
  });
  const samples = timeline.samples;
  const overSamples = (
    label: string,
    color: string,
    value: (sample: (typeof samples)[number]) => number,
    fill = true,
  ): Line => ({ label, color, fill, points: samples.map((s) => [seconds(s.tMs), value(s)]) });
  const hasLive = samples.some((s) => s.liveWorkers !== null);
  const liveLines: Line[] = [
    ...(hasLive
      ? [overSamples('live session workers', '#0891b2', (s) => s.liveWorkers ?? Number.NaN)]
      : []),
    overSamples('turns in flight', '#ea580c', (s) => s.inFlight, false),
  ];
  return [
    lineChart({
      title: 'Turn latency over time (replies, by when they ended)',
      lines: [
        quantileLine('p90', '#f59e0b'),
        quantileLine('p99', '#dc2626'),
        quantileLine('p50', '#2563eb'),
      ],
      xMax,
      xUnit: OVER_TIME,
      yUnit: 'ms',
    }),
    histogramChart({
      title: 'Turn latency distribution (replies)',
      bins: timeline.histogram,
      marks: [
        { name: 'p50', valueMs: report.latencyMs.p50, color: '#16a34a' },
        { name: 'p99', valueMs: report.latencyMs.p99, color: '#dc2626' },
      ],
      unit: 'replies',
    }),
    lineChart({
      title: 'Throughput',
      lines: [
        {
          label: 'replies/s',
          color: '#16a34a',
          fill: true,
          points: buckets.map((b) => [mid(b), perSecond(b.replies, b)]),
        },
        {
          label: 'errors/s',
          color: '#dc2626',
          points: buckets.map((b) => [mid(b), perSecond(b.errors, b)]),
        },
      ],
      xMax,
      xUnit: OVER_TIME,
      yUnit: 'per s',
    }),
    lineChart({
      title: 'Resident memory of the process',
      lines: [overSamples('RSS (MiB)', '#7c3aed', (s) => s.rssBytes / (1024 * 1024))],
      xMax,
      xUnit: OVER_TIME,
      yUnit: 'MiB',
    }),
    lineChart({
      title: hasLive ? 'Live session workers and turns in flight' : 'Turns in flight',
      lines: liveLines,
      xMax,
      xUnit: OVER_TIME,
      yUnit: 'count',
    }),
    lineChart({
      title: 'CPU of the process (all threads)',
      lines: [overSamples('CPU (% of one core)', '#db2777', (s) => s.cpuPercent)],
      xMax,
      xUnit: OVER_TIME,
      yUnit: '% of one core',
    }),
  ];
}
