/**
 * The supervisor: owns registered agents (as encoded blueprints) and sessions, routes by
 * session key, admits turns globally, and closes or destroys everything it started. Where each
 * session's turns run is its placement's business: this process ({@link LocalPlacement}), or,
 * with the `cluster` option, whichever node of the cluster owns the session. Embed it in any
 * Node server.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import PQueue from 'p-queue';
import type { Agent } from '../agent/agent.js';
import type { Blueprint } from '../agent/blueprint.js';
import { encodeJournal } from '../agent/journal.js';
import {
  AgentNotRegisteredError,
  OptionsInvalidError,
  SupervisorClosedError,
  SupervisorDestroyedError,
} from '../errors.js';
import type { ModelCallRecord } from '../llm/model-call-telemetry.js';
import { ModelService } from '../llm/model-service.js';
import type { HostApi } from '../worker/api.js';
import { AgentRegistry } from './agent-registry.js';
import type { SupervisorEvents } from './events.js';
import { makeHostApi } from './host-api.js';
import { type Journals, journalsOfCluster, journalsOfStore } from './journals.js';
import { logLifecycle } from './lifecycle-log.js';
import { LocalPlacement } from './local-placement.js';
import { startMcpHost } from './mcp-sessions.js';
import {
  type Placement,
  parseSessionOptions,
  type RegisterOptions,
  type ResetPolicy,
  type ResolvedSupervisorOptions,
  type SessionOptions,
} from './options.js';
import type { AgentRunnerInit, RunnerInit } from './placement/runner.js';
import type { RemoteNode } from './remote-placement.js';
import type { Session } from './session.js';
import { ActorSession } from './session-actor.js';
import type { SessionGate, SessionHost } from './session-host.js';
import { assertSessionKey } from './session-key.js';
import { RoutedSession } from './session-routed.js';
import { MemoryStore } from './stores/memory.js';
import type { JournalStore } from './stores/store.js';
import { resolveSupervisorOptions, type SupervisorOptions } from './supervisor-options.js';
import {
  LifecycleCounters,
  type SupervisorStats,
  type SupervisorStatus,
  sessionFigures,
} from './supervisor-stats.js';
import { TurnTraces } from './turn-traces.js';

export type { SupervisorOptions } from './supervisor-options.js';
export type { SupervisorStats, SupervisorStatus } from './supervisor-stats.js';

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
 * import { redisCluster } from 'agentcell/cluster';
 * const node = new Supervisor({ cluster: redisCluster({ redis: 'redis://10.0.0.5:6379' }) });
 */
export class Supervisor extends EventEmitter<SupervisorEvents> {
  readonly #options: ResolvedSupervisorOptions;
  readonly #store: JournalStore;
  readonly #ownsStore: boolean;
  readonly #agents: AgentRegistry;
  readonly #sessions = new Map<string, Session>();
  readonly #admission: PQueue;
  readonly #insideTurn = new AsyncLocalStorage<string>();
  readonly #hostApi: HostApi;
  /** Every model call of every session goes through it; the credentials stay here. */
  readonly #models: ModelService;
  readonly #traces: TurnTraces;
  readonly #sessionHost: SessionHost;
  readonly #placement: LocalPlacement;
  /** Set in cluster mode: sessions then run wherever their owner is. */
  readonly #remote: RemoteNode | undefined;
  readonly #journals: Journals;
  readonly #mcp: ReturnType<typeof startMcpHost>;
  #status: SupervisorStatus = 'open';
  #closing: Promise<void> | undefined;
  #destroying: Promise<void> | undefined;
  readonly #counters = new LifecycleCounters(this);
  /** `emit` for the session host and the cluster, which pass events through by name. */
  readonly #emitEvent = (event: string, ...payload: unknown[]): boolean =>
    (this.emit as (name: string, ...args: unknown[]) => boolean)(event, ...payload);

  /** Throws `AGENTCELL_OPTIONS_INVALID` listing every bad option. */
  constructor(options: SupervisorOptions = {}) {
    super();
    const { cluster, local, resolved } = resolveSupervisorOptions(options ?? {});
    this.#options = resolved;
    this.#ownsStore = this.#options.store === undefined;
    this.#store = this.#options.store ?? new MemoryStore();
    this.#admission = new PQueue({ concurrency: this.#options.maxConcurrentTurns });
    this.#traces = new TurnTraces(this.#options.tracing);
    const { tracer, recordContent } = this.#traces;
    const onCall = (call: ModelCallRecord) => this.emit('model:call', call);
    const telemetry = { tracer, recordContent, onCall };
    this.#models = new ModelService({ clock: this.#options.clock, telemetry });
    this.#agents = new AgentRegistry(this.#options.tools, this.#models);
    this.#mcp = startMcpHost(this.#options.mcp, this);
    this.#hostApi = makeHostApi(
      this.#options,
      this.#insideTurn,
      (key) => this.#agents.get(this.#sessions.get(key)?.agent ?? '')?.blueprint.spec,
      this.#mcp,
    );
    this.#sessionHost = this.#makeSessionHost();
    this.#placement = new LocalPlacement({
      options: this.#options,
      store: this.#store,
      admission: this.#admission,
      agentInit: (agent) => this.#agentInit(agent),
      placementOf: (agent) => this.#placementOf(agent),
    });
    const { store: _store, ...nodeOptions } = local;
    this.#remote = cluster?.attach({
      options: nodeOptions,
      emit: this.#emitEvent,
    });
    this.#journals = this.#remote ? journalsOfCluster(this.#remote) : journalsOfStore(this.#store);
    // A cluster node's own Supervisor runs (and logs) the sessions; this one only routes.
    if (!this.#remote) logLifecycle(this);
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
    const registered = this.#agents.add(name, agent, options);
    this.#remote?.register(name, agent, options);
    const warmSize =
      this.#placementOf(name) === 'dedicated'
        ? (registered.options.warmPoolSize ?? this.#options.warmPoolSize)
        : 0;
    if (this.#agents.handoffsRegistered(registered.blueprint)) {
      this.#placement.setWarmTarget(name, warmSize);
    }
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
    const registered = this.#agents.named(parsed.agent);
    this.#agents.assertHandoffs(registered);
    const sessionOptions = {
      busyPolicy: parsed.busyPolicy ?? registered.options.busyPolicy ?? this.#options.busyPolicy,
      budget: parsed.budget ?? this.#options.budget,
    };
    const session = this.#remote
      ? new RoutedSession(key, parsed.agent, this.#sessionHost, this.#remote, sessionOptions)
      : new ActorSession(key, parsed.agent, this.#sessionHost, sessionOptions);
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
    const records = await this.#journals.read(key);
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
    const journaled = await this.#journals.keys();
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
    return this.#agents.names();
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
    await this.#journals.delete(key);
  }

  /**
   * In cluster mode, joins the cluster: connects to Redis and takes this node's share of the
   * shards. The first message does it too; call it on a node that only runs sessions, or to
   * see a bad Redis URL at startup. On a single node it resolves at once.
   *
   * @example
   * const supervisor = new Supervisor({ cluster: redisCluster({ redis: 'redis://127.0.0.1:6379' }) });
   * supervisor.register('support', agent);
   * await supervisor.start();
   */
  async start(): Promise<void> {
    this.#assertOpen();
    await this.#remote?.start();
  }

  /** In cluster mode, this node: its id and the cluster's shard count. */
  cluster(): { readonly nodeId: string; readonly shards: number } | undefined {
    return this.#remote?.describe();
  }

  /**
   * Figures of the sessions this process runs. In cluster mode they are the node's: the
   * sessions of the shards it owns, whichever node their messages came through.
   */
  stats(): SupervisorStats {
    const own = { status: this.#status, agents: this.#agents.size };
    if (this.#remote) return { ...this.#remote.stats(), ...own };
    return {
      ...own,
      ...sessionFigures([...this.#sessions.values()]),
      ...this.#placement.figures(),
      turnsInFlight: this.#admission.pending,
      turnsWaitingForAdmission: this.#admission.size,
      mcpConnections: this.#mcp.connectionCount,
      ...this.#counters.figures(),
    };
  }

  /** What the live-worker ceiling is made of, for operators (maps, memory). */
  capacity(): Record<string, number | undefined> {
    return this.#placement.capacity();
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
      await this.#remote?.close();
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
      await this.#remote?.destroy(reason);
      await this.#releaseThreads();
    })();
    return this.#destroying;
  }

  async #releaseThreads(): Promise<void> {
    await Promise.all([this.#placement.close(), this.#mcp.close()]);
    if (this.#ownsStore) await this.#store.close();
  }

  #assertOpen(): void {
    if (this.#status === 'destroyed')
      throw new SupervisorDestroyedError('the supervisor was destroyed');
    if (this.#status !== 'open')
      throw new SupervisorClosedError(`the supervisor is ${this.#status}`);
  }

  #placementOf(agent: string): Placement {
    return this.#agents.get(agent)?.options.placement ?? this.#options.placement;
  }

  #makeSessionHost(): SessionHost {
    const options = this.#options;
    const gate: SessionGate = {
      maxMessageBytes: options.maxMessageBytes,
      clock: options.clock,
      idempotencyWindowMs: options.idempotencyWindowMs,
      assertOpen: () => this.#assertOpen(),
      isInsideTurnOf: (key) => this.#insideTurn.getStore() === key,
      emit: this.#emitEvent,
    };
    return {
      ...gate,
      store: this.#store,
      admission: this.#admission,
      capacity: options.maxQueuedPerSession,
      overflow: options.overflow,
      turnTimeoutMs: options.turnTimeoutMs,
      interruptGraceMs: options.interruptGraceMs,
      restart: options.restart,
      idleTimeoutMs: options.idleTimeoutMs,
      traces: this.#traces,
      resetPolicy: (agent): ResetPolicy | undefined => this.#agents.get(agent)?.options.reset,
      approvalConfig: (agent) => this.#agents.get(agent)?.blueprint.spec.approval,
      runnerInit: (key, agent, journal): RunnerInit => ({
        ...this.#agentInit(agent),
        sessionKey: key,
        journal: encodeJournal(journal),
      }),
      startRunner: (session, init) => this.#placement.startRunner(session, init),
      onIdle: (key) => this.#placement.onIdle(key),
    };
  }

  #agentInit(agentName: string): AgentRunnerInit {
    const registered = this.#agents.named(agentName);
    return {
      ...registered.thread,
      tools: this.#options.tools.entries(),
      handoffs: this.#agents.handoffAgents(agentName),
      hooks: Object.keys(this.#options.hooks),
      validators: Object.keys(this.#options.validators),
      host: this.#hostApi,
      models: this.#models,
      spans: this.#traces,
    };
  }
}
