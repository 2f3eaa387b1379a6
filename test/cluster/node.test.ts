/**
 * One ClusterNode in this process, next to a "ghost" member that the test plays by hand with the
 * primitives: it holds shards, reads and journals like an owner, then dies. That makes the
 * takeover paths deterministic: pending messages are claimed in order, a message whose turn the
 * dead owner had already journaled is answered from the journal instead of run again.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { ShardInbox } from '../../src/cluster/inbox.js';
import { ClusterKeys } from '../../src/cluster/keys.js';
import { ShardLeases } from '../../src/cluster/leases.js';
import { Membership } from '../../src/cluster/membership.js';
import { ClusterNode } from '../../src/cluster/node.js';
import type { ClusterNodeOptions } from '../../src/cluster/node-options.js';
import { ownerOf, shardOf } from '../../src/cluster/shards.js';
import { RedisStore } from '../../src/runtime/stores/redis.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { deleteKeys } from '../fixtures/redis-keys.js';
import { sampleRecord } from '../runtime/stores/store-suite.js';
import { sharedRedisUrl } from '../support/redis.js';
import { until } from './harness.js';

const REDIS_URL = await sharedRedisUrl();
const RUN_PREFIX = `agentcell-test:${randomUUID()}:`;
const SHARDS = 8;

let mock: MockLlm;
let admin: Redis;
let counter = 0;
const nodes: ClusterNode[] = [];

beforeAll(async () => {
  mock = await startMockLlm();
  admin = new Redis(REDIS_URL);
});

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((node) => node.destroy()));
});

afterAll(async () => {
  await deleteKeys(admin, RUN_PREFIX);
  await admin.quit();
  await mock.close();
});

function makeNode(prefix: string, options: Partial<ClusterNodeOptions> = {}): ClusterNode {
  const node = new ClusterNode({
    redis: REDIS_URL,
    prefix,
    nodeId: 'real',
    shards: SHARDS,
    heartbeatMs: 100,
    leaseMs: 600,
    supervisor: { warmPoolSize: 0 },
    ...options,
  });
  node.register(
    'cell',
    new Agent({ name: 'cell', llm: 'mock-model', baseUrl: mock.url, apiKey: 'sk-test' }),
  );
  nodes.push(node);
  return node;
}

/** A member that heartbeats once (for a minute) and holds the shards rendezvous gives it. */
async function ghost(
  keys: ClusterKeys,
): Promise<{ epochs: Map<number, number>; die(): Promise<void> }> {
  const membership = new Membership(admin, keys, { nodeId: 'ghost', ttlMs: 60_000 });
  await membership.heartbeat('active');
  const leases = new ShardLeases(admin, keys, { nodeId: 'ghost', ttlMs: 60_000 });
  const epochs = new Map<number, number>();
  for (let shard = 0; shard < SHARDS; shard++) {
    if (ownerOf(shard, ['ghost', 'real']) !== 'ghost') continue;
    const taken = await leases.acquire(shard);
    if (taken.acquired) epochs.set(shard, taken.epoch);
  }
  return { epochs, die: () => membership.leave() };
}

/** A session key on one of the ghost's shards. */
function ghostKey(epochs: Map<number, number>, tag: string): string {
  for (let index = 0; ; index++) {
    const key = `${tag}:${index}`;
    if (epochs.has(shardOf(key, SHARDS))) return key;
  }
}

function freshPrefix(): string {
  counter++;
  return `${RUN_PREFIX}${counter}:`;
}

describe('ClusterNode options', () => {
  it('rejects invalid options with one typed error listing them', () => {
    const invalid: Partial<ClusterNodeOptions>[] = [
      { redis: 'http://127.0.0.1' },
      { nodeId: 'has space' },
      { shards: 0 },
      { heartbeatMs: 500, leaseMs: 1_000 },
      { maxInFlight: 0 },
      { maxInboxPerShard: -1 },
    ];
    for (const options of invalid) {
      expect(() => new ClusterNode({ redis: REDIS_URL, ...options } as ClusterNodeOptions)).toThrow(
        expect.objectContaining({ code: 'AGENTCELL_OPTIONS_INVALID' }),
      );
    }
  });
});

describe('ClusterNode options, unknown keys', () => {
  it('refuses a typo such as heartbeatMS instead of running on the default, naming it', () => {
    const typo = { redis: REDIS_URL, heartbeatMS: 100 } as ClusterNodeOptions;
    let thrown: unknown;
    try {
      new ClusterNode(typo);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ code: 'AGENTCELL_OPTIONS_INVALID' });
    const paths = (thrown as { details?: { paths?: string[] } }).details?.paths ?? [];
    expect(paths.join('\n')).toContain('heartbeatMS');
  });
});

describe('a ClusterNode next to a member played by hand', { timeout: 30_000 }, () => {
  it('refuses bad sends with typed errors, and a full inbox with MAILBOX_FULL', async () => {
    const prefix = freshPrefix();
    const { epochs } = await ghost(new ClusterKeys(prefix));
    const node = makeNode(prefix, { maxInboxPerShard: 2 });
    await expect(node.send('k', 'hi', { agent: 'cell' })).rejects.toMatchObject({
      code: 'AGENTCELL_SUPERVISOR_CLOSED',
    });
    await node.start();
    await expect(node.submit('k', '  ', { agent: 'cell' })).rejects.toMatchObject({
      code: 'AGENTCELL_MESSAGE_INVALID',
    });
    await expect(node.submit('a/../b', 'hi', { agent: 'cell' })).rejects.toMatchObject({
      code: 'AGENTCELL_SESSION_KEY_INVALID',
    });
    await expect(node.submit('k', 'hi', { agent: 'nobody' })).rejects.toMatchObject({
      code: 'AGENTCELL_AGENT_NOT_REGISTERED',
    });
    // The ghost never reads its shards' inboxes: they fill up.
    const key = ghostKey(epochs, 'full');
    await node.submit(key, 'one', { agent: 'cell' });
    await node.submit(key, 'two', { agent: 'cell' });
    await expect(node.submit(key, 'three', { agent: 'cell' })).rejects.toMatchObject({
      code: 'AGENTCELL_MAILBOX_FULL',
    });
    expect(node.stats().shards.map(({ shard }) => shard)).toEqual(
      Array.from({ length: SHARDS }, (_, shard) => shard).filter((shard) => !epochs.has(shard)),
    );
  });

  it('takes over a dead member’s shards and answers what it left, in order', async () => {
    const prefix = freshPrefix();
    const keys = new ClusterKeys(prefix);
    const dead = await ghost(keys);
    const node = makeNode(prefix);
    await node.start();
    const key = ghostKey(dead.epochs, 'orphan');
    const shard = shardOf(key, SHARDS);
    const epoch = dead.epochs.get(shard) ?? 0;
    const inbox = new ShardInbox(admin, keys);
    const store = new RedisStore({ redis: admin, prefix });

    const first = await node.submit(key, 'first', { agent: 'cell' });
    const second = await node.submit(key, 'second', { agent: 'cell' });
    const third = await node.submit(key, 'third', { agent: 'cell' });
    // The ghost reads two of them, journals the first one's turn, and dies before acking.
    await inbox.ensureGroup(shard);
    const read = await inbox.read(shard, epoch, 'ghost', 2, '0-0');
    expect(read.fenced ? [] : read.messages.map((message) => message.requestId)).toEqual([
      first.requestId,
      second.requestId,
    ]);
    const journaled = {
      ...sampleRecord('ghost-turn', 'answered before the crash'),
      output: { answer: 42 },
      messages: [
        { role: 'user' as const, content: 'first' },
        { role: 'assistant' as const, content: 'answered before the crash' },
      ],
    };
    await store.appendWith(key, journaled, {
      fence: { shard, epoch },
      requestId: first.requestId,
    });
    const turns: string[] = [];
    node.supervisor.on('turn:start', ({ turnId }) => turns.push(turnId));
    const acquired = new Promise<{ claimed: number; epoch: number }>((resolve) => {
      node.on('shard:acquire', (event) => {
        if (event.shard === shard) resolve(event);
      });
    });
    await dead.die();

    const taken = await acquired;
    expect(taken.epoch).toBeGreaterThan(epoch);
    expect(taken.claimed).toBe(2);
    // The journaled one is answered from the journal, not run again; the others run, in order.
    // Structured output included: the reply rebuilt from the journal is the one the turn gave.
    expect(await first.reply).toMatchObject({
      text: 'answered before the crash',
      turnId: 'ghost-turn',
      output: { answer: 42 },
    });
    expect(await second.reply).toMatchObject({ text: 'echo: second' });
    expect(await third.reply).toMatchObject({ text: 'echo: third' });
    expect(turns).toHaveLength(2);
    const records = await store.read(key);
    expect(records.map((record) => record.messages[0]?.content)).toEqual([
      'first',
      'second',
      'third',
    ]);
    expect((await store.recordOfRequest(key, third.requestId))?.turnId).toBe(records[2]?.turnId);
    await until(
      async () => ((await inbox.length(shard)) === 0 ? true : undefined),
      5_000,
      'the inbox to be empty',
    );
    // The dead owner's writes are refused from now on.
    await expect(
      store.appendWith(key, sampleRecord('late'), { fence: { shard, epoch } }),
    ).rejects.toMatchObject({ code: 'AGENTCELL_FENCED' });

    await node.close();
    expect(node.status).toBe('closed');
    expect(await admin.exists(keys.node('real'))).toBe(0);
    expect(
      (await new ShardLeases(admin, keys, { nodeId: 'x', ttlMs: 1 }).owners(SHARDS)).size,
    ).toBe(0);
  });

  it('answers a message that stopped its owners maxDeliveries times with DELIVERY_LIMIT, not a turn', async () => {
    const prefix = freshPrefix();
    const keys = new ClusterKeys(prefix);
    const dead = await ghost(keys);
    const node = makeNode(prefix, { maxDeliveries: 1 });
    await node.start();
    const key = ghostKey(dead.epochs, 'poison');
    const shard = shardOf(key, SHARDS);
    const epoch = dead.epochs.get(shard) ?? 0;
    const inbox = new ShardInbox(admin, keys);

    const poison = await node.submit(key, 'the message that kills its node', { agent: 'cell' });
    poison.reply.catch(() => {});
    // The ghost takes it (its one delivery) and dies running it; a later one it never read.
    await inbox.ensureGroup(shard);
    const read = await inbox.read(shard, epoch, 'ghost', 1, '0-0');
    expect(read.fenced ? [] : read.messages.map((message) => message.requestId)).toEqual([
      poison.requestId,
    ]);
    const after = await node.submit(key, 'after', { agent: 'cell' });
    const turns: string[] = [];
    node.supervisor.on('turn:start', ({ turnId }) => turns.push(turnId));
    await dead.die();

    await expect(poison.reply).rejects.toMatchObject({
      code: 'AGENTCELL_DELIVERY_LIMIT',
      details: { requestId: poison.requestId, shard },
    });
    expect(await after.reply).toMatchObject({ text: 'echo: after' });
    expect(turns).toHaveLength(1);
    // Settled messages leave no delivery count behind.
    await until(
      async () => ((await admin.hlen(keys.attempts(shard))) === 0 ? true : undefined),
      5_000,
      'the delivery counts to be cleared',
    );
  });
});
