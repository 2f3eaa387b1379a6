/**
 * Many nodes: the same sessions served by several processes or machines over one Redis.
 * `new Supervisor({ cluster: redisCluster({ redis }) })` makes a Supervisor one node of a
 * cluster; {@link ClusterNode} is the node itself; the rest is exported for operators' tooling
 * and tests.
 */
export {
  type Fence,
  isFencedError,
  RedisStore,
  type RedisStoreOptions,
} from '../runtime/stores/redis.js';
export { FencedJournal } from './fenced-journal.js';
export { ShardInbox } from './inbox.js';
export type { InboxMessage } from './inbox-message.js';
export { ClusterKeys } from './keys.js';
export { type AcquireResult, type LeaseOwner, parseLease, ShardLeases } from './leases.js';
export { type Member, type MemberState, Membership } from './membership.js';
export { ClusterNode } from './node.js';
export {
  type ClusterNodeEvents,
  type ClusterNodeOptions,
  type ClusterNodeStats,
  type ClusterNodeStatus,
  type ClusterSendOptions,
  NODE_DEFAULTS,
  type SubmitResult,
} from './node-options.js';
export { type RedisClusterOptions, redisCluster } from './redis-cluster.js';
export { DEFAULT_SHARDS, ownerOf, shardOf } from './shards.js';
