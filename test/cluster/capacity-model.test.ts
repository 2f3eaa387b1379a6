/**
 * The capacity model of `npm run bench -- cluster-model` (bench/_util/capacity-model.ts): from
 * costs, what N nodes over one Redis can do and which limit it names first.
 */
import { describe, expect, it } from 'vitest';
import { type Costs, predict } from '../../bench/_util/capacity-model.js';

const NONE = { calls: 0, bytes: 0, cpuMs: 0 };
/** A message costs Redis 0.1 ms (10,000/s on a whole core); a turn 4 ms of node CPU. */
const COSTS: Costs = {
  fixed: NONE,
  perMessage: { calls: 25, bytes: 3_000, cpuMs: 0.1 },
  perNode: { calls: 2, bytes: 500, cpuMs: 0.5 },
  perShard: { calls: 3, bytes: 300, cpuMs: 0.01 },
  perNodePerMember: { calls: 1, bytes: 90, cpuMs: 0.001 },
  nodeCpuMsPerTurn: 4,
};
const ASSUMPTIONS = { nodeCores: 2, redisBudget: 1 };

describe('the cluster capacity model', () => {
  it('is bound by node CPU while one Redis has room', () => {
    const prediction = predict(COSTS, 2, 64, ASSUMPTIONS);
    // 2 nodes × 2 cores / 4 ms = 1,000 turns/s, far below what Redis takes.
    expect(prediction.throughput).toBeCloseTo(1_000);
    expect(prediction.limit).toBe('node CPU');
    expect(prediction.commandsPerSecond).toBeGreaterThan(25 * 1_000);
  });

  it("names one Redis core once the nodes could run more than Redis's core takes", () => {
    const prediction = predict(COSTS, 40, 64, ASSUMPTIONS);
    expect(prediction.nodeCapacity).toBeCloseTo(20_000);
    expect(prediction.throughput).toBe(prediction.redisCapacity);
    expect(prediction.throughput).toBeLessThan(10_000);
    expect(prediction.redisCore).toBeCloseTo(1);
    expect(prediction.limit).toBe('one Redis core');
  });

  it('counts only the nodes that own a shard, and says so', () => {
    const prediction = predict(
      { ...COSTS, perMessage: { ...COSTS.perMessage, cpuMs: 0 } },
      100,
      64,
      ASSUMPTIONS,
    );
    expect(prediction.activeNodes).toBe(64);
    expect(prediction.nodeCapacity).toBeCloseTo(64 * 500);
    expect(prediction.limit).toBe('node CPU; then the shard count (36 nodes own no shard)');
  });

  it('grows the member lists with the square of the nodes, until they alone fill the core', () => {
    const hundred = predict(COSTS, 100, 4_096, ASSUMPTIONS);
    const thousand = predict(COSTS, 1_000, 4_096, ASSUMPTIONS);
    expect(thousand.backgroundCore).toBeGreaterThan(1);
    expect(thousand.throughput).toBe(0);
    expect(thousand.limit).toBe('one Redis core, taken by the member lists alone');
    expect(hundred.backgroundCore).toBeLessThan(1);
  });
});
