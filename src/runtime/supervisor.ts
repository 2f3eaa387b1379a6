/**
 * The supervisor: owns registered agents (as encoded blueprints) and sessions, routes by
 * session key, admits turns globally, decides where each session's turns run (a live worker
 * from the warm pool or a cold start, under the machine's ceiling; or the shared pool), and
 * closes or destroys everything it started. Embed it in any Node server.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import { availableParallelism } from 'node:os';
import PQueue from 'p-queue';
import { Agent } from '../agent/agent.js';
import {
  type Blueprint,
  decodeBlueprint,
  encodeBlueprint,
  toBlueprint,
} from '../agent/blueprint.js';
import { encodeJournal, type JournalRecord } from '../agent/journal.js';
import {
  AgentNotRegisteredError,
  BlueprintInvalidError,
  OptionsInvalidError,
  SupervisorClosedError,
  SupervisorDestroyedError,
  ToolNotFoundError,
} from '../errors.js';
import type { HostApi } from '../worker/api.js';
import { CapacityGuard } from './capacity.js';
import { ClusterLink } from './cluster-link.js';
import type { SupervisorEvents } from './events.js';
import { makeHostApi } from './host-api.js';
import { LiveSet } from './live-set.js';
import {
  type Placement,
  parseRegisterOptions,
  parseSessionOptions,
  parseSupervisorOptions,
  type RegisterOptions,
  type ResetPolicy,
  type ResolvedSupervisorOptions,
  type SessionOptions,
  type SupervisorOptions,
} from './options.js';
import { type DedicatedOptions, DedicatedRunner } from './placement/dedicated.js';
import { PooledRunner, TurnPool } from './placement/pooled.js';
import type { AgentRunnerInit, RunnerInit, TurnRunner } from './placement/runner.js';
import { Session } from './session.js';
import type { SessionHost } from './session-host.js';
import { assertSessionKey } from './session-key.js';
import { MemoryStore } from './stores/memory.js';
import type { JournalStore } from './stores/store.js';
import { WarmPool } from './warm-pool.js';

interface Registered {
  readonly name: string;
  readonly blueprint: Blueprint;
  /** Encoded once at registration; every session start reuses it. */
  readonly encoded: string;
  readonly options: ReturnType<typeof parseRegisterOptions>;
}

export type SupervisorStatus = 'open' | 'closing' | 'closed' | 'destroyed';

export interface SupervisorStats {
  readonly status: SupervisorStatus;
  readonly agents: number;
  readonly sessions: number;
  /** Sessions with a live worker of their own. */
  readonly liveWorkers: number;
  /** The most live workers allowed (option, capped by the machine ceiling). */
  readonly maxLiveSessions: number;
  /** Prepared workers waiting in the warm pool. */
  readonly warmWorkers: number;
  readonly warmHits: number;
  readonly warmMisses: number;
  /** Sessions whose worker was released while idle (they come back on their next message). */
  readonly passivatedSessions: number;
  /** Activations waiting for a live slot. */
  readonly activationsWaiting: number;
  readonly busySessions: number;
  readonly queuedMessages: number;
  readonly turnsInFlight: number;
  readonly turnsWaitingForAdmission: number;
  readonly turns: {
    readonly ok: number;
    readonly failed: number;
    readonly byCode: Readonly<Record<string, number>>;
  };
  readonly workerStarts: number;
  readonly crashes: number;
  readonly restarts: number;
}

/**
 * Gives every session its own clone of a registered agent, each in its own worker thread.
 *
 * @example
 * const supervisor = new Supervisor();
 * supervisor.register('support', new Agent({ name: 'support', llm: 'gpt-4o-mini' }));
 * const { text } = await supervisor.session('tenant-7:user-3', { agent: 'support' }).send('hi');
 * await supervisor.close();
 *
 * @example
 * // One node of many: the same API; each session runs on the node owning its shard.
 * const node = new Supervisor({ cluster: { redis: 'redis://10.0.0.5:6379' } });
 */
export class Supervisor extends EventEmitter<SupervisorEvents> {
  readonly #options: ResolvedSupervisorOptions;
  readonly #store: JournalStore;
  readonly #ownsStore: boolean;
  readonly #agents = new Map<string, Registered>();
  readonly #sessions = new Map<string, Session>();
  readonly #admission: PQueue;
  readonly #starts = new PQueue({ concurrency: Math.max(2, availableParallelism()) });
  readonly #insideTurn = new AsyncLocalStorage<string>();
  readonly #hostApi: HostApi;
  readonly #sessionHost: SessionHost;
  readonly #capacity: CapacityGuard;
  readonly #live: LiveSet;
  readonly #warm: WarmPool;
  #pool: TurnPool | undefined;
  /** Set in cluster mode: sessions then run wherever their shard's owner is. */
  readonly #cluster: ClusterLink | undefined;
  #status: SupervisorStatus = 'open';
  #closing: Promise<void> | undefined;
  #destroying: Promise<void> | undefined;
  readonly #counters = {
    ok: 0,
    failed: 0,
    byCode: {} as Record<string, number>,
    starts: 0,
    crashes: 0,
    restarts: 0,
  };

  /** Throws `AGENTCELL_OPTIONS_INVALID` listing every bad option. */
  constructor(options: SupervisorOptions = {}) {
    super();
    const parsed = parseSupervisorOptions(options);
    if (parsed.cluster && parsed.store !== undefined) {
      throw new OptionsInvalidError(
        'store: a cluster keeps its journals in Redis; leave store out when cluster is set',
      );
    }
    // In cluster mode this supervisor only routes: the node's own Supervisor runs the turns,
    // so nothing here may boot workers.
    this.#options = parsed.cluster ? { ...parsed, warmPoolSize: 0 } : parsed;
    if (parsed.cluster) {
      const { cluster, store: _store, ...local } = options;
      this.#cluster = new ClusterLink(parsed.cluster, local, this);
    }
    this.#ownsStore = this.#options.store === undefined;
    this.#store = this.#options.store ?? new MemoryStore();
    this.#admission = new PQueue({ concurrency: this.#options.maxConcurrentTurns });
    this.#hostApi = makeHostApi(
      this.#options,
      this.#insideTurn,
      (key) => this.#registeredFor(key)?.blueprint.spec,
    );
    this.#sessionHost = this.#makeSessionHost();
    this.#capacity = new CapacityGuard(this.#options.capacity);
    const ceiling = this.#capacity.ceiling(0);
    this.#live = new LiveSet({
      maxLive: Math.max(1, Math.min(this.#options.maxLiveSessions ?? ceiling, ceiling)),
      guard: this.#capacity,
      clock: this.#options.clock,
      waitTimeoutMs: this.#options.activationTimeoutMs,
      reserved: (agent) =>
        this.#warm.size +
        this.#warm.preparing -
        (agent !== undefined && this.#warm.readyFor(agent) > 0 ? 1 : 0),
      evictReserved: (agent) => this.#warm.evict(agent),
    });
    this.#warm = new WarmPool({
      prepare: (agent) => this.#prepareWorker(agent),
      canGrow: () =>
        this.#live.size + this.#warm.size + this.#warm.preparing + 1 < this.#live.maxLive &&
        this.#capacity.headroom() > 0,
      isUnderPressure: () => this.#admission.size > 0 || this.#live.waiting > 0,
      onError: () => {},
    });
    this.#countEvents();
  }

  #countEvents(): void {
    this.on('turn:end', ({ outcome }) => {
      if (outcome === 'ok') this.#counters.ok++;
      else {
        this.#counters.failed++;
        this.#counters.byCode[outcome] = (this.#counters.byCode[outcome] ?? 0) + 1;
      }
    });
    this.on('session:start', ({ warm, threadId }) => {
      if (!warm && threadId >= 0) this.#counters.starts++;
    });
    this.on('session:crash', () => this.#counters.crashes++);
    this.on('session:restart', () => this.#counters.restarts++);
  }

  get status(): SupervisorStatus {
    return this.#status;
  }

  /**
   * Registers an agent (or its blueprint) under a name sessions refer to. Its tools must be
   * reachable from a worker: modules registered with `options.tools`, or host tools (which
   * are registered here automatically). Options: busy policy, reset policy, warm pool size
   * and placement for this agent's sessions.
   */
  register(name: string, agent: Agent | Blueprint, options: RegisterOptions = {}): this {
    this.#assertOpen();
    if (typeof name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
      throw new OptionsInvalidError(
        `agent name ${JSON.stringify(name)}: use 1 to 64 letters, digits, "_" or "-"`,
      );
    }
    const parsed = parseRegisterOptions(options);
    const registry = this.#options.tools;
    if (agent instanceof Agent) {
      for (const tool of agent.tools) {
        if (registry.has(tool.name)) continue;
        if (tool.kind === 'host') registry.register(tool);
        else {
          throw new ToolNotFoundError(
            `agent ${name} uses tool ${tool.name}, which workers cannot load: register its module with tools.registerModule(${JSON.stringify(tool.name)}, url) or define it with host: true`,
          );
        }
      }
    }
    const blueprint = agent instanceof Agent ? toBlueprint(agent) : agent;
    const encoded = encodeBlueprint(blueprint);
    // Decoded once here so a bad blueprint fails at registration, not in every worker.
    decodeBlueprint(encoded, { registry });
    this.#agents.set(name, { name, blueprint, encoded, options: parsed });
    this.#cluster?.register(name, agent, options);
    const warmSize =
      this.#placementOf(name) === 'dedicated'
        ? (parsed.warmPoolSize ?? this.#options.warmPoolSize)
        : 0;
    if (this.#handoffsRegistered(blueprint)) this.#warm.setTarget(name, warmSize);
    return this;
  }

  /**
   * The session for `key`, created on first use. Its worker starts with its first message.
   *
   * @example
   * const session = supervisor.session('slack:T01:C42', { agent: 'support' });
   */
  session(key: string, options: SessionOptions): Session {
    this.#assertOpen();
    assertSessionKey(key);
    const parsed = parseSessionOptions(options);
    const existing = this.#sessions.get(key);
    if (existing && existing.status !== 'closed') {
      if (existing.agent !== parsed.agent) {
        throw new OptionsInvalidError(
          `session ${JSON.stringify(key)} already runs agent ${existing.agent}, not ${parsed.agent}`,
        );
      }
      return existing;
    }
    const registered = this.#agents.get(parsed.agent);
    if (!registered)
      throw new AgentNotRegisteredError(`no agent named ${JSON.stringify(parsed.agent)}`);
    for (const name of registered.blueprint.handoffs) {
      if (!this.#agents.has(name)) {
        throw new AgentNotRegisteredError(
          `agent ${registered.name} hands off to ${name}, which is not registered`,
        );
      }
    }
    const busyPolicy =
      parsed.busyPolicy ?? registered.options.busyPolicy ?? this.#options.busyPolicy;
    if (this.#cluster && (busyPolicy === 'steer' || busyPolicy === 'coalesce')) {
      throw new OptionsInvalidError(
        `busyPolicy ${JSON.stringify(busyPolicy)} needs the running turn in this process and does not hold across nodes: use enqueue, reject or interrupt in a cluster`,
      );
    }
    const session = new Session(key, parsed.agent, this.#sessionHost, {
      busyPolicy,
      budget: parsed.budget ?? this.#options.budget,
      route: this.#cluster?.route(key, parsed.agent, busyPolicy),
    });
    this.#sessions.set(key, session);
    return session;
  }

  /**
   * The session by that key if it exists, never starting a conversation: open here, or with a
   * journal in the store (in a cluster: on any node), reopened with the agent it last ran.
   * Throws `AGENTCELL_AGENT_NOT_REGISTERED` when that agent is not registered here.
   *
   * @example
   * // After a restart: the conversation is still there, with the agent it had.
   * const session = await supervisor.find('tenant-7:user-3');
   * if (session) console.log(session.agent, await session.history());
   */
  async find(key: string): Promise<Session | undefined> {
    this.#assertOpen();
    assertSessionKey(key);
    const open = this.peek(key);
    if (open) return open;
    const records = await (this.#cluster ? this.#cluster.journal(key) : this.#store.read(key));
    const agent = records.findLast((record) => typeof record.agent === 'string')?.agent;
    if (agent === undefined) return undefined;
    if (!this.#agents.has(agent)) {
      throw new AgentNotRegisteredError(
        `session ${JSON.stringify(key)} ran agent ${JSON.stringify(agent)}, which is not registered here: register it to reach the session`,
      );
    }
    // Opened by another caller meanwhile: the same session.
    return this.peek(key) ?? this.session(key, { agent });
  }

  /**
   * Keys of every session this supervisor can reach: open here, or journaled in its store (in a
   * cluster: on any node).
   */
  async allSessionKeys(): Promise<string[]> {
    this.#assertOpen();
    const journaled = await (this.#cluster ? this.#cluster.journalKeys() : this.#store.keys());
    return [...new Set([...this.sessionKeys(), ...journaled])];
  }

  /** Keys of the sessions this supervisor knows (open ones, live or passivated). */
  sessionKeys(): string[] {
    return [...this.#sessions.entries()]
      .filter(([, session]) => session.status !== 'closed')
      .map(([key]) => key);
  }

  /** The open session for `key`, if there is one; never creates it. */
  peek(key: string): Session | undefined {
    const session = this.#sessions.get(key);
    return session && session.status !== 'closed' ? session : undefined;
  }

  /** Registered agent names. */
  agentNames(): string[] {
    return [...this.#agents.keys()];
  }

  /**
   * Closes a session (its queued messages are answered first) and deletes its journal: the
   * next message to that key starts a new conversation.
   */
  async deleteSession(key: string): Promise<void> {
    assertSessionKey(key);
    const session = this.#sessions.get(key);
    await session?.close();
    if (this.#sessions.get(key) === session) this.#sessions.delete(key);
    if (this.#cluster) await this.#cluster.deleteSession(key);
    else await this.#store.delete(key);
  }

  /**
   * In cluster mode, joins the cluster: connects to Redis and takes this node's share of the
   * shards. The first message does it too; call it on a node that only runs sessions, or to
   * see a bad Redis URL at startup. On a single node it resolves at once.
   *
   * @example
   * const supervisor = new Supervisor({ cluster: { redis: 'redis://127.0.0.1:6379' } });
   * supervisor.register('support', agent);
   * await supervisor.start();
   */
  async start(): Promise<void> {
    this.#assertOpen();
    await this.#cluster?.start();
  }

  /** In cluster mode, this node (its id and the cluster's shard count) once it has started. */
  cluster(): { readonly nodeId: string; readonly shards: number } | undefined {
    return this.#cluster?.describe();
  }

  /**
   * Figures of the sessions this process runs. In cluster mode they are the node's: the
   * sessions of the shards it owns, whichever node their messages came through.
   */
  stats(): SupervisorStats {
    const clustered = this.#cluster?.stats();
    if (clustered) return { ...clustered, status: this.#status, agents: this.#agents.size };
    const sessions = [...this.#sessions.values()];
    return {
      status: this.#status,
      agents: this.#agents.size,
      sessions: sessions.length,
      liveWorkers: this.#live.size,
      maxLiveSessions: this.#live.maxLive,
      warmWorkers: this.#warm.size,
      warmHits: this.#warm.hits,
      warmMisses: this.#warm.misses,
      passivatedSessions: sessions.filter((s) => s.isPassivated).length,
      activationsWaiting: this.#live.waiting,
      busySessions: sessions.filter((s) => s.busy).length,
      queuedMessages: sessions.reduce((sum, s) => sum + s.queued, 0),
      turnsInFlight: this.#admission.pending,
      turnsWaitingForAdmission: this.#admission.size,
      turns: {
        ok: this.#counters.ok,
        failed: this.#counters.failed,
        byCode: { ...this.#counters.byCode },
      },
      workerStarts: this.#counters.starts,
      crashes: this.#counters.crashes,
      restarts: this.#counters.restarts,
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
   * Graceful shutdown: admits no new messages, lets every queued message finish (each is
   * journaled), then stops the workers. Idempotent; later calls fail with
   * `AGENTCELL_SUPERVISOR_CLOSED`.
   */
  close(): Promise<void> {
    if (this.#destroying) return this.#destroying;
    this.#closing ??= (async () => {
      this.#status = 'closing';
      await Promise.all([...this.#sessions.values()].map((session) => session.close()));
      await this.#cluster?.close();
      await this.#releaseThreads();
      this.#status = 'closed';
    })();
    return this.#closing;
  }

  /**
   * Immediate shutdown: terminates every worker and fails every queued and running message
   * with `AGENTCELL_SUPERVISOR_DESTROYED` (carrying `reason`). Idempotent.
   */
  destroy(reason = 'destroyed'): Promise<void> {
    this.#destroying ??= (async () => {
      this.#status = 'destroyed';
      const error = new SupervisorDestroyedError(`the supervisor was destroyed: ${reason}`, {
        details: { reason },
      });
      await Promise.all([...this.#sessions.values()].map((session) => session.destroy(error)));
      await this.#cluster?.destroy(reason);
      await this.#releaseThreads();
    })();
    return this.#destroying;
  }

  async #releaseThreads(): Promise<void> {
    await this.#warm.close();
    await this.#pool?.destroy();
    if (this.#ownsStore) await this.#store.close();
  }

  #assertOpen(): void {
    if (this.#status === 'destroyed')
      throw new SupervisorDestroyedError('the supervisor was destroyed');
    if (this.#status !== 'open')
      throw new SupervisorClosedError(`the supervisor is ${this.#status}`);
  }

  #registeredFor(sessionKey: string): Registered | undefined {
    return this.#agents.get(this.#sessions.get(sessionKey)?.agent ?? '');
  }

  #placementOf(agent: string): Placement {
    return this.#agents.get(agent)?.options.placement ?? this.#options.placement;
  }

  #handoffsRegistered(blueprint: Blueprint): boolean {
    return blueprint.handoffs.every((name) => this.#agents.has(name));
  }

  #makeSessionHost(): SessionHost {
    const options = this.#options;
    return {
      clock: options.clock,
      store: this.#store,
      admission: this.#admission,
      capacity: options.maxQueuedPerSession,
      overflow: options.overflow,
      turnTimeoutMs: options.turnTimeoutMs,
      interruptGraceMs: options.interruptGraceMs,
      maxMessageBytes: options.maxMessageBytes,
      restart: options.restart,
      idleTimeoutMs: options.idleTimeoutMs,
      resetPolicy: (agent): ResetPolicy | undefined => this.#agents.get(agent)?.options.reset,
      assertOpen: () => this.#assertOpen(),
      isInsideTurnOf: (key) => this.#insideTurn.getStore() === key,
      runnerInit: (key, agent, journal) => this.#runnerInit(key, agent, journal),
      startRunner: (session, init) => this.#startRunner(session, init),
      onIdle: (session) => {
        this.#live.touch(session.key);
        this.#live.kick();
        // A refill that stopped while turns waited for admission resumes once load eases.
        this.#warm.kick();
      },
      emit: (event, ...payload) =>
        (this.emit as (name: string, ...args: unknown[]) => boolean)(event, ...payload),
    };
  }

  #agentInit(agentName: string): AgentRunnerInit {
    const registered = this.#agents.get(agentName);
    if (!registered)
      throw new AgentNotRegisteredError(`no agent named ${JSON.stringify(agentName)}`);
    const handoffs: Record<string, string> = {};
    for (const name of registered.blueprint.handoffs) {
      const target = this.#agents.get(name);
      if (!target)
        throw new BlueprintInvalidError(
          `agent ${agentName} hands off to ${name}, which is not registered`,
        );
      handoffs[name] = target.encoded;
    }
    return {
      blueprint: registered.encoded,
      tools: this.#options.tools.entries(),
      handoffs,
      hooks: Object.keys(this.#options.hooks),
      validators: Object.keys(this.#options.validators),
      host: this.#hostApi,
    };
  }

  #runnerInit(key: string, agentName: string, journal: readonly JournalRecord[]): RunnerInit {
    return { ...this.#agentInit(agentName), sessionKey: key, journal: encodeJournal(journal) };
  }

  #dedicatedOptions(): DedicatedOptions {
    return {
      resourceLimits: this.#options.resourceLimits,
      startTimeoutMs: this.#options.startTimeoutMs,
      rpcTimeoutMs: this.#options.rpcTimeoutMs,
    };
  }

  #prepareWorker(agent: string): Promise<DedicatedRunner> {
    return this.#startWorker(this.#agentInit(agent));
  }

  /**
   * Worker starts go through a queue as wide as the machine: a thread's start is ~100 ms of
   * CPU, and hundreds started at once would all crawl, time out their RPCs, and starve the
   * turns already running. Queued starts each finish fast instead.
   */
  #startWorker(init: AgentRunnerInit): Promise<DedicatedRunner> {
    return this.#starts.add(() => DedicatedRunner.prepare(init, this.#dedicatedOptions()));
  }

  /**
   * Where a session's turns run. Dedicated: take a live slot (passivating the least recently
   * used idle session, or waiting), then a warm worker or a cold start, then activate it with
   * the session's journal. Pooled: a runner over the shared pool, no thread of its own.
   */
  async #startRunner(
    session: Session,
    init: RunnerInit,
  ): Promise<{ runner: TurnRunner; warm: boolean }> {
    if (this.#placementOf(session.agent) === 'pooled') {
      this.#pool ??= new TurnPool({
        maxThreads: this.#options.poolThreads,
        turnsPerThread: this.#options.poolTurnsPerThread,
        resourceLimits: this.#options.resourceLimits,
      });
      const runner = PooledRunner.create(this.#pool, init, {
        journal: async () => encodeJournal(await this.#store.read(session.key)),
        interruptGraceMs: this.#options.interruptGraceMs,
      });
      return { runner, warm: false };
    }
    const lease = await this.#live.acquire(session);
    const prepared = this.#warm.take(session.agent);
    let runner: DedicatedRunner | undefined = prepared;
    try {
      runner ??= await this.#startWorker(init);
      await runner.activate(init.sessionKey, init.journal);
    } catch (error) {
      await runner?.terminate();
      this.#live.release(session.key, lease);
      throw error;
    }
    void runner.exited.then(() => this.#live.release(session.key, lease));
    return { runner, warm: prepared !== undefined };
  }
}
