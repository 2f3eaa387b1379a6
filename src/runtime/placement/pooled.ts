/**
 * Pooled placement: every turn of every session is one piscina task on a bounded pool of
 * threads (`workers/turn-task.ts`). A session owns no thread: its runner carries the blueprint
 * and the journal into each task, and the task rebuilds the agent (fresh locks, fresh
 * interrupt controller) for that turn only, so nothing per-session survives in a pool thread
 * between turns. Module-level state of tool modules does survive (each thread imports a module
 * once): factory tools, or dedicated placement, keep such state per session.
 *
 * piscina's traps shape this file (see DESIGN.md, "Across the thread boundary"):
 * - Aborting a running task terminates its whole thread, and piscina never shares a thread
 *   between abortable tasks, which would leave one turn per thread for the whole of its LLM
 *   waits. So tasks carry no abort signal and a thread runs many turns at once
 *   (`turnsPerThread`); interrupts are cooperative (a message on the turn's port), and only a
 *   turn that ignores one past its grace period gets its thread terminated — which also fails
 *   the other turns on that thread (they fail with AGENTCELL_SESSION_CRASHED, and as pooled
 *   turns are stateless, nothing but that turn is lost).
 * - There is no worker affinity: any thread may serve any session's next turn.
 * - `atomics: 'sync'` freezes a thread between tasks; we use `'disabled'`, so a thread's event
 *   loop (sockets, timers a tool left behind) keeps running between tasks.
 */
import { availableParallelism } from 'node:os';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { MessageChannel, type MessagePort, type ResourceLimits } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { Piscina } from 'piscina';
import type { TurnEvent } from '../../agent/turn-events.js';
import { endpointOf } from '../../codec.js';
import {
  CapacityExceededError,
  InternalError,
  InterruptedError,
  OptionsInvalidError,
  SessionCrashedError,
  toWire,
} from '../../errors.js';
import type { AgentInit, HostApi, TurnEnd, WorkerStats } from '../../worker/api.js';
import type {
  TurnTaskControl,
  TurnTaskInput,
  TurnTaskMessage,
  TurnTaskResult,
} from '../../worker/turn-task-core.js';
import { type Deferred, deferred } from '../deferred.js';
import { workerEntryUrl } from '../worker-entry.js';
import type { RunnerInit, TurnRunner } from './runner.js';
import type { WorkerExit } from './worker-handle.js';

export interface TurnPoolOptions {
  /** Threads of the pool. @default os.availableParallelism() */
  readonly maxThreads?: number | undefined;
  /**
   * Turns one thread runs at once. A turn mostly waits on its model, so a thread can serve
   * many; CPU-heavy tools want fewer. @default 32
   */
  readonly turnsPerThread?: number | undefined;
  /** Threads kept even when idle (started with the pool). @default maxThreads */
  readonly minThreads?: number | undefined;
  /** How long a thread above `minThreads` may idle before it exits. @default 60000 */
  readonly idleTimeoutMs?: number | undefined;
  /**
   * Turns that may wait for a thread; past it a turn fails with AGENTCELL_CAPACITY_EXCEEDED.
   * @default unbounded (the supervisor's admission already bounds turns in flight)
   */
  readonly maxQueue?: number | undefined;
  /** Heap limits of each pool thread (best effort: see Node's `resourceLimits`). */
  readonly resourceLimits?: ResourceLimits | undefined;
  /**
   * Errors of pool threads that no task owns, such as a timer a tool left behind throwing
   * after its turn. piscina emits them as `'error'`, which would kill the process if nobody
   * listened. @default a process warning
   */
  readonly onError?: ((error: Error) => void) | undefined;
}

export interface TurnPoolStats {
  readonly threads: number;
  /** Turns waiting for a thread. */
  readonly queued: number;
  /** Tasks finished since the pool started, failed ones included. */
  readonly completed: number;
  /** piscina's pool utilisation (0..1): time running tasks over capacity. */
  readonly utilization: number;
}

const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
const DEFAULT_TURNS_PER_THREAD = 32;

/** One bounded pool of turn-task threads, shared by every pooled session of a supervisor. */
export class TurnPool {
  readonly #piscina: Piscina<TurnTaskInput, TurnTaskResult>;
  #destroying: Promise<void> | undefined;
  readonly #terminating = new Map<number, Promise<void>>();

  constructor(options: TurnPoolOptions = {}) {
    const maxThreads = options.maxThreads ?? availableParallelism();
    const minThreads = options.minThreads ?? maxThreads;
    const problems = [
      checkCount('maxThreads', maxThreads, 1),
      checkCount('minThreads', minThreads, 0),
      checkCount('idleTimeoutMs', options.idleTimeoutMs, 0),
      checkCount('maxQueue', options.maxQueue, 0),
      minThreads > maxThreads
        ? `minThreads (${minThreads}) is over maxThreads (${maxThreads})`
        : '',
    ].filter((problem) => problem !== '');
    if (problems.length > 0) {
      throw new OptionsInvalidError(`invalid turn pool options: ${problems.join('; ')}`, {
        details: { problems },
      });
    }
    this.#piscina = new Piscina<TurnTaskInput, TurnTaskResult>({
      filename: workerEntryUrl('turn-task').href,
      minThreads,
      maxThreads,
      idleTimeout: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      atomics: 'disabled',
      concurrentTasksPerWorker: options.turnsPerThread ?? DEFAULT_TURNS_PER_THREAD,
      ...(options.maxQueue !== undefined && { maxQueue: options.maxQueue }),
      ...(options.resourceLimits && { resourceLimits: options.resourceLimits }),
    });
    const onError =
      options.onError ??
      ((error: Error) => process.emitWarning(error, { code: 'AGENTCELL_POOL_THREAD_ERROR' }));
    this.#piscina.on('error', onError);
  }

  /** Runs one turn task (no abort signal: see the file comment). */
  run(input: TurnTaskInput): Promise<TurnTaskResult> {
    return this.#piscina.run(input, { transferList: [input.port, input.hostPort] });
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
      queued: this.#piscina.queueSize,
      completed: this.#piscina.completed,
      utilization: this.#piscina.utilization,
    };
  }

  /** Lets running and queued turns finish, then stops the threads. */
  async close(): Promise<void> {
    if (this.#destroying) return this.#destroying;
    await this.#piscina.close();
  }

  /** Stops every thread now: running turns fail, queued ones are dropped. Idempotent. */
  destroy(): Promise<void> {
    this.#destroying ??= this.#piscina.destroy();
    return this.#destroying;
  }
}

function checkCount(name: string, value: number | undefined, min: number): string {
  if (value === undefined || (Number.isInteger(value) && value >= min)) return '';
  return `${name} must be an integer of at least ${min}, got ${value}`;
}

export interface PooledRunnerOptions {
  /**
   * The session's journal as it stands now, encoded: read at the start of every turn, since
   * the session appends each completed turn to its store and no pool thread keeps it.
   */
  readonly journal: () => Promise<string>;
  /**
   * How long a turn may ignore an interrupt before its task is aborted, which terminates the
   * pool thread that runs it. @default 2000
   */
  readonly interruptGraceMs?: number | undefined;
}

/** Why the host aborted a task. */
type AbortCause = 'escalated' | 'terminated' | 'interrupted';

interface ActiveTurn {
  readonly turnId: string;
  readonly onEvent: (event: TurnEvent) => void;
  readonly ended: Deferred<TurnEnd>;
  /** The host's end of the turn's port: control out, events in. */
  readonly port: MessagePort;
  lastSeq: number;
  /** Set by the task's `task-start`: a pool thread has picked the task up. */
  threadId: number | undefined;
  settled: boolean;
  aborted: AbortCause | undefined;
  grace: NodeJS.Timeout | undefined;
  /** Baseline of the last event-loop reading of the turn's thread. */
  elu: EventLoopUtilization | undefined;
}

const DEFAULT_INTERRUPT_GRACE_MS = 2_000;
/** How long to wait for a finished task's port to drain before calling the turn-end lost. */
const DRAIN_MS = 1_000;

/**
 * A session's runner in pooled placement: no thread of its own, one pool task per turn.
 *
 * - `threadId` is -1: the session has no thread (see {@link currentThreadId} for the thread
 *   running its turn, if any).
 * - `exited` resolves only when this runner is done for: `terminate()` was called, or the pool
 *   thread running its turn died (a crash, running out of heap, or the escalation after an
 *   ignored interrupt). Other sessions' threads dying, or this session's idle time, never
 *   resolve it. The session then replaces the runner (cheap: there is no thread to start)
 *   under its restart policy, exactly as it does for a dedicated worker.
 */
export class PooledRunner implements TurnRunner {
  readonly #pool: TurnPool;
  readonly #sessionKey: string;
  readonly #agent: AgentInit;
  readonly #host: HostApi;
  readonly #journal: () => Promise<string>;
  readonly #graceMs: number;
  readonly #exited = deferred<WorkerExit>();
  #exit: WorkerExit | undefined;
  #turn: ActiveTurn | undefined;

  private constructor(pool: TurnPool, init: RunnerInit, options: PooledRunnerOptions) {
    this.#pool = pool;
    this.#sessionKey = init.sessionKey;
    // Only plain data goes into tasks: a stray field holding a function would fail the clone.
    this.#agent = {
      blueprint: init.blueprint,
      tools: init.tools,
      handoffs: init.handoffs,
      hooks: init.hooks,
      validators: init.validators,
    };
    this.#host = init.host;
    this.#journal = options.journal;
    this.#graceMs = options.interruptGraceMs ?? DEFAULT_INTERRUPT_GRACE_MS;
  }

  /**
   * A runner for one session on `pool`. Starts nothing: `init.journal` is not used, since each
   * turn reads the journal afresh through `options.journal`.
   */
  static create(pool: TurnPool, init: RunnerInit, options: PooledRunnerOptions): PooledRunner {
    return new PooledRunner(pool, init, options);
  }

  /** Always -1: a pooled session owns no thread. */
  get threadId(): number {
    return -1;
  }

  /** The pool thread running this session's turn right now, if one has picked it up. */
  get currentThreadId(): number | undefined {
    return this.#turn?.threadId;
  }

  get exited(): Promise<WorkerExit> {
    return this.#exited.promise;
  }

  async runTurn(
    turnId: string,
    message: string,
    onEvent: (event: TurnEvent) => void,
  ): Promise<TurnEnd> {
    if (this.#exit) {
      throw new SessionCrashedError(
        `the runner of session ${JSON.stringify(this.#sessionKey)} is gone (${this.#exit.terminated ? 'terminated' : 'its turn thread died'})`,
      );
    }
    if (this.#turn) {
      // The session's mailbox runs one turn at a time: reaching this is a bug, not a crash.
      throw new InternalError(
        `session ${JSON.stringify(this.#sessionKey)} started turn ${turnId} while turn ${this.#turn.turnId} runs`,
      );
    }
    const events = new MessageChannel();
    const host = new MessageChannel();
    const turn: ActiveTurn = {
      turnId,
      onEvent,
      ended: deferred(),
      port: events.port1,
      lastSeq: -1,
      threadId: undefined,
      settled: false,
      aborted: undefined,
      grace: undefined,
      elu: undefined,
    };
    // Settled while nobody awaits it yet (an interrupt during the journal read): not unhandled.
    turn.ended.promise.catch(() => {});
    this.#turn = turn;
    try {
      let journal: string;
      try {
        journal = await this.#journal();
      } catch (error) {
        this.#fail(turn, error);
        return await turn.ended.promise;
      }
      if (turn.settled) return await turn.ended.promise;
      events.port1.on('message', (received: TurnTaskMessage) => this.#route(turn, received));
      const drained = new Promise<void>((resolve) => events.port1.once('close', () => resolve()));
      Comlink.expose(this.#host, endpointOf(host.port1));
      const input: TurnTaskInput = {
        agent: this.#agent,
        sessionKey: this.#sessionKey,
        journal,
        turnId,
        message,
        port: events.port2,
        hostPort: host.port2,
      };
      void this.#watchTask(turn, this.#pool.run(input), drained);
      return await turn.ended.promise;
    } finally {
      turn.settled = true;
      clearTimeout(turn.grace);
      if (this.#turn === turn) this.#turn = undefined;
      // Closing the ends that were transferred to the task is a no-op here.
      for (const port of [events.port1, events.port2, host.port1, host.port2]) port.close();
    }
  }

  /** Events of another turn, repeated ones, and anything after the turn settled are dropped. */
  #route(turn: ActiveTurn, message: TurnTaskMessage): void {
    if (message.type === 'task-start') {
      turn.threadId = message.threadId;
      turn.elu = this.#pool.eventLoopUtilization(message.threadId);
      return;
    }
    if (turn.settled || message.turnId !== turn.turnId) return;
    if (message.type === 'turn-end') {
      this.#settle(turn, message);
      return;
    }
    if (message.seq <= turn.lastSeq) return;
    turn.lastSeq = message.seq;
    turn.onEvent(message);
  }

  /** Fails the turn if its task does; a task that returns has posted its turn-end first. */
  async #watchTask(
    turn: ActiveTurn,
    task: Promise<TurnTaskResult>,
    drained: Promise<void>,
  ): Promise<void> {
    let result: TurnTaskResult;
    try {
      result = await task;
    } catch (error) {
      this.#taskFailed(turn, error);
      return;
    }
    // The turn-end and the task's result travel on different ports, in no set order; the
    // task closes its port after the turn-end, and a port delivers what it holds before
    // 'close'.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      drained,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, DRAIN_MS);
      }),
    ]);
    clearTimeout(timer);
    this.#fail(
      turn,
      new SessionCrashedError(
        `the task of turn ${turn.turnId} finished (ok: ${result.ok}) without posting its turn-end`,
      ),
    );
  }

  #taskFailed(turn: ActiveTurn, error: unknown): void {
    if (turn.settled) return;
    const code = (error as { code?: unknown } | undefined)?.code;
    const message = error instanceof Error ? error.message : String(error);
    const details = {
      turnId: turn.turnId,
      ...(turn.threadId !== undefined && { threadId: turn.threadId }),
    };
    if (message === 'Task queue is at limit') {
      this.#fail(
        turn,
        new CapacityExceededError(`turn ${turn.turnId}: the turn pool's queue is full (maxQueue)`, {
          details,
          cause: error,
        }),
      );
      return;
    }
    const cause =
      turn.aborted === 'escalated'
        ? `it ignored an interrupt for ${this.#graceMs} ms, so its pool thread was terminated`
        : turn.aborted === 'terminated'
          ? 'its runner was terminated'
          : code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? 'its pool thread ran out of heap (resourceLimits)'
            : (error as { name?: unknown } | undefined)?.name === 'AbortError'
              ? 'the turn pool was shut down'
              : `its pool thread died: ${message}`;
    const exitCode = Number(/exited with code: (\d+)/.exec(message)?.[1] ?? 1);
    const terminated = turn.aborted !== undefined;
    this.#fail(
      turn,
      new SessionCrashedError(`turn ${turn.turnId} failed: ${cause}`, {
        details: {
          ...details,
          exitCode,
          terminated,
          ...(typeof code === 'string' && { errorCode: code }),
        },
        cause: error,
      }),
    );
    this.#markExited({
      code: exitCode,
      terminated,
      ...(error instanceof Error && !terminated && { error }),
    });
  }

  #settle(turn: ActiveTurn, end: TurnEnd): void {
    if (turn.settled) return;
    turn.settled = true;
    clearTimeout(turn.grace);
    turn.ended.resolve(end);
  }

  #fail(turn: ActiveTurn, error: unknown): void {
    if (turn.settled) return;
    turn.settled = true;
    clearTimeout(turn.grace);
    turn.ended.reject(error);
  }

  #markExited(exit: WorkerExit): void {
    if (this.#exit) return;
    this.#exit = exit;
    this.#exited.resolve(exit);
  }

  /**
   * Asks the turn to stop at its next check; if it has not ended after the grace period, its
   * task is aborted (its thread terminated). A turn still waiting for a thread ends at once.
   */
  async interrupt(turnId: string, reason: string): Promise<boolean> {
    const turn = this.#turn;
    if (!turn || turn.turnId !== turnId || turn.settled) return false;
    if (turn.threadId === undefined) {
      // Queued (or reading its journal): dropping a queued task terminates no thread. If a
      // thread took it an instant ago, that thread runs nothing else and is replaced.
      // The task will still start, find the interrupt waiting on its port, and end at once.
      turn.aborted = 'interrupted';
      this.#post(turn, { type: 'interrupt', reason });
      const error = new InterruptedError(`turn ${turnId} interrupted: ${reason}`, {
        details: { reason },
      });
      this.#settle(turn, {
        ok: false,
        error: toWire(error),
        type: 'turn-end',
        turnId,
        steered: [],
        cpuMs: 0,
      });
      return true;
    }
    this.#post(turn, { type: 'interrupt', reason });
    turn.grace ??= setTimeout(() => {
      if (turn.settled) return;
      turn.aborted = 'escalated';
      if (turn.threadId !== undefined) void this.#pool.terminateThread(turn.threadId);
    }, this.#graceMs);
    return true;
  }

  /**
   * Hands a message to the running turn, taken at its next LLM step. True means it was
   * delivered, not taken: the turn-end's `steered` lists what the turn took.
   */
  async steer(turnId: string, steerId: string, message: string): Promise<boolean> {
    const turn = this.#turn;
    if (!turn || turn.turnId !== turnId || turn.settled) return false;
    this.#post(turn, { type: 'steer', id: steerId, message });
    return true;
  }

  #post(turn: ActiveTurn, control: TurnTaskControl): void {
    turn.port.postMessage(control);
  }

  /** No worker call: the session has no thread; a pool thread's heap is not its own. */
  async stats(): Promise<WorkerStats> {
    return { threadId: -1, heapUsedBytes: 0, heapLimitBytes: 0, historyLength: 0 };
  }

  /**
   * Event-loop utilisation of the pool thread running this session's turn since the previous
   * reading; zero between turns. A thread serves several turns at once, so this is an upper
   * bound on this turn's CPU (a CPU budget under pooled placement is approximate).
   */
  eventLoopUtilization(): { readonly active: number; readonly utilization: number } {
    const turn = this.#turn;
    if (!turn || turn.threadId === undefined || !turn.elu) return { active: 0, utilization: 0 };
    const reading = this.#pool.eventLoopUtilization(turn.threadId, turn.elu);
    turn.elu = this.#pool.eventLoopUtilization(turn.threadId);
    return reading ?? { active: 0, utilization: 0 };
  }

  /**
   * Aborts the running turn, if any (terminating its pool thread), and retires the runner:
   * `exited` resolves and later turns are refused.
   */
  async terminate(): Promise<void> {
    const turn = this.#turn;
    this.#markExited({ code: 1, terminated: true });
    if (!turn || turn.settled) return;
    turn.aborted = 'terminated';
    // A running turn's thread goes with it (a turn that would not stop is the reason callers
    // terminate); a queued one is told to stop and ends as soon as it starts.
    // Awaited: piscina would otherwise hand the next task to the thread that is going away.
    if (turn.threadId !== undefined) await this.#pool.terminateThread(turn.threadId);
    else this.#post(turn, { type: 'interrupt', reason: 'terminated' });
    this.#taskFailed(turn, new Error('terminated'));
  }
}
