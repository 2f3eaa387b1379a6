/**
 * The warm pool: prepared workers per registered agent (blueprint decoded, tools loaded), so
 * a session's first activation binds one instead of starting a thread. It refills in the
 * background, and its workers count against the live ceiling. Times are never asserted.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SupervisorEvents } from '../../src/runtime/events.js';
import type { RegisterOptions } from '../../src/runtime/options.js';
import { Supervisor, type SupervisorOptions } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { createGate, mockAgent, shutdown } from './helpers.js';

type Payload<K extends keyof SupervisorEvents> = SupervisorEvents[K][0];

let mock: MockLlm;
const gate = createGate('gate');
const supervisors: Supervisor[] = [];

beforeAll(async () => {
  mock = await startMockLlm({
    rules: [{ match: /^hold/, steps: [{ toolCalls: [{ name: 'gate', arguments: {} }] }] }],
  });
});

afterEach(async () => {
  gate.releaseAll();
  await Promise.all(supervisors.splice(0).map((supervisor) => shutdown(supervisor)));
});

afterAll(async () => {
  await mock.close();
});

function start(options: SupervisorOptions): Supervisor {
  const supervisor = new Supervisor(options);
  supervisors.push(supervisor);
  return supervisor;
}

function register(supervisor: Supervisor, name: string, options: RegisterOptions = {}): void {
  supervisor.register(name, mockAgent(mock, { name, tools: [gate.tool] }), options);
}

/**
 * Waits for `check` to hold, looking again on every turn of the event loop (workers are
 * prepared in the background, with no event to await), within a bound.
 */
async function until(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

function recordStarts(supervisor: Supervisor): Payload<'session:start'>[] {
  const starts: Payload<'session:start'>[] = [];
  supervisor.on('session:start', (event) => starts.push(event));
  return starts;
}

describe('the warm pool', () => {
  it('warmPoolSize 2: fills to 2 after registration, serves first activations from it (hits) and refills', async () => {
    const supervisor = start({ warmPoolSize: 2 });
    const starts = recordStarts(supervisor);
    expect(supervisor.stats().warmWorkers).toBe(0);
    register(supervisor, 'cell');
    await until('the pool holds 2 workers', () => supervisor.stats().warmWorkers === 2);
    expect(supervisor.stats()).toMatchObject({
      warmHits: 0,
      warmMisses: 0,
      liveWorkers: 0,
      workerStarts: 0,
    });

    const first = supervisor.session('warm:a', { agent: 'cell' });
    expect((await first.send('hello')).text).toBe('echo: hello');
    expect(starts).toMatchObject([{ key: 'warm:a', warm: true, afterPassivation: false }]);
    expect(supervisor.stats()).toMatchObject({ warmHits: 1, warmMisses: 0, liveWorkers: 1 });
    // Taken from the pool: no cold start.
    expect(supervisor.stats().workerStarts).toBe(0);
    await until('the pool is back at 2', () => supervisor.stats().warmWorkers === 2);

    // Two activations at once are both served warm.
    const replies = await Promise.all(
      ['warm:b', 'warm:c'].map((key) => supervisor.session(key, { agent: 'cell' }).send(key)),
    );
    expect(replies.map((reply) => reply.text)).toEqual(['echo: warm:b', 'echo: warm:c']);
    expect(starts.map((event) => event.warm)).toEqual([true, true, true]);
    expect(supervisor.stats()).toMatchObject({ warmHits: 3, warmMisses: 0, liveWorkers: 3 });
    await until('the pool is back at 2 again', () => supervisor.stats().warmWorkers === 2);
    // Each session got a worker of its own.
    expect(new Set(starts.map((event) => event.threadId)).size).toBe(3);
  });

  it('warmPoolSize 0: activations are cold starts (misses) and nothing is kept in reserve', async () => {
    const supervisor = start({ warmPoolSize: 0 });
    const starts = recordStarts(supervisor);
    register(supervisor, 'cell');
    const session = supervisor.session('cold:a', { agent: 'cell' });
    expect((await session.send('hello')).text).toBe('echo: hello');
    expect(starts).toMatchObject([{ key: 'cold:a', warm: false }]);
    expect(supervisor.stats()).toMatchObject({
      warmWorkers: 0,
      warmHits: 0,
      warmMisses: 1,
      workerStarts: 1,
      liveWorkers: 1,
    });
  });

  it('the agent option overrides the supervisor: a pool only for the agent that asks', async () => {
    const supervisor = start({ warmPoolSize: 0 });
    const starts = recordStarts(supervisor);
    register(supervisor, 'eager', { warmPoolSize: 1 });
    register(supervisor, 'plain');
    await until('the eager agent has a warm worker', () => supervisor.stats().warmWorkers === 1);
    await supervisor.session('override:plain', { agent: 'plain' }).send('one');
    await supervisor.session('override:eager', { agent: 'eager' }).send('two');
    expect(starts.map(({ key, warm }) => ({ key, warm }))).toEqual([
      { key: 'override:plain', warm: false },
      { key: 'override:eager', warm: true },
    ]);
    expect(supervisor.stats()).toMatchObject({ warmHits: 1, warmMisses: 1 });
  });

  it('fills the pool of an agent registered right after one without a pool', async () => {
    const supervisor = start({ warmPoolSize: 0 });
    register(supervisor, 'plain');
    register(supervisor, 'eager', { warmPoolSize: 1 });
    await until(
      'the eager agent has a warm worker',
      () => supervisor.stats().warmWorkers === 1,
      5_000,
    );
    const starts = recordStarts(supervisor);
    await supervisor.session('late:eager', { agent: 'eager' }).send('hello');
    expect(starts).toMatchObject([{ key: 'late:eager', warm: true }]);
  });

  it('warm workers count against maxLiveSessions: live plus warm never exceeds it', async () => {
    const supervisor = start({ warmPoolSize: 2, maxLiveSessions: 2 });
    const threads: number[] = [];
    supervisor.on('session:start', () => {
      const stats = supervisor.stats();
      threads.push(stats.liveWorkers + stats.warmWorkers);
    });
    register(supervisor, 'cell');
    await until('the pool has a worker', () => supervisor.stats().warmWorkers >= 1);
    expect(supervisor.stats().liveWorkers + supervisor.stats().warmWorkers).toBeLessThanOrEqual(2);
    for (const key of ['reserve:a', 'reserve:b', 'reserve:c', 'reserve:a']) {
      expect((await supervisor.session(key, { agent: 'cell' }).send(key)).text).toBe(
        `echo: ${key}`,
      );
      const stats = supervisor.stats();
      expect(stats.liveWorkers + stats.warmWorkers).toBeLessThanOrEqual(2);
    }
    expect(threads).toHaveLength(4);
    expect(Math.max(...threads)).toBeLessThanOrEqual(2);
  });

  it('an activation that finds no room takes the slot of a warm worker it cannot use', async () => {
    const supervisor = start({ warmPoolSize: 0, maxLiveSessions: 2, activationTimeoutMs: 300 });
    register(supervisor, 'eager', { warmPoolSize: 1 });
    register(supervisor, 'plain');
    await until('the eager agent has a warm worker', () => supervisor.stats().warmWorkers === 1);
    const held = supervisor.session('slot:busy', { agent: 'plain' }).send('hold');
    const call = await gate.next();
    try {
      const reply = supervisor.session('slot:next', { agent: 'plain' }).send('room for me?');
      await expect(reply).resolves.toMatchObject({ text: 'echo: room for me?' });
      expect(supervisor.stats()).toMatchObject({ liveWorkers: 2, warmWorkers: 0 });
    } finally {
      call.release();
      await held;
    }
  });
});
