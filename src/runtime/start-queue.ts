/**
 * Where worker starts wait their turn. A thread's start is tens of milliseconds of CPU (a bare
 * Node worker alone is ~45 ms on a 2-core machine): hundreds started at once would all crawl,
 * time out their RPCs and starve the turns already running. So starts run as wide as the
 * machine has cores, in arrival order, and a session waiting for its worker goes before any
 * warm-pool refill, which only ever speculates. How long a start takes is measured here, for
 * sizing the warm pool.
 */
import { availableParallelism } from 'node:os';
import PQueue from 'p-queue';

/** A session waiting for its worker (first), or a warm-pool refill (only when none waits). */
export type StartKind = 'session' | 'warm';

const PRIORITY: Record<StartKind, number> = { session: 1, warm: 0 };
/** What a start is assumed to take before one was measured. */
const FIRST_ESTIMATE_MS = 100;
/** Weight of the newest start in the moving average. */
const SMOOTHING = 0.2;

export class StartQueue {
  readonly #queue: PQueue;
  #startMs = FIRST_ESTIMATE_MS;

  /** `width`: starts run at once; the machine's cores, at least 2. */
  constructor(width = Math.max(2, availableParallelism())) {
    this.#queue = new PQueue({ concurrency: width });
  }

  /** Runs `start` when a slot is free, sessions before refills, each kind in arrival order. */
  run<T>(kind: StartKind, start: () => Promise<T>): Promise<T> {
    return this.#queue.add(
      async () => {
        const began = performance.now();
        const started = await start();
        this.#startMs += SMOOTHING * (performance.now() - began - this.#startMs);
        return started;
      },
      { priority: PRIORITY[kind] },
    );
  }

  /** Starts that may run at once. */
  get width(): number {
    return this.#queue.concurrency;
  }

  /** Starts running now. */
  get running(): number {
    return this.#queue.pending;
  }

  /** Starts waiting for a slot. */
  get queued(): number {
    return this.#queue.size;
  }

  /** Moving average of how long a successful start took, in milliseconds. */
  get startMs(): number {
    return this.#startMs;
  }
}
