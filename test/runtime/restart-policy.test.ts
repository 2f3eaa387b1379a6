/**
 * Bounded restarts per window with exponential backoff, on a simulated clock.
 */
import { describe, expect, it } from 'vitest';
import { type RestartOptions, RestartPolicy } from '../../src/runtime/restart-policy.js';
import { SimulatedClock } from '../../src/testing/simulated-clock.js';

function policy(options: Partial<RestartOptions> = {}, clock = new SimulatedClock(1_000)) {
  return {
    clock,
    policy: new RestartPolicy(
      { maxRestarts: 3, windowMs: 10_000, backoffMs: 100, maxBackoffMs: 250, ...options },
      clock,
    ),
  };
}

describe('RestartPolicy', () => {
  it('doubles the backoff for each crash in the window, capped at maxBackoffMs', () => {
    const { policy: restarts } = policy({ maxRestarts: 5, maxBackoffMs: 1_000 });
    expect([1, 2, 3, 4, 5].map(() => restarts.onCrash())).toEqual([100, 200, 400, 800, 1_000]);
    expect(restarts.restarts).toBe(5);
  });

  it('gives up (undefined) on the crash after maxRestarts within the window', () => {
    const { policy: restarts, clock } = policy();
    expect(restarts.onCrash()).toBe(100);
    clock.increment(1_000);
    expect(restarts.onCrash()).toBe(200);
    clock.increment(1_000);
    expect(restarts.onCrash()).toBe(250);
    clock.increment(1_000);
    expect(restarts.onCrash()).toBeUndefined();
    expect(restarts.restarts).toBe(3);
  });

  it('forgets crashes older than the window: the backoff starts over', () => {
    const { policy: restarts, clock } = policy();
    expect(restarts.onCrash()).toBe(100);
    expect(restarts.onCrash()).toBe(200);
    expect(restarts.onCrash()).toBe(250);
    clock.increment(9_999);
    // Still inside the window: one more is one too many.
    const { policy: twin, clock: twinClock } = policy();
    twin.onCrash();
    twin.onCrash();
    twin.onCrash();
    twinClock.increment(9_999);
    expect(twin.onCrash()).toBeUndefined();
    // A full window later, the first three crashes no longer count.
    clock.increment(1);
    expect(restarts.onCrash()).toBe(100);
    expect(restarts.restarts).toBe(4);
  });

  it('spreads crashes: only those within windowMs of the newest count', () => {
    const { policy: restarts, clock } = policy({ maxRestarts: 2 });
    expect(restarts.onCrash()).toBe(100); // t=0
    clock.increment(6_000);
    expect(restarts.onCrash()).toBe(200); // t=6000: two in the window
    clock.increment(6_000);
    // t=12000: the first crash left the window, so this is the second of two allowed.
    expect(restarts.onCrash()).toBe(200);
    clock.increment(1_000);
    expect(restarts.onCrash()).toBeUndefined();
  });

  it('with maxRestarts 0 never restarts; with backoffMs 0 restarts at once', () => {
    expect(policy({ maxRestarts: 0 }).policy.onCrash()).toBeUndefined();
    const { policy: immediate } = policy({ backoffMs: 0 });
    expect([immediate.onCrash(), immediate.onCrash(), immediate.onCrash()]).toEqual([0, 0, 0]);
  });
});
