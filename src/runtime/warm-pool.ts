/**
 * Pre-booted workers, prepared per registered agent (blueprint decoded, tools loaded, agent
 * template built), so activating a session is one round trip plus its journal instead of a
 * thread start. Refilled in the background one worker at a time, and only while no turn is
 * waiting for admission, so refilling never competes with turns for more than one core.
 *
 * How many are kept: the agent's configured size, raised while sessions arrive faster than
 * that covers (`demand`, from the arrival rate), and trimmed back once arrivals fade.
 */
import type { Clock } from '../clock.js';
import type { DedicatedRunner } from './placement/dedicated.js';

/** How long after a take the refill starts. */
const REFILL_DELAY_MS = 200;
/** How often a pool held above its configured size looks again whether arrivals faded. */
const TRIM_CHECK_MS = 10_000;

export interface WarmPoolOptions {
  /** Prepares one worker for an agent. */
  readonly prepare: (agent: string) => Promise<DedicatedRunner>;
  /** Whether one more worker may start now (ceiling, memory). */
  readonly canGrow: () => boolean;
  /** Whether turns are waiting for CPU (admission); refilling waits for them. */
  readonly isUnderPressure: () => boolean;
  /** Reports a failed prepare (the pool stops refilling that agent until the next take). */
  readonly onError: (agent: string, error: unknown) => void;
  /** Workers the agent's arrivals call for now (0 if none); the pool keeps the larger size. */
  readonly demand?: ((agent: string) => number) | undefined;
  /** Schedules the checks that trim a pool once arrivals fade. */
  readonly clock: Clock;
}

export class WarmPool {
  readonly #options: WarmPoolOptions;
  readonly #ready = new Map<string, DedicatedRunner[]>();
  readonly #target = new Map<string, number>();
  readonly #failed = new Set<string>();
  #refilling: Promise<void> | undefined;
  #closed = false;
  #kickedWhileRefilling = false;
  #trimCheck = false;
  #preparing = 0;
  #hits = 0;
  #misses = 0;

  constructor(options: WarmPoolOptions) {
    this.#options = options;
  }

  /** Keeps `size` prepared workers for `agent` (replacing any prepared for an older blueprint). */
  setTarget(agent: string, size: number): void {
    for (const runner of this.#ready.get(agent) ?? []) void runner.terminate();
    this.#ready.set(agent, []);
    this.#target.set(agent, size);
    this.#failed.delete(agent);
    this.kick();
  }

  /** A prepared worker for `agent`, if one is ready (a hit); undefined means cold start. */
  take(agent: string): DedicatedRunner | undefined {
    const runner = this.#ready.get(agent)?.pop();
    if (runner) this.#hits++;
    else this.#misses++;
    this.#failed.delete(agent);
    // Refilling right away would compete with the first turn of the session just activated
    // (two cores): give that turn a head start.
    const timer = setTimeout(() => this.kick(), REFILL_DELAY_MS);
    timer.unref();
    return runner;
  }

  /** Prepared workers waiting, over all agents. */
  get size(): number {
    let size = 0;
    for (const runners of this.#ready.values()) size += runners.length;
    return size;
  }

  get hits(): number {
    return this.#hits;
  }

  get misses(): number {
    return this.#misses;
  }

  /** Workers being prepared right now (they count against the live ceiling too). */
  get preparing(): number {
    return this.#preparing;
  }

  /** Ready workers of `agent`. */
  readyFor(agent: string): number {
    return this.#ready.get(agent)?.length ?? 0;
  }

  /** Gives back one prepared worker of an agent other than `forAgent`; false if none. */
  async evict(forAgent: string | undefined): Promise<boolean> {
    for (const [agent, list] of this.#ready) {
      if (agent === forAgent) continue;
      const runner = list.pop();
      if (runner) {
        await runner.terminate();
        return true;
      }
    }
    return false;
  }

  /** Starts refilling if anything is missing (idempotent; one refill loop at a time). */
  kick(): void {
    if (this.#closed) return;
    this.#trim();
    if (this.#refilling) {
      // The running loop may already have decided there is nothing to do: look again after it.
      this.#kickedWhileRefilling = true;
      return;
    }
    this.#refilling = this.#refill().finally(() => {
      this.#refilling = undefined;
      // A pool filled above its configured size needs its check that arrivals faded.
      this.#trim();
      if (this.#kickedWhileRefilling) {
        this.#kickedWhileRefilling = false;
        this.kick();
      }
    });
  }

  async #refill(): Promise<void> {
    for (;;) {
      const agent = this.#nextMissing();
      if (agent === undefined || this.#closed) return;
      if (this.#options.isUnderPressure() || !this.#options.canGrow()) return;
      try {
        this.#preparing++;
        const runner = await this.#options.prepare(agent).finally(() => {
          this.#preparing--;
        });
        if (this.#closed || !this.#target.has(agent)) {
          await runner.terminate();
          return;
        }
        const ready = this.#ready.get(agent) ?? [];
        ready.push(runner);
        this.#ready.set(agent, ready);
        // A warm worker that dies while waiting is simply dropped from the pool.
        void runner.exited.then(() => {
          const list = this.#ready.get(agent);
          const index = list?.indexOf(runner) ?? -1;
          if (list && index >= 0) list.splice(index, 1);
        });
      } catch (error) {
        this.#failed.add(agent);
        this.#options.onError(agent, error);
      }
    }
  }

  /**
   * Workers to keep for `agent` now: its configured size, or more while arrivals call for it;
   * none for an agent configured with 0 (the pool is off for it).
   */
  targetFor(agent: string): number {
    const configured = this.#target.get(agent) ?? 0;
    if (configured === 0) return 0;
    return Math.max(configured, this.#options.demand?.(agent) ?? 0);
  }

  #nextMissing(): string | undefined {
    for (const agent of this.#target.keys()) {
      if (this.#failed.has(agent)) continue;
      if ((this.#ready.get(agent)?.length ?? 0) < this.targetFor(agent)) return agent;
    }
    return undefined;
  }

  /**
   * Gives back the workers above each agent's target and, while any pool is above its
   * configured size, looks again later: arrivals fade without an event to say so.
   */
  #trim(): void {
    let above = false;
    for (const [agent, list] of this.#ready) {
      const target = this.targetFor(agent);
      while (list.length > target) void list.shift()?.terminate();
      if (list.length > (this.#target.get(agent) ?? 0)) above = true;
    }
    if (!above || this.#trimCheck) return;
    this.#trimCheck = true;
    const recheck = () => {
      this.#trimCheck = false;
      this.kick();
    };
    this.#options.clock.setTimeout(recheck, TRIM_CHECK_MS);
  }

  async close(): Promise<void> {
    this.#closed = true;
    // A worker being prepared right now is terminated by the refill loop itself.
    await this.#refilling;
    const runners = [...this.#ready.values()].flat();
    this.#ready.clear();
    await Promise.all(runners.map((runner) => runner.terminate()));
  }
}
