/** The load test report as the terminal table (the summary printed without `--json`). */
import { formatBytes, formatMs, formatNumber } from './format.js';
import type { LoadtestReport } from './report.js';

function plural(count: number, word: string, many = `${word}s`): string {
  return `${formatNumber(count)} ${count === 1 ? word : many}`;
}

function byCode(counts: Readonly<Record<string, number>>): string {
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  return entries.length === 0
    ? 'none'
    : entries.map(([code, count]) => `${code} ×${formatNumber(count)}`).join(', ');
}

function workerRows(workers: NonNullable<LoadtestReport['workers']>): [string, string][] {
  const w = workers;
  return [
    [
      'workers',
      w.placement === 'pooled'
        ? `pooled placement (shared thread pool, no worker per session); ${plural(w.restarts, 'restart')}, ${plural(w.crashes, 'crash', 'crashes')}`
        : `${formatNumber(w.starts)} started (${formatNumber(w.warmStarts)} from the warm pool), ` +
          `${plural(w.restarts, 'restart')}, ${formatNumber(w.crashes)} crashes, ` +
          `peak ${formatNumber(w.peakLive)} live (limit ${formatNumber(w.maxLiveSessions)}), ` +
          `${formatNumber(w.passivations)} passivated`,
    ],
    [
      'tool calls',
      `${formatNumber(w.toolCallsRun)} host tool calls run, ${formatNumber(w.mcpToolCallsRun)} MCP tool calls answered`,
    ],
  ];
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
  if (w) rows.push(...workerRows(w));
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
