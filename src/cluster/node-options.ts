/**
 * What a cluster node is configured with (one schema, a table of defaults, checked once), and
 * the shapes it shows its users: send options, events, stats.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';
import type { TurnEvent } from '../agent/turn-events.js';
import {
  type BusyPolicy,
  type LocalSupervisorOptions,
  parseWith,
  type SessionBudget,
} from '../runtime/options.js';
import type { Reply } from '../runtime/session-types.js';
import { DEFAULT_SHARDS, MAX_SHARDS } from './shards.js';

/** What a node falls back to for each option left out. */
export const NODE_DEFAULTS = {
  prefix: 'agentcell:',
  shards: DEFAULT_SHARDS,
  heartbeatMs: 1_000,
  leaseMs: 10_000,
  maxInboxPerShard: 10_000,
  maxInFlight: 1_024,
  replyTimeoutMs: 300_000,
  drainTimeoutMs: 30_000,
  maxMessageBytes: 256 * 1024,
  maxDeliveries: 3,
} as const;

const positiveInt = z.number().int().positive();
const isObject = (value: unknown) => typeof value === 'object' && value !== null;

const nodeOptionsSchema = z
  .strictObject({
    /** The Redis every node of the cluster shares, as a `redis://` URL. */
    redis: z.string().regex(/^rediss?:\/\//, 'expected a redis:// or rediss:// URL'),
    /** Unique per live node. @default `<hostname>-<pid>-<random>` */
    nodeId: z
      .string()
      .regex(/^[A-Za-z0-9._:-]{1,128}$/, 'use 1 to 128 letters, digits, ".", "_", ":" or "-"')
      .optional(),
    /** Shards sessions hash into; the same on every node, for the life of the data. @default 64 */
    shards: positiveInt.max(MAX_SHARDS).default(NODE_DEFAULTS.shards),
    /** Put before every Redis key (one prefix per cluster). @default 'agentcell:' */
    prefix: z.string().default(NODE_DEFAULTS.prefix),
    /** How often the node heartbeats, renews its leases and rebalances. @default 1000 */
    heartbeatMs: positiveInt.default(NODE_DEFAULTS.heartbeatMs),
    /**
     * How long a node may go without heartbeating before it counts as dead and its shards are
     * taken over (also the lease TTL). At least 3 heartbeats, so one slow tick is not fatal.
     * @default 10000
     */
    leaseMs: positiveInt.default(NODE_DEFAULTS.leaseMs),
    /** Messages a shard's inbox may hold before `send` fails with MAILBOX_FULL (0: no limit). @default 10000 */
    maxInboxPerShard: z.number().int().nonnegative().default(NODE_DEFAULTS.maxInboxPerShard),
    /** Messages this node reads ahead from its shards before it waits for some to finish. @default 1024 */
    maxInFlight: positiveInt.default(NODE_DEFAULTS.maxInFlight),
    /** How long `send` waits for the reply of an accepted message. @default 300000 */
    replyTimeoutMs: positiveInt.default(NODE_DEFAULTS.replyTimeoutMs),
    /**
     * How long a shard being handed over waits for its running turns before it lets go anyway
     * (the next owner then retries those turns, which were not journaled). @default 30000
     */
    drainTimeoutMs: positiveInt.default(NODE_DEFAULTS.drainTimeoutMs),
    /** Largest message accepted, in UTF-8 bytes. @default 262144 */
    maxMessageBytes: positiveInt.default(NODE_DEFAULTS.maxMessageBytes),
    /**
     * How many times a message's turn is started before it is answered with
     * `AGENTCELL_DELIVERY_LIMIT` instead: each start beyond the first means its owner stopped
     * (crashed, was fenced, or handed the shard over past drainTimeoutMs) before settling it, so
     * a message that kills every node that runs it is not retried for ever. @default 3
     */
    maxDeliveries: positiveInt.default(NODE_DEFAULTS.maxDeliveries),
    /** Options of the local Supervisor (checked by it); its store is the cluster's (fenced RedisStore). */
    supervisor: z.custom<Omit<LocalSupervisorOptions, 'store'>>(isObject).optional(),
  })
  .refine((options) => options.leaseMs >= 3 * options.heartbeatMs, {
    path: ['leaseMs'],
    message:
      'must be at least 3 × heartbeatMs, so that a late heartbeat does not cost the node its shards',
  });

export type ClusterNodeOptions = z.input<typeof nodeOptionsSchema>;

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
  /**
   * The message's idempotency key: the owner's session answers a repeat (through any node)
   * with the first outcome instead of running it again. See `SendOptions.idempotencyKey`.
   */
  readonly idempotencyKey?: string | undefined;
}

export type ResolvedNodeOptions = Omit<z.output<typeof nodeOptionsSchema>, 'supervisor'> & {
  readonly nodeId: string;
};

/**
 * Defaults filled in, the node id made up if none is given; every bad option (unknown keys
 * included) listed in one `AGENTCELL_OPTIONS_INVALID`.
 */
export function parseNodeOptions(options: unknown): ResolvedNodeOptions {
  const { supervisor: _supervisor, ...parsed } = parseWith(
    nodeOptionsSchema,
    options,
    'cluster node options',
    'options',
  );
  return {
    ...parsed,
    nodeId: parsed.nodeId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`,
  };
}
