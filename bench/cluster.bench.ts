/**
 * The cluster on one machine: 1, 2 and 3 ClusterNode processes over one Redis, against the mock
 * LLM in a process of its own, next to a single-node Supervisor on a FileStore (the baseline, in
 * the same run). Load: CLUSTER_SESSIONS (2,000) sessions × 5 turns, 128 sessions in progress at
 * once, spread round-robin over the nodes as a load balancer would (so with N nodes about
 * (N-1)/N of the messages are accepted by a node that does not own their shard). Reported:
 * throughput, p50/p99 per turn, node CPU per turn, and throughput per core in use (this machine
 * has 2 cores: 3 node processes cannot scale past 2×). Then the cost of a cross-node hop:
 * sequential sends to warm sessions, accepted by the shard's owner vs by another node.
 *
 * Each process runs the build (dist/) without a loader: `npm run bench:cluster`.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { ClusterKeys } from '../src/cluster/keys.js';
import { ShardLeases } from '../src/cluster/leases.js';
import { shardOf } from '../src/cluster/shards.js';
import { Child } from './_util/cluster-child.js';
import { formatMs, type LatencySummary, summarize } from './_util/latency.js';
import { startMockProcess } from './_util/mock-process.js';

const REDIS_URL = process.env['AGENTCELL_BENCH_REDIS'] ?? 'redis://127.0.0.1:6379';
const SESSIONS = Number(process.env['CLUSTER_SESSIONS'] ?? 2_000);
const TURNS = 5;
const CONCURRENCY = 128;
const SHARDS = 64;
const PROBES = 200;
/** Measuring waits (10 s polls, at most 10 min) until the 1-minute load average is below this. */
const MAX_LOAD = Number(process.env['CLUSTER_MAX_LOAD'] ?? 3);
/** `dedicated` (a worker per live session, the default) or `pooled` (turns on a shared pool). */
const PLACEMENT = process.env['CLUSTER_PLACEMENT'] === 'pooled' ? 'pooled' : 'dedicated';
const SUPERVISOR = {
  maxLiveSessions: 256,
  idleTimeoutMs: 0,
  maxConcurrentTurns: 128,
  placement: PLACEMENT,
};

interface Row {
  readonly name: string;
  readonly processes: number;
  readonly turns: number;
  readonly failed: number;
  readonly elapsedMs: number;
  readonly latency: LatencySummary;
  readonly cpuMs: number;
}

function keysFor(run: string): string[] {
  return Array.from({ length: SESSIONS }, (_, index) => `${run}:s${index}`);
}

async function runLoad(name: string, children: Child[], keys: string[]): Promise<Row> {
  const shares = children.map((_, index) =>
    keys.filter((_, key) => key % children.length === index),
  );
  const started = performance.now();
  for (const [index, child] of children.entries()) {
    child.command({
      op: 'load',
      keys: shares[index],
      turns: TURNS,
      concurrency: Math.ceil(CONCURRENCY / children.length),
    });
  }
  const done = await Promise.all(children.map((child) => child.next('load-done')));
  const elapsedMs = performance.now() - started;
  const samples = done.flatMap((line) => line.samples ?? []);
  return {
    name,
    processes: children.length,
    turns: samples.length,
    failed: done.reduce((sum, line) => sum + (line.failed ?? 0), 0),
    elapsedMs,
    latency: summarize(samples),
    cpuMs: done.reduce((sum, line) => sum + (line.cpuMs ?? 0), 0),
  };
}

async function waitForQuietMachine(): Promise<string> {
  const deadline = Date.now() + 10 * 60_000;
  while (loadavg()[0]! >= MAX_LOAD && Date.now() < deadline) {
    console.error(`cluster bench: load average ${loadavg()[0]!.toFixed(2)} ≥ ${MAX_LOAD}, waiting`);
    await sleep(10_000);
  }
  return loadavg()
    .map((value) => value.toFixed(2))
    .join(' / ');
}

/** Waits until every shard is owned and each node owns some; returns shard → node id. */
async function settle(
  admin: Redis,
  prefix: string,
  nodeIds: string[],
): Promise<Map<number, string>> {
  const leases = new ShardLeases(admin, new ClusterKeys(prefix), { nodeId: 'bench', ttlMs: 1 });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const owners = await leases.owners(SHARDS);
    const holders = new Set([...owners.values()].map((owner) => owner.node));
    if (owners.size === SHARDS && holders.size === nodeIds.length) {
      return new Map([...owners].map(([shard, owner]) => [shard, owner.node]));
    }
    if (Date.now() > deadline) throw new Error('the cluster did not settle within 60 s');
    await sleep(100);
  }
}

async function clean(admin: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length > 0) await admin.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

interface Hop {
  readonly nodes: number;
  readonly local: LatencySummary;
  readonly remote: LatencySummary;
}

export default async function clusterBench(): Promise<string> {
  const load = await waitForQuietMachine();
  const mock = await startMockProcess({ firstTokenMs: 0 });
  const admin = new Redis(REDIS_URL);
  const rows: Row[] = [];
  const hops: Hop[] = [];
  const run = randomUUID().slice(0, 8);
  try {
    // Baseline: one Supervisor on a FileStore, one process.
    const storeDir = await mkdtemp(join(tmpdir(), 'agentcell-cluster-bench-'));
    const baseline = new Child({
      mode: 'file',
      storeDir,
      mockUrl: mock.url,
      supervisor: SUPERVISOR,
    });
    await baseline.next('ready');
    rows.push(await runLoad('FileStore supervisor (baseline)', [baseline], keysFor(`${run}-file`)));
    await baseline.close();
    await rm(storeDir, { recursive: true, force: true });

    for (const count of [1, 2, 3]) {
      const prefix = `agentcell-bench:${run}:${count}:`;
      const nodeIds = Array.from({ length: count }, (_, index) => `bench-${count}-${index}`);
      const children = nodeIds.map(
        (nodeId) =>
          new Child({
            mode: 'cluster',
            redis: REDIS_URL,
            prefix,
            nodeId,
            shards: SHARDS,
            mockUrl: mock.url,
            supervisor: SUPERVISOR,
          }),
      );
      try {
        await Promise.all(children.map((child) => child.next('ready')));
        const owners = await settle(admin, prefix, nodeIds);
        rows.push(
          await runLoad(
            `cluster, ${count} node${count === 1 ? '' : 's'}`,
            children,
            keysFor(`${run}-c${count}`),
          ),
        );
        if (count >= 2) {
          // Sessions of their own, each warmed by one unmeasured send through its owner just
          // before its two measured ones (the load's sessions may be passivated by the
          // live-session cap, and re-activation is not what this measures): one through the
          // owner, one through another node, alternating which goes first.
          const keys = Array.from({ length: PROBES }, (_, index) => `hop-${run}-${count}-${index}`);
          const local: number[] = [];
          const remote: number[] = [];
          const sendVia = async (via: number, key: string): Promise<number> => {
            children[via]?.command({ op: 'probe', keys: [key] });
            const [sample] = (await children[via]!.next('probe-done')).samples ?? [];
            return sample ?? Number.NaN;
          };
          for (const [index, key] of keys.entries()) {
            const owner = nodeIds.indexOf(owners.get(shardOf(key, SHARDS)) ?? '');
            const other = (owner + 1) % count;
            await sendVia(owner, key);
            const order = index % 2 === 0 ? [owner, other] : [other, owner];
            for (const via of order) (via === owner ? local : remote).push(await sendVia(via, key));
          }
          hops.push({ nodes: count, local: summarize(local), remote: summarize(remote) });
        }
      } finally {
        await Promise.all(children.map((child) => child.close()));
        await clean(admin, prefix);
      }
    }
  } finally {
    await admin.quit();
    await mock.stop();
  }

  const cores = availableParallelism();
  const base = rows[0]!;
  const perCore = (row: Row) => row.turns / (row.elapsedMs / 1000) / Math.min(row.processes, cores);
  const lines = [
    `Load average before measuring (1/5/15 min): ${load}. ${cores} cores. ${SESSIONS.toLocaleString('en-US')} sessions × ${TURNS} turns, ${CONCURRENCY} sessions in progress at once, mock LLM (no delay) in its own process, Redis ${REDIS_URL.replace(/\/\/.*@/, '//')}, ${SHARDS} shards, ${PLACEMENT === 'dedicated' ? 'dedicated workers (at most 256 live per process)' : 'pooled placement (a pool of one thread per core per process)'}. Nodes are \`new Supervisor({ cluster: redisCluster(…) })\` processes.`,
    '',
    '| setup | turns ok | failed | wall | turns/s | vs baseline | turns/s per core in use | p50 | p99 | node CPU per turn |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((row) => {
      const rate = row.turns / (row.elapsedMs / 1000);
      return `| ${row.name} | ${row.turns.toLocaleString('en-US')} | ${row.failed} | ${(row.elapsedMs / 1000).toFixed(1)} s | ${rate.toFixed(0)} | ${(rate / (base.turns / (base.elapsedMs / 1000))).toFixed(2)}× | ${perCore(row).toFixed(0)} | ${formatMs(row.latency.p50)} | ${formatMs(row.latency.p99)} | ${formatMs(row.cpuMs / Math.max(1, row.turns))} |`;
    }),
    '',
    `Cross-node hop (${PROBES} sessions, each warmed by one send through its owner, then sequential, nothing else running): the same session's message accepted by its shard's owner vs by another node.`,
    '',
    '| nodes | owner p50 | owner p99 | other node p50 | other node p99 | hop cost (p50) |',
    '|---:|---:|---:|---:|---:|---:|',
    ...hops.map(
      (hop) =>
        `| ${hop.nodes} | ${formatMs(hop.local.p50)} | ${formatMs(hop.local.p99)} | ${formatMs(hop.remote.p50)} | ${formatMs(hop.remote.p99)} | ${formatMs(hop.remote.p50 - hop.local.p50)} |`,
    ),
  ];
  return lines.join('\n');
}
