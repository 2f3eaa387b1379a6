/**
 * Redis restarted under a running cluster (appendonly on): a private redis-server on a port of
 * its own is stopped and started again on the same data, several times, while two node
 * processes serve messages through it. Every acknowledged message is answered exactly once,
 * each session's journal holds its messages once and in order, and the nodes keep serving
 * afterwards.
 *
 * A stopping Redis may run a command and exit before its answer is sent; the client then sends
 * it again on reconnect. Each restart is a chance of that replay for whatever was in flight
 * (reads, accepts, appends, acks), which is why this restarts more than once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JournalRecord } from '../../src/agent/journal.js';
import { RedisStore } from '../../src/runtime/stores/redis.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { PrivateRedis } from '../fixtures/cluster-redis.js';
import { allWithin, inboxBacklog, leaseOwners, NodeProcess, type Sent, until } from './harness.js';

const PREFIX = 'agentcell-restart:';
const SHARDS = 8;
const HEARTBEAT_MS = 150;
const LEASE_MS = 1_500;
const RESTARTS = 3;

let redis: PrivateRedis;
let mock: MockLlm;
const nodes: NodeProcess[] = [];

beforeAll(async () => {
  redis = await PrivateRedis.start();
  mock = await startMockLlm({ latency: { firstTokenMs: 15 } });
});

afterAll(async () => {
  await Promise.all(nodes.map((node) => node.kill()));
  await mock?.close();
  await redis?.destroy();
});

function userMessages(records: readonly JournalRecord[]): string[] {
  return records.flatMap((record) =>
    record.messages.filter((message) => message.role === 'user').map((message) => message.content),
  );
}

/** Sends `count` messages to `key`, each accepted (or refused) before the next is sent. */
async function sendInOrder(
  key: string,
  from: number,
  count: number,
  via: (index: number) => NodeProcess,
  sent: Sent[],
): Promise<void> {
  for (let index = from; index < from + count; index++) {
    const one = via(index).send(key, `${key} m${index}`);
    sent.push(one);
    await one.accepted;
  }
}

describe('a cluster whose Redis restarts', { timeout: 120_000 }, () => {
  it('answers every acknowledged message exactly once, journals intact, and keeps serving', async () => {
    nodes.push(
      ...(await Promise.all(
        [0, 1].map((index) =>
          NodeProcess.start({
            redis: redis.url,
            prefix: PREFIX,
            nodeId: `restart-${index}`,
            shards: SHARDS,
            heartbeatMs: HEARTBEAT_MS,
            leaseMs: LEASE_MS,
            mockUrl: mock.url,
          }),
        ),
      )),
    );
    const [a, b] = nodes as [NodeProcess, NodeProcess];
    const admin = new Redis(redis.url, { lazyConnect: true });
    admin.on('error', () => {});
    await admin.connect();
    await until(
      async () => ((await leaseOwners(admin, PREFIX, SHARDS)).size === SHARDS ? true : undefined),
      20_000,
      'every shard to be owned',
    );

    const keys = Array.from({ length: 12 }, (_, index) => `restart:${index}`);
    const via = (index: number) => (index % 2 === 0 ? a : b);
    const sent: Sent[] = [];

    // Wave one; Redis restarts each time some more of it is answered, the rest in flight.
    const waveOne = Promise.all(keys.map((key) => sendInOrder(key, 0, 8, via, sent)));
    const downMs: number[] = [];
    for (let restart = 1; restart <= RESTARTS; restart++) {
      await until(
        async () => {
          const settled = [...a.events, ...b.events].filter((event) => event.ev === 'settle');
          return settled.length >= restart * 20 ? true : undefined;
        },
        30_000,
        `wave one under way before restart ${restart}`,
      );
      const restartedAt = Date.now();
      await redis.restart();
      downMs.push(Date.now() - restartedAt);
    }
    await waveOne;

    // Wave two, after the restarts: the nodes keep serving.
    await Promise.all(keys.map((key) => sendInOrder(key, 8, 4, via, sent)));

    const accepted = await allWithin(sent, (one) => one.accepted, 30_000, 'an acceptance');
    const outcomes = await allWithin(sent, (one) => one.outcome, 30_000, 'an outcome');
    expect(a.alive && b.alive).toBe(true);

    // Exactly one outcome per acknowledged message (the harness settles each once), and for
    // every one of them a reply: Redis came back with everything it had acknowledged.
    const acknowledged = sent.filter((_, index) => accepted[index] !== undefined);
    expect(acknowledged.length).toBeGreaterThan(sent.length * 0.9);
    for (const [index, one] of sent.entries()) {
      if (accepted[index] === undefined) continue;
      expect(outcomes[index], one.message).toMatchObject({
        kind: 'reply',
        text: `echo: ${one.message}`,
      });
    }
    // Every message after the restart was accepted and answered.
    const afterRestart = sent.filter((one) => /m(8|9|10|11)$/.test(one.message));
    for (const one of afterRestart) {
      expect(await one.outcome, one.message).toMatchObject({ kind: 'reply' });
    }
    // No request acked twice, across both nodes.
    const settles = [...a.events, ...b.events]
      .filter((event) => event.ev === 'settle')
      .map((event) => String(event['requestId']));
    expect(new Set(settles).size).toBe(settles.length);

    // Journals: each acknowledged message once, in the order sent; each caller got the reply
    // of the turn journaled for its message.
    await until(
      async () => ((await inboxBacklog(admin, PREFIX, SHARDS)) === 0 ? true : undefined),
      20_000,
      'every inbox to be empty',
    );
    const store = new RedisStore({ redis: admin, prefix: PREFIX });
    for (const key of keys) {
      const records = await store.read(key);
      const journaled = userMessages(records);
      const expected = sent
        .filter((one, index) => one.key === key && accepted[index] !== undefined)
        .map((one) => one.message);
      expect(journaled, key).toEqual(expected);
      const turnIds = sent
        .map((one, index) => ({ one, outcome: outcomes[index] }))
        .filter(({ one, outcome }) => one.key === key && outcome?.kind === 'reply')
        .map(({ outcome }) => (outcome?.kind === 'reply' ? outcome.turnId : ''));
      expect(turnIds, key).toEqual(records.map((record) => record.turnId));
    }
    console.log(
      `redis restarts: down ${downMs.join(', ')} ms; ${acknowledged.length}/${sent.length} acknowledged, all answered`,
    );
    await admin.quit();
    await sleep(0);
  });
});
