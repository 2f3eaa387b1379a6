/**
 * A capacity model of the cluster for 10, 100 and 1,000 nodes (bench/_util/capacity-model.ts),
 * from costs measured here on Redis's own counters (INFO commandstats, stats, cpu) of a Redis of
 * the bench's own (appendonly, fsync every second), with node processes at the production lease
 * timing (heartbeat 1 s, lease 10 s), pooled placement, the mock LLM in a process of its own:
 *
 * 0. Redis alone, idle for MODEL_IDLE_SECONDS: its own housekeeping (cron, AOF);
 * 1. cluster A, 2 nodes, 64 shards, idle as long;
 * 2. the same with 998 more members listed (heartbeats of nodes that are leaving, so that no
 *    shard moves): what each member costs each node's heartbeat;
 * 3. the same under load: MODEL_SESSIONS sessions × 3 turns accepted round-robin (half by a node
 *    that does not own the shard): Redis commands, script time, bytes and main-thread CPU per
 *    message, the idle cost of those seconds taken off, and node CPU per turn;
 * 4. cluster B, 2 nodes, 512 shards, idle: what a held shard costs, and so what a node costs.
 *
 *   npm run bench -- cluster-model
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { ClusterKeys } from '../src/cluster/keys.js';
import { ShardLeases } from '../src/cluster/leases.js';
import { PrivateRedis } from '../test/fixtures/cluster-redis.js';
import {
  type Costs,
  fmt,
  type ModelAssumptions,
  predictionTable,
  type RedisCost,
} from './_util/capacity-model.js';
import { Child } from './_util/cluster-child.js';
import { startMockProcess } from './_util/mock-process.js';
import { delta, type RedisDelta, snapshot } from './_util/redis-stats.js';

const NODES = 2;
const SHARDS_A = 64;
const SHARDS_B = 512;
const FAKE_MEMBERS = 998;
const SESSIONS = Number(process.env['MODEL_SESSIONS'] ?? 1_000);
const TURNS = 3;
const IDLE_SECONDS = Number(process.env['MODEL_IDLE_SECONDS'] ?? 15);
const ASSUMPTIONS: ModelAssumptions = {
  nodeCores: Number(process.env['MODEL_NODE_CORES'] ?? 4),
  redisBudget: Number(process.env['MODEL_REDIS_BUDGET'] ?? 0.7),
};

interface Cluster {
  readonly prefix: string;
  readonly children: Child[];
}

async function startCluster(redisUrl: string, mockUrl: string, shards: number): Promise<Cluster> {
  const prefix = `model:${randomUUID().slice(0, 8)}:`;
  const children: Child[] = [];
  for (let index = 0; index < NODES; index++) {
    const child = new Child({
      mode: 'cluster',
      redis: redisUrl,
      prefix,
      nodeId: `node-${index}`,
      shards,
      heartbeatMs: 1_000,
      leaseMs: 10_000,
      mockUrl,
      supervisor: { placement: 'pooled', maxConcurrentTurns: 128, idleTimeoutMs: 0 },
    });
    children.push(child);
    await child.next('ready');
  }
  return { prefix, children };
}

/** Waits until both nodes share every shard, then a little for the last claims to end. */
async function settle(admin: Redis, cluster: Cluster, shards: number): Promise<void> {
  const keys = new ClusterKeys(cluster.prefix);
  const leases = new ShardLeases(admin, keys, { nodeId: 'bench', ttlMs: 1 });
  const deadline = Date.now() + 120_000;
  for (;;) {
    const owners = await leases.owners(shards);
    if (owners.size === shards && new Set([...owners.values()].map((o) => o.node)).size === NODES) {
      break;
    }
    if (Date.now() > deadline) throw new Error('the nodes did not share the shards in 120 s');
    await sleep(200);
  }
  await sleep(3_000);
}

async function idle(admin: Redis): Promise<RedisDelta> {
  const before = await snapshot(admin);
  await sleep(IDLE_SECONDS * 1000);
  return delta(before, await snapshot(admin));
}

/** Per second. */
function rate(of: RedisDelta): RedisCost {
  return {
    calls: of.calls / of.seconds,
    bytes: (of.netIn + of.netOut) / of.seconds,
    cpuMs: of.mainCpuMs / of.seconds,
  };
}

function combine(a: RedisCost, b: RedisCost, scale: (x: number, y: number) => number): RedisCost {
  return {
    calls: scale(a.calls, b.calls),
    bytes: scale(a.bytes, b.bytes),
    cpuMs: scale(a.cpuMs, b.cpuMs),
  };
}

export default async function clusterModelBench(): Promise<string> {
  const redis = await PrivateRedis.start('everysec');
  const mock = await startMockProcess({ firstTokenMs: 0 });
  const admin = new Redis(redis.url);
  const clusters: Cluster[] = [];
  try {
    const fixed = rate(await idle(admin));
    const a = await startCluster(redis.url, mock.url, SHARDS_A);
    clusters.push(a);
    await settle(admin, a, SHARDS_A);
    const idleA = rate(await idle(admin));

    // Members that are leaving: listed by every node's heartbeat, given no shard.
    const keys = new ClusterKeys(a.prefix);
    const fakes = Array.from({ length: FAKE_MEMBERS }, (_, index) => `fake-${index}`);
    const pipeline = admin.pipeline();
    for (const id of fakes) {
      const info = { id, state: 'leaving', pid: 0, host: 'bench', startedAt: Date.now() };
      pipeline.set(keys.node(id), JSON.stringify(info), 'PX', 600_000);
      pipeline.sadd(keys.nodes, id);
    }
    await pipeline.exec();
    const idleMembers = rate(await idle(admin));
    await admin.del(...fakes.map((id) => keys.node(id)));
    await admin.srem(keys.nodes, ...fakes);
    const perNodePerMember = combine(
      idleMembers,
      idleA,
      (x, y) => (x - y) / (NODES * FAKE_MEMBERS),
    );

    const sessions = Array.from({ length: SESSIONS }, (_, index) => `s${index}`);
    const loadStart = await snapshot(admin);
    for (const [index, child] of a.children.entries()) {
      child.command({
        op: 'load',
        keys: sessions.filter((_, key) => key % NODES === index),
        turns: TURNS,
        concurrency: 64,
      });
    }
    const done = await Promise.all(a.children.map((child) => child.next('load-done')));
    const load = delta(loadStart, await snapshot(admin));
    const turns = done.reduce((sum, line) => sum + (line.samples?.length ?? 0), 0);
    const failed = done.reduce((sum, line) => sum + (line.failed ?? 0), 0);
    const nodeCpuMs = done.reduce((sum, line) => sum + (line.cpuMs ?? 0), 0);
    const perMessage = combine(rate(load), idleA, (x, y) => ((x - y) * load.seconds) / turns);
    await Promise.all(a.children.map((child) => child.close()));

    const b = await startCluster(redis.url, mock.url, SHARDS_B);
    clusters.push(b);
    await settle(admin, b, SHARDS_B);
    const idleB = rate(await idle(admin));
    const perShard = combine(idleB, idleA, (x, y) => (x - y) / (SHARDS_B - SHARDS_A));
    const perNode = combine(
      combine(idleA, fixed, (x, y) => x - y),
      perShard,
      (x, y) => (x - SHARDS_A * y) / NODES,
    );

    const costs: Costs = {
      fixed,
      perMessage,
      perNode,
      perShard,
      perNodePerMember,
      nodeCpuMsPerTurn: nodeCpuMs / turns,
    };
    return report(costs, load, turns, failed);
  } finally {
    await Promise.all(clusters.flatMap((cluster) => cluster.children.map((c) => c.close())));
    admin.disconnect();
    await mock.stop();
    await redis.destroy();
  }
}

function report(costs: Costs, load: RedisDelta, turns: number, failed: number): string {
  const top = [...load.commands]
    .sort((x, y) => y[1].calls - x[1].calls)
    .slice(0, 10)
    .map(([name, stats]) => `${name} ${fmt(stats.calls / turns, 2)}`)
    .join(', ');
  const scripts = [...load.commands]
    .filter(([name]) => name.startsWith('eval') || name.startsWith('fcall'))
    .reduce((sum, [, stats]) => sum + stats.calls, 0);
  const cost = (name: string, of: RedisCost, unit: string) =>
    `| ${name} | ${fmt(of.calls, 2)} | ${fmt(of.bytes)} | ${fmt(of.cpuMs * 1000, 1)} µs${unit} |`;
  const scales = [64, 4_096].flatMap((shards) =>
    [10, 100, 1_000].map((nodes) => ({ nodes, shards })),
  );
  return [
    `Measured: ${NODES} node processes (pooled), ${fmt(turns)} turns (${failed} failed) in ${fmt(load.seconds, 1)} s; Redis appendonly, fsync every second; idle phases of ${IDLE_SECONDS} s.`,
    '',
    "| Redis cost of | commands (scripts' inner ones included) | bytes in + out | main-thread CPU |",
    '|---|---:|---:|---:|',
    cost('Redis alone, per second', costs.fixed, '/s'),
    cost('one message (a turn)', costs.perMessage, ''),
    cost('one node, per second', costs.perNode, '/s'),
    cost('one held shard, per second', costs.perShard, '/s'),
    cost('one member listed by one node, per second', costs.perNodePerMember, '/s'),
    '',
    `Per message: ${fmt(scripts / turns, 2)} scripts taking ${fmt(load.scriptUsec / turns)} µs (commandstats); commands by name: ${top}. Node CPU per turn (pooled, pool threads included): ${fmt(costs.nodeCpuMsPerTurn, 2)} ms.`,
    '',
    `Predicted (a node: ${ASSUMPTIONS.nodeCores} cores; the cluster may use ${fmt(ASSUMPTIONS.redisBudget * 100)} % of one Redis core):`,
    '',
    predictionTable(costs, scales, ASSUMPTIONS),
  ].join('\n');
}
