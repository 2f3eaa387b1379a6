/**
 * Start storms: many sessions arriving at once. Worker starts run as wide as the cores, in
 * arrival order, sessions before warm-pool refills; a session whose worker is up runs its turn
 * while later starts go on; the warm pool grows with the arrival rate and shrinks back when
 * arrivals fade. Times are never asserted: orders and counts are.
 */
import { availableParallelism } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARRIVAL_TIME_CONSTANT_MS, ArrivalRate } from '../../src/runtime/arrival-rate.js';
import type { DedicatedRunner } from '../../src/runtime/placement/dedicated.js';
import { StartQueue } from '../../src/runtime/start-queue.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { WarmPool } from '../../src/runtime/warm-pool.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { SimulatedClock } from '../../src/testing/simulated-clock.js';
import { type Deferred, deferred, mockAgent, shutdown } from './helpers.js';

describe('the start queue', () => {
  it('runs as many starts at once as it is wide, and a waiting session before any refill', async () => {
    const queue = new StartQueue(2);
    const order: string[] = [];
    const gates = new Map<string, Deferred<void>>();
    let running = 0;
    let peak = 0;
    const start = (name: string) => async () => {
      running++;
      peak = Math.max(peak, running);
      order.push(name);
      const gate = deferred();
      gates.set(name, gate);
      await gate.promise;
      running--;
      return name;
    };
    const arrivals = ['warm 1', 'warm 2', 'warm 3', 'session a', 'session b'];
    const done = new Map(
      arrivals.map((name) => [
        name,
        queue.run(name.startsWith('warm') ? 'warm' : 'session', start(name)),
      ]),
    );
    await Promise.resolve();
    expect(order).toEqual(['warm 1', 'warm 2']);
    expect({ running: queue.running, queued: queue.queued }).toEqual({ running: 2, queued: 3 });

    // Each finished start frees one slot: both sessions go first, in arrival order.
    for (const name of ['warm 1', 'warm 2', 'session a', 'session b', 'warm 3']) {
      expect(gates.has(name)).toBe(true);
      gates.get(name)?.resolve();
      expect(await done.get(name)).toBe(name);
    }
    expect(order).toEqual(['warm 1', 'warm 2', 'session a', 'session b', 'warm 3']);
    expect(peak).toBe(2);
    // Measured: these starts took no time, so the estimate fell from its first guess.
    expect(queue.startMs).toBeLessThan(100);
  });

  it('is as wide as the machine has cores by default, at least 2', () => {
    expect(new StartQueue().width).toBe(Math.max(2, availableParallelism()));
  });
});

describe('the arrival rate', () => {
  it('rises with a burst at once, fades once arrivals stop, and follows a steady rate', () => {
    const clock = new SimulatedClock();
    const rate = new ArrivalRate(clock);
    expect(rate.perSecond('a')).toBe(0);

    for (let i = 0; i < 50; i++) rate.record('a');
    const burst = rate.perSecond('a');
    expect(burst).toBeCloseTo((50 * 1000) / ARRIVAL_TIME_CONSTANT_MS);
    clock.increment(ARRIVAL_TIME_CONSTANT_MS);
    expect(rate.perSecond('a')).toBeCloseTo(burst / Math.E);
    expect(rate.perSecond('b')).toBe(0);

    // 20 per second for a minute: the average settles on 20.
    for (let i = 0; i < 1_200; i++) {
      clock.increment(50);
      rate.record('b');
    }
    expect(rate.perSecond('b')).toBeGreaterThan(19);
    expect(rate.perSecond('b')).toBeLessThan(21);
  });
});

/** A prepared worker as far as the pool can tell: it can be terminated and it exits. */
function fakeRunner(terminated: string[], name: string): DedicatedRunner {
  const exit = deferred();
  return {
    exited: exit.promise,
    terminate: async () => {
      terminated.push(name);
      exit.resolve();
    },
  } as unknown as DedicatedRunner;
}

describe('the warm pool under changing arrivals', () => {
  async function settle(pool: WarmPool, agent: string, size: number): Promise<void> {
    // Prepares are immediate here: a few turns of the event loop finish any refill.
    for (let i = 0; i < 50 && pool.readyFor(agent) !== size; i++) {
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    expect(pool.readyFor(agent)).toBe(size);
  }

  function poolWith(demand: Map<string, number>) {
    const clock = new SimulatedClock();
    const terminated: string[] = [];
    let prepared = 0;
    let preparingPeak = 0;
    const pool = new WarmPool({
      prepare: async () => {
        preparingPeak = Math.max(preparingPeak, pool.preparing);
        await Promise.resolve();
        return fakeRunner(terminated, `worker ${++prepared}`);
      },
      canGrow: () => true,
      isUnderPressure: () => false,
      onError: () => {},
      demand: (agent) => demand.get(agent) ?? 0,
      clock,
    });
    return { pool, clock, terminated, peak: () => preparingPeak };
  }

  it('grows to what arrivals call for, one prepare at a time, and trims back once they fade', async () => {
    const demand = new Map([['cell', 0]]);
    const { pool, clock, terminated, peak } = poolWith(demand);
    pool.setTarget('cell', 1);
    await settle(pool, 'cell', 1);

    demand.set('cell', 4);
    pool.kick();
    await settle(pool, 'cell', 4);
    expect(peak()).toBe(1);
    expect(pool.targetFor('cell')).toBe(4);

    // Arrivals faded: no event says so, the pool's own check does.
    demand.set('cell', 0);
    clock.increment(10_000);
    await settle(pool, 'cell', 1);
    expect(terminated).toHaveLength(3);
    await pool.close();
  });

  it('keeps nothing for an agent configured with 0, whatever its arrivals', async () => {
    const { pool } = poolWith(new Map([['off', 6]]));
    pool.setTarget('off', 0);
    await settle(pool, 'off', 0);
    expect(pool.targetFor('off')).toBe(0);
    await pool.close();
  });
});

describe('a storm of sessions arriving at once', () => {
  let mock: MockLlm;
  beforeAll(async () => {
    mock = await startMockLlm();
  });
  afterAll(async () => {
    await mock.close();
  });

  it('answers every session; turns run while later workers still start; starts stay within the cores', async () => {
    const supervisor = new Supervisor({ warmPoolSize: 1 });
    try {
      supervisor.register('cell', mockAgent(mock));
      const width = Math.max(2, availableParallelism());
      const events: string[] = [];
      const runningAtStart: number[] = [];
      supervisor.on('session:start', ({ key }) => {
        events.push(`start ${key}`);
        runningAtStart.push(supervisor.stats().workerStartsRunning);
      });
      const keys = Array.from({ length: 20 }, (_, i) => `storm:${i}`);
      const replies = await Promise.all(
        keys.map(async (key) => {
          const reply = await supervisor.session(key, { agent: 'cell' }).send(key);
          events.push(`reply ${key}`);
          return reply.text;
        }),
      );
      expect(replies).toEqual(keys.map((key) => `echo: ${key}`));
      const firstReply = events.findIndex((event) => event.startsWith('reply'));
      const lastStart = events.findLastIndex((event) => event.startsWith('start'));
      expect(firstReply).toBeLessThan(lastStart);
      expect(Math.max(...runningAtStart)).toBeLessThanOrEqual(width);
      // Each session got a thread of its own (a warm-pool refill may still be starting one more).
      expect(supervisor.stats().liveWorkers).toBe(keys.length);
    } finally {
      await shutdown(supervisor);
    }
  });
});
