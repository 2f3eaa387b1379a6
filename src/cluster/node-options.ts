/**
 * What a cluster node is configured with, checked in one place, and the shapes it shows its
 * users: send options, events, stats.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { TurnEvent } from '../agent/turn-events.js';
import { OptionsInvalidError } from '../errors.js';
import type { BusyPolicy, SessionBudget, SupervisorOptions } from '../runtime/options.js';
import type { Reply } from '../runtime/session-types.js';
import { assertShardCount, DEFAULT_SHARDS } from './shards.js';

export interface ClusterNodeOptions {
  /** The Redis every node of the cluster shares, as a `redis://` URL. */
  readonly redis: string;
  /** Unique per live node. @default `<hostname>-<pid>-<random>` */
  readonly nodeId?: string;
  /** Shards sessions hash into; the same on every node, for the life of the data. @default 64 */
  readonly shards?: number;
  /** Put before every Redis key (one prefix per cluster). @default 'agentcell:' */
  readonly prefix?: string;
  /** How often the node heartbeats, renews its leases and rebalances. @default 1000 */
  readonly heartbeatMs?: number;
  /**
   * How long a node may go without heartbeating before it counts as dead and its shards are
   * taken over (also the lease TTL). At least 3 heartbeats, so one slow tick is not fatal.
   * @default 10000
   */
  readonly leaseMs?: number;
  /** Messages a shard's inbox may hold before `send` fails with MAILBOX_FULL. @default 10000 */
  readonly maxInboxPerShard?: number;
  /** Messages this node reads ahead from its shards before it waits for some to finish. @default 1024 */
  readonly maxInFlight?: number;
  /** How long `send` waits for the reply of an accepted message. @default 300000 */
  readonly replyTimeoutMs?: number;
  /**
   * How long a shard being handed over waits for its running turns before it lets go anyway
   * (the next owner then retries those turns, which were not journaled). @default 30000
   */
  readonly drainTimeoutMs?: number;
  /** Largest message accepted, in UTF-8 bytes. @default 262144 */
  readonly maxMessageBytes?: number;
  /**
   * How many times a message's turn is started before it is answered with
   * `AGENTCELL_DELIVERY_LIMIT` instead: each start beyond the first means its owner stopped
   * (crashed, was fenced, or handed the shard over past drainTimeoutMs) before settling it, so
   * a message that kills every node that runs it is not retried for ever. @default 3
   */
  readonly maxDeliveries?: number;
  /** Options of the local Supervisor; its store is the cluster's (fenced RedisStore). */
  readonly supervisor?: Omit<SupervisorOptions, 'store'>;
}

export interface ClusterNodeEvents {
  /** This node took a shard, and claimed `claimed` messages its previous owner left pending. */
  'shard:acquire': [{ readonly shard: number; readonly epoch: number; readonly claimed: number }];
  /** This node drained a shard and handed it back. */
  'shard:release': [{ readonly shard: number; readonly epoch: number }];
  /** This node found it no longer owns a shard (lease gone, or a write refused by the fence). */
  'shard:lose': [{ readonly shard: number; readonly epoch: number; readonly reason: string }];
  /** A message of an owned shard starts (or is answered from the journal). */
  'message:start': [MessageEvent];
  /** A message was acked and its outcome handed to the accepting node. */
  'message:settle': [MessageEvent & { readonly outcome: string; readonly fromJournal: boolean }];
  /** A write of this node was refused: another node owns the shard now. */
  'message:fenced': [MessageEvent];
  /** Redis failed an operation; the node retries it or leaves the work to the next owner. */
  'redis:error': [{ readonly error: unknown; readonly during: string }];
}

export interface MessageEvent {
  readonly requestId: string;
  readonly key: string;
  readonly shard: number;
  readonly epoch: number;
}

export interface SubmitResult {
  /** Names the message in the inbox and in the journal (the record of its turn). */
  readonly requestId: string;
  readonly shard: number;
  /** Settles with the reply of the turn that answered the message, or its typed error. */
  readonly reply: Promise<Reply>;
}

export interface ClusterNodeStats {
  readonly nodeId: string;
  readonly status: ClusterNodeStatus;
  /** Shards owned now, with their epochs. */
  readonly shards: readonly {
    readonly shard: number;
    readonly epoch: number;
    readonly state: string;
  }[];
  /** Messages read from owned shards and not yet settled. */
  readonly inFlight: number;
  /** Accepted messages of this node's callers still waiting for a reply. */
  readonly awaitingReplies: number;
}

export type ClusterNodeStatus = 'new' | 'starting' | 'running' | 'closing' | 'closed';

/** Options of one message sent through a node. */
export interface ClusterSendOptions {
  readonly agent: string;
  /**
   * What the session's owner does if the session is busy: queue behind its turn (`enqueue`),
   * answer `AGENTCELL_SESSION_BUSY` (`reject`), or interrupt it (`interrupt`). `steer` and
   * `coalesce` need the running turn in the same process and are refused. @default 'enqueue'
   */
  readonly busyPolicy?: BusyPolicy | undefined;
  /**
   * The budget the turn runs under on the session's owner (tokens and cost of the session in
   * all, CPU per turn); without one, the owner's own Supervisor default applies.
   */
  readonly budget?: SessionBudget | undefined;
  /** Called with the turn's events as the owner forwards them; the last is `final`. */
  readonly onEvent?: ((event: TurnEvent) => void) | undefined;
}

export type ResolvedNodeOptions = Required<
  Omit<ClusterNodeOptions, 'nodeId' | 'shards' | 'supervisor'>
>;

const NODE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Defaults filled in; every bad option listed in one `AGENTCELL_OPTIONS_INVALID`. */
export function resolveNodeOptions(options: ClusterNodeOptions): {
  readonly nodeId: string;
  readonly shards: number;
  readonly resolved: ResolvedNodeOptions;
} {
  if (typeof options?.redis !== 'string' || !/^rediss?:\/\//.test(options.redis)) {
    throw new OptionsInvalidError('redis: expected a redis:// or rediss:// URL');
  }
  const nodeId = options.nodeId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  if (!NODE_ID.test(nodeId)) {
    throw new OptionsInvalidError(
      `nodeId ${JSON.stringify(nodeId)}: use 1 to 128 letters, digits, ".", "_", ":" or "-"`,
    );
  }
  const shards = options.shards ?? DEFAULT_SHARDS;
  assertShardCount(shards);
  const resolved: ResolvedNodeOptions = {
    redis: options.redis,
    prefix: options.prefix ?? 'agentcell:',
    heartbeatMs: options.heartbeatMs ?? 1_000,
    leaseMs: options.leaseMs ?? 10_000,
    maxInboxPerShard: options.maxInboxPerShard ?? 10_000,
    maxInFlight: options.maxInFlight ?? 1_024,
    replyTimeoutMs: options.replyTimeoutMs ?? 300_000,
    drainTimeoutMs: options.drainTimeoutMs ?? 30_000,
    maxMessageBytes: options.maxMessageBytes ?? 256 * 1024,
    maxDeliveries: options.maxDeliveries ?? 3,
  };
  const problems: string[] = [];
  for (const name of [
    'heartbeatMs',
    'leaseMs',
    'maxInFlight',
    'replyTimeoutMs',
    'drainTimeoutMs',
    'maxMessageBytes',
    'maxDeliveries',
  ] as const) {
    if (!Number.isSafeInteger(resolved[name]) || resolved[name] < 1) {
      problems.push(`${name}: expected a whole number of at least 1, got ${resolved[name]}`);
    }
  }
  if (!Number.isSafeInteger(resolved.maxInboxPerShard) || resolved.maxInboxPerShard < 0) {
    problems.push(`maxInboxPerShard: expected a whole number (0 for no limit)`);
  }
  if (resolved.leaseMs < 3 * resolved.heartbeatMs) {
    problems.push(
      `leaseMs (${resolved.leaseMs}) must be at least 3 × heartbeatMs (${resolved.heartbeatMs}), so that a late heartbeat does not cost the node its shards`,
    );
  }
  if (typeof resolved.prefix !== 'string') problems.push('prefix: expected a string');
  if (problems.length > 0) throw new OptionsInvalidError(problems.join('; '));
  return { nodeId, shards, resolved };
}
