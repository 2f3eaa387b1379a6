/**
 * The map estimate the ceiling is computed with: measured from the supervisor's own threads
 * once there are some (maps added since it started, per thread, with a margin), an estimate
 * before that, and the option when one is given.
 */
import { describe, expect, it } from 'vitest';
import { CapacityGuard } from '../../src/runtime/capacity.js';

function guard(options: { mapsPerWorker?: number } = {}) {
  const state = { inUse: 1_000, threads: 0 };
  const capacity = new CapacityGuard({
    maxMapCount: 65_530,
    reserveMaps: 4_096,
    readFreeBytes: () => 64 * 1024 ** 3,
    readMapsInUse: () => state.inUse,
    threads: () => state.threads,
    ...options,
  });
  return { capacity, state };
}

describe('CapacityGuard', () => {
  it('estimates before any thread ran, then measures what its threads add', () => {
    const { capacity, state } = guard();
    const before = capacity.mapsPerWorker();
    expect(before).toBeGreaterThan(30);
    state.threads = 100;
    state.inUse = 1_000 + 100 * 40;
    expect(capacity.mapsPerWorker()).toBe(50); // 40 measured, with a quarter more to grow
    expect(capacity.ceiling(100)).toBe(100 + Math.floor((65_530 - 5_000 - 4_096) / 50));
    state.inUse = 1_000 + 100 * 120;
    expect(capacity.mapsPerWorker()).toBe(150);
  });

  it('leaves room for over a thousand threads at the default kernel limit when threads map what a session thread maps', () => {
    const { capacity, state } = guard();
    state.threads = 200;
    state.inUse = 1_000 + 200 * 37;
    expect(capacity.ceiling(200)).toBeGreaterThanOrEqual(1_000);
  });

  it('takes the option over any measurement', () => {
    const { capacity, state } = guard({ mapsPerWorker: 120 });
    state.threads = 10;
    state.inUse = 1_000 + 10 * 40;
    expect(capacity.mapsPerWorker()).toBe(120);
  });
});
