/**
 * Which pool threads are responsive, from their heartbeats (`worker/heartbeat.ts`): a thread
 * whose event loop is held (a tool spinning the CPU, ignoring its signal) stops beating.
 *
 * A thread counts as blocked when its last beat is older than `blockedAfterMs` both by this
 * thread's clock and next to the freshest beat of any thread. The second test keeps a host
 * that was itself held up (its own event loop busy, beats waiting unread) from calling every
 * thread blocked at once; it also means the thread that beat last is never blocked, so turns
 * always have somewhere to go.
 */
import { performance } from 'node:perf_hooks';

export class ThreadWatch {
  readonly #blockedAfterMs: number;
  /** Thread id → when its last beat was heard (performance.now()). */
  readonly #beats = new Map<number, number>();
  #freshest = Number.NEGATIVE_INFINITY;

  constructor(blockedAfterMs: number) {
    this.#blockedAfterMs = blockedAfterMs;
  }

  get blockedAfterMs(): number {
    return this.#blockedAfterMs;
  }

  /** Records a beat; true when the thread was not responsive before it (new or unblocked). */
  beat(threadId: number, now = performance.now()): boolean {
    const wasResponsive = this.responsive(threadId, now);
    this.#beats.set(threadId, now);
    this.#freshest = now;
    return !wasResponsive;
  }

  /** True once the thread has beaten at all (it is up). */
  heard(threadId: number): boolean {
    return this.#beats.has(threadId);
  }

  /** True once the thread has beaten and is not blocked. */
  responsive(threadId: number, now = performance.now()): boolean {
    const last = this.#beats.get(threadId);
    if (last === undefined) return false;
    const limit = this.#blockedAfterMs;
    return now - last <= limit || this.#freshest - last <= limit;
  }

  /** Threads heard from that are blocked now. */
  blocked(now = performance.now()): number[] {
    return [...this.#beats.keys()].filter((threadId) => !this.responsive(threadId, now));
  }

  /** Forgets threads that are gone. */
  keepOnly(live: readonly number[]): void {
    for (const threadId of this.#beats.keys()) {
      if (!live.includes(threadId)) this.#beats.delete(threadId);
    }
  }
}
