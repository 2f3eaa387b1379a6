/**
 * Where each pooled turn runs. piscina's own balancer picks the least busy thread, blind to a
 * thread whose event loop is held by another session's tool, and a task it hands to such a
 * thread waits there until the thread is terminated, failing an innocent session. So turns
 * wait in this queue, and each is handed to one thread chosen here, only when that thread is
 * responsive (it beats: see `thread-watch.ts`) and has room (`turnsPerThread`):
 *
 * - the thread a session has affinity to, while it is responsive and has room, so that the
 *   agent the thread keeps for the session (its factory-tool instances) serves its next turn;
 * - else the least loaded responsive thread, which becomes the session's new affinity under a
 *   new token (the agent a thread keeps is tied to the token, so a session that moves starts
 *   a fresh one there and never picks up one left from an earlier stay).
 *
 * A turn handed to a thread that stops beating before the task started is reported stranded
 * (`onStranded`): its runner cancels that task and places the turn again.
 */
import { performance } from 'node:perf_hooks';
import type { PiscinaTask } from 'piscina';
import type { AgentcellError } from '../../errors.js';
import type { TurnTaskInput, TurnTaskResult } from '../../worker/turn-task-core.js';
import { type Deferred, deferred } from '../deferred.js';
import type { ThreadWatch } from './thread-watch.js';

/** A session's stay on a pool thread, held by its runner and updated as turns are placed. */
export interface SessionAffinity {
  threadId: number | undefined;
  token: string | undefined;
}

export interface Placement {
  readonly affinity?: SessionAffinity | undefined;
  /** Called once if the thread the task went to blocks before the task started. */
  readonly onStranded?: (() => void) | undefined;
}

/** A turn handed to the pool. */
export interface PoolTask {
  readonly result: Promise<TurnTaskResult>;
  /** The thread it went to, once it did (undefined while it waits in the queue). */
  readonly threadId: number | undefined;
  /** The task began on its thread (its `task-start` was heard): it can no longer be stranded. */
  started(): void;
  /** Takes a task still waiting in the queue out of it; true if it was there. */
  cancel(): boolean;
}

/** What the dispatch needs of the pool it places turns on. */
export interface DispatchTarget {
  /** Ids of the pool's threads, in a stable order. */
  threads(): number[];
  /** Hands `input` to piscina so that it runs on `threadId`; the thread it really went to. */
  submit(
    input: TurnTaskInput,
    threadId: number,
  ): { result: Promise<TurnTaskResult>; placedOn: number | undefined };
  turnsPerThread: number;
  maxQueue: number | undefined;
  queueFull(): AgentcellError;
  closed(): AgentcellError;
}

interface Entry extends PoolTask {
  readonly input: TurnTaskInput;
  readonly placement: Placement;
  readonly done: Deferred<TurnTaskResult>;
  threadId: number | undefined;
  /** When it was handed to its thread (performance.now()). */
  handedAt: number;
  isStarted: boolean;
}

export class TurnDispatch {
  readonly #target: DispatchTarget;
  readonly #watch: ThreadWatch;
  readonly #queue: Entry[] = [];
  /** Handed to a thread, not started yet: what a blocked thread may strand. */
  readonly #unstarted = new Set<Entry>();
  /** Turns on each thread (handed to it and not settled). */
  readonly #load = new Map<number, number>();
  #tokens = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #idle = new Set<() => void>();
  readonly #checkMs: number;

  /** `checkMs`: how often to look for stranded tasks while some may be. */
  constructor(target: DispatchTarget, watch: ThreadWatch, checkMs: number) {
    this.#target = target;
    this.#watch = watch;
    this.#checkMs = checkMs;
  }

  #stranded = 0;

  get queued(): number {
    return this.#queue.length;
  }

  /** Tasks stranded on a thread that blocked before they started, since the pool started. */
  get stranded(): number {
    return this.#stranded;
  }

  place(input: TurnTaskInput, placement: Placement = {}): PoolTask {
    const done = deferred<TurnTaskResult>();
    const entry: Entry = {
      input,
      placement,
      done,
      result: done.promise,
      threadId: undefined,
      handedAt: 0,
      isStarted: false,
      started: () => {
        entry.isStarted = true;
        this.#unstarted.delete(entry);
      },
      cancel: () => {
        const at = this.#queue.indexOf(entry);
        if (at < 0) return false;
        this.#queue.splice(at, 1);
        done.resolve({ turnId: input.turnId, ok: false, threadId: -1 });
        this.#settleIdle();
        return true;
      },
    };
    if (this.#closed) {
      done.reject(this.#target.closed());
    } else if (this.#target.maxQueue !== undefined && this.#queue.length >= this.#queueLimit()) {
      done.reject(this.#target.queueFull());
    } else {
      this.#queue.push(entry);
      this.pump();
    }
    return entry;
  }

  /** Hands waiting turns to threads that can take them now. */
  pump(): void {
    while (this.#queue.length > 0) {
      const entry = this.#queue[0] as Entry;
      const threadId = this.#choose(entry);
      if (threadId === undefined) break;
      this.#queue.shift();
      this.#dispatch(entry, threadId);
    }
    this.#settleIdle();
    this.#arm();
  }

  /** Resolves once no turn waits in the queue (a closing pool lets them run first). */
  idle(): Promise<void> {
    if (this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.add(resolve));
  }

  /** Fails every waiting turn with the pool's shutdown and places no more. */
  close(): void {
    this.#closed = true;
    for (const entry of this.#queue.splice(0)) entry.done.reject(this.#target.closed());
    this.#unstarted.clear();
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#settleIdle();
  }

  /**
   * `maxQueue`, plus the room of threads still starting (not heard from yet): turns that wait
   * for a thread to come up are not refused for it, as piscina's own queue does.
   */
  #queueLimit(): number {
    const starting = this.#target.threads().filter((threadId) => !this.#watch.heard(threadId));
    return (this.#target.maxQueue ?? 0) + starting.length * this.#target.turnsPerThread;
  }

  #choose(entry: Entry): number | undefined {
    const now = performance.now();
    const open = this.#target
      .threads()
      .filter(
        (threadId) =>
          this.#watch.responsive(threadId, now) &&
          (this.#load.get(threadId) ?? 0) < this.#target.turnsPerThread,
      );
    const preferred = entry.placement.affinity?.threadId;
    if (preferred !== undefined && open.includes(preferred)) return preferred;
    let best: number | undefined;
    for (const threadId of open) {
      if (best === undefined || (this.#load.get(threadId) ?? 0) < (this.#load.get(best) ?? 0)) {
        best = threadId;
      }
    }
    return best;
  }

  #dispatch(entry: Entry, threadId: number): void {
    const affinity = entry.placement.affinity;
    if (affinity && (affinity.threadId !== threadId || affinity.token === undefined)) {
      affinity.threadId = threadId;
      affinity.token = `${threadId}.${++this.#tokens}`;
    }
    const input = affinity ? { ...entry.input, keep: affinity.token } : entry.input;
    const { result, placedOn } = this.#target.submit(input, threadId);
    entry.threadId = placedOn;
    entry.handedAt = performance.now();
    if (placedOn !== undefined) {
      this.#load.set(placedOn, (this.#load.get(placedOn) ?? 0) + 1);
      if (entry.placement.onStranded && !entry.isStarted) this.#unstarted.add(entry);
    }
    result.then(
      (value) => this.#settled(entry, placedOn, () => entry.done.resolve(value)),
      (error: unknown) => this.#settled(entry, placedOn, () => entry.done.reject(error)),
    );
  }

  #settled(entry: Entry, placedOn: number | undefined, settle: () => void): void {
    this.#unstarted.delete(entry);
    if (placedOn !== undefined) {
      const load = (this.#load.get(placedOn) ?? 1) - 1;
      if (load > 0) this.#load.set(placedOn, load);
      else this.#load.delete(placedOn);
    }
    settle();
    if (!this.#closed) this.pump();
  }

  /** Checks for stranded tasks and waiting turns while there are any. */
  #arm(): void {
    const needed = !this.#closed && (this.#queue.length > 0 || this.#unstarted.size > 0);
    if (needed && !this.#timer) {
      this.#timer = setInterval(() => this.#check(), this.#checkMs);
      this.#timer.unref();
    } else if (!needed && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #check(): void {
    const live = this.#target.threads();
    this.#watch.keepOnly(live);
    const now = performance.now();
    const blocked = new Set(this.#watch.blocked(now));
    for (const entry of [...this.#unstarted]) {
      if (entry.threadId === undefined) continue;
      // A task gets the full limit on its thread: one handed over just before the thread's
      // beat went stale is not stranded by a slow tick.
      const waitedLong = now - entry.handedAt > this.#watch.blockedAfterMs;
      if ((blocked.has(entry.threadId) && waitedLong) || !live.includes(entry.threadId)) {
        this.#unstarted.delete(entry);
        this.#stranded += 1;
        entry.placement.onStranded?.();
      }
    }
    this.pump();
  }

  #settleIdle(): void {
    if (this.#queue.length > 0) return;
    for (const resolve of this.#idle) resolve();
    this.#idle.clear();
  }
}

/**
 * piscina's balancer for a pool placed by {@link TurnDispatch}: the thread the dispatch chose,
 * or for a task piscina queued itself (a chosen thread that was not ready yet), the least busy.
 */
export function chosenThreadBalancer(chosen: () => number | undefined) {
  return <W extends { readonly id: number; readonly currentUsage: number }>(
    _task: PiscinaTask,
    workers: W[],
  ): W | null => {
    const wanted = chosen();
    if (wanted !== undefined) return workers.find((worker) => worker.id === wanted) ?? null;
    let best: W | null = null;
    for (const worker of workers) {
      if (best === null || worker.currentUsage < best.currentUsage) best = worker;
    }
    return best;
  };
}
