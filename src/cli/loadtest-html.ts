/**
 * The load test report as one self-contained HTML page: inline CSS and inline SVG charts drawn
 * here (latency over time, the latency histogram, throughput, memory, live workers and CPU),
 * no script, no font, no image, nothing fetched from a network.
 */
import {
  formatBytes,
  formatMs,
  formatNumber,
  formatTable,
  type LoadtestReport,
} from './loadtest-report.js';

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const WIDTH = 760;
const HEIGHT = 240;
const MARGIN = { left: 60, right: 16, top: 14, bottom: 34 } as const;
const PLOT_W = WIDTH - MARGIN.left - MARGIN.right;
const PLOT_H = HEIGHT - MARGIN.top - MARGIN.bottom;

/** A series of a line chart; NaN y values leave a gap. */
interface Line {
  readonly label: string;
  readonly color: string;
  readonly points: readonly (readonly [number, number])[];
  readonly dashed?: boolean;
  readonly fill?: boolean;
}

/** A step of 1, 2 or 5 × 10^n giving about `ticks` ticks up to `max`. */
function niceStep(max: number, ticks = 5): number {
  const raw = Math.max(max, 1e-9) / ticks;
  const power = 10 ** Math.floor(Math.log10(raw));
  const scaled = raw / power;
  const nice = scaled <= 1 ? 1 : scaled <= 2 ? 2 : scaled <= 5 ? 5 : 10;
  return nice * power;
}

function fmt(value: number): string {
  return Number.isInteger(value) ? formatNumber(value) : formatNumber(value, value < 10 ? 2 : 1);
}

function axes(xMax: number, yMax: number, xUnit: string, yUnit: string): string {
  const parts: string[] = [];
  const yStep = niceStep(yMax);
  for (let y = 0; y <= yMax + 1e-9; y += yStep) {
    const py = MARGIN.top + PLOT_H - (y / yMax) * PLOT_H;
    parts.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + PLOT_W}" y1="${py.toFixed(1)}" y2="${py.toFixed(1)}" class="grid"/>`,
      `<text x="${MARGIN.left - 6}" y="${(py + 4).toFixed(1)}" text-anchor="end">${escapeHtml(fmt(y))}</text>`,
    );
  }
  const xStep = niceStep(xMax, 8);
  for (let x = 0; x <= xMax + 1e-9; x += xStep) {
    const px = MARGIN.left + (x / xMax) * PLOT_W;
    parts.push(
      `<line x1="${px.toFixed(1)}" x2="${px.toFixed(1)}" y1="${MARGIN.top + PLOT_H}" y2="${MARGIN.top + PLOT_H + 4}" class="axis"/>`,
      `<text x="${px.toFixed(1)}" y="${MARGIN.top + PLOT_H + 17}" text-anchor="middle">${escapeHtml(fmt(x))}</text>`,
    );
  }
  parts.push(
    `<line x1="${MARGIN.left}" x2="${MARGIN.left + PLOT_W}" y1="${MARGIN.top + PLOT_H}" y2="${MARGIN.top + PLOT_H}" class="axis"/>`,
    `<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${MARGIN.top + PLOT_H}" class="axis"/>`,
    `<text x="${MARGIN.left + PLOT_W}" y="${HEIGHT - 3}" text-anchor="end" class="unit">${escapeHtml(xUnit)}</text>`,
    `<text x="${MARGIN.left + 4}" y="${MARGIN.top + 10}" class="unit">${escapeHtml(yUnit)}</text>`,
  );
  return parts.join('');
}

function svg(label: string, body: string): string {
  return `<svg viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${escapeHtml(label)}">${body}</svg>`;
}

function legend(lines: readonly { label: string; color: string; dashed?: boolean }[]): string {
  return `<div class="legend">${lines
    .map(
      (line) =>
        `<span><i style="background:${line.color}${line.dashed ? ';opacity:.6' : ''}"></i>${escapeHtml(line.label)}</span>`,
    )
    .join('')}</div>`;
}

/** A line chart of `lines` over x in [0, xMax]. */
function lineChart(options: {
  readonly title: string;
  readonly lines: readonly Line[];
  readonly xMax: number;
  readonly xUnit: string;
  readonly yUnit: string;
}): string {
  const { lines } = options;
  const xMax = Math.max(options.xMax, 1e-6);
  const ys = lines.flatMap((line) => line.points.map(([, y]) => y)).filter(Number.isFinite);
  const yMax = niceCeil(Math.max(1e-6, ...ys));
  const px = (x: number) => (MARGIN.left + (x / xMax) * PLOT_W).toFixed(1);
  const py = (y: number) => (MARGIN.top + PLOT_H - (y / yMax) * PLOT_H).toFixed(1);
  const paths = lines.map((line) => {
    let d = '';
    let open = false;
    for (const [x, y] of line.points) {
      if (!Number.isFinite(y)) {
        open = false;
        continue;
      }
      d += `${open ? 'L' : 'M'}${px(x)} ${py(y)}`;
      open = true;
    }
    const dots =
      line.points.filter(([, y]) => Number.isFinite(y)).length === 1
        ? line.points
            .filter(([, y]) => Number.isFinite(y))
            .map(([x, y]) => `<circle cx="${px(x)}" cy="${py(y)}" r="3" fill="${line.color}"/>`)
            .join('')
        : '';
    const area =
      line.fill && line.points.length > 1
        ? `<path d="M${px(line.points[0]?.[0] ?? 0)} ${py(0)}${line.points
            .map(([x, y]) => `L${px(x)} ${py(Number.isFinite(y) ? y : 0)}`)
            .join(
              '',
            )}L${px(line.points[line.points.length - 1]?.[0] ?? 0)} ${py(0)}Z" fill="${line.color}" opacity=".12"/>`
        : '';
    return `${area}<path d="${d}" fill="none" stroke="${line.color}" stroke-width="1.8"${line.dashed ? ' stroke-dasharray="4 3"' : ''}/>${dots}`;
  });
  return `<figure><figcaption>${escapeHtml(options.title)}</figcaption>${legend(lines)}${svg(
    options.title,
    axes(xMax, yMax, options.xUnit, options.yUnit) + paths.join(''),
  )}</figure>`;
}

function niceCeil(value: number): number {
  const step = niceStep(value);
  return Math.ceil(value / step) * step;
}

function histogramChart(report: LoadtestReport): string {
  const bins = report.timeline.histogram;
  const title = 'Turn latency distribution (replies)';
  if (bins.length === 0)
    return `<figure><figcaption>${title}</figcaption><p>No replies.</p></figure>`;
  const low = bins[0]?.fromMs ?? 0;
  const high = bins[bins.length - 1]?.toMs ?? 1;
  const yMax = niceCeil(Math.max(1, ...bins.map((bin) => bin.count)));
  const barW = PLOT_W / bins.length;
  const bars = bins
    .map((bin, i) => {
      const h = (bin.count / yMax) * PLOT_H;
      const x = MARGIN.left + i * barW;
      return `<rect x="${(x + 1).toFixed(1)}" y="${(MARGIN.top + PLOT_H - h).toFixed(1)}" width="${Math.max(1, barW - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="#2563eb"><title>${escapeHtml(`${fmt(bin.fromMs)}–${fmt(bin.toMs)} ms: ${formatNumber(bin.count)} replies`)}</title></rect>`;
    })
    .join('');
  const marks = (['p50', 'p99'] as const)
    .map((name) => {
      const value = report.latencyMs[name];
      if (high <= low) return '';
      const x = MARGIN.left + ((Math.min(value, high) - low) / (high - low)) * PLOT_W;
      const color = name === 'p50' ? '#16a34a' : '#dc2626';
      return `<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${MARGIN.top}" y2="${MARGIN.top + PLOT_H}" stroke="${color}" stroke-dasharray="4 3"/><text x="${(x + 4).toFixed(1)}" y="${MARGIN.top + 22}" fill="${color}">${name} ${escapeHtml(formatMs(value))}</text>`;
    })
    .join('');
  // The x axis is labelled in ms from the lowest bin: draw it with an offset scale.
  const xStep = niceStep(high - low, 8);
  const ticks: string[] = [];
  for (let v = Math.ceil(low / xStep) * xStep; v <= high + 1e-9; v += xStep) {
    const x = MARGIN.left + ((v - low) / Math.max(high - low, 1e-9)) * PLOT_W;
    ticks.push(
      `<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${MARGIN.top + PLOT_H}" y2="${MARGIN.top + PLOT_H + 4}" class="axis"/><text x="${x.toFixed(1)}" y="${MARGIN.top + PLOT_H + 17}" text-anchor="middle">${escapeHtml(fmt(v))}</text>`,
    );
  }
  const yStep = niceStep(yMax);
  for (let y = 0; y <= yMax + 1e-9; y += yStep) {
    const py = MARGIN.top + PLOT_H - (y / yMax) * PLOT_H;
    ticks.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + PLOT_W}" y1="${py.toFixed(1)}" y2="${py.toFixed(1)}" class="grid"/><text x="${MARGIN.left - 6}" y="${(py + 4).toFixed(1)}" text-anchor="end">${escapeHtml(fmt(y))}</text>`,
    );
  }
  ticks.push(
    `<line x1="${MARGIN.left}" x2="${MARGIN.left + PLOT_W}" y1="${MARGIN.top + PLOT_H}" y2="${MARGIN.top + PLOT_H}" class="axis"/>`,
    `<text x="${MARGIN.left + PLOT_W}" y="${HEIGHT - 3}" text-anchor="end" class="unit">ms</text>`,
    `<text x="${MARGIN.left + 4}" y="${MARGIN.top + 10}" class="unit">replies</text>`,
  );
  return `<figure><figcaption>${title}</figcaption>${svg(title, ticks.join('') + bars + marks)}</figure>`;
}

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
  const { counts, latencyMs, ttftMs, resources, workers, timeline } = report;
  const seconds = (ms: number) => ms / 1000;
  const xMax = seconds(Math.max(report.durationMs, 1));
  const buckets = timeline.latency;
  const mid = (bucket: { fromMs: number; toMs: number }) =>
    seconds((bucket.fromMs + bucket.toMs) / 2);
  const latencyLines: Line[] = [
    {
      label: 'p90',
      color: '#f59e0b',
      points: buckets.map((b) => [mid(b), b.replies > 0 ? b.p90 : Number.NaN]),
    },
    {
      label: 'p99',
      color: '#dc2626',
      points: buckets.map((b) => [mid(b), b.replies > 0 ? b.p99 : Number.NaN]),
    },
    {
      label: 'p50',
      color: '#2563eb',
      points: buckets.map((b) => [mid(b), b.replies > 0 ? b.p50 : Number.NaN]),
    },
  ];
  const throughputLines: Line[] = [
    {
      label: 'replies/s',
      color: '#16a34a',
      fill: true,
      points: buckets.map((b) => [mid(b), b.replies / Math.max(seconds(b.toMs - b.fromMs), 1e-3)]),
    },
    {
      label: 'errors/s',
      color: '#dc2626',
      points: buckets.map((b) => [mid(b), b.errors / Math.max(seconds(b.toMs - b.fromMs), 1e-3)]),
    },
  ];
  const samples = timeline.samples;
  const rssLines: Line[] = [
    {
      label: 'RSS (MiB)',
      color: '#7c3aed',
      fill: true,
      points: samples.map((s) => [seconds(s.tMs), s.rssBytes / (1024 * 1024)]),
    },
  ];
  const hasLive = samples.some((s) => s.liveWorkers !== null);
  const liveLines: Line[] = [
    ...(hasLive
      ? [
          {
            label: 'live session workers',
            color: '#0891b2',
            fill: true,
            points: samples.map((s): [number, number] => [
              seconds(s.tMs),
              s.liveWorkers ?? Number.NaN,
            ]),
          },
        ]
      : []),
    {
      label: 'turns in flight',
      color: '#ea580c',
      points: samples.map((s) => [seconds(s.tMs), s.inFlight]),
    },
  ];
  const cpuLines: Line[] = [
    {
      label: 'CPU (% of one core)',
      color: '#db2777',
      fill: true,
      points: samples.map((s) => [seconds(s.tMs), s.cpuPercent]),
    },
  ];
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
${lineChart({ title: 'Turn latency over time (replies, by when they ended)', lines: latencyLines, xMax, xUnit: 's since the first send', yUnit: 'ms' })}
${histogramChart(report)}
${lineChart({ title: 'Throughput', lines: throughputLines, xMax, xUnit: 's since the first send', yUnit: 'per s' })}
${lineChart({ title: 'Resident memory of the process', lines: rssLines, xMax, xUnit: 's since the first send', yUnit: 'MiB' })}
${lineChart({ title: hasLive ? 'Live session workers and turns in flight' : 'Turns in flight', lines: liveLines, xMax, xUnit: 's since the first send', yUnit: 'count' })}
${lineChart({ title: 'CPU of the process (all threads)', lines: cpuLines, xMax, xUnit: 's since the first send', yUnit: '% of one core' })}
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
