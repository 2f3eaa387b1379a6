/**
 * What a run measures while it goes, cheap enough to feed from every send: every reply's
 * latency and time to first token (raw, so percentiles are exact), typed errors by code, lost
 * turns by reason, and resource samples.
 */

/** One reading of the process while the run goes. */
export interface Sample {
  /** Milliseconds since the first send. */
  readonly tMs: number;
  readonly rssBytes: number;
  /** Live session workers (embedded dedicated placement), null when not known. */
  readonly liveWorkers: number | null;
  /** Sends not settled yet. */
  readonly inFlight: number;
  /** Sends settled so far (replies and typed errors). */
  readonly settled: number;
  readonly errors: number;
  /** CPU of the whole process since the previous sample, % of one core. */
  readonly cpuPercent: number;
}

/** Samples kept at most; past it neighbours are merged, so a long run stays small. */
const MAX_SAMPLES = 2_000;

/** Collects what a run measures. */
export class Recorder {
  /** Per reply: when it ended (ms since start) and its latency (ms). */
  readonly replyAt: number[] = [];
  readonly replyMs: number[] = [];
  /** Send → first text delta, for replies that carried text. */
  readonly ttftMs: number[] = [];
  readonly errorAt: number[] = [];
  readonly samples: Sample[] = [];
  readonly errorsByCode: Record<string, number> = {};
  readonly lostByReason: Record<string, number> = {};
  sent = 0;
  errors = 0;
  late = 0;

  get replies(): number {
    return this.replyMs.length;
  }

  /** A reply: its latency and, when text arrived, its time to first token. */
  reply(atMs: number, latencyMs: number, ttftMs: number | undefined): void {
    this.replyAt.push(atMs);
    this.replyMs.push(latencyMs);
    if (ttftMs !== undefined) this.ttftMs.push(ttftMs);
  }

  error(atMs: number, code: string): void {
    this.errors++;
    this.errorAt.push(atMs);
    this.errorsByCode[code] = (this.errorsByCode[code] ?? 0) + 1;
  }

  lost(reason: string, count = 1): void {
    this.lostByReason[reason] = (this.lostByReason[reason] ?? 0) + count;
  }

  /** Keeps at most {@link MAX_SAMPLES} samples by merging neighbours when there are too many. */
  sample(sample: Sample): void {
    this.samples.push(sample);
    if (this.samples.length <= MAX_SAMPLES) return;
    const merged: Sample[] = [];
    for (let i = 0; i < this.samples.length; i += 2) {
      const a = this.samples[i] as Sample;
      const b = this.samples[i + 1];
      merged.push(
        b
          ? {
              ...b,
              rssBytes: Math.max(a.rssBytes, b.rssBytes),
              cpuPercent: (a.cpuPercent + b.cpuPercent) / 2,
            }
          : a,
      );
    }
    this.samples.splice(0, this.samples.length, ...merged);
  }
}
