/**
 * The Redis store against a real Redis (127.0.0.1:6379, started by .ci/run): the shared
 * conformance suite, then what only Redis has (the fence, request ids, a shared client).
 * Every fixture gets a prefix of its own under this run's prefix, removed afterwards.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { encode } from '../../../src/codec.js';
import { type AgentcellError, isAgentcellError } from '../../../src/errors.js';
import {
  isFencedError,
  RedisStore,
  type RedisStoreOptions,
  shardEpochKey,
} from '../../../src/runtime/stores/redis.js';
import { deleteKeys } from '../../fixtures/redis-keys.js';
import { sharedRedisUrl } from '../../support/redis.js';
import { journalStoreSuite, type StoreFixture, sampleRecord } from './store-suite.js';

const REDIS_URL = await sharedRedisUrl();
const RUN_PREFIX = `agentcell-test:${randomUUID()}:`;

let admin: Redis;
let fixtures = 0;

beforeAll(() => {
  admin = new Redis(REDIS_URL);
});

afterAll(async () => {
  await deleteKeys(admin, RUN_PREFIX);
  await admin.quit();
});

function freshPrefix(): string {
  fixtures++;
  return `${RUN_PREFIX}${fixtures}:`;
}

function redisFixture(
  options: Omit<RedisStoreOptions, 'redis' | 'prefix'> = {},
): () => Promise<StoreFixture> {
  return async () => {
    const prefix = freshPrefix();
    const opened: RedisStore[] = [];
    return {
      open: () => {
        const store = new RedisStore({ redis: REDIS_URL, prefix, ...options });
        opened.push(store);
        return store;
      },
      dispose: async () => {
        await Promise.all(opened.map((store) => store.close()));
        await deleteKeys(admin, prefix);
      },
    };
  };
}

journalStoreSuite('RedisStore', redisFixture());

describe('RedisStore over a shared client', () => {
  journalStoreSuite('RedisStore (shared client)', async () => {
    const prefix = freshPrefix();
    const client = new Redis(REDIS_URL);
    return {
      open: () => new RedisStore({ redis: client, prefix }),
      dispose: async () => {
        await deleteKeys(admin, prefix);
        await client.quit();
      },
    };
  });

  it('leaves a client it was given open on close', async () => {
    const client = new Redis(REDIS_URL);
    const store = new RedisStore({ redis: client, prefix: freshPrefix() });
    await store.append('s', sampleRecord('t1'));
    await store.close();
    expect(await client.ping()).toBe('PONG');
    await client.quit();
  });
});

describe('RedisStore specifics', () => {
  it('keeps records in a list under the prefix, encoded with the shared codec', async () => {
    const prefix = freshPrefix();
    const store = new RedisStore({ redis: REDIS_URL, prefix });
    await store.append('slack:T01:C42', sampleRecord('t1'));
    expect(await admin.lrange(`${prefix}j:records:slack:T01:C42`, 0, -1)).toEqual([
      encode(sampleRecord('t1')),
    ]);
    expect(await admin.hgetall(`${prefix}j:turns:slack:T01:C42`)).toEqual({ t1: '1' });
    expect(await admin.smembers(`${prefix}j:sessions`)).toEqual(['slack:T01:C42']);
    await store.close();
  });

  it('rejects invalid options', () => {
    const invalid: unknown[] = [
      { redis: 'http://127.0.0.1:6379' },
      { redis: 42 },
      { redis: REDIS_URL, fence: { shard: 1, epoch: 0 } },
      { redis: REDIS_URL, fence: { shard: '', epoch: 1 } },
      { redis: REDIS_URL, fence: { shard: 1.5, epoch: 1 } },
      // An unknown key (a misspelled prefix) is refused, not ignored.
      { redis: REDIS_URL, prefx: 'x:' },
      { redis: REDIS_URL, prefix: 7 },
    ];
    for (const options of invalid) {
      expect(() => new RedisStore(options as RedisStoreOptions)).toThrow(
        expect.objectContaining({ code: 'AGENTCELL_OPTIONS_INVALID' }),
      );
    }
  });

  it('refuses a closed store of its own connection with a typed error', async () => {
    const store = new RedisStore({ redis: REDIS_URL, prefix: freshPrefix() });
    await store.close();
    await store.close(); // twice is fine
    await expect(store.read('s')).rejects.toMatchObject({ code: 'AGENTCELL_INTERNAL' });
  });

  it('skips and reports a record that does not decode, and keeps the rest', async () => {
    const prefix = freshPrefix();
    const onCorrupt = vi.fn<(error: AgentcellError) => void>();
    const store = new RedisStore({ redis: REDIS_URL, prefix, onCorrupt });
    await store.append('s', sampleRecord('t1'));
    await admin.rpush(`${prefix}j:records:s`, '{"json": oops');
    await admin.rpush(`${prefix}j:records:s`, encode({ turnId: 7 }));
    await admin.rpush(
      `${prefix}j:records:s`,
      '{"json":{"turnId":"evil","messages":[],"usage":{},"at":1,"__proto__":{"polluted":1}}}',
    );
    await store.append('s', sampleRecord('t2'));
    expect((await store.read('s')).map((record) => record.turnId)).toEqual(['t1', 't2']);
    expect(onCorrupt).toHaveBeenCalledTimes(3);
    const reasons = onCorrupt.mock.calls.map(([error]) => String(error.details?.['reason']));
    expect(reasons[0]).toMatch(/not JSON/);
    expect(reasons[1]).toMatch(/not a journal record/);
    expect(reasons[2]).toMatch(/__proto__/);
    expect(onCorrupt.mock.calls[0]?.[0]).toMatchObject({
      code: 'AGENTCELL_STORE_CORRUPT',
      details: { sessionKey: 's', key: `${prefix}j:records:s`, index: 1 },
    });
    expect(Object.hasOwn(Object.prototype, 'polluted')).toBe(false);
    await store.close();
  });

  it('reads a journal longer than one page in order', async () => {
    const store = new RedisStore({ redis: REDIS_URL, prefix: freshPrefix() });
    const ids = Array.from({ length: 2_345 }, (_, index) => `t${index}`);
    await Promise.all(ids.map((id) => store.append('long', { ...sampleRecord(id), messages: [] })));
    expect((await store.read('long')).map((record) => record.turnId)).toEqual(ids);
    await store.close();
  });
});

describe('RedisStore with a fence', () => {
  it('appends while the shard epoch matches and refuses once it moved on', async () => {
    const prefix = freshPrefix();
    await admin.set(shardEpochKey(prefix, 7), '3');
    const store = new RedisStore({ redis: REDIS_URL, prefix, fence: { shard: 7, epoch: 3 } });
    await store.append('s', sampleRecord('t1'));

    await admin.incr(shardEpochKey(prefix, 7)); // a new owner took the shard: epoch 4
    const refused = await store.append('s', sampleRecord('t2')).catch((error: unknown) => error);
    expect(isFencedError(refused)).toBe(true);
    expect(isAgentcellError(refused, 'AGENTCELL_FENCED')).toBe(true);
    expect(refused).toMatchObject({
      details: { shard: 7, epoch: 3, currentEpoch: 4 },
    });
    await expect(store.delete('s')).rejects.toMatchObject({ code: 'AGENTCELL_FENCED' });
    expect((await store.read('s')).map((record) => record.turnId)).toEqual(['t1']);
    await store.close();
  });

  it('refuses every write when the shard has no epoch at all', async () => {
    const store = new RedisStore({
      redis: REDIS_URL,
      prefix: freshPrefix(),
      fence: { shard: 'x', epoch: 1 },
    });
    await expect(store.append('s', sampleRecord('t1'))).rejects.toMatchObject({
      code: 'AGENTCELL_FENCED',
      details: { currentEpoch: undefined },
    });
    expect(await store.keys()).toEqual([]);
    await store.close();
  });

  it('fences per session when given a function', async () => {
    const prefix = freshPrefix();
    await admin.set(shardEpochKey(prefix, 1), '5');
    const store = new RedisStore({
      redis: REDIS_URL,
      prefix,
      fence: (key) => (key.startsWith('fenced:') ? { shard: 1, epoch: 4 } : undefined),
    });
    await store.append('free:a', sampleRecord('t1'));
    await expect(store.append('fenced:a', sampleRecord('t1'))).rejects.toMatchObject({
      code: 'AGENTCELL_FENCED',
      details: { epoch: 4, currentEpoch: 5 },
    });
    expect(await store.keys()).toEqual(['free:a']);
    await store.close();
  });
});

describe('RedisStore request ids', () => {
  it('journals a request once and finds its record again', async () => {
    const store = new RedisStore({ redis: REDIS_URL, prefix: freshPrefix() });
    expect(await store.appendWith('s', sampleRecord('t1'), { requestId: 'r1' })).toEqual({
      status: 'appended',
    });
    // The same request answered again by another turn (a redelivery after a failover).
    expect(await store.appendWith('s', sampleRecord('t2'), { requestId: 'r1' })).toEqual({
      status: 'request-known',
      turnId: 't1',
    });
    expect(await store.appendWith('s', sampleRecord('t1'), { requestId: 'r2' })).toEqual({
      status: 'duplicate',
    });
    expect(await store.recordOfRequest('s', 'r1')).toEqual(sampleRecord('t1'));
    expect(await store.recordOfRequest('s', 'r2')).toBeUndefined();
    expect(await store.recordOfRequest('other', 'r1')).toBeUndefined();
    expect((await store.read('s')).map((record) => record.turnId)).toEqual(['t1']);

    await store.delete('s');
    expect(await store.recordOfRequest('s', 'r1')).toBeUndefined();
    await store.close();
  });
});
