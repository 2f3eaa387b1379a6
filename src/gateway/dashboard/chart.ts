/** The turn latency chart: the tenant's last 60 turns as bars, with p50, p95 and max. */
import { $, axis, clear, ms, svg } from './dom.js';
import { latencyOf } from './latency.js';
import { state } from './state.js';

const BARS = 60;

export function renderChart(): void {
  const chart = $('chart');
  clear(chart);
  const turns = state.turns.slice(-BARS);
  const latency = latencyOf(turns.map((turn) => turn.durationMs));
  const W = Math.max(320, Math.round(chart.getBoundingClientRect().width) || 640);
  const H = 200;
  const L = 54;
  const B = 22;
  const T = 10;
  chart.setAttribute('viewBox', `0 0 ${W} ${H}`);
  const max = Math.max(100, (latency.max ?? 0) * 1.1);
  const slots = Math.max(24, turns.length);
  for (const f of [0, 0.5, 1]) {
    const y = T + (H - T - B) * (1 - f);
    chart.append(svg('line', { x1: L, x2: W, y1: y, y2: y, stroke: '#e3e6eb', 'stroke-width': 1 }));
    const label = svg('text', {
      x: L - 6,
      y: y + 4,
      'text-anchor': 'end',
      'font-size': 11,
      fill: '#5f6b7a',
    });
    label.textContent = axis(max * f);
    chart.append(label);
  }
  const slot = (W - L) / slots;
  turns.forEach((turn, i) => {
    const h = Math.max(2, (H - T - B) * (turn.durationMs / max));
    const bar = svg('rect', {
      x: L + i * slot + slot * 0.15,
      y: H - B - h,
      width: slot * 0.7,
      height: h,
      rx: 2,
      fill: turn.outcome === 'ok' ? '#0f9d76' : '#d1343e',
    });
    bar.classList.add('bar');
    const title = svg('title', {});
    title.textContent = `${turn.key}: ${turn.outcome} in ${ms(turn.durationMs)}`;
    bar.append(title);
    chart.append(bar);
  });
  const caption = svg('text', { x: L, y: H - 6, 'font-size': 11, fill: '#5f6b7a' });
  caption.textContent = turns.length ? 'oldest first' : 'no turns yet';
  chart.append(caption);
  $('p50').textContent = ms(latency.p50);
  $('p95').textContent = ms(latency.p95);
  $('pmax').textContent = ms(latency.max);
  $('pcount').textContent = String(state.turns.length);
}
