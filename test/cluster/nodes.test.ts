/**
 * Several cluster nodes, each a process of its own on this machine, over one real Redis and
 * the parent's mock LLM: messages sent through any node reach their session in order; a node
 * killed mid-burst loses nothing acknowledged and nothing is journaled twice; a node paused
 * past its lease cannot write once resumed; nodes joining and leaving hand shards over drained.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { JournalRecord } from '../../src/agent/journal.js';
import type { LeaseOwner } from '../../src/cluster/leases.js';
import { shardOf } from '../../src/cluster/shards.js';
import { RedisStore } from '../../src/runtime/stores/redis.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { deleteKeys } from '../fixtures/redis-keys.js';
import { sharedRedisUrl } from '../support/redis.js';
import {
  inboxBacklog,
  leaseOwners,
  type NodeEvent,
  NodeProcess,
  type Outcome,
  type Sent,
  until,
} from './harness.js';

const REDIS_URL = await sharedRedisUrl();
const RUN_PREFIX = `agentcell-test:${randomUUID()}:`;
const SHARDS = 16;
const HEARTBEAT_MS = 150;
const LEASE_MS = 1_500;

let mock: MockLlm;
let admin: Redis;
let clusters = 0;
let running: NodeProcess[] = [];

beforeAll(async () => {
  mock = await startMockLlm();
  admin = new Redis(REDIS_URL);
});

afterEach(async () => {
  // SIGKILL ends a stopped process too.
  await Promise.all(running.map((node) => node.kill()));
  running = [];
  mock.setLatency({});
});

afterAll(async () => {
  await deleteKeys(admin, RUN_PREFIX);
  await admin.quit();
  await mock.close();
});

interface Cluster {
  readonly prefix: string;
  readonly nodes: NodeProcess[];
  readonly store: RedisStore;
}

/** Lease timing of a test's cluster. */
interface Timing {
  readonly heartbeatMs: number;
  readonly leaseMs: number;
}
const SHORT_LEASES: Timing = { heartbeatMs: HEARTBEAT_MS, leaseMs: LEASE_MS };
/**
 * For tests that need ownership to hold while they run: a node starved of CPU for a second on
 * a loaded machine keeps its shards.
 */
const STEADY_LEASES: Timing = { heartbeatMs: 500, leaseMs: 8_000 };

function startNode(prefix: string, nodeId: string, timing = SHORT_LEASES): Promise<NodeProcess> {
  return NodeProcess.start({
    redis: REDIS_URL,
    prefix,
    nodeId,
    shards: SHARDS,
    heartbeatMs: timing.heartbeatMs,
    leaseMs: timing.leaseMs,
    mockUrl: mock.url,
  }).then((node) => {
    running.push(node);
    return node;
  });
}

/** A cluster of its own (its own prefix) once every shard is owned and every node owns some. */
async function startCluster(count: number, timing = SHORT_LEASES): Promise<Cluster> {
  clusters++;
  const prefix = `${RUN_PREFIX}${clusters}:`;
  const nodes = await Promise.all(
    Array.from({ length: count }, (_, index) =>
      startNode(prefix, `node-${clusters}-${index}`, timing),
    ),
  );
  await settledOwners(prefix, nodes);
  return { prefix, nodes, store: new RedisStore({ redis: admin, prefix }) };
}

/** Waits until every shard is owned, by exactly `nodes` (each owning some). */
function settledOwners(
  prefix: string,
  nodes: readonly NodeProcess[],
): Promise<Map<number, LeaseOwner>> {
  const ids = new Set(nodes.map((node) => node.id));
  return until(
    async () => {
      const owners = await leaseOwners(admin, prefix, SHARDS);
      const holders = new Set([...owners.values()].map((owner) => owner.node));
      const settled =
        owners.size === SHARDS &&
        holders.size === ids.size &&
        [...holders].every((holder) => ids.has(holder));
      return settled ? owners : undefined;
    },
    20_000,
    `every shard to be owned by ${[...ids].join(', ')}`,
  );
}

/** Session keys, `perNode` of them on the shards of each owner. */
function keysPerOwner(
  owners: Map<number, LeaseOwner>,
  perNode: number,
  tag: string,
): Map<string, string[]> {
  const byNode = new Map<string, string[]>();
  for (const owner of owners.values()) byNode.set(owner.node, []);
  for (let index = 0; [...byNode.values()].some((keys) => keys.length < perNode); index++) {
    const key = `${tag}:${index}`;
    const node = owners.get(shardOf(key, SHARDS))?.node;
    const keys = node === undefined ? undefined : byNode.get(node);
    if (keys && keys.length < perNode) keys.push(key);
  }
  return byNode;
}

function userMessages(records: readonly JournalRecord[]): string[] {
  return records.flatMap((record) =>
    record.messages.filter((message) => message.role === 'user').map((message) => message.content),
  );
}

function eventsOf(nodes: readonly NodeProcess[], ev: string): NodeEvent[] {
  return nodes.flatMap((node) => node.events.filter((event) => event.ev === ev));
}

/** Sends `count` messages to `key` one after the other (each accepted before the next). */
async function sendInOrder(
  key: string,
  count: number,
  via: (index: number) => NodeProcess,
  sent: Sent[],
  first = 0,
): Promise<void> {
  for (let index = first; index < first + count; index++) {
    const one = via(index).send(key, `${key} m${index}`);
    sent.push(one);
    await one.accepted;
  }
}

function isTypedOutcome(outcome: Outcome): boolean {
  return (
    outcome.kind === 'reply' || (outcome.kind === 'error' && outcome.code.startsWith('AGENTCELL_'))
  );
}

/**
 * What every cluster test checks at the end: each session's journal holds its messages in the
 * order they were sent, none twice, all the acknowledged ones that succeeded; no request was
 * acked twice, across every node.
 */
async function expectJournalsExact(
  cluster: Cluster,
  keys: readonly string[],
  sent: readonly Sent[],
): Promise<void> {
  await until(
    async () => ((await inboxBacklog(admin, cluster.prefix, SHARDS)) === 0 ? true : undefined),
    30_000,
    'every inbox to be empty',
  );
  const settles = eventsOf(cluster.nodes, 'settle').map((event) => String(event['requestId']));
  expect(new Set(settles).size).toBe(settles.length);
  for (const key of keys) {
    const journaled = userMessages(await cluster.store.read(key));
    expect(new Set(journaled).size, `a message of ${key} journaled twice`).toBe(journaled.length);
    const ofKey = sent.filter((one) => one.key === key);
    const inOrder = ofKey.map((one) => one.message).filter((text) => journaled.includes(text));
    expect(journaled, `the journal of ${key} out of order or with strangers`).toEqual(inOrder);
    for (const one of ofKey) {
      const requestId = await one.accepted;
      const outcome = await Promise.race([one.outcome, sleep(0).then(() => undefined)]);
      if (requestId !== undefined && outcome?.kind !== 'error') {
        expect(journaled, `acknowledged ${one.message} missing`).toContain(one.message);
      }
    }
  }
}

describe('a cluster of node processes', { timeout: 60_000 }, () => {
  it('delivers messages sent through any node to their session, in order', async () => {
    // The test checks who ran each turn against the owners read here: they must not change.
    const cluster = await startCluster(3, STEADY_LEASES);
    const owners = await leaseOwners(admin, cluster.prefix, SHARDS);
    const keys = [...keysPerOwner(owners, 3, 'route').values()].flat();
    const sent: Sent[] = [];
    await Promise.all(
      keys.map((key, session) =>
        sendInOrder(key, 4, (index) => cluster.nodes[(session + index) % 3]!, sent),
      ),
    );
    expect(await Promise.all(sent.map((one) => one.accepted))).not.toContain(undefined);
    const outcomes = await Promise.all(sent.map((one) => one.outcome));
    for (const [index, outcome] of outcomes.entries()) {
      expect(outcome).toMatchObject({ kind: 'reply', text: `echo: ${sent[index]?.message}` });
    }
    for (const key of keys) {
      const records = await cluster.store.read(key);
      expect(userMessages(records)).toEqual([0, 1, 2, 3].map((index) => `${key} m${index}`));
      // Each caller got the reply of the turn journaled for its message.
      const replied = sent
        .map((one, index) => ({ one, outcome: outcomes[index] }))
        .filter(({ one }) => one.key === key)
        .map(({ outcome }) => (outcome?.kind === 'reply' ? outcome.turnId : undefined));
      expect(replied).toEqual(records.map((record) => record.turnId));
    }
    // Every node ran the turns of its own shards, whoever accepted the messages. A reply can
    // reach its caller before the owner's line saying it settled it: wait for those lines.
    await until(
      async () => (eventsOf(cluster.nodes, 'settle').length >= sent.length ? true : undefined),
      10_000,
      'every node to report the messages it settled',
    );
    for (const node of cluster.nodes) {
      const ran = node.events.filter((event) => event.ev === 'settle');
      expect(ran.length).toBeGreaterThanOrEqual(12);
      for (const event of ran) {
        expect(owners.get(shardOf(String(event['key']), SHARDS))?.node).toBe(node.id);
      }
    }
    await expectJournalsExact(cluster, keys, sent);
    expect(eventsOf(cluster.nodes, 'lose')).toEqual([]);
  });

  it('loses nothing when a node is killed mid-burst, and journals no turn twice', async () => {
    mock.setLatency({ firstTokenMs: 25 });
    const cluster = await startCluster(3);
    const [first, second, victim] = cluster.nodes as [NodeProcess, NodeProcess, NodeProcess];
    const owners = await leaseOwners(admin, cluster.prefix, SHARDS);
    const keys = [...keysPerOwner(owners, 4, 'kill').values()].flat();
    const victimShards = [...owners].filter(([, owner]) => owner.node === victim.id);
    const sent: Sent[] = [];

    // Wave one through every node; the victim dies once 30 replies are in.
    let replies = 0;
    const killed = new Promise<void>((resolve) => {
      const count = (one: Sent) =>
        void one.outcome.then((outcome) => {
          if (outcome.kind === 'reply' && ++replies === 30) void victim.kill().then(resolve);
        });
      void Promise.all(
        keys.map((key, session) =>
          sendInOrder(key, 6, (index) => cluster.nodes[(session + index) % 3]!, sent),
        ),
      ).then(() => sent.forEach(count));
    });
    await killed;
    expect(victim.alive).toBe(false);
    // Wave two through the survivors, while the victim's shards move.
    await Promise.all(
      keys.map((key) =>
        sendInOrder(key, 3, (index) => (index % 2 === 0 ? first : second), sent, 6),
      ),
    );

    // Every caller still alive gets exactly one outcome: a reply or a typed error.
    const survivors = sent.filter((one) => one.node !== victim.id);
    const outcomes = await Promise.all(survivors.map((one) => one.outcome));
    for (const outcome of outcomes)
      expect(isTypedOutcome(outcome), JSON.stringify(outcome)).toBe(true);
    expect(outcomes.filter((outcome) => outcome.kind === 'reply').length).toBeGreaterThan(
      survivors.length * 0.9,
    );

    // The victim's shards moved to the survivors, with higher epochs.
    const after = await settledOwners(cluster.prefix, [first, second]);
    for (const [shard, owner] of victimShards) {
      expect(after.get(shard)?.epoch).toBeGreaterThan(owner.epoch);
    }
    // Even the messages only the victim had acknowledged ran, on the new owners.
    await expectJournalsExact(cluster, keys, sent);
    const claimed = eventsOf([first, second], 'acquire').reduce(
      (sum, event) => sum + Number(event['claimed']),
      0,
    );
    expect(claimed).toBeGreaterThan(0);
  });

  it('fences a node paused past its lease: resumed, it cannot write', async () => {
    mock.setLatency({ firstTokenMs: 600 });
    const cluster = await startCluster(3);
    const [caller, paused] = cluster.nodes as [NodeProcess, NodeProcess, NodeProcess];
    const owners = await leaseOwners(admin, cluster.prefix, SHARDS);
    const keys = keysPerOwner(owners, 3, 'pause').get(paused.id) ?? [];
    const shards = [...new Set(keys.map((key) => shardOf(key, SHARDS)))];
    const sent: Sent[] = [];
    await Promise.all(keys.map((key) => sendInOrder(key, 2, () => caller, sent)));

    await paused.waitFor(
      (event) => event.ev === 'turn-start' && keys.includes(String(event['key'])),
      15_000,
      'a turn on the node to pause',
    );
    paused.signal('SIGSTOP');
    const pausedAt = Date.now();
    const ended = new Set(
      paused.events.filter((event) => event.ev === 'turn-end').map((event) => event['turnId']),
    );
    const inFlight = paused.events
      .filter((event) => event.ev === 'turn-start' && !ended.has(event['turnId']))
      .map((event) => String(event['turnId']));
    expect(inFlight.length).toBeGreaterThan(0);

    // Past its lease, the others take its shards with higher epochs.
    await until(
      async () => {
        const now = await leaseOwners(admin, cluster.prefix, SHARDS);
        return shards.every((shard) => {
          const owner = now.get(shard);
          return owner && owner.node !== paused.id && owner.epoch > (owners.get(shard)?.epoch ?? 0);
        })
          ? true
          : undefined;
      },
      10_000,
      'the paused node’s shards to be taken over',
    );
    expect(Date.now() - pausedAt).toBeGreaterThanOrEqual(LEASE_MS - HEARTBEAT_MS);
    const resumedAt = Date.now();
    paused.signal('SIGCONT');

    const outcomes = await Promise.all(sent.map((one) => one.outcome));
    for (const [index, outcome] of outcomes.entries()) {
      expect(outcome).toMatchObject({ kind: 'reply', text: `echo: ${sent[index]?.message}` });
    }
    // Resumed, it finds out it lost every shard it held...
    for (const shard of shards) {
      await paused.waitFor(
        (event) =>
          event.ev === 'lose' &&
          event['shard'] === shard &&
          event['epoch'] === owners.get(shard)?.epoch,
        30_000,
        `the loss of shard ${shard}`,
      );
    }
    // ...and none of what it had in flight was journaled or acked: its writes were refused.
    for (const turnId of inFlight) {
      const end = paused.events.find(
        (event) => event.ev === 'turn-end' && event['turnId'] === turnId,
      );
      if (end) expect(end['outcome']).not.toBe('ok');
    }
    const journaledTurns = (await Promise.all(keys.map((key) => cluster.store.read(key)))).flatMap(
      (records) => records.map((record) => record.turnId),
    );
    for (const turnId of inFlight) expect(journaledTurns).not.toContain(turnId);
    const staleSettles = paused.events.filter(
      (event) =>
        event.ev === 'settle' &&
        event.at >= resumedAt &&
        event['epoch'] === owners.get(Number(event['shard']))?.epoch,
    );
    expect(staleSettles).toEqual([]);
    await expectJournalsExact(cluster, keys, sent);
  });

  it('hands shards over drained when nodes join and leave mid-burst', async () => {
    mock.setLatency({ firstTokenMs: 20 });
    const cluster = await startCluster(2);
    const [stays, leaves] = cluster.nodes as [NodeProcess, NodeProcess];
    // One session per shard, so that every node, whichever shards it gets, has some.
    const keys: string[] = [];
    for (let index = 0; keys.length < SHARDS; index++) {
      const key = `handover:${index}`;
      if (!keys.some((other) => shardOf(other, SHARDS) === shardOf(key, SHARDS))) keys.push(key);
    }
    const sent: Sent[] = [];
    const settled = () => eventsOf(cluster.nodes, 'settle').length;

    // Wave one; a third node joins while it runs.
    const waveOne = Promise.all(keys.map((key) => sendInOrder(key, 6, () => stays, sent)));
    await until(async () => (settled() >= 15 ? true : undefined), 15_000, 'wave one under way');
    const joins = await startNode(cluster.prefix, `node-${clusters}-joining`);
    cluster.nodes.push(joins);
    await waveOne;
    await settledOwners(cluster.prefix, [stays, leaves, joins]);

    // Wave two; the second node leaves while it runs.
    const before = settled();
    const waveTwo = Promise.all(
      keys.map((key) => sendInOrder(key, 6, (index) => (index % 2 === 0 ? stays : joins), sent, 6)),
    );
    await until(async () => (settled() >= before + 15 ? true : undefined), 15_000, 'wave two');
    await leaves.close();
    expect(leaves.events.at(-1)?.ev).toBe('closed');
    await waveTwo;

    const outcomes = await Promise.all(sent.map((one) => one.outcome));
    for (const [index, outcome] of outcomes.entries()) {
      expect(outcome).toMatchObject({ kind: 'reply', text: `echo: ${sent[index]?.message}` });
    }
    await settledOwners(cluster.prefix, [stays, joins]);
    await expectJournalsExact(cluster, keys, sent);
    for (const key of keys) {
      expect(userMessages(await cluster.store.read(key))).toEqual(
        Array.from({ length: 12 }, (_, index) => `${key} m${index}`),
      );
    }
    // Shards moved by hand-over (drain, release, acquire), never by being taken away.
    expect(eventsOf(cluster.nodes, 'release').length).toBeGreaterThan(0);
    expect(eventsOf([leaves], 'release').length).toBeGreaterThan(0);
    expect(eventsOf(cluster.nodes, 'lose')).toEqual([]);
    expect(eventsOf([joins], 'settle').length).toBeGreaterThan(0);
  });
});
