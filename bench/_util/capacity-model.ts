/**
 * The cluster's capacity model: from what one message, one node, one shard and one member seen
 * by one node cost Redis (measured by bench/cluster-model.bench.ts), what N nodes over one Redis
 * can do, and what gives out first.
 *
 * Redis runs every command on one core. The cluster's load on it, per second:
 *   Redis's own housekeeping (cron, AOF)
 *   + messages/s × cost per message
 *   + nodes × cost of a node's heartbeat (its own keys, its reply-stream read)
 *   + shards × cost of a held shard (lease renewal, inbox reads)
 *   + nodes × nodes × cost of one member listed by one node (every node lists every member on
 *     every heartbeat, to place the shards)
 * Nodes: a node turns its cores into turns at the measured CPU per turn; only min(nodes, shards)
 * nodes own a shard and so have work.
 */

/** A cost in Redis: commands, bytes (in + out) and main-thread CPU (ms). */
export interface RedisCost {
  readonly calls: number;
  readonly bytes: number;
  readonly cpuMs: number;
}

export interface Costs {
  /** Per second, with no node at all. */
  readonly fixed: RedisCost;
  readonly perMessage: RedisCost;
  /** Per second. */
  readonly perNode: RedisCost;
  readonly perShard: RedisCost;
  readonly perNodePerMember: RedisCost;
  readonly nodeCpuMsPerTurn: number;
}

export interface ModelAssumptions {
  /** Cores a node process has. */
  readonly nodeCores: number;
  /** Share of Redis's core the cluster may use (headroom for spikes, fsync, replication). */
  readonly redisBudget: number;
}

export interface Prediction {
  readonly nodes: number;
  readonly shards: number;
  readonly activeNodes: number;
  /** Turns/s the nodes that own shards can run. */
  readonly nodeCapacity: number;
  /** Messages/s one Redis can take on top of the cluster's background. */
  readonly redisCapacity: number;
  readonly throughput: number;
  /** At that throughput. */
  readonly commandsPerSecond: number;
  readonly megabytesPerSecond: number;
  readonly redisCore: number;
  /** Share of Redis's core the background alone (heartbeats, leases, member lists) takes. */
  readonly backgroundCore: number;
  readonly limit: string;
}

function background(costs: Costs, nodes: number, shards: number, of: keyof RedisCost): number {
  return (
    costs.fixed[of] +
    nodes * costs.perNode[of] +
    shards * costs.perShard[of] +
    nodes * nodes * costs.perNodePerMember[of]
  );
}

export function predict(
  costs: Costs,
  nodes: number,
  shards: number,
  assumptions: ModelAssumptions,
): Prediction {
  const activeNodes = Math.min(nodes, shards);
  const nodeCapacity = activeNodes * ((assumptions.nodeCores * 1000) / costs.nodeCpuMsPerTurn);
  const backgroundCore = background(costs, nodes, shards, 'cpuMs') / 1000;
  const redisCapacity = Math.max(
    0,
    (assumptions.redisBudget - backgroundCore) / (costs.perMessage.cpuMs / 1000),
  );
  const throughput = Math.min(nodeCapacity, redisCapacity);
  const limits: string[] = [];
  if (backgroundCore >= assumptions.redisBudget) {
    limits.push('one Redis core, taken by the member lists alone');
  } else {
    limits.push(redisCapacity <= nodeCapacity ? 'one Redis core' : 'node CPU');
  }
  if (nodes > shards) limits.push(`the shard count (${nodes - shards} nodes own no shard)`);
  return {
    nodes,
    shards,
    activeNodes,
    nodeCapacity,
    redisCapacity,
    throughput,
    commandsPerSecond:
      throughput * costs.perMessage.calls + background(costs, nodes, shards, 'calls'),
    megabytesPerSecond:
      (throughput * costs.perMessage.bytes + background(costs, nodes, shards, 'bytes')) / 1e6,
    redisCore: (throughput * costs.perMessage.cpuMs) / 1000 + backgroundCore,
    backgroundCore,
    limit: limits.join('; then '),
  };
}

export function fmt(value: number, digits = 0): string {
  return value.toLocaleString('en-US', {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

/** The prediction table, one row per (shards, nodes). */
export function predictionTable(
  costs: Costs,
  scales: readonly { readonly nodes: number; readonly shards: number }[],
  assumptions: ModelAssumptions,
): string {
  const rows = scales.map(({ nodes, shards }) => {
    const p = predict(costs, nodes, shards, assumptions);
    return `| ${fmt(nodes)} | ${fmt(shards)} | ${fmt(p.activeNodes)} | ${fmt(p.nodeCapacity)} | ${fmt(p.redisCapacity)} | **${fmt(p.throughput)}** | ${fmt(p.commandsPerSecond)} | ${fmt(p.megabytesPerSecond, 1)} | ${fmt(p.backgroundCore * 100)} % | ${fmt(p.redisCore * 100)} % | ${p.limit} |`;
  });
  return [
    '| nodes | shards | nodes with shards | nodes can run (turns/s) | one Redis can take (msgs/s) | predicted throughput (msgs/s) | Redis commands/s | Redis MB/s | Redis core: background | Redis core: total | first limit |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    ...rows,
  ].join('\n');
}
