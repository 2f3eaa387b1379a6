/**
 * Shard ownership: a lease (a key with a TTL naming the owner) plus a fencing epoch that only
 * grows. Taking a shard INCRs its epoch; every write of the owner (journal append, inbox read
 * and ack) carries that epoch and is refused by Redis once the epoch moved on. The lease decides
 * who may start owning a shard; the epoch makes sure nobody else can still write once they do,
 * which a TTL lock alone cannot (a process paused past its TTL wakes up believing it owns it).
 */
import type { Redis } from 'ioredis';
import { RedisScript } from '../runtime/stores/redis.js';
import type { ClusterKeys } from './keys.js';

export type AcquireResult =
  | { readonly acquired: true; readonly epoch: number }
  | { readonly acquired: false; readonly holder: string };

export interface LeaseOwner {
  readonly node: string;
  readonly epoch: number;
}

/**
 * KEYS: lease, epoch. ARGV: node id, TTL ms, node key prefix.
 * Taken when free, or when its holder's heartbeat is gone (the holder is dead: no need to wait
 * for the lease TTL too), or when held by this very node (a node that lost track of a lease
 * takes a new epoch, fencing whatever its older self still had in flight).
 */
const ACQUIRE = new RedisScript(`
local holder = redis.call('GET', KEYS[1])
if holder then
  local node = string.match(holder, '^%d+|(.*)$') or ''
  if node ~= ARGV[1] and redis.call('EXISTS', ARGV[3] .. node) == 1 then
    return {0, node}
  end
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], epoch .. '|' .. ARGV[1], 'PX', ARGV[2])
return {1, epoch}
`);

/**
 * KEYS: lease, epoch. ARGV: node id, epoch, TTL ms.
 * Extends the lease if it is still this node's at this epoch. A lease that merely expired, with
 * the epoch unchanged, is taken back: nobody took the shard meanwhile, so nothing was fenced.
 */
const RENEW = new RedisScript(`
local mine = ARGV[2] .. '|' .. ARGV[1]
local holder = redis.call('GET', KEYS[1])
if holder == mine then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
if not holder and redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('SET', KEYS[1], mine, 'PX', ARGV[3])
  return 1
end
return 0
`);

/** KEYS: lease. ARGV: node id, epoch. Frees the lease if it is still this node's. */
const RELEASE = new RedisScript(`
if redis.call('GET', KEYS[1]) == ARGV[2] .. '|' .. ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`);

export class ShardLeases {
  readonly #client: Redis;
  readonly #keys: ClusterKeys;
  readonly #nodeId: string;
  readonly #ttlMs: number;

  constructor(client: Redis, keys: ClusterKeys, options: { nodeId: string; ttlMs: number }) {
    this.#client = client;
    this.#keys = keys;
    this.#nodeId = options.nodeId;
    this.#ttlMs = options.ttlMs;
  }

  /** Takes the shard with a new, higher epoch, unless a live node holds it. */
  async acquire(shard: number): Promise<AcquireResult> {
    const result = await ACQUIRE.run(
      this.#client,
      [this.#keys.lease(shard), this.#keys.epoch(shard)],
      [this.#nodeId, this.#ttlMs, this.#keys.nodePrefix],
    );
    const [flag, value] = Array.isArray(result) ? (result as unknown[]) : [];
    if (flag === 1 && typeof value === 'number') return { acquired: true, epoch: value };
    return { acquired: false, holder: typeof value === 'string' ? value : '' };
  }

  /** Whether the lease is still this node's at `epoch` (and now extended). */
  async renew(shard: number, epoch: number): Promise<boolean> {
    const result = await RENEW.run(
      this.#client,
      [this.#keys.lease(shard), this.#keys.epoch(shard)],
      [this.#nodeId, epoch, this.#ttlMs],
    );
    return result === 1;
  }

  /** Hands the shard back (after draining it); false if it was no longer this node's. */
  async release(shard: number, epoch: number): Promise<boolean> {
    const result = await RELEASE.run(
      this.#client,
      [this.#keys.lease(shard)],
      [this.#nodeId, epoch],
    );
    return result === 1;
  }

  /** The current owner of a shard, if its lease is live. */
  async ownerOf(shard: number): Promise<LeaseOwner | undefined> {
    return parseLease(await this.#client.get(this.#keys.lease(shard)));
  }

  /** The current owner of each shard with a live lease, for operators and tests. */
  async owners(shards: number): Promise<Map<number, LeaseOwner>> {
    const keys = Array.from({ length: shards }, (_, shard) => this.#keys.lease(shard));
    const values = keys.length === 0 ? [] : await this.#client.mget(...keys);
    const owners = new Map<number, LeaseOwner>();
    for (const [shard, value] of values.entries()) {
      const owner = parseLease(value);
      if (owner) owners.set(shard, owner);
    }
    return owners;
  }
}

/** `<epoch>|<nodeId>`, as the scripts write it. */
export function parseLease(value: string | null | undefined): LeaseOwner | undefined {
  const match = value ? /^(\d+)\|(.*)$/s.exec(value) : null;
  if (!match) return undefined;
  return { epoch: Number(match[1]), node: match[2] ?? '' };
}
