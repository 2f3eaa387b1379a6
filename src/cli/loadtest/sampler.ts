/**
 * Readings of the process while a run goes (RSS, CPU, live workers, sends in flight), recorded
 * every quarter second for the report's charts and shown by the progress display.
 */
import type { LoadDriver } from './driver.js';
import type { Progress, ProgressView } from './progress.js';
import type { Recorder } from './recorder.js';
import type { LoadTarget } from './target.js';

const SAMPLE_EVERY_MS = 250;
/** The progress rate is the settled turns per second over this last window. */
const RATE_WINDOW_MS = 2_000;

/** Samples the run until stopped, and keeps the progress display up to date. */
export class Sampler {
  readonly #driver: LoadDriver;
  readonly #target: LoadTarget;
  readonly #recorder: Recorder;
  readonly #progress: Progress;
  readonly #total: number;
  readonly #recent: { t: number; settled: number }[] = [];
  #lastCpu = process.cpuUsage();
  #lastAt: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    driver: LoadDriver,
    target: LoadTarget,
    recorder: Recorder,
    progress: Progress,
    total: number,
  ) {
    this.#driver = driver;
    this.#target = target;
    this.#recorder = recorder;
    this.#progress = progress;
    this.#total = total;
    this.#lastAt = driver.now();
  }

  /** Takes a first sample, then one every {@link SAMPLE_EVERY_MS}. */
  start(): void {
    this.#sample();
    this.#timer = setInterval(() => this.#progress.update(this.#sample()), SAMPLE_EVERY_MS);
  }

  /** Stops sampling; with `last`, takes a last sample and closes the progress display with it. */
  stop(last: boolean): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (last) this.#progress.stop(this.#sample());
  }

  #view(): ProgressView {
    const settled = this.#driver.settled;
    const t = this.#driver.now();
    const recent = this.#recent;
    recent.push({ t, settled });
    while (recent.length > 1 && t - (recent[0]?.t ?? t) > RATE_WINDOW_MS) recent.shift();
    const oldest = recent[0] ?? { t, settled };
    const rate = t > oldest.t ? ((settled - oldest.settled) * 1000) / (t - oldest.t) : 0;
    return {
      settled,
      total: this.#total,
      errors: this.#recorder.errors,
      lost: this.#driver.unanswered,
      liveWorkers: this.#target.liveWorkers() ?? null,
      rssBytes: process.memoryUsage.rss(),
      rate,
    };
  }

  #sample(): ProgressView {
    const current = this.#view();
    const t = this.#driver.now();
    const cpu = process.cpuUsage(this.#lastCpu);
    const cpuPercent =
      t > this.#lastAt ? ((cpu.user + cpu.system) / 1000 / (t - this.#lastAt)) * 100 : 0;
    this.#lastCpu = process.cpuUsage();
    this.#lastAt = t;
    this.#recorder.sample({
      tMs: Math.round(t),
      rssBytes: current.rssBytes,
      liveWorkers: current.liveWorkers,
      inFlight: this.#driver.inFlight,
      settled: current.settled,
      errors: current.errors,
      cpuPercent: Math.round(cpuPercent),
    });
    return current;
  }
}
