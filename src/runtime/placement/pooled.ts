/**
 * Pooled placement: every turn of every session is one task on the shared {@link TurnPool}. A
 * session owns no thread: its runner carries the blueprint and the journal into each task, and
 * the conversation is restored from that journal every turn. A session has affinity to the
 * thread its turns last ran on while that thread is responsive: the thread keeps the session's
 * agent (its factory-tool instances) for the next turn. When the session moves (its thread was
 * blocked or died), or its runner is replaced (restart, passivation), it starts a fresh agent.
 * Module-level state of tool modules is shared by every session a thread serves.
 *
 * piscina's traps shape this (see DESIGN.md, "Across the thread boundary"): piscina itself has
 * no affinity (our dispatch chooses the thread), and aborting a task terminates its whole
 * thread. So interrupts are cooperative (a message on the turn's port), and only a turn
 * that ignores one past its grace period gets its thread terminated — which also fails the
 * other turns on that thread (with AGENTCELL_SESSION_CRASHED; as pooled turns are stateless,
 * nothing but those turns is lost).
 */
import type { TurnInput } from '../../agent/approval.js';
import type { TurnEvent } from '../../agent/turn-events.js';
import {
  CapacityExceededError,
  InternalError,
  InterruptedError,
  isAgentcellError,
  SessionCrashedError,
  toWire,
} from '../../errors.js';
import type { ModelService } from '../../llm/model-service.js';
import { log } from '../../log.js';
import type { AgentInit, HostApi, TurnEnd, WorkerStats } from '../../worker/api.js';
import type { TurnTaskResult } from '../../worker/turn-task-core.js';
import { deferred } from '../deferred.js';
import type { TurnSpanLookup } from './model-calls.js';
import { poolFailureReason } from './pool-failure.js';
import { PooledTurn } from './pooled-turn.js';
import { drained } from './port-drain.js';
import type { RunnerInit, TurnRunner } from './runner.js';
import type { PoolTask, SessionAffinity, TurnPool } from './turn-pool.js';
import type { WorkerExit } from './worker-handle.js';

export { TurnPool, type TurnPoolOptions, type TurnPoolStats } from './turn-pool.js';

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

const DEFAULT_INTERRUPT_GRACE_MS = 2_000;
/** Placements of one turn at most: threads that keep dying under it mean something else is wrong. */
const MAX_PLACEMENTS = 3;
/** How long to wait for a finished task's port to drain before calling the turn-end lost. */
const ERR_WORKER_OUT_OF_MEMORY = 'ERR_WORKER_OUT_OF_MEMORY';

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
  readonly #models: ModelService;
  readonly #spans: TurnSpanLookup | undefined;
  readonly #journal: () => Promise<string>;
  readonly #graceMs: number;
  readonly #exited = deferred<WorkerExit>();
  #exit: WorkerExit | undefined;
  #turn: PooledTurn | undefined;
  /** The thread this session's turns go to first, and the token of its stay there. */
  readonly #affinity: SessionAffinity = { threadId: undefined, token: undefined };

  private constructor(pool: TurnPool, init: RunnerInit, options: PooledRunnerOptions) {
    this.#pool = pool;
    this.#sessionKey = init.sessionKey;
    // Only plain data goes into tasks: a stray field holding a function would fail the clone.
    const { blueprint, model, tools, handoffs, hooks, validators } = init;
    this.#agent = { blueprint, model, tools, handoffs, hooks, validators };
    this.#host = init.host;
    this.#models = init.models;
    this.#spans = init.spans;
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
    message: TurnInput,
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
    const turn = new PooledTurn(turnId, onEvent);
    this.#turn = turn;
    try {
      let journal: string;
      try {
        journal = await this.#journal();
      } catch (error) {
        turn.fail(error);
        return await turn.ended;
      }
      if (turn.settled) return await turn.ended;
      this.#place(turn, turnId, message, journal);
      return await turn.ended;
    } finally {
      turn.close();
      if (this.#turn === turn) this.#turn = undefined;
    }
  }

  /**
   * Hands the turn to the pool as a task; if the thread it went to blocks before the task
   * started, cancels that task and hands the turn over again (the pool then avoids that thread).
   */
  #place(turn: PooledTurn, turnId: string, message: TurnInput, journal: string): void {
    const { port, hostPort, closed } = turn.open(
      this.#host,
      this.#models,
      { sessionKey: this.#sessionKey, spans: this.#spans },
      (threadId) => {
        turn.task?.started();
        turn.elu = this.#pool.eventLoopUtilization(threadId);
        turn.observedElu = turn.elu;
      },
    );
    const task: PoolTask = this.#pool.place(
      {
        agent: this.#agent,
        sessionKey: this.#sessionKey,
        journal,
        turnId,
        message,
        port,
        hostPort,
      },
      {
        affinity: this.#affinity,
        onStranded: () => {
          if (turn.settled || turn.task !== task || turn.threadId !== undefined) return;
          log('placement').warn(
            { sessionKey: this.#sessionKey, turnId, threadId: task.threadId },
            'a turn waited on a blocked pool thread: moving it to another thread',
          );
          this.#place(turn, turnId, message, journal);
        },
      },
    );
    turn.task = task;
    turn.placements += 1;
    void this.#watchTask(turn, task, closed, () => this.#place(turn, turnId, message, journal));
  }

  /**
   * Fails the turn if its task does; a task that returns has posted its turn-end first. A turn
   * whose thread died before the task began there is placed again (`replace`): another
   * session's crash must not fail it.
   */
  async #watchTask(
    turn: PooledTurn,
    task: PoolTask,
    closed: Promise<void>,
    replace: () => void,
  ): Promise<void> {
    let result: TurnTaskResult;
    try {
      result = await task.result;
    } catch (error) {
      // What the task posted before its thread died (a task-start, a tool-start) is heard first.
      await drained(closed);
      // A task the turn moved away from fails with its thread; the turn lives on elsewhere.
      if (turn.task !== task) return;
      const neverBegan = !turn.settled && turn.threadId === undefined && turn.aborted === undefined;
      if (
        neverBegan &&
        poolFailureReason(error) === 'thread-died' &&
        turn.placements < MAX_PLACEMENTS
      ) {
        log('placement').warn(
          { sessionKey: this.#sessionKey, turnId: turn.turnId, threadId: task.threadId },
          'the pool thread a turn waited on died before the turn began there: placing it again',
        );
        replace();
        return;
      }
      this.#taskFailed(turn, error);
      return;
    }
    if (turn.task !== task) return;
    // The turn-end and the task's result travel on different ports, in no set order; the
    // task closes its port after the turn-end, and a port delivers what it holds before
    // 'close'.
    await drained(closed);
    turn.fail(
      new SessionCrashedError(
        `the task of turn ${turn.turnId} finished (ok: ${result.ok}) without posting its turn-end`,
      ),
    );
  }

  /**
   * Fails the turn with what its task's failure means for the session: the pool's typed error
   * (see `pool-failure.ts`), or the termination this runner started.
   */
  #taskFailed(turn: PooledTurn, error: unknown): void {
    if (turn.settled) return;
    const reason = poolFailureReason(error);
    // What piscina or the thread threw, under the pool's typed error.
    const thrown = reason === undefined ? error : (error as { readonly cause?: unknown }).cause;
    const details = {
      turnId: turn.turnId,
      ...(turn.threadId !== undefined && { threadId: turn.threadId }),
    };
    if (reason === 'queue-full') {
      turn.fail(
        new CapacityExceededError(`turn ${turn.turnId}: the turn pool's queue is full (maxQueue)`, {
          details,
          cause: thrown,
        }),
      );
      return;
    }
    const errorCode = isAgentcellError(error) ? error.details?.['errorCode'] : undefined;
    const cause =
      turn.aborted === 'escalated'
        ? `it ignored an interrupt for ${this.#graceMs} ms, so its pool thread was terminated`
        : turn.aborted === 'terminated'
          ? 'its runner was terminated'
          : errorCode === ERR_WORKER_OUT_OF_MEMORY
            ? 'its pool thread ran out of heap (resourceLimits)'
            : reason !== undefined && error instanceof Error
              ? error.message
              : `its pool thread died: ${String(error)}`;
    const exitCode =
      (turn.threadId === undefined ? undefined : this.#pool.exitCodeOf(turn.threadId)) ?? 1;
    const terminated = turn.aborted !== undefined;
    turn.fail(
      new SessionCrashedError(`turn ${turn.turnId} failed: ${cause}`, {
        details: {
          ...details,
          exitCode,
          terminated,
          ...(reason !== undefined && { reason }),
          ...(typeof errorCode === 'string' && { errorCode }),
        },
        cause: thrown,
      }),
    );
    this.#markExited({
      code: exitCode,
      terminated,
      ...(thrown instanceof Error && !terminated && { error: thrown }),
    });
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
      turn.task?.cancel();
      turn.post({ type: 'interrupt', reason });
      const error = new InterruptedError(`turn ${turnId} interrupted: ${reason}`, {
        details: { reason },
      });
      turn.settle({
        ok: false,
        error: toWire(error),
        type: 'turn-end',
        turnId,
        steered: [],
        cpuMs: 0,
      });
      return true;
    }
    turn.post({ type: 'interrupt', reason });
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
    turn.post({ type: 'steer', id: steerId, message });
    return true;
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
    return this.#readEventLoop('elu');
  }

  observeEventLoop(): { readonly active: number; readonly utilization: number } {
    return this.#readEventLoop('observedElu');
  }

  /** Reads the turn's thread since one of its baselines and moves that baseline on. */
  #readEventLoop(baseline: 'elu' | 'observedElu') {
    const turn = this.#turn;
    const since = turn?.[baseline];
    if (!turn || turn.threadId === undefined || !since) return { active: 0, utilization: 0 };
    const reading = this.#pool.eventLoopUtilization(turn.threadId, since);
    turn[baseline] = this.#pool.eventLoopUtilization(turn.threadId);
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
    else if (!turn.task?.cancel()) turn.post({ type: 'interrupt', reason: 'terminated' });
    this.#taskFailed(turn, new Error('terminated'));
  }
}
