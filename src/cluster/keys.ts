/**
 * Every Redis key of a cluster, in one place, under the cluster's prefix (the same prefix as
 * its RedisStore, whose fence reads the shard epoch keys named here).
 *
 * - `<prefix>node:<nodeId>`: a member's heartbeat, JSON, with a TTL (gone = dead);
 * - `<prefix>nodes`: a set of node ids that registered (pruned of the dead when listed);
 * - `<prefix>shard:<n>:epoch`: the shard's fencing epoch, an integer that only grows (INCR);
 * - `<prefix>shard:<n>:lease`: `<epoch>|<nodeId>` of the owner, with a TTL;
 * - `<prefix>shard:<n>:inbox`: the shard's durable inbox, a stream with one consumer group;
 * - `<prefix>shard:<n>:attempts`: how many times each pending message was started, a hash;
 * - `<prefix>accepted:<requestId>`: the inbox entry a request was accepted as, with a TTL;
 * - `<prefix>replies:<nodeId>`: one node's own stream: replies and forwarded turn events for its
 *   callers, and interrupts other nodes ask of the sessions it runs.
 */
import { shardEpochKey } from '../runtime/stores/redis.js';

/** The consumer group every shard inbox is read through (its consumers are node ids). */
export const INBOX_GROUP = 'owners';

export class ClusterKeys {
  readonly prefix: string;

  constructor(prefix: string) {
    this.prefix = prefix;
  }

  node(nodeId: string): string {
    return `${this.prefix}node:${nodeId}`;
  }

  /** What `node()` puts before a node id (the lease script finds the holder's heartbeat). */
  get nodePrefix(): string {
    return `${this.prefix}node:`;
  }

  get nodes(): string {
    return `${this.prefix}nodes`;
  }

  epoch(shard: number): string {
    return shardEpochKey(this.prefix, shard);
  }

  lease(shard: number): string {
    return `${this.prefix}shard:${shard}:lease`;
  }

  inbox(shard: number): string {
    return `${this.prefix}shard:${shard}:inbox`;
  }

  attempts(shard: number): string {
    return `${this.prefix}shard:${shard}:attempts`;
  }

  accepted(requestId: string): string {
    return `${this.prefix}accepted:${requestId}`;
  }

  replies(nodeId: string): string {
    return `${this.prefix}replies:${nodeId}`;
  }
}
