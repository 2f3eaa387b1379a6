/**
 * The load test report as one self-contained HTML page: inline CSS, the charts as inline SVG,
 * no script, no font, no image, nothing fetched from a network.
 */
import { formatBytes, formatMs, formatNumber } from '../format.js';
import type { LoadtestReport } from '../report.js';
import { formatTable } from '../table.js';
import { escapeHtml } from './escape.js';
import { reportCharts } from './report-charts.js';

function card(label: string, value: string, tone: 'ok' | 'bad' | 'plain' = 'plain'): string {
  return `<div class="card ${tone}"><div class="label">${escapeHtml(label)}</div><div class="value">${escapeHtml(value)}</div></div>`;
}

function table(rows: readonly (readonly [string, string])[]): string {
  return `<table>${rows
    .map(([key, value]) => `<tr><th>${escapeHtml(key)}</th><td>${escapeHtml(value)}</td></tr>`)
    .join('')}</table>`;
}

/** Renders the report as a self-contained HTML page. */
export function renderHtml(report: LoadtestReport): string {
  const { counts, latencyMs, ttftMs, resources, workers } = report;
  const pass = report.verdict === 'pass';
  const cards = [
    card('result', pass ? 'PASS' : 'FAIL', pass ? 'ok' : 'bad'),
    card('throughput', `${formatNumber(report.throughput.repliesPerSecond, 1)} replies/s`),
    card('latency p50 / p99', `${formatMs(latencyMs.p50)} / ${formatMs(latencyMs.p99)}`),
    card('first token p50 / p99', `${formatMs(ttftMs.p50)} / ${formatMs(ttftMs.p99)}`),
    card(
      'replies / errors / lost',
      `${formatNumber(counts.replies)} / ${formatNumber(counts.errors)} / ${formatNumber(counts.lost)}`,
      counts.lost > 0 ? 'bad' : counts.errors > 0 ? 'plain' : 'ok',
    ),
    card('peak RSS', formatBytes(resources.peakRssBytes)),
    workers?.placement === 'pooled'
      ? card('placement', 'pooled')
      : card(
          'workers started / crashed',
          workers ? `${formatNumber(workers.starts)} / ${formatNumber(workers.crashes)}` : 'n/a',
        ),
    card('duration', formatMs(report.durationMs)),
  ].join('');
  const errorRows = Object.entries(report.errorsByCode).map(
    ([code, count]) => [code, formatNumber(count)] as const,
  );
  const lostRows = Object.entries(report.lostByReason).map(
    ([reason, count]) => [reason, formatNumber(count)] as const,
  );
  const failRows = report.failOn.map(
    (outcome) => [outcome.expr, `${outcome.actual} → ${outcome.failed ? 'FAIL' : 'ok'}`] as const,
  );
  const configRows = Object.entries(report.config)
    .filter(([, value]) => value !== null)
    .map(([key, value]) => [key, String(value)] as const);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(report.title)} — ${escapeHtml(pass ? 'PASS' : 'FAIL')}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f8fafc;color:#0f172a}
main{max-width:1600px;margin:0 auto;padding:20px 24px 40px}
h1{font-size:20px;margin:0 0 2px}h2{font-size:16px;margin:28px 0 8px}
.sub{color:#475569;margin:0 0 16px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:10px}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:10px 12px}
.card .label{color:#64748b;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .value{font-size:19px;font-weight:600;margin-top:2px}
.card.ok{border-color:#86efac;background:#f0fdf4}.card.bad{border-color:#fca5a5;background:#fef2f2}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:14px}
figure{margin:0;background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:10px 12px}
figcaption{font-weight:600;margin-bottom:4px}
svg{width:100%;height:auto;display:block}
svg text{font-size:11px;fill:#475569}svg text.unit{fill:#94a3b8}
svg .grid{stroke:#eef2f7}svg .axis{stroke:#94a3b8}
.legend{display:flex;gap:14px;font-size:12px;color:#475569}
.legend i{display:inline-block;width:12px;height:3px;margin-right:5px;vertical-align:middle}
table{border-collapse:collapse;background:#fff;border:1px solid #e2e8f0;min-width:420px}
th,td{text-align:left;padding:5px 10px;border-bottom:1px solid #eef2f7;vertical-align:top}
th{color:#475569;font-weight:500;white-space:nowrap}
.tables{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
pre{background:#0f172a;color:#e2e8f0;padding:12px;border-radius:8px;overflow:auto;font-size:12px}
.fail{color:#b91c1c;font-weight:600}
</style>
</head>
<body>
<main>
<h1>${escapeHtml(report.title)}</h1>
<p class="sub">${escapeHtml(report.target.description)}<br>started ${escapeHtml(report.startedAt)}; ${escapeHtml(
    `${formatNumber(counts.sessions)} sessions × ${formatNumber(report.config.turns)} turns, concurrency ${formatNumber(report.config.concurrency)}`,
  )}</p>
${pass ? '' : `<p class="fail">FAIL: ${escapeHtml(report.reasons.join('; '))}</p>`}
<div class="cards">${cards}</div>
<h2>Over time</h2>
<div class="charts">
${reportCharts(report).join('\n')}
</div>
<h2>Details</h2>
<div class="tables">
${table([
  ['turns sent', formatNumber(counts.turnsSent)],
  ['replies', formatNumber(counts.replies)],
  ['typed errors', formatNumber(counts.errors)],
  ['lost', formatNumber(counts.lost)],
  ['answered after the turn timeout', formatNumber(counts.late)],
  [
    'latency p50 / p90 / p99 / max',
    [latencyMs.p50, latencyMs.p90, latencyMs.p99, latencyMs.max].map(formatMs).join(' / '),
  ],
  ['first token p50 / p99', `${formatMs(ttftMs.p50)} / ${formatMs(ttftMs.p99)}`],
  ['CPU user / system', `${formatMs(resources.cpuUserMs)} / ${formatMs(resources.cpuSystemMs)}`],
  [
    'CPU average / peak',
    `${formatNumber(resources.cpuAvgPercent)}% / ${formatNumber(resources.cpuPeakPercent)}% of one core (${resources.cores} cores)`,
  ],
  ['memory and CPU', resources.note],
])}
${table(errorRows.length > 0 ? errorRows : [['errors by code', 'none']])}
${lostRows.length > 0 ? table(lostRows) : ''}
${failRows.length > 0 ? table(failRows) : ''}
${table(configRows)}
</div>
<h2>Terminal report</h2>
<pre>${escapeHtml(formatTable(report))}</pre>
</main>
</body>
</html>
`;
}
