/**
 * The bounded pool of turn-task threads (`workers/turn-task.ts`) that every pooled session of
 * a supervisor shares: piscina, set up the way pooled placement needs it.
 *
 * - Tasks carry no abort signal: aborting a running task terminates its whole thread, and
 *   piscina never shares a thread between abortable tasks, which would leave one turn per thread
 *   for the whole of its LLM waits. So a thread runs many turns at once (`turnsPerThread`), and
 *   only the escalation of an ignored interrupt terminates a thread ({@link TurnPool.terminateThread}).
 * - `atomics: 'disabled'`: `'sync'` freezes a thread between tasks, while a thread's event loop
 *   (sockets, timers a tool left behind) must keep running between tasks.
 * - Turns wait in our own queue, not piscina's, and each goes to the thread {@link TurnDispatch}
 *   chooses (responsive, with room, the session's own thread first): piscina's balancer only
 *   carries that choice out.
 */
import type { EventLoopUtilization } from 'node:perf_hooks';
import { Piscina } from 'piscina';
import { errorFields, log } from '../../log.js';
import { BEAT_MS, isHeartbeat } from '../../worker/heartbeat.js';
import type { TurnTaskInput, TurnTaskResult } from '../../worker/turn-task-core.js';
import { workerEntryUrl } from '../worker-entry.js';
import { poolFailure, runPoolTask } from './pool-failure.js';
import { ThreadExits } from './thread-exits.js';
import { ThreadWatch } from './thread-watch.js';
import {
  chosenThreadBalancer,
  type Placement,
  type PoolTask,
  TurnDispatch,
} from './turn-dispatch.js';
import { parseTurnPoolOptions, type TurnPoolOptions } from './turn-pool-options.js';

export type { Placement, PoolTask, SessionAffinity } from './turn-dispatch.js';
export type { TurnPoolOptions } from './turn-pool-options.js';

export interface TurnPoolStats {
  readonly threads: number;
  /** Turns waiting for a thread. */
  readonly queued: number;
  /** Threads that beat lately: where turns go. */
  readonly responsive: number;
  /** Threads whose event loop is held (no heartbeat for `blockedAfterMs`): no turn goes there. */
  readonly blocked: number;
  /** Turns moved off a thread that blocked before they started, since the pool started. */
  readonly moved: number;
  /** Tasks finished since the pool started, failed ones included. */
  readonly completed: number;
  /** piscina's pool utilisation (0..1): time running tasks over capacity. */
  readonly utilization: number;
}

/** One bounded pool of turn-task threads, shared by every pooled session of a supervisor. */
export class TurnPool {
  readonly #piscina: Piscina<TurnTaskInput, TurnTaskResult>;
  /** Set before piscina's destroy fails every task, so their failures read as the shutdown. */
  #destroyed = false;
  #destroying: Promise<void> | undefined;
  readonly #terminating = new Map<number, Promise<void>>();
  readonly #exits: ThreadExits;
  readonly #watch: ThreadWatch;
  readonly #dispatch: TurnDispatch;
  /** The thread the dispatch is handing a task to, for the balancer. */
  #chosen: number | undefined;
  /** The thread the balancer gave the last task to. */
  #placedOn: number | undefined;

  constructor(options: TurnPoolOptions = {}) {
    const resolved = parseTurnPoolOptions(options);
    const balancer = chosenThreadBalancer(() => this.#chosen);
    this.#piscina = new Piscina<TurnTaskInput, TurnTaskResult>({
      filename: workerEntryUrl('turn-task').href,
      minThreads: resolved.minThreads,
      maxThreads: resolved.maxThreads,
      idleTimeout: resolved.idleTimeoutMs,
      atomics: 'disabled',
      concurrentTasksPerWorker: resolved.turnsPerThread,
      loadBalancer: (task, workers) => {
        const worker = balancer(task, workers);
        this.#placedOn = worker?.id;
        return worker;
      },
      ...(resolved.resourceLimits && { resourceLimits: resolved.resourceLimits }),
    });
    const onError =
      resolved.onError ??
      ((error: Error) =>
        log('placement').warn(errorFields(error), 'a turn pool thread failed outside any turn'));
    this.#piscina.on('error', onError);
    this.#exits = new ThreadExits(this.#piscina);
    this.#watch = new ThreadWatch(resolved.blockedAfterMs);
    this.#dispatch = new TurnDispatch(
      {
        // A thread being terminated would fail what it is handed.
        threads: () => this.threadIds.filter((threadId) => !this.#terminating.has(threadId)),
        submit: (input, threadId) => this.#submit(input, threadId),
        turnsPerThread: resolved.turnsPerThread,
        maxQueue: resolved.maxQueue,
        queueFull: () =>
          poolFailure(new Error('queue full'), { atSubmission: true, closing: false }),
        closed: () => poolFailure(new Error('closed'), { atSubmission: false, closing: true }),
      },
      this.#watch,
      BEAT_MS,
    );
    this.#piscina.on('message', (message: unknown) => {
      if (!isHeartbeat(message)) return;
      // A thread that starts or stops being blocked may take what waits.
      if (this.#watch.beat(message.agentcellBeat) || this.#dispatch.queued > 0) {
        this.#dispatch.pump();
      }
    });
  }

  /**
   * Runs one turn task (no abort signal: see the file comment). Fails with
   * AGENTCELL_CAPACITY_EXCEEDED when the queue is full, else AGENTCELL_SESSION_CRASHED with
   * `details.reason` (see `pool-failure.ts`).
   */
  run(input: TurnTaskInput): Promise<TurnTaskResult> {
    return this.place(input).result;
  }

  /**
   * Places one turn task: on the thread `placement.affinity` names while it is responsive and
   * has room, else on the least loaded responsive thread (see `turn-dispatch.ts`). Failures as
   * for {@link run}.
   */
  place(input: TurnTaskInput, placement?: Placement): PoolTask {
    return this.#dispatch.place(input, placement);
  }

  #submit(
    input: TurnTaskInput,
    threadId: number,
  ): { result: Promise<TurnTaskResult>; placedOn: number | undefined } {
    this.#chosen = threadId;
    this.#placedOn = undefined;
    try {
      const result = runPoolTask(
        () => this.#piscina.run(input, { transferList: [input.port, input.hostPort] }),
        () => this.#destroyed,
      );
      return { result, placedOn: this.#placedOn };
    } finally {
      this.#chosen = undefined;
    }
  }

  /**
   * Terminates one pool thread: the escalation for a turn that ignored its interrupt. Every
   * task on that thread fails; piscina starts a replacement.
   */
  terminateThread(threadId: number): Promise<void> {
    // Every runner on that thread may escalate at once: one termination serves them all.
    let ending = this.#terminating.get(threadId);
    if (!ending) {
      const thread = this.#piscina.threads.find((candidate) => candidate.threadId === threadId);
      ending = (thread ? thread.terminate().then(() => {}) : Promise.resolve()).finally(() =>
        this.#terminating.delete(threadId),
      );
      this.#terminating.set(threadId, ending);
    }
    return ending;
  }

  /** Ids of the pool's live threads. */
  get threadIds(): number[] {
    return this.#piscina.threads.map((worker) => worker.threadId);
  }

  /** The exit code of a pool thread that exited lately, if it did. */
  exitCodeOf(threadId: number): number | undefined {
    return this.#exits.codeOf(threadId);
  }

  /** Event-loop utilisation of one pool thread, if it is still live. */
  eventLoopUtilization(
    threadId: number,
    since?: EventLoopUtilization,
  ): EventLoopUtilization | undefined {
    const worker = this.#piscina.threads.find((thread) => thread.threadId === threadId);
    return worker?.performance.eventLoopUtilization(since);
  }

  stats(): TurnPoolStats {
    return {
      threads: this.#piscina.threads.length,
      queued: this.#dispatch.queued + this.#piscina.queueSize,
      responsive: this.threadIds.filter((threadId) => this.#watch.responsive(threadId)).length,
      blocked: this.#watch.blocked().length,
      moved: this.#dispatch.stranded,
      completed: this.#piscina.completed,
      utilization: this.#piscina.utilization,
    };
  }

  /** Lets running and queued turns finish, then stops the threads. */
  async close(): Promise<void> {
    if (this.#destroying) return this.#destroying;
    await this.#dispatch.idle();
    this.#dispatch.close();
    await this.#piscina.close();
  }

  /** Stops every thread now: running turns fail, queued ones are dropped. Idempotent. */
  destroy(): Promise<void> {
    this.#destroyed = true;
    this.#dispatch.close();
    this.#destroying ??= this.#piscina.destroy();
    return this.#destroying;
  }
}
