/**
 * Where the turns of this process's sessions run. Dedicated: a worker per live session, under
 * the machine's ceiling (the live set), taken from the warm pool or started cold through the
 * start queue. Pooled: the turns of every session on one shared pool of threads.
 */
import type PQueue from 'p-queue';
import { encodeJournal } from '../agent/journal.js';
import { errorFields, log } from '../log.js';
import { ArrivalRate } from './arrival-rate.js';
import { CapacityGuard } from './capacity.js';
import { LiveSet } from './live-set.js';
import type { Placement, ResolvedSupervisorOptions } from './options.js';
import { DedicatedRunner } from './placement/dedicated.js';
import { PooledRunner, TurnPool, type TurnPoolStats } from './placement/pooled.js';
import type { AgentRunnerInit, RunnerInit, TurnRunner } from './placement/runner.js';
import type { PlacedSession } from './session-host.js';
import { type StartKind, StartQueue } from './start-queue.js';
import type { JournalStore } from './stores/store.js';
import { WarmPool } from './warm-pool.js';

/**
 * Warm workers kept per start a burst of arrivals brings in while one start runs: the refill,
 * one start at a time, has to stay ahead of the sessions arriving meanwhile.
 */
const WARM_HEADROOM = 2;

export interface LocalPlacementOptions {
  readonly options: ResolvedSupervisorOptions;
  readonly store: JournalStore;
  /** Global admission: while turns wait for it, the warm pool does not refill. */
  readonly admission: PQueue;
  /** What a worker for `agent` is prepared with, before it is given a session. */
  readonly agentInit: (agent: string) => AgentRunnerInit;
  readonly placementOf: (agent: string) => Placement;
}

export class LocalPlacement {
  readonly #options: ResolvedSupervisorOptions;
  readonly #deps: LocalPlacementOptions;
  readonly #starts = new StartQueue();
  readonly #arrivals: ArrivalRate;
  readonly #capacity: CapacityGuard;
  readonly #live: LiveSet;
  readonly #warm: WarmPool;
  #pool: TurnPool | undefined;

  constructor(deps: LocalPlacementOptions) {
    const options = deps.options;
    this.#deps = deps;
    this.#options = options;
    this.#arrivals = new ArrivalRate(options.clock);
    this.#capacity = new CapacityGuard({ threads: () => this.#threads(), ...options.capacity });
    // The ceiling as estimated now; every start checks the room left again, with the maps
    // per thread measured by then.
    const ceiling = this.#capacity.ceiling(0);
    this.#live = new LiveSet({
      maxLive: Math.max(1, Math.min(options.maxLiveSessions ?? ceiling, ceiling)),
      guard: this.#capacity,
      clock: options.clock,
      waitTimeoutMs: options.activationTimeoutMs,
      reserved: (agent) =>
        this.#warm.size +
        this.#warm.preparing -
        (agent !== undefined && this.#warm.readyFor(agent) > 0 ? 1 : 0),
      evictReserved: (agent) => this.#warm.evict(agent),
    });
    this.#warm = new WarmPool({
      prepare: (agent) => this.#startWorker(deps.agentInit(agent), 'warm'),
      demand: (agent) => this.#warmDemand(agent),
      clock: options.clock,
      canGrow: () =>
        this.#live.size + this.#warm.size + this.#warm.preparing + 1 < this.#live.maxLive &&
        this.#capacity.headroom() > 0,
      isUnderPressure: () => deps.admission.size > 0 || this.#live.waiting > 0,
      onError: (agent, error) => {
        log('runtime').warn(
          { ...errorFields(error), agent },
          'a warm worker could not be prepared; the pool stops refilling this agent until a worker of it is taken',
        );
      },
    });
  }

  /** Session threads alive now: live sessions' and prepared or preparing warm ones. */
  #threads(): number {
    // Read once during construction, before either exists: no thread runs yet.
    const live = this.#live as LiveSet | undefined;
    const warm = this.#warm as WarmPool | undefined;
    return (live?.size ?? 0) + (warm ? warm.size + warm.preparing : 0);
  }

  /**
   * Warm workers the arrivals of `agent` call for: as many as arrive while a start runs, with
   * headroom, up to `warmPoolMax` (Little's law: arrivals per second × seconds per start).
   */
  #warmDemand(agent: string): number {
    const perStart = (this.#arrivals.perSecond(agent) * this.#starts.startMs) / 1000;
    // Rounded, not ceiled: a trickle of arrivals (a fraction of one per start) needs no more
    // than the configured size.
    return Math.min(this.#options.warmPoolMax, Math.round(perStart * WARM_HEADROOM));
  }

  /** Keeps at least `size` prepared workers for `agent` (0: none unless arrivals call for them). */
  setWarmTarget(agent: string, size: number): void {
    this.#warm.setTarget(agent, size);
  }

  /** A turn of session `key` ended: it becomes most recently used, and waiting work may go on. */
  onIdle(key: string): void {
    this.#live.touch(key);
    this.#live.kick();
    // A refill that stopped while turns waited for admission resumes once load eases.
    this.#warm.kick();
  }

  /** Live workers, the warm pool and waiting activations, for the supervisor's stats. */
  figures(): {
    readonly liveWorkers: number;
    readonly maxLiveSessions: number;
    readonly warmWorkers: number;
    readonly warmHits: number;
    readonly warmMisses: number;
    readonly activationsWaiting: number;
    readonly workerStartsRunning: number;
    readonly workerStartsQueued: number;
    readonly pool?: TurnPoolStats;
  } {
    return {
      liveWorkers: this.#live.size,
      maxLiveSessions: this.#live.maxLive,
      warmWorkers: this.#warm.size,
      warmHits: this.#warm.hits,
      warmMisses: this.#warm.misses,
      activationsWaiting: this.#live.waiting,
      workerStartsRunning: this.#starts.running,
      workerStartsQueued: this.#starts.queued,
      ...(this.#pool && { pool: this.#pool.stats() }),
    };
  }

  /** What the live-worker ceiling is made of, for operators (maps, memory). */
  capacity(): Record<string, number | undefined> {
    return {
      ...this.#capacity.describe(),
      maxLiveSessions: this.#live.maxLive,
      liveWorkers: this.#live.size,
    };
  }

  /**
   * Where a session's turns run. Dedicated: take a live slot (passivating the least recently
   * used idle session, or waiting), then a warm worker or a cold start, then activate it with
   * the session's journal. Pooled: a runner over the shared pool, no thread of its own.
   */
  async startRunner(
    session: PlacedSession,
    init: RunnerInit,
  ): Promise<{ runner: TurnRunner; warm: boolean }> {
    if (this.#deps.placementOf(session.agent) === 'pooled') {
      this.#pool ??= new TurnPool({
        maxThreads: this.#options.poolThreads,
        turnsPerThread: this.#options.poolTurnsPerThread,
        resourceLimits: this.#options.resourceLimits,
      });
      const runner = PooledRunner.create(this.#pool, init, {
        journal: async () => encodeJournal(await this.#deps.store.read(session.key)),
        interruptGraceMs: this.#options.interruptGraceMs,
      });
      return { runner, warm: false };
    }
    this.#arrivals.record(session.agent);
    const lease = await this.#live.acquire(session);
    const prepared = this.#warm.take(session.agent);
    let runner: DedicatedRunner | undefined = prepared;
    try {
      runner ??= await this.#startWorker(init, 'session');
      await runner.activate(init.sessionKey, init.journal);
    } catch (error) {
      await runner?.terminate();
      this.#live.release(session.key, lease);
      throw error;
    }
    void runner.exited.then(() => this.#live.release(session.key, lease));
    return { runner, warm: prepared !== undefined };
  }

  /** Stops the warm workers and the pool (sessions stop their own workers). */
  async close(): Promise<void> {
    await this.#warm.close();
    await this.#pool?.destroy();
  }

  #startWorker(init: AgentRunnerInit, kind: StartKind): Promise<DedicatedRunner> {
    return this.#starts.run(kind, () =>
      DedicatedRunner.prepare(init, {
        resourceLimits: this.#options.resourceLimits,
        startTimeoutMs: this.#options.startTimeoutMs,
        rpcTimeoutMs: this.#options.rpcTimeoutMs,
      }),
    );
  }
}
