/**
 * A turn that waits for a person in a cluster of node processes: the node that runs its session
 * is killed (SIGKILL) while it waits; the node that takes the shard over finds the approval
 * still pending, and once it is answered the turn completes exactly once (the tool runs once,
 * the reply is journaled once) and its caller, on the node it sent through, gets the reply.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { shardOf } from '../../src/cluster/shards.js';
import { RedisStore } from '../../src/runtime/stores/redis.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { deleteKeys } from '../fixtures/redis-keys.js';
import { sharedRedisUrl } from '../support/redis.js';
import { inboxBacklog, leaseOwners, NodeProcess, until } from './harness.js';

const REDIS_URL = await sharedRedisUrl();
const RUN_PREFIX = `agentcell-test:${randomUUID()}:`;
const SHARDS = 8;
/** Long enough that a node starved of CPU on a loaded machine keeps its shards while it lives. */
const HEARTBEAT_MS = 300;
const LEASE_MS = 3_000;

let mock: MockLlm;
let admin: Redis;
let running: NodeProcess[] = [];
let clusters = 0;
/** Each test's cluster has its own keys: a node killed by the last one is no member of it. */
let prefix = RUN_PREFIX;

beforeAll(async () => {
  mock = await startMockLlm({
    rules: [
      {
        match: 'pay please',
        steps: [{ toolCalls: [{ name: 'pay', arguments: { amount: 420 } }] }, { reply: 'done' }],
      },
    ],
  });
  admin = new Redis(REDIS_URL);
});

beforeEach(() => {
  prefix = `${RUN_PREFIX}${++clusters}:`;
});

afterEach(async () => {
  await Promise.all(running.map((node) => node.kill()));
  running = [];
});

afterAll(async () => {
  await deleteKeys(admin, RUN_PREFIX);
  await admin.quit();
  await mock.close();
});

function startNode(nodeId: string, drainTimeoutMs?: number): Promise<NodeProcess> {
  return NodeProcess.start({
    ...(drainTimeoutMs !== undefined && { drainTimeoutMs }),
    redis: REDIS_URL,
    prefix,
    nodeId,
    shards: SHARDS,
    heartbeatMs: HEARTBEAT_MS,
    leaseMs: LEASE_MS,
    mockUrl: mock.url,
  }).then((node) => {
    running.push(node);
    return node;
  });
}

/** Waits until every shard is owned, as `predicate` wants (given shard → node). */
function owned(predicate: (owners: Map<number, string>) => boolean, what: string): Promise<true> {
  return until(
    async () => {
      const leases = await leaseOwners(admin, prefix, SHARDS);
      const owners = new Map([...leases].map(([shard, owner]) => [shard, owner.node]));
      return owners.size === SHARDS && predicate(owners) ? true : undefined;
    },
    30_000,
    what,
  );
}

/** A session key on a shard `node` owns now. */
async function keyOwnedBy(node: NodeProcess, tag: string): Promise<string> {
  const owners = await leaseOwners(admin, prefix, SHARDS);
  for (let index = 0; ; index++) {
    const key = `${tag}:${index}`;
    if (owners.get(shardOf(key, SHARDS))?.node === node.id) return key;
  }
}

interface Pending {
  readonly approvalId: string;
  readonly turnId: string;
  readonly arguments: unknown;
}

/** The approvals of session `key` listed through `node`, once there is one. */
function listedThrough(node: NodeProcess, key: string): Promise<Pending[]> {
  return until(
    async () => {
      const approvals = (await node.approval(key))['approvals'] as Pending[] | undefined;
      return approvals?.length ? approvals : undefined;
    },
    20_000,
    `the approval to be listed through ${node.id}`,
  );
}

describe('approvals in a cluster of node processes', { timeout: 90_000 }, () => {
  it('keeps an approval pending across a SIGKILL of its owner; answered, the turn completes once', async () => {
    const [caller, victim] = await Promise.all([startNode('caller'), startNode('victim')]);
    await owned((owners) => new Set(owners.values()).size === 2, 'both nodes to own shards');
    const key = await keyOwnedBy(victim, 'kill');
    const sent = caller.send(key, 'pay please', 'payer');
    expect(await sent.accepted).toBeDefined();
    const listed = await listedThrough(caller, key);
    const pending = listed[0] as Pending;
    expect(pending.arguments).toEqual({ amount: 420 });

    await victim.kill();
    await owned(
      (shards) => [...shards.values()].every((node) => node === caller.id),
      'the surviving node to take every shard',
    );
    // Still pending where the session runs now, read from the journal the dead owner left.
    const after = await caller.approval(key);
    expect(after['approvals']).toEqual(listed);

    const unknown = await caller.approval(key, { approvalId: randomUUID(), approved: true });
    expect(unknown['code']).toBe('AGENTCELL_APPROVAL_NOT_FOUND');
    const answered = await caller.approval(key, { approvalId: pending.approvalId, approved: true });
    expect(answered['code']).toBeUndefined();
    const again = await caller.approval(key, { approvalId: pending.approvalId, approved: false });
    expect(again['code']).toBe('AGENTCELL_APPROVAL_ANSWERED');

    // The caller that sent the message before the owner died gets the turn's reply.
    expect(await sent.outcome).toMatchObject({
      kind: 'reply',
      text: 'done',
      turnId: pending.turnId,
    });
    await until(
      async () => ((await inboxBacklog(admin, prefix, SHARDS)) === 0 ? true : undefined),
      20_000,
      'the message to be acked',
    );
    const paid = [caller, victim].flatMap((node) => node.events.filter((e) => e.ev === 'paid'));
    expect(paid).toHaveLength(1);
    const records = await new RedisStore({ redis: admin, prefix }).read(key);
    const replies = records.filter((record) => record.approval === undefined);
    expect(replies.map((record) => record.turnId)).toEqual([pending.turnId]);
    const settles = caller.events.filter((e) => e.ev === 'settle' && e['key'] === key);
    expect(settles).toHaveLength(1);
    // The new owner ran only the rest of the paused turn, not the message again.
    const started = caller.events.filter((e) => e.ev === 'turn-start' && e['key'] === key);
    expect(started.map((e) => e['turnId'])).toEqual([pending.turnId]);
  });
  it('hands a shard over without waiting for a person; the next owner waits for the same approval', async () => {
    // A drain that waited for the person would outlast the close below (it gives 30 s).
    const [caller, leaving] = await Promise.all([
      startNode('caller-2', 120_000),
      startNode('leaving', 120_000),
    ]);
    await owned((owners) => new Set(owners.values()).size === 2, 'both nodes to own shards');
    const key = await keyOwnedBy(leaving, 'leave');
    const sent = caller.send(key, 'pay please', 'payer');
    const [pending] = await listedThrough(caller, key);

    await leaving.close(30_000);
    expect(leaving.events.some((e) => e.ev === 'closed')).toBe(true);
    await owned(
      (shards) => [...shards.values()].every((node) => node === caller.id),
      'the remaining node to take every shard',
    );
    expect(await listedThrough(caller, key)).toEqual([pending]);
    const answered = await caller.approval(key, {
      approvalId: pending?.approvalId ?? '',
      approved: true,
    });
    expect(answered['code']).toBeUndefined();
    expect(await sent.outcome).toMatchObject({ kind: 'reply', text: 'done' });
    const paid = [caller, leaving].flatMap((node) => node.events.filter((e) => e.ev === 'paid'));
    expect(paid).toHaveLength(1);
  });
});
