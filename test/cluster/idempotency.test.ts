/**
 * Idempotent submission across the nodes of a cluster on the real Redis: a repeat sent through
 * the other node is a second inbox entry (as a caller's retry after a lost accept would be),
 * and the owner's session answers it with the first outcome, running one turn.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { ShardInbox } from '../../src/cluster/inbox.js';
import { ClusterKeys } from '../../src/cluster/keys.js';
import { ShardLeases } from '../../src/cluster/leases.js';
import { redisCluster } from '../../src/cluster/redis-cluster.js';
import { ownerOf, shardOf } from '../../src/cluster/shards.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { deleteKeys } from '../fixtures/redis-keys.js';
import { rejectionOf } from '../support/harness.js';
import { sharedRedisUrl } from '../support/redis.js';
import { until } from './harness.js';

const REDIS_URL = await sharedRedisUrl();
const PREFIX = `agentcell-test:${randomUUID()}:`;
const SHARDS = 4;
const NODES = ['alpha', 'beta'] as const;

let mock: MockLlm;
let admin: Redis;
let alpha: Supervisor;
let beta: Supervisor;
let keyCounter = 0;

function makeSupervisor(nodeId: string): Supervisor {
  const supervisor = new Supervisor({
    warmPoolSize: 0,
    cluster: redisCluster({
      redis: REDIS_URL,
      prefix: PREFIX,
      nodeId,
      shards: SHARDS,
      heartbeatMs: 100,
      leaseMs: 600,
    }),
  });
  supervisor.register(
    'cell',
    new Agent({ name: 'cell', llm: 'mock-model', baseUrl: mock.url, apiKey: 'sk-test' }),
  );
  return supervisor;
}

/** A new session key on a shard that `node` owns once placement settles. */
function keyOwnedBy(node: (typeof NODES)[number], tag: string): string {
  for (;;) {
    const key = `${tag}:${keyCounter++}`;
    if (ownerOf(shardOf(key, SHARDS), NODES) === node) return key;
  }
}

/** Resolves when `supervisor` starts a turn of `key` (it runs the session). */
function turnStarted(supervisor: Supervisor, key: string): Promise<void> {
  return new Promise((resolve) => {
    const onStart = (event: { key: string }) => {
      if (event.key !== key) return;
      supervisor.off('turn:start', onStart);
      resolve();
    };
    supervisor.on('turn:start', onStart);
  });
}

beforeAll(async () => {
  mock = await startMockLlm({ latency: { tokensPerSecond: 200 } });
  admin = new Redis(REDIS_URL);
  alpha = makeSupervisor('alpha');
  beta = makeSupervisor('beta');
  await Promise.all([alpha.start(), beta.start()]);
  const leases = new ShardLeases(admin, new ClusterKeys(PREFIX), { nodeId: 'probe', ttlMs: 1 });
  await until(
    async () => {
      const owners = await leases.owners(SHARDS);
      for (let shard = 0; shard < SHARDS; shard++) {
        if (owners.get(shard)?.node !== ownerOf(shard, NODES)) return undefined;
      }
      return true;
    },
    20_000,
    'every shard to be owned by its rendezvous node',
  );
}, 30_000);

afterAll(async () => {
  await Promise.all([alpha?.close(), beta?.close()]);
  await deleteKeys(admin, PREFIX);
  await admin.quit();
  await mock.close();
}, 30_000);

describe('idempotent submission across nodes', { timeout: 30_000 }, () => {
  it('a repeat through the owner while the first (sent through the other node) runs gets its reply: one turn', async () => {
    const key = keyOwnedBy('beta', 'idem-running');
    const before = mock.requests.length;
    const started = turnStarted(beta, key);
    const first = alpha.session(key, { agent: 'cell' }).send('pay once', {
      idempotencyKey: 'pay-1',
    });
    await started;
    const repeat = beta.session(key, { agent: 'cell' }).send('pay once', {
      idempotencyKey: 'pay-1',
    });
    const [a, b] = await Promise.all([first, repeat]);
    expect(b).toEqual(a);
    expect(a.text).toBe('echo: pay once');
    expect(mock.requests.length - before).toBe(1);
    const history = await beta.session(key, { agent: 'cell' }).history();
    expect(history.map((message) => message.content)).toEqual(['pay once', 'echo: pay once']);
  });

  it('a repeat through another node after the answer gets the same reply, and another message under the key is a conflict', async () => {
    const key = keyOwnedBy('alpha', 'idem-after');
    const first = await alpha.session(key, { agent: 'cell' }).send('ship it', {
      idempotencyKey: 'ship-1',
    });
    const before = mock.requests.length;
    const session = beta.session(key, { agent: 'cell' });
    expect(await session.send('ship it', { idempotencyKey: 'ship-1' })).toEqual(first);
    const conflict = await rejectionOf(session.send('ship that', { idempotencyKey: 'ship-1' }));
    expect(conflict.code).toBe('AGENTCELL_IDEMPOTENCY_CONFLICT');
    expect(mock.requests.length).toBe(before);
    expect(await session.history()).toHaveLength(2);
  });
  it('a retry after a lost accept (the message reached the inbox, its caller heard CLUSTER_UNAVAILABLE) runs once', async () => {
    const key = keyOwnedBy('beta', 'idem-lost-accept');
    // What Redis took before the connection went: the entry is in the shard's inbox, and the
    // node that accepted it is gone, so nobody hears its reply.
    const inbox = new ShardInbox(admin, new ClusterKeys(PREFIX));
    const landed = await inbox.accept(
      shardOf(key, SHARDS),
      {
        requestId: randomUUID(),
        sessionKey: key,
        agent: 'cell',
        message: 'charge once',
        origin: 'gone-node',
        idempotencyKey: 'charge-1',
      },
      0,
    );
    expect(landed).toBeDefined();
    const before = mock.requests.length;
    const retry = await alpha.session(key, { agent: 'cell' }).send('charge once', {
      idempotencyKey: 'charge-1',
    });
    expect(retry.text).toBe('echo: charge once');
    // The session takes its messages in inbox order: the landed one ran, the retry was answered.
    expect(mock.requests.length - before).toBe(1);
    const history = await alpha.session(key, { agent: 'cell' }).history();
    expect(history.map((message) => message.content)).toEqual(['charge once', 'echo: charge once']);
  });
});
