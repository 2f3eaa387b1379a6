/**
 * The mock LLM's latency model: a stream's first chunk comes after `firstTokenMs`, then one
 * chunk per token at `tokensPerSecond`; a JSON response waits the same total time.
 */

/**
 * Response pacing. Streams send their first chunk after `firstTokenMs`, then one ~4-character
 * chunk per token at `tokensPerSecond`; JSON responses wait the same total time.
 */
export interface MockLatency {
  readonly firstTokenMs?: number;
  /** 0 or undefined: no delay between chunks. */
  readonly tokensPerSecond?: number;
}

/** How long a JSON response of `tokens` tokens waits before it is sent. */
export function totalDelayMs(latency: MockLatency, tokens: number): number {
  const first = Math.max(0, latency.firstTokenMs ?? 0);
  const tps = latency.tokensPerSecond ?? 0;
  return tps > 0 ? first + (tokens * 1000) / tps : first;
}

/**
 * When each frame of one stream is due, measured from its start, so timer lag never slows the
 * whole stream down: a late tick sends every frame that is due by then.
 */
export class FramePacing {
  /** Before the first frame. */
  readonly firstMs: number;
  readonly #interval: number;
  readonly #start: number;

  constructor(latency: MockLatency, now: number) {
    this.firstMs = Math.max(0, latency.firstTokenMs ?? 0);
    const tps = latency.tokensPerSecond ?? 0;
    this.#interval = tps > 0 ? 1000 / tps : 0;
    this.#start = now + this.firstMs;
  }

  /** Whether frame `index` (0-based) is due at `now`. */
  isDue(index: number, now: number): boolean {
    return this.#interval === 0 || index <= (now - this.#start) / this.#interval;
  }

  /** Milliseconds from `now` until frame `index` is due. */
  delayUntil(index: number, now: number): number {
    return this.#start + index * this.#interval - now;
  }
}
