import type { Clock, ClockTimer } from '../clock.js';

interface Pending {
  readonly at: number;
  readonly order: number;
  readonly callback: () => void;
}

/**
 * A clock that moves only when told to, for tests of timeouts, backoff and idle time.
 *
 * @example
 * const clock = new SimulatedClock();
 * const supervisor = new Supervisor({ clock });
 * clock.increment(60_000); // fires every timer due within the next minute, in order
 */
export class SimulatedClock implements Clock {
  #now: number;
  #order = 0;
  readonly #timers = new Map<ClockTimer, Pending>();

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): ClockTimer {
    const timer = { __clockTimer: true } as const;
    this.#timers.set(timer, { at: this.#now + Math.max(0, ms), order: this.#order++, callback });
    return timer;
  }

  clearTimeout(timer: ClockTimer): void {
    this.#timers.delete(timer);
  }

  /** Timers not yet fired. */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** Moves time forward by `ms`, firing due timers in time order (and ones they schedule). */
  increment(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      const next = this.#nextDue(target);
      if (!next) break;
      this.#timers.delete(next[0]);
      this.#now = next[1].at;
      next[1].callback();
    }
    this.#now = target;
  }

  #nextDue(limit: number): [ClockTimer, Pending] | undefined {
    let best: [ClockTimer, Pending] | undefined;
    for (const entry of this.#timers) {
      if (entry[1].at > limit) continue;
      if (
        !best ||
        entry[1].at < best[1].at ||
        (entry[1].at === best[1].at && entry[1].order < best[1].order)
      )
        best = entry;
    }
    return best;
  }
}
