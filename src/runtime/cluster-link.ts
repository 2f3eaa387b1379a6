/**
 * What `new Supervisor({ cluster })` stands on: a ClusterNode (in `src/cluster/`, which builds
 * on this runtime) created on first use and started once. The supervisor's sessions send
 * through it; the node runs the sessions of the shards it owns on a Supervisor of its own.
 *
 * The node is loaded with a dynamic import: the cluster layer depends on the runtime, not the
 * other way round, and a single-node process never loads the Redis client.
 */
import type { Agent } from '../agent/agent.js';
import type { Blueprint } from '../agent/blueprint.js';
import type { JournalRecord } from '../agent/journal.js';
import type { TurnEvent } from '../agent/turn-events.js';
import type { SupervisorEvents } from './events.js';
import type {
  BusyPolicy,
  ClusterOptions,
  RegisterOptions,
  SessionBudget,
  SupervisorOptions,
} from './options.js';
import type { Reply, SessionRoute } from './session-types.js';
import type { Supervisor, SupervisorStats } from './supervisor.js';

/** The part of a ClusterNode the supervisor uses. */
export interface ClusterBackend {
  readonly nodeId: string;
  readonly shards: number;
  readonly supervisor: Supervisor;
  register(name: string, agent: Agent | Blueprint, options?: RegisterOptions): unknown;
  start(): Promise<void>;
  send(
    key: string,
    message: string,
    options: {
      readonly agent: string;
      readonly busyPolicy?: BusyPolicy | undefined;
      readonly budget?: SessionBudget | undefined;
      readonly onEvent?: ((event: TurnEvent) => void) | undefined;
    },
  ): Promise<Reply>;
  interrupt(key: string, reason?: string): Promise<boolean>;
  deleteSession(key: string): Promise<void>;
  journal(key: string): Promise<readonly JournalRecord[]>;
  journalKeys(): Promise<readonly string[]>;
  close(): Promise<void>;
  destroy(reason?: string): Promise<void>;
}

/** Lifecycle events of the node's own Supervisor, re-emitted by the one the user holds. */
const FORWARDED_EVENTS = [
  'session:start',
  'session:passivate',
  'session:reset',
  'turn:start',
  'turn:end',
  'session:crash',
  'session:restart',
  'session:fail',
  'session:close',
] as const satisfies readonly (keyof SupervisorEvents)[];

export class ClusterLink {
  readonly #node: Promise<ClusterBackend>;
  #started: Promise<ClusterBackend> | undefined;
  #backend: ClusterBackend | undefined;
  #closed = false;

  constructor(
    cluster: ClusterOptions,
    local: Omit<SupervisorOptions, 'cluster' | 'store'>,
    outer: Supervisor,
  ) {
    this.#node = import('../cluster/node.js').then(({ ClusterNode }) => {
      const node = new ClusterNode({ ...cluster, supervisor: local });
      for (const name of FORWARDED_EVENTS) {
        node.supervisor.on(name, (...args: unknown[]) =>
          (outer.emit as (event: string, ...rest: unknown[]) => boolean)(name, ...args),
        );
      }
      this.#backend = node;
      return node;
    });
    // A bad option or a missing module surfaces at the first use; nothing is left unhandled.
    this.#node.catch(() => {});
  }

  /** Registers on the node, once it exists (registration order is kept). */
  register(name: string, agent: Agent | Blueprint, options: RegisterOptions): void {
    void this.#node.then((node) => node.register(name, agent, options)).catch(() => {});
  }

  /** Joins the cluster, once; every later call gets the same outcome. */
  start(): Promise<ClusterBackend> {
    this.#started ??= this.#node.then(async (node) => {
      await node.start();
      return node;
    });
    return this.#started;
  }

  /** How a session of this supervisor reaches the node that runs it. */
  route(key: string, agent: string, busyPolicy: BusyPolicy): SessionRoute {
    return {
      send: async (message, onEvent, budget) =>
        (await this.start()).send(key, message, { agent, busyPolicy, onEvent, budget }),
      interrupt: async (reason) => (await this.start()).interrupt(key, reason),
      journal: () => this.journal(key),
    };
  }

  async deleteSession(key: string): Promise<void> {
    await (await this.start()).deleteSession(key);
  }

  /** A session's journal, wherever the session runs. */
  async journal(key: string): Promise<readonly JournalRecord[]> {
    return (await this.start()).journal(key);
  }

  /** The keys of every session with a journal in the cluster. */
  async journalKeys(): Promise<readonly string[]> {
    return (await this.start()).journalKeys();
  }

  /** The node's own Supervisor's figures: the sessions this process runs. */
  stats(): SupervisorStats | undefined {
    return this.#backend?.supervisor.stats();
  }

  /** This node, once it exists. */
  describe(): { readonly nodeId: string; readonly shards: number } | undefined {
    const node = this.#backend;
    return node && { nodeId: node.nodeId, shards: node.shards };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const node = await this.#node.catch(() => undefined);
    await node?.close();
  }

  async destroy(reason: string): Promise<void> {
    this.#closed = true;
    const node = await this.#node.catch(() => undefined);
    await node?.destroy(reason);
  }
}
