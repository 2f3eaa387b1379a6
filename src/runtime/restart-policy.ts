import type { Clock } from '../clock.js';

export interface RestartOptions {
  /** Restarts allowed within `windowMs`; one more fails the session. @default 5 */
  readonly maxRestarts: number;
  /** @default 60000 */
  readonly windowMs: number;
  /** Delay before the first restart in a window, doubled for each further one. @default 100 */
  readonly backoffMs: number;
  /** @default 5000 */
  readonly maxBackoffMs: number;
}

/**
 * Bounded restarts per time window with exponential backoff, as an OTP supervisor does: a
 * session that keeps crashing is failed instead of restarted forever.
 */
export class RestartPolicy {
  readonly #options: RestartOptions;
  readonly #clock: Clock;
  #crashes: number[] = [];
  #total = 0;

  constructor(options: RestartOptions, clock: Clock) {
    this.#options = options;
    this.#clock = clock;
  }

  /** Records a crash; returns the delay before the restart, or undefined to give up. */
  onCrash(): number | undefined {
    const now = this.#clock.now();
    this.#crashes = this.#crashes.filter((at) => now - at < this.#options.windowMs);
    this.#crashes.push(now);
    if (this.#crashes.length > this.#options.maxRestarts) return undefined;
    this.#total++;
    return Math.min(
      this.#options.backoffMs * 2 ** (this.#crashes.length - 1),
      this.#options.maxBackoffMs,
    );
  }

  /** Restarts granted so far. */
  get restarts(): number {
    return this.#total;
  }
}
