/**
 * One quantile definition in the load test report: for known latencies, the p50/p90/p99 of the
 * summary table, the JSON report, the time slices and the HTML page are all `quantile()` of them.
 */
import { describe, expect, it } from 'vitest';
import { formatMs } from '../../src/cli/loadtest/format.js';
import { renderHtml } from '../../src/cli/loadtest/html/page.js';
import { resolveLoadtestOptions } from '../../src/cli/loadtest/options.js';
import { Recorder } from '../../src/cli/loadtest/recorder.js';
import { buildReport, type LoadtestReport } from '../../src/cli/loadtest/report.js';
import { formatTable } from '../../src/cli/loadtest/table.js';
import { quantile } from '../../src/quantile.js';

/** 101 distinct latencies with one decimal, in a scrambled order, with a slow tail. */
const LATENCIES = Array.from({ length: 101 }, (_, i) => {
  const k = (i * 37) % 101;
  return Math.round((20 + k * 3.7 + (k > 95 ? 900 : 0)) * 10) / 10;
});
const TTFT = LATENCIES.map((ms) => Math.round(ms * 4) / 10);

function report(durationMs: number, at: (index: number) => number): LoadtestReport {
  const recorder = new Recorder();
  LATENCIES.forEach((ms, i) => {
    recorder.sent++;
    recorder.reply(at(i), ms, TTFT[i]);
  });
  return buildReport({
    options: resolveLoadtestOptions({ sessions: 1, turns: LATENCIES.length, progress: 'off' }),
    recorder,
    kind: 'embedded',
    description: 'known latencies',
    startedAt: new Date(0),
    setupMs: 0,
    durationMs,
    lost: 0,
    workers: undefined,
    cpu: { user: 0, system: 0 },
    startRssBytes: 0,
    cores: 2,
  });
}

function expected(values: readonly number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p99: quantile(sorted, 0.99),
    max: quantile(sorted, 1),
  };
}

describe('the load test report reads percentiles through quantile()', () => {
  // One slice of time: every reply ends within the first 500 ms.
  const single = report(400, () => 100);
  const want = expected(LATENCIES);

  it('in the summary of the JSON report, for latency and time to first token', () => {
    const json = JSON.parse(JSON.stringify(single)) as LoadtestReport;
    expect(json.latencyMs).toMatchObject({ count: LATENCIES.length, ...want });
    expect(json.ttftMs).toMatchObject(expected(TTFT));
    expect(want.p50).not.toBe(want.p90);
  });

  it('in the time slices', () => {
    expect(single.timeline.latency).toHaveLength(1);
    expect(single.timeline.latency[0]).toMatchObject({ replies: LATENCIES.length, ...want });
  });

  it('in the terminal table and the HTML page', () => {
    const { p50, p90, p99 } = want as { p50: number; p90: number; p99: number };
    expect(formatTable(single)).toContain(
      `p50 ${formatMs(p50)}  p90 ${formatMs(p90)}  p99 ${formatMs(p99)}`,
    );
    expect(renderHtml(single)).toContain(`${formatMs(p50)} / ${formatMs(p99)}`);
  });

  it('slice by slice, each slice is quantile() of the replies that ended in it', () => {
    // Ten slices of 500 ms; reply i ends in slice i % 10.
    const sliced = report(5_000, (i) => (i % 10) * 500 + 250);
    expect(sliced.timeline.latency).toHaveLength(10);
    sliced.timeline.latency.forEach((bucket, slice) => {
      const mine = LATENCIES.filter((_, i) => i % 10 === slice);
      expect(bucket).toMatchObject({ replies: mine.length, ...expected(mine) });
    });
    expect(sliced.latencyMs).toMatchObject(want);
  });
});
