/**
 * The supervisor: owns registered agents (as encoded blueprints) and sessions, routes by
 * session key, admits turns globally, runs host callbacks for workers, and closes or destroys
 * everything it started. Embed it in any Node server.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import PQueue from 'p-queue';
import { Agent, redact } from '../agent/agent.js';
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
import type { SupervisorEvents } from './events.js';
import {
  parseSessionOptions,
  parseSupervisorOptions,
  type ResolvedSupervisorOptions,
  type SessionOptions,
  type SupervisorOptions,
} from './options.js';
import { DedicatedRunner } from './placement/dedicated.js';
import type { RunnerInit, TurnRunner } from './placement/runner.js';
import { Session, type SessionHost } from './session.js';
import { assertSessionKey } from './session-key.js';
import { MemoryStore } from './stores/memory.js';
import type { JournalStore } from './stores/store.js';

interface Registered {
  readonly name: string;
  readonly blueprint: Blueprint;
  /** Encoded once at registration; every session start reuses it. */
  readonly encoded: string;
  readonly busyPolicy: ResolvedSupervisorOptions['busyPolicy'] | undefined;
}

export type SupervisorStatus = 'open' | 'closing' | 'closed' | 'destroyed';

export interface SupervisorStats {
  readonly status: SupervisorStatus;
  readonly agents: number;
  readonly sessions: number;
  readonly liveWorkers: number;
  readonly busySessions: number;
  readonly queuedMessages: number;
  readonly turnsInFlight: number;
  readonly turnsWaitingForAdmission: number;
  readonly turns: {
    readonly ok: number;
    readonly failed: number;
    readonly byCode: Readonly<Record<string, number>>;
  };
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
 */
export class Supervisor extends EventEmitter<SupervisorEvents> {
  readonly #options: ResolvedSupervisorOptions;
  readonly #store: JournalStore;
  readonly #ownsStore: boolean;
  readonly #agents = new Map<string, Registered>();
  readonly #sessions = new Map<string, Session>();
  readonly #admission: PQueue;
  readonly #insideTurn = new AsyncLocalStorage<string>();
  readonly #sessionHost: SessionHost;
  readonly #hostApi: HostApi;
  #status: SupervisorStatus = 'open';
  #closing: Promise<void> | undefined;
  #destroying: Promise<void> | undefined;
  readonly #counters = {
    ok: 0,
    failed: 0,
    byCode: {} as Record<string, number>,
    crashes: 0,
    restarts: 0,
  };

  /** Throws `AGENTCELL_OPTIONS_INVALID` listing every bad option. */
  constructor(options: SupervisorOptions = {}) {
    super();
    this.#options = parseSupervisorOptions(options);
    this.#ownsStore = this.#options.store === undefined;
    this.#store = this.#options.store ?? new MemoryStore();
    this.#admission = new PQueue({ concurrency: this.#options.maxConcurrentTurns });
    this.#hostApi = this.#makeHostApi();
    this.#sessionHost = this.#makeSessionHost();
    this.on('turn:end', ({ outcome }) => {
      if (outcome === 'ok') this.#counters.ok++;
      else {
        this.#counters.failed++;
        this.#counters.byCode[outcome] = (this.#counters.byCode[outcome] ?? 0) + 1;
      }
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
   * are registered here automatically).
   */
  register(
    name: string,
    agent: Agent | Blueprint,
    options: Pick<SessionOptions, 'busyPolicy'> = {},
  ): this {
    this.#assertOpen();
    if (typeof name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
      throw new OptionsInvalidError(
        `agent name ${JSON.stringify(name)}: use 1 to 64 letters, digits, "_" or "-"`,
      );
    }
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
    this.#agents.set(name, { name, blueprint, encoded, busyPolicy: options.busyPolicy });
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
    this.#assertHandoffsRegistered(registered);
    const session = new Session(key, parsed.agent, this.#sessionHost, {
      busyPolicy: parsed.busyPolicy ?? registered.busyPolicy ?? this.#options.busyPolicy,
      budget: parsed.budget ?? this.#options.budget,
    });
    this.#sessions.set(key, session);
    return session;
  }

  #assertHandoffsRegistered(registered: Registered): void {
    for (const name of registered.blueprint.handoffs) {
      if (!this.#agents.has(name)) {
        throw new AgentNotRegisteredError(
          `agent ${registered.name} hands off to ${name}, which is not registered`,
        );
      }
    }
  }

  stats(): SupervisorStats {
    const sessions = [...this.#sessions.values()];
    return {
      status: this.#status,
      agents: this.#agents.size,
      sessions: sessions.length,
      liveWorkers: sessions.filter((s) => s.threadId !== undefined).length,
      busySessions: sessions.filter((s) => s.busy).length,
      queuedMessages: sessions.reduce((sum, s) => sum + s.queued, 0),
      turnsInFlight: this.#admission.pending,
      turnsWaitingForAdmission: this.#admission.size,
      turns: {
        ok: this.#counters.ok,
        failed: this.#counters.failed,
        byCode: { ...this.#counters.byCode },
      },
      crashes: this.#counters.crashes,
      restarts: this.#counters.restarts,
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
      if (this.#ownsStore) await this.#store.close();
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
      if (this.#ownsStore) await this.#store.close();
    })();
    return this.#destroying;
  }

  #assertOpen(): void {
    if (this.#status === 'destroyed')
      throw new SupervisorDestroyedError('the supervisor was destroyed');
    if (this.#status !== 'open')
      throw new SupervisorClosedError(`the supervisor is ${this.#status}`);
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
      assertOpen: () => this.#assertOpen(),
      isInsideTurnOf: (key) => this.#insideTurn.getStore() === key,
      runnerInit: (key, agent, journal) => this.#runnerInit(key, agent, journal),
      startRunner: (init) => this.#startRunner(init),
      emit: (event, ...payload) =>
        (this.emit as (name: string, ...args: unknown[]) => boolean)(event, ...payload),
    };
  }

  #runnerInit(key: string, agentName: string, journal: readonly JournalRecord[]): RunnerInit {
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
      sessionKey: key,
      blueprint: registered.encoded,
      journal: encodeJournal(journal),
      tools: this.#options.tools.entries(),
      handoffs,
      hooks: Object.keys(this.#options.hooks),
      validators: Object.keys(this.#options.validators),
      host: this.#hostApi,
    };
  }

  #startRunner(init: RunnerInit): Promise<TurnRunner> {
    const limits = this.#options.resourceLimits;
    return DedicatedRunner.start(init, {
      resourceLimits: limits,
      startTimeoutMs: this.#options.startTimeoutMs,
      rpcTimeoutMs: this.#options.rpcTimeoutMs,
    });
  }

  /** What workers may call back: each call runs marked as inside its session's turn. */
  #makeHostApi(): HostApi {
    const options = this.#options;
    const never = new AbortController().signal;
    return {
      callTool: (name, args, context) =>
        this.#insideTurn.run(context.sessionKey, async () => {
          const tool = options.tools.get(name);
          if (!tool.run || tool.kind !== 'host')
            throw new ToolNotFoundError(`${name} is not a host tool`);
          return tool.run(args as never, { ...context, signal: never });
        }),
      runHook: (name, context) =>
        this.#insideTurn.run(context.sessionKey, async () => {
          await options.hooks[name]?.(context);
        }),
      validate: (name, reply, context) =>
        this.#insideTurn.run(context.sessionKey, async () => {
          const validator = options.validators[name];
          if (!validator) return `no validator named ${name}`;
          const spec = this.#agents.get(this.#sessions.get(context.sessionKey)?.agent ?? '')
            ?.blueprint.spec;
          return validator(reply, { ...context, config: spec ? redact(spec) : {} });
        }),
      approve: (request) =>
        this.#insideTurn.run(
          request.sessionKey,
          async () => (await options.approver?.(request)) === true,
        ),
    };
  }
}
