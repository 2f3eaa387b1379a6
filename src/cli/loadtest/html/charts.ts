/**
 * Inline SVG charts drawn by hand (no script, no library, nothing fetched): line charts over
 * the run's time, and a histogram with marks at chosen values.
 */
import { formatMs, formatNumber } from '../format.js';
import type { HistogramBin } from '../latency.js';
import { escapeHtml } from './escape.js';

const WIDTH = 760;
const HEIGHT = 240;
const MARGIN = { left: 60, right: 16, top: 14, bottom: 34 } as const;
const PLOT_W = WIDTH - MARGIN.left - MARGIN.right;
const PLOT_H = HEIGHT - MARGIN.top - MARGIN.bottom;
const PLOT_BOTTOM = MARGIN.top + PLOT_H;

/** A series of a line chart; NaN y values leave a gap. */
export interface Line {
  readonly label: string;
  readonly color: string;
  readonly points: readonly (readonly [number, number])[];
  readonly dashed?: boolean;
  readonly fill?: boolean;
}

/** A vertical mark on a histogram, labelled with its name and value in ms. */
export interface Mark {
  readonly name: string;
  readonly valueMs: number;
  readonly color: string;
}

/** A step of 1, 2 or 5 × 10^n giving about `ticks` ticks up to `max`. */
function niceStep(max: number, ticks = 5): number {
  const raw = Math.max(max, 1e-9) / ticks;
  const power = 10 ** Math.floor(Math.log10(raw));
  const scaled = raw / power;
  const nice = scaled <= 1 ? 1 : scaled <= 2 ? 2 : scaled <= 5 ? 5 : 10;
  return nice * power;
}

function niceCeil(value: number): number {
  const step = niceStep(value);
  return Math.ceil(value / step) * step;
}

function fmt(value: number): string {
  return Number.isInteger(value) ? formatNumber(value) : formatNumber(value, value < 10 ? 2 : 1);
}

/** Maps x in [xMin, xMax] and y in [0, yMax] onto the plot area. */
interface Scale {
  readonly xMin: number;
  readonly xMax: number;
  readonly yMax: number;
}

function toPx(scale: Scale, x: number): number {
  return MARGIN.left + ((x - scale.xMin) / Math.max(scale.xMax - scale.xMin, 1e-9)) * PLOT_W;
}

function toPy(scale: Scale, y: number): number {
  return PLOT_BOTTOM - (y / scale.yMax) * PLOT_H;
}

/** Grid lines and y labels, x ticks from the first round value past xMin, axis lines, units. */
function axes(scale: Scale, xUnit: string, yUnit: string): string {
  const parts: string[] = [];
  const yStep = niceStep(scale.yMax);
  for (let y = 0; y <= scale.yMax + 1e-9; y += yStep) {
    const py = toPy(scale, y).toFixed(1);
    parts.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + PLOT_W}" y1="${py}" y2="${py}" class="grid"/>`,
      `<text x="${MARGIN.left - 6}" y="${(Number(py) + 4).toFixed(1)}" text-anchor="end">${escapeHtml(fmt(y))}</text>`,
    );
  }
  const xStep = niceStep(scale.xMax - scale.xMin, 8);
  for (let x = Math.ceil(scale.xMin / xStep) * xStep; x <= scale.xMax + 1e-9; x += xStep) {
    const px = toPx(scale, x).toFixed(1);
    parts.push(
      `<line x1="${px}" x2="${px}" y1="${PLOT_BOTTOM}" y2="${PLOT_BOTTOM + 4}" class="axis"/>`,
      `<text x="${px}" y="${PLOT_BOTTOM + 17}" text-anchor="middle">${escapeHtml(fmt(x))}</text>`,
    );
  }
  parts.push(
    `<line x1="${MARGIN.left}" x2="${MARGIN.left + PLOT_W}" y1="${PLOT_BOTTOM}" y2="${PLOT_BOTTOM}" class="axis"/>`,
    `<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${PLOT_BOTTOM}" class="axis"/>`,
    `<text x="${MARGIN.left + PLOT_W}" y="${HEIGHT - 3}" text-anchor="end" class="unit">${escapeHtml(xUnit)}</text>`,
    `<text x="${MARGIN.left + 4}" y="${MARGIN.top + 10}" class="unit">${escapeHtml(yUnit)}</text>`,
  );
  return parts.join('');
}

function figure(title: string, above: string, body: string): string {
  return `<figure><figcaption>${escapeHtml(title)}</figcaption>${above}<svg viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${escapeHtml(title)}">${body}</svg></figure>`;
}

function legend(lines: readonly Line[]): string {
  return `<div class="legend">${lines
    .map(
      (line) =>
        `<span><i style="background:${line.color}${line.dashed ? ';opacity:.6' : ''}"></i>${escapeHtml(line.label)}</span>`,
    )
    .join('')}</div>`;
}

/** One series: its path (gaps at NaN), a dot when it has a single point, its area if filled. */
function series(line: Line, scale: Scale): string {
  const px = (x: number) => toPx(scale, x).toFixed(1);
  const py = (y: number) => toPy(scale, y).toFixed(1);
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
  const finite = line.points.filter(([, y]) => Number.isFinite(y));
  const dots =
    finite.length === 1
      ? finite
          .map(([x, y]) => `<circle cx="${px(x)}" cy="${py(y)}" r="3" fill="${line.color}"/>`)
          .join('')
      : '';
  const first = line.points[0]?.[0] ?? 0;
  const last = line.points[line.points.length - 1]?.[0] ?? 0;
  const edge = line.points.map(([x, y]) => `L${px(x)} ${py(Number.isFinite(y) ? y : 0)}`);
  const area =
    line.fill && line.points.length > 1
      ? `<path d="M${px(first)} ${py(0)}${edge.join('')}L${px(last)} ${py(0)}Z" fill="${line.color}" opacity=".12"/>`
      : '';
  return `${area}<path d="${d}" fill="none" stroke="${line.color}" stroke-width="1.8"${line.dashed ? ' stroke-dasharray="4 3"' : ''}/>${dots}`;
}

/** A line chart of `lines` over x in [0, xMax]. */
export function lineChart(options: {
  readonly title: string;
  readonly lines: readonly Line[];
  readonly xMax: number;
  readonly xUnit: string;
  readonly yUnit: string;
}): string {
  const { lines } = options;
  const ys = lines.flatMap((line) => line.points.map(([, y]) => y)).filter(Number.isFinite);
  const scale = {
    xMin: 0,
    xMax: Math.max(options.xMax, 1e-6),
    yMax: niceCeil(Math.max(1e-6, ...ys)),
  };
  const paths = lines.map((line) => series(line, scale)).join('');
  return figure(options.title, legend(lines), axes(scale, options.xUnit, options.yUnit) + paths);
}

/** Bars of a latency histogram (x in ms from the lowest bin), with vertical marks. */
export function histogramChart(options: {
  readonly title: string;
  readonly bins: readonly HistogramBin[];
  readonly marks: readonly Mark[];
  readonly unit: string;
}): string {
  const { bins, title } = options;
  if (bins.length === 0) {
    return `<figure><figcaption>${escapeHtml(title)}</figcaption><p>No replies.</p></figure>`;
  }
  const low = bins[0]?.fromMs ?? 0;
  const high = bins[bins.length - 1]?.toMs ?? 1;
  const scale = { xMin: low, xMax: high, yMax: niceCeil(Math.max(1, ...bins.map((b) => b.count))) };
  const barW = PLOT_W / bins.length;
  const bars = bins
    .map((bin, i) => {
      const h = (bin.count / scale.yMax) * PLOT_H;
      const x = MARGIN.left + i * barW;
      const tip = `${fmt(bin.fromMs)}–${fmt(bin.toMs)} ms: ${formatNumber(bin.count)} ${options.unit}`;
      return `<rect x="${(x + 1).toFixed(1)}" y="${(PLOT_BOTTOM - h).toFixed(1)}" width="${Math.max(1, barW - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="#2563eb"><title>${escapeHtml(tip)}</title></rect>`;
    })
    .join('');
  const marks =
    high <= low
      ? ''
      : options.marks
          .map(({ name, valueMs, color }) => {
            const x = toPx(scale, Math.min(valueMs, high)).toFixed(1);
            return `<line x1="${x}" x2="${x}" y1="${MARGIN.top}" y2="${PLOT_BOTTOM}" stroke="${color}" stroke-dasharray="4 3"/><text x="${(Number(x) + 4).toFixed(1)}" y="${MARGIN.top + 22}" fill="${color}">${escapeHtml(`${name} ${formatMs(valueMs)}`)}</text>`;
          })
          .join('');
  return figure(title, '', axes(scale, 'ms', options.unit) + bars + marks);
}
