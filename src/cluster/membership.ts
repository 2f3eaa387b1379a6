/**
 * Who is in the cluster: each node writes a heartbeat key with a TTL every tick, and a node
 * whose key expired is dead. Liveness is judged by Redis' clock (the TTL), never by comparing
 * clocks of different machines.
 */
import type { Redis } from 'ioredis';
import { RedisScript } from '../runtime/stores/redis.js';
import type { ClusterKeys } from './keys.js';

/**
 * `active` nodes are given shards; a `leaving` node is alive (its leases must not be taken from
 * under it while it drains them) but is given none.
 */
export type MemberState = 'active' | 'leaving';

export interface Member {
  readonly id: string;
  readonly state: MemberState;
  readonly pid: number;
  readonly host: string;
  readonly startedAt: number;
}

/** KEYS: node key, nodes set. ARGV: node id, info JSON, TTL ms. */
const HEARTBEAT = new RedisScript(`
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
`);

/**
 * KEYS: nodes set. ARGV: node key prefix. The heartbeats of live nodes; ids whose heartbeat
 * expired are removed from the set in the same step, so a heartbeat landing meanwhile is never
 * lost (it re-adds its id anyway).
 */
const MEMBERS = new RedisScript(`
local result = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local info = redis.call('GET', ARGV[1] .. id)
  if info then table.insert(result, info) else redis.call('SREM', KEYS[1], id) end
end
return result
`);

/** KEYS: node key, nodes set. ARGV: node id. */
const LEAVE = new RedisScript(`
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
`);

export class Membership {
  readonly #client: Redis;
  readonly #keys: ClusterKeys;
  readonly #nodeId: string;
  readonly #ttlMs: number;
  readonly #startedAt = Date.now();

  constructor(client: Redis, keys: ClusterKeys, options: { nodeId: string; ttlMs: number }) {
    this.#client = client;
    this.#keys = keys;
    this.#nodeId = options.nodeId;
    this.#ttlMs = options.ttlMs;
  }

  /** Says this node is alive (in `state`) for the next `ttlMs`. */
  async heartbeat(state: MemberState): Promise<void> {
    const info: Member = {
      id: this.#nodeId,
      state,
      pid: process.pid,
      host: process.env['HOSTNAME'] ?? '',
      startedAt: this.#startedAt,
    };
    await HEARTBEAT.run(
      this.#client,
      [this.#keys.node(this.#nodeId), this.#keys.nodes],
      [this.#nodeId, JSON.stringify(info), this.#ttlMs],
    );
  }

  /** Every live node (its heartbeat not expired), sorted by id. */
  async members(): Promise<Member[]> {
    const raw = await MEMBERS.run(this.#client, [this.#keys.nodes], [this.#keys.nodePrefix]);
    const members: Member[] = [];
    for (const text of Array.isArray(raw) ? raw : []) {
      const member = parseMember(text);
      if (member) members.push(member);
    }
    return members.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Leaves at once: the others stop counting on this node from their next tick. */
  async leave(): Promise<void> {
    await LEAVE.run(
      this.#client,
      [this.#keys.node(this.#nodeId), this.#keys.nodes],
      [this.#nodeId],
    );
  }
}

function parseMember(text: unknown): Member | undefined {
  if (typeof text !== 'string') return undefined;
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null) return undefined;
    const member = value as Record<string, unknown>;
    if (typeof member['id'] !== 'string') return undefined;
    return {
      id: member['id'],
      state: member['state'] === 'leaving' ? 'leaving' : 'active',
      pid: typeof member['pid'] === 'number' ? member['pid'] : 0,
      host: typeof member['host'] === 'string' ? member['host'] : '',
      startedAt: typeof member['startedAt'] === 'number' ? member['startedAt'] : 0,
    };
  } catch {
    return undefined;
  }
}
