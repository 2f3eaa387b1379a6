/**
 * What the runtime needs from a cluster, defined here so that the runtime never imports one:
 * the `cluster` option of a Supervisor takes a {@link RemotePlacement}, and `src/cluster/`
 * implements it (`redisCluster()` from `agentcell/cluster`). Each session of that Supervisor
 * then runs on whichever node owns it, and reaches it through the {@link RemoteNode}: its
 * messages (with their events), interrupts, journal reads, deletes and the node's lifecycle.
 *
 * @example
 * import { redisCluster } from 'agentcell/cluster';
 * const supervisor = new Supervisor({ cluster: redisCluster({ redis: 'redis://10.0.0.5:6379' }) });
 */
import type { Agent } from '../agent/agent.js';
import type { Blueprint } from '../agent/blueprint.js';
import type { JournalRecord } from '../agent/journal.js';
import type { TurnEvent } from '../agent/turn-events.js';
import { OptionsInvalidError } from '../errors.js';
import type { ApprovalAnswer, PendingApprovalView } from './approval-desk.js';
import type { SupervisorEvents } from './events.js';
import type {
  BusyPolicy,
  LocalSupervisorOptions,
  RegisterOptions,
  SessionBudget,
} from './options.js';
import type { Reply } from './session-types.js';
import type { SupervisorStats } from './supervisor-stats.js';

/** The value of the `cluster` option: joins a Supervisor to a cluster. */
export interface RemotePlacement {
  /**
   * Joins `supervisor` to the cluster as one node; called once, by the Supervisor's constructor.
   * Throws `AGENTCELL_OPTIONS_INVALID` when this placement already serves another Supervisor.
   */
  attach(supervisor: NodeSupervisor): RemoteNode;
}

/** What a Supervisor hands the cluster when it joins. */
export interface NodeSupervisor {
  /**
   * The Supervisor's own options, less `cluster` and `store`: the node runs the sessions of its
   * share of the cluster on a Supervisor of its own, built with them.
   */
  readonly options: Omit<LocalSupervisorOptions, 'store'>;
  /** Reports a lifecycle event of the sessions the node runs, on the user's Supervisor. */
  emit<E extends keyof SupervisorEvents>(event: E, ...payload: SupervisorEvents[E]): void;
}

/** How a message to a session that runs on another node is sent. */
export interface RemoteSendOptions {
  readonly agent: string;
  /** Applied where the session runs: only `enqueue`, `reject` and `interrupt` hold there. */
  readonly busyPolicy: BusyPolicy;
  /** The session's, for the turn the message starts where the session runs. */
  readonly budget: SessionBudget | undefined;
  readonly onEvent: ((event: TurnEvent) => void) | undefined;
  /** Checked again where the session runs: a repeat through any node is answered there once. */
  readonly idempotencyKey?: string | undefined;
}

/** One Supervisor's place in a cluster: every session reaches its owner through it. */
export interface RemoteNode {
  /** Registers an agent on the node too; every node must register the same ones. */
  register(name: string, agent: Agent | Blueprint, options: RegisterOptions): void;
  /** Joins the cluster, once; every later call (and every message) gets the same outcome. */
  start(): Promise<void>;
  /** Sends a message to session `key` where it runs; settles with its reply or typed error. */
  send(key: string, message: string, options: RemoteSendOptions): Promise<Reply>;
  /** Whether the interrupt reached the node that runs session `key`. */
  interrupt(key: string, reason: string): Promise<boolean>;
  /** Answers an approval of session `key` where it runs (the typed errors of a single host). */
  approve(key: string, agent: string, approvalId: string, answer: ApprovalAnswer): Promise<void>;
  /** The approvals session `key` waits on, listed where it runs. */
  approvals(key: string, agent: string): Promise<PendingApprovalView[]>;
  /** The journal of session `key`, wherever it runs. */
  journal(key: string): Promise<readonly JournalRecord[]>;
  /** The keys of every session with a journal in the cluster. */
  journalKeys(): Promise<readonly string[]>;
  /** Closes session `key` where it runs and deletes its journal, after its earlier messages. */
  deleteSession(key: string): Promise<void>;
  /** Figures of the sessions this node runs (its own Supervisor's). */
  stats(): SupervisorStats;
  /** This node's id and the cluster's shard count. */
  describe(): { readonly nodeId: string; readonly shards: number };
  /** Leaves the cluster gracefully (its shards are handed over drained). */
  close(): Promise<void>;
  /** Leaves at once; the messages of its turns are retried by the next owners. */
  destroy(reason: string): Promise<void>;
}

/** Throws `AGENTCELL_OPTIONS_INVALID` unless `value` is a placement (the old data form included). */
export function assertRemotePlacement(value: unknown): asserts value is RemotePlacement {
  const attach = (value as { attach?: unknown } | null)?.attach;
  if (typeof attach !== 'function') {
    throw new OptionsInvalidError(
      "cluster: expected a cluster placement, such as redisCluster({ redis: 'redis://…' }) from agentcell/cluster",
    );
  }
}
