/**
 * How fast sessions of each agent arrive for a worker, per second, as an exponentially decaying
 * average on the runtime's clock: a burst raises it at once, and it fades over tens of seconds
 * once arrivals stop. The warm pool sizes itself from it.
 */
import type { Clock } from '../clock.js';

/** Time constant of the decay: a rate read this long after the last arrival is ~37% of it. */
export const ARRIVAL_TIME_CONSTANT_MS = 10_000;

export class ArrivalRate {
  readonly #clock: Clock;
  readonly #rates = new Map<string, { perSecond: number; at: number }>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** One session of `agent` needed a worker now. */
  record(agent: string): void {
    const now = this.#clock.now();
    this.#rates.set(agent, {
      perSecond: this.#decayed(agent, now) + 1000 / ARRIVAL_TIME_CONSTANT_MS,
      at: now,
    });
  }

  /** Arrivals per second of `agent`, as of now. */
  perSecond(agent: string): number {
    return this.#decayed(agent, this.#clock.now());
  }

  #decayed(agent: string, now: number): number {
    const rate = this.#rates.get(agent);
    if (!rate) return 0;
    return rate.perSecond * Math.exp(-Math.max(0, now - rate.at) / ARRIVAL_TIME_CONSTANT_MS);
  }
}
