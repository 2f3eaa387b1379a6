/**
 * The cluster's building blocks against a real Redis: shard hashing, membership by heartbeat,
 * leases with fencing epochs, and the fenced inbox. A "pause" is simulated by a node that simply
 * stops renewing: its lease runs out, another node takes the shard with a higher epoch, and
 * every write the old owner still tries is refused by Redis.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FencedJournal } from '../../src/cluster/fenced-journal.js';
import { ShardInbox } from '../../src/cluster/inbox.js';
import { ClusterKeys } from '../../src/cluster/keys.js';
import { ShardLeases } from '../../src/cluster/leases.js';
import { Membership } from '../../src/cluster/membership.js';
import { ownerOf, shardOf } from '../../src/cluster/shards.js';
import { isFencedError, RedisStore } from '../../src/runtime/stores/redis.js';
import { deleteKeys } from '../fixtures/redis-keys.js';
import { sampleRecord } from '../runtime/stores/store-suite.js';
import { sharedRedisUrl } from '../support/redis.js';

const REDIS_URL = await sharedRedisUrl();
const RUN_PREFIX = `agentcell-test:${randomUUID()}:`;

let client: Redis;
let counter = 0;
const stores: RedisStore[] = [];

beforeAll(() => {
  client = new Redis(REDIS_URL);
});

afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close()));
});

afterAll(async () => {
  await deleteKeys(client, RUN_PREFIX);
  await client.quit();
});

/** Keys of a cluster of its own, so tests do not see each other's nodes and shards. */
function freshKeys(): ClusterKeys {
  counter++;
  return new ClusterKeys(`${RUN_PREFIX}${counter}:`);
}

/** A cluster of its own whose `shard` node `n` holds: its keys, inbox (group made), leases, epoch. */
async function ownedShard(shard: number) {
  const keys = freshKeys();
  const inbox = new ShardInbox(client, keys);
  const leases = new ShardLeases(client, keys, { nodeId: 'n', ttlMs: 5_000 });
  const taken = await leases.acquire(shard);
  if (!taken.acquired) throw new Error('free shard');
  await inbox.ensureGroup(shard);
  return { keys, inbox, leases, epoch: taken.epoch };
}

function storeFor(keys: ClusterKeys): RedisStore {
  const store = new RedisStore({ redis: REDIS_URL, prefix: keys.prefix });
  stores.push(store);
  return store;
}

describe('shards', () => {
  it('hashes a key to the same shard every time, within range, spread evenly', () => {
    expect(shardOf('slack:T01:C42', 64)).toBe(shardOf('slack:T01:C42', 64));
    const counts = new Array<number>(64).fill(0);
    for (let index = 0; index < 12_800; index++) {
      const shard = shardOf(`tenant-${index % 7}:user-${index}`, 64);
      counts[shard] = (counts[shard] ?? 0) + 1;
    }
    expect(counts).toHaveLength(64); // no shard outside 0..63
    // 200 per shard on average; a fair hash stays well within ±40%.
    expect(Math.min(...counts)).toBeGreaterThan(120);
    expect(Math.max(...counts)).toBeLessThan(280);
  });

  it('places shards by rendezvous: same answer in any order, few moves when nodes change', () => {
    const nodes = ['a', 'b', 'c'];
    const before = Array.from({ length: 64 }, (_, shard) => ownerOf(shard, nodes));
    expect(Array.from({ length: 64 }, (_, shard) => ownerOf(shard, [...nodes].reverse()))).toEqual(
      before,
    );
    for (const node of nodes)
      expect(before.filter((owner) => owner === node).length).toBeGreaterThan(8);
    expect(ownerOf(0, [])).toBeUndefined();

    // Node c leaves: only its shards move.
    const without = Array.from({ length: 64 }, (_, shard) => ownerOf(shard, ['a', 'b']));
    for (let shard = 0; shard < 64; shard++) {
      if (before[shard] !== 'c') expect(without[shard]).toBe(before[shard]);
    }
    // Node d joins: shards move only to d, about a quarter of them.
    const joined = Array.from({ length: 64 }, (_, shard) => ownerOf(shard, [...nodes, 'd']));
    const moved = joined.filter((owner, shard) => owner !== before[shard]);
    expect(moved.every((owner) => owner === 'd')).toBe(true);
    expect(moved.length).toBeGreaterThan(6);
    expect(moved.length).toBeLessThan(28);
  });
});

describe('membership', () => {
  it('lists nodes while they heartbeat and drops one that stops', async () => {
    const keys = freshKeys();
    const a = new Membership(client, keys, { nodeId: 'node-a', ttlMs: 300 });
    const b = new Membership(client, keys, { nodeId: 'node-b', ttlMs: 300 });
    await a.heartbeat('active');
    await b.heartbeat('leaving');
    expect((await a.members()).map(({ id, state }) => ({ id, state }))).toEqual([
      { id: 'node-a', state: 'active' },
      { id: 'node-b', state: 'leaving' },
    ]);
    expect((await a.members())[0]).toMatchObject({ pid: process.pid });

    // b stops heartbeating (crashed or paused): past its TTL it is gone, set pruned too.
    for (let tick = 0; tick < 4; tick++) {
      await sleep(100);
      await a.heartbeat('active');
    }
    expect((await a.members()).map(({ id }) => id)).toEqual(['node-a']);
    expect(await client.smembers(keys.nodes)).toEqual(['node-a']);

    await a.leave();
    expect(await b.members()).toEqual([]);
  });
});

describe('leases and fencing', () => {
  it('lets one live node hold a shard; epochs grow with every new owner', async () => {
    const keys = freshKeys();
    const options = { ttlMs: 5_000 };
    const a = new ShardLeases(client, keys, { nodeId: 'a', ...options });
    const b = new ShardLeases(client, keys, { nodeId: 'b', ...options });
    await new Membership(client, keys, { nodeId: 'a', ttlMs: 5_000 }).heartbeat('active');

    expect(await a.acquire(3)).toEqual({ acquired: true, epoch: 1 });
    expect(await b.acquire(3)).toEqual({ acquired: false, holder: 'a' });
    expect(await a.renew(3, 1)).toBe(true);
    expect(await b.release(3, 1)).toBe(false); // not b's to release
    expect(await a.owners(4)).toEqual(new Map([[3, { node: 'a', epoch: 1 }]]));

    expect(await a.release(3, 1)).toBe(true);
    expect(await b.acquire(3)).toEqual({ acquired: true, epoch: 2 });
    expect(await a.renew(3, 1)).toBe(false);
    // A node that lost track of its own lease takes it again with a new epoch.
    expect(await b.acquire(3)).toEqual({ acquired: true, epoch: 3 });
    expect(await b.renew(3, 2)).toBe(false);
    expect(await b.renew(3, 3)).toBe(true);
  });

  it('refuses every write of an owner that stopped renewing once another took over', async () => {
    const keys = freshKeys();
    const ttlMs = 300;
    const oldLeases = new ShardLeases(client, keys, { nodeId: 'old', ttlMs });
    const newLeases = new ShardLeases(client, keys, { nodeId: 'new', ttlMs });
    const oldMember = new Membership(client, keys, { nodeId: 'old', ttlMs });
    await oldMember.heartbeat('active');
    const store = storeFor(keys);
    const inbox = new ShardInbox(client, keys);
    await inbox.ensureGroup(5);

    const taken = await oldLeases.acquire(5);
    if (!taken.acquired) throw new Error('the old owner should get the free shard');
    const oldFence = { shard: 5, epoch: taken.epoch };
    await store.appendWith('s', sampleRecord('t1'), { fence: oldFence });
    for (const n of [1, 2]) {
      await inbox.accept(
        5,
        { requestId: `r${n}`, sessionKey: 's', agent: 'cell', message: `m${n}`, origin: 'x' },
        0,
      );
    }
    const read = await inbox.read(5, taken.epoch, 'old', 10, '0-0');
    expect(read.fenced).toBe(false);
    const pending = read.fenced ? [] : read.messages;
    expect(pending.map((message) => message.requestId)).toEqual(['r1', 'r2']);

    // The old owner "pauses": no renewal, no heartbeat. The new one cannot take the shard yet.
    expect((await newLeases.acquire(5)).acquired).toBe(false);
    await sleep(ttlMs + 150);
    const took = await newLeases.acquire(5);
    if (!took.acquired) throw new Error('the shard should be free after the lease ran out');
    expect(took.epoch).toBeGreaterThan(taken.epoch);

    // The old owner wakes up: every write it tries is refused, whatever it believes.
    const append = await store
      .appendWith('s', sampleRecord('t2'), { fence: oldFence })
      .catch((error: unknown) => error);
    expect(isFencedError(append)).toBe(true);
    expect(append).toMatchObject({
      code: 'AGENTCELL_FENCED',
      details: { epoch: taken.epoch, currentEpoch: took.epoch },
    });
    const first = pending[0]!;
    expect(
      await inbox.ack(5, taken.epoch, first.entryId, {
        origin: 'x',
        requestId: first.requestId,
        payload: 'stale',
      }),
    ).toBe('fenced');
    expect(await inbox.read(5, taken.epoch, 'old', 10, '0-0')).toEqual({ fenced: true });
    expect(await inbox.claim(5, taken.epoch, 'old', '0-0', 10)).toEqual({ fenced: true });
    expect(await oldLeases.renew(5, taken.epoch)).toBe(false);
    expect(await oldLeases.release(5, taken.epoch)).toBe(false);

    // The new owner claims what the old one left pending, in order, and its writes go in.
    const claimed = await inbox.claim(5, took.epoch, 'new', '0-0', 10);
    expect(claimed.fenced ? [] : claimed.messages.map((message) => message.requestId)).toEqual([
      'r1',
      'r2',
    ]);
    await store.appendWith('s', sampleRecord('t2'), { fence: { shard: 5, epoch: took.epoch } });
    expect(
      await inbox.ack(5, took.epoch, first.entryId, {
        origin: 'x',
        requestId: first.requestId,
        payload: 'fresh',
      }),
    ).toBe('acked');
    expect((await store.read('s')).map((record) => record.turnId)).toEqual(['t1', 't2']);
    const replies = await client.xrange(keys.replies('x'), '-', '+');
    expect(replies.map(([, fields]) => fields)).toEqual([['r', 'r1', 'p', 'fresh']]);
    expect(await inbox.length(5)).toBe(1); // r1 acked and deleted, r2 still pending
  });

  it('takes a shard from a holder whose heartbeat is gone, before its lease runs out', async () => {
    const keys = freshKeys();
    const dead = new Membership(client, keys, { nodeId: 'dead', ttlMs: 200 });
    await dead.heartbeat('active');
    const deadLeases = new ShardLeases(client, keys, { nodeId: 'dead', ttlMs: 60_000 });
    const heir = new ShardLeases(client, keys, { nodeId: 'heir', ttlMs: 60_000 });
    expect(await deadLeases.acquire(0)).toEqual({ acquired: true, epoch: 1 });
    expect(await heir.acquire(0)).toEqual({ acquired: false, holder: 'dead' });
    await sleep(300);
    expect(await heir.acquire(0)).toEqual({ acquired: true, epoch: 2 });
  });

  it('renews a lease that merely expired when nobody took the shard meanwhile', async () => {
    const keys = freshKeys();
    const leases = new ShardLeases(client, keys, { nodeId: 'slow', ttlMs: 100 });
    expect(await leases.acquire(1)).toEqual({ acquired: true, epoch: 1 });
    await sleep(200);
    expect(await client.exists(keys.lease(1))).toBe(0);
    expect(await leases.renew(1, 1)).toBe(true);
    expect(await leases.owners(2)).toEqual(new Map([[1, { node: 'slow', epoch: 1 }]]));
  });
});

describe('inbox', () => {
  it('refuses a message when the shard inbox is full', async () => {
    const keys = freshKeys();
    const inbox = new ShardInbox(client, keys);
    const message = (n: number) => ({
      requestId: `r${n}`,
      sessionKey: 's',
      agent: 'cell',
      message: 'm',
      origin: 'o',
    });
    expect(await inbox.accept(2, message(1), 2)).toMatch(/^\d+-\d+$/);
    expect(await inbox.accept(2, message(2), 2)).toMatch(/^\d+-\d+$/);
    expect(await inbox.accept(2, message(3), 2)).toBeUndefined();
    expect(await inbox.accept(2, message(4), 0)).toMatch(/^\d+-\d+$/);
  });

  // A client replays a command whose answer a dropped connection lost (ioredis resends on
  // reconnect): each of these runs the same command twice, as Redis sees a replay.
  it('accepts a replayed message once: the replay answers the first entry', async () => {
    const keys = freshKeys();
    const inbox = new ShardInbox(client, keys);
    const message = { requestId: 'r', sessionKey: 's', agent: 'cell', message: 'm', origin: 'o' };
    const first = await inbox.accept(1, message, 0);
    expect(first).toMatch(/^\d+-\d+$/);
    expect(await inbox.accept(1, message, 0)).toBe(first);
    expect(await client.xlen(keys.inbox(1))).toBe(1);
  });

  it('hands over entries a lost read delivered before anything new, in order', async () => {
    const { inbox, epoch } = await ownedShard(0);
    const accept = (n: number) =>
      inbox.accept(
        0,
        { requestId: `r${n}`, sessionKey: 's', agent: 'cell', message: `m${n}`, origin: 'o' },
        0,
      );
    /** Reads after `after`; the entry ids read, and where the next read goes on from. */
    const read = async (count: number, after: string) => {
      const result = await inbox.read(0, epoch, 'n', count, after);
      if (result.fenced) throw new Error('fenced');
      const ids = result.messages.map((message) => message.entryId);
      return { ids, last: result.lastEntryId ?? after };
    };
    expect((await read(10, '0-0')).ids).toEqual([]);
    const ids = [await accept(1), await accept(2)];
    // Read, and its answer lost: the owner still has received nothing past '0-0'.
    expect((await read(10, '0-0')).ids).toEqual(ids);
    ids.push(await accept(3));
    const again = await read(1, '0-0');
    expect(again.ids).toEqual([ids[0]]);
    const next = await read(10, again.last);
    expect(next.ids).toEqual([ids[1]]);
    expect((await read(10, next.last)).ids).toEqual([ids[2]]);
  });

  it('carries a session budget with a message, and sets apart one that does not parse', async () => {
    const { keys, inbox, epoch } = await ownedShard(4);
    const base = { sessionKey: 's', agent: 'cell', message: 'm', origin: 'o' };
    await inbox.accept(4, { ...base, requestId: 'r1', budget: { maxTokens: 10 } }, 0);
    await inbox.accept(4, { ...base, requestId: 'r2' }, 0);
    const forged = await client.xadd(
      keys.inbox(4),
      '*',
      ...['r', 'r3', 'k', 's', 'a', 'cell', 'm', 'm', 'o', 'o', 'g', '{"maxTokens":-1}'],
    );
    const read = await inbox.read(4, epoch, 'n', 10, '0-0');
    if (read.fenced) throw new Error('fenced');
    expect(read.messages.map((message) => [message.requestId, message.budget])).toEqual([
      ['r1', { maxTokens: 10 }],
      ['r2', undefined],
    ]);
    expect(read.malformed).toEqual([forged]);
  });

  it('counts a replayed delivery attempt once per owner epoch', async () => {
    const { inbox, epoch, leases } = await ownedShard(3);
    expect(await inbox.attempt(3, epoch, 'r')).toBe(1);
    expect(await inbox.attempt(3, epoch, 'r')).toBe(1);
    const retaken = await leases.acquire(3);
    if (!retaken.acquired) throw new Error('own shard');
    expect(await inbox.attempt(3, epoch, 'r')).toBe('fenced');
    expect(await inbox.attempt(3, retaken.epoch, 'r')).toBe(2);
    expect(await inbox.attempt(3, retaken.epoch, 'r')).toBe(2);
  });

  it('reads in order, gives a cursor to wait from, and sets malformed entries apart', async () => {
    const { keys, inbox, epoch } = await ownedShard(0);
    await inbox.ensureGroup(0); // twice is fine
    expect(await inbox.read(0, epoch, 'n', 10, '0-0')).toEqual({
      fenced: false,
      messages: [],
      malformed: [],
      cursor: '0-0',
    });
    const ids: string[] = [];
    for (const n of [1, 2, 3]) {
      ids.push(
        (await inbox.accept(
          0,
          { requestId: `r${n}`, sessionKey: `s${n}`, agent: 'cell', message: `m${n}`, origin: 'o' },
          0,
        )) ?? '',
      );
    }
    const junk = await client.xadd(keys.inbox(0), '*', 'hello', 'world');
    const read = await inbox.read(0, epoch, 'n', 2, '0-0');
    expect(read).toMatchObject({ fenced: false, cursor: junk });
    expect(read.fenced ? [] : read.messages.map((message) => message.entryId)).toEqual(
      ids.slice(0, 2),
    );
    const rest = await inbox.read(
      0,
      epoch,
      'n',
      10,
      read.fenced ? '0-0' : (read.lastEntryId ?? '0-0'),
    );
    expect(rest).toMatchObject({ fenced: false, malformed: [junk] });
    expect(rest.fenced ? undefined : rest.messages[0]).toMatchObject({
      entryId: ids[2],
      requestId: 'r3',
      sessionKey: 's3',
      agent: 'cell',
      message: 'm3',
      origin: 'o',
    });
    expect(await inbox.ack(0, epoch, junk ?? '', undefined)).toBe('acked');
    expect(await inbox.ack(0, epoch, junk ?? '', undefined)).toBe('gone');
  });
});

describe('the fenced journal', () => {
  it('fences appends by the shard epoch and tags turns with their request', async () => {
    const keys = freshKeys();
    const store = storeFor(keys);
    const leases = new ShardLeases(client, keys, { nodeId: 'n', ttlMs: 5_000 });
    const owned = new Map<number, number>();
    let request: string | undefined = 'req-1';
    const journal = new FencedJournal(store, {
      shardOf: (key) => shardOf(key, 8),
      fenceOf: (key) => {
        const shard = shardOf(key, 8);
        const epoch = owned.get(shard);
        return epoch === undefined ? undefined : { shard, epoch };
      },
      requestOf: () => request,
    });

    const refused = await journal.append('s', sampleRecord('t0')).catch((error: unknown) => error);
    expect(isFencedError(refused)).toBe(true);
    await expect(journal.delete('s')).rejects.toMatchObject({ code: 'AGENTCELL_FENCED' });

    const shard = shardOf('s', 8);
    const taken = await leases.acquire(shard);
    if (!taken.acquired) throw new Error('free shard');
    owned.set(shard, taken.epoch);
    await journal.append('s', sampleRecord('t1'));
    await journal.append('s', { ...sampleRecord('reset-1'), messages: [], reset: true });
    expect(await store.recordOfRequest('s', 'req-1')).toEqual(sampleRecord('t1'));
    // The same append replayed (its answer lost) is no second run: nothing more is appended.
    await journal.append('s', sampleRecord('t1'));
    // The same request journaled by a second turn is an error, and nothing is appended.
    await expect(journal.append('s', sampleRecord('t2'))).rejects.toMatchObject({
      details: { reason: 'request-known', requestId: 'req-1', turnId: 't1' },
    });
    request = undefined;
    await journal.append('s', sampleRecord('t3'));
    expect((await journal.read('s')).map((record) => record.turnId)).toEqual([
      't1',
      'reset-1',
      't3',
    ]);
    expect(await journal.keys()).toEqual(['s']);

    await leases.acquire(shard); // a newer epoch: this journal's fence is now stale
    await expect(journal.append('s', sampleRecord('t4'))).rejects.toMatchObject({
      code: 'AGENTCELL_FENCED',
      details: { epoch: taken.epoch },
    });
    owned.set(shard, taken.epoch + 1);
    await journal.delete('s');
    expect(await journal.read('s')).toEqual([]);
  });
});
