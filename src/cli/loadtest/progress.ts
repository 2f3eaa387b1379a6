/**
 * Progress while a load test runs: a cli-progress bar when the output is a terminal, otherwise
 * one line every few seconds (CI logs, pipes), or nothing.
 */
import cliProgress from 'cli-progress';
import { formatBytes, formatNumber } from './format.js';

/** What the progress shows. */
export interface ProgressView {
  readonly settled: number;
  readonly total: number;
  readonly errors: number;
  readonly lost: number;
  readonly liveWorkers: number | null;
  readonly rssBytes: number;
  /** Settled turns per second over the last interval. */
  readonly rate: number;
}

/** A progress display. */
export interface Progress {
  update(view: ProgressView): void;
  stop(view: ProgressView): void;
}

/** A writable stream as far as progress needs one. */
export type ProgressStream = NodeJS.WritableStream & { readonly isTTY?: boolean };

function payload(view: ProgressView) {
  return {
    rate: formatNumber(view.rate, 1),
    errors: formatNumber(view.errors),
    live: view.liveWorkers === null ? 'n/a' : formatNumber(view.liveWorkers),
    rss: formatBytes(view.rssBytes),
  };
}

/** A bar redrawn in place (cli-progress), for terminals. */
export function barProgress(stream: ProgressStream, total: number): Progress {
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format:
        '  {bar} {value}/{total} turns | {rate} turns/s | errors {errors} | live workers {live} | RSS {rss} | {duration_formatted}',
      hideCursor: true,
      barsize: 24,
      fps: 8,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(
    total,
    0,
    payload({ settled: 0, total, errors: 0, lost: 0, liveWorkers: null, rssBytes: 0, rate: 0 }),
  );
  return {
    update: (view) => bar.update(view.settled, payload(view)),
    stop: (view) => {
      bar.update(view.settled, payload(view));
      bar.stop();
    },
  };
}

/** A line every `everyMs`, and a last one at the end, for logs. */
export function lineProgress(stream: ProgressStream, everyMs: number, label: string): Progress {
  let last = Date.now();
  const line = (view: ProgressView) => {
    const p = payload(view);
    stream.write(
      `${label}: ${formatNumber(view.settled)}/${formatNumber(view.total)} turns, ${p.rate} turns/s, ` +
        `${p.errors} errors${view.lost > 0 ? `, ${formatNumber(view.lost)} unanswered in time` : ''}, ` +
        `live workers ${p.live}, RSS ${p.rss}\n`,
    );
  };
  return {
    update: (view) => {
      const now = Date.now();
      if (now - last < everyMs) return;
      last = now;
      line(view);
    },
    stop: line,
  };
}

/** Shows nothing. */
export const noProgress: Progress = { update: () => {}, stop: () => {} };
