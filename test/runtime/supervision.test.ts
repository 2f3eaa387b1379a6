/**
 * Supervision on real worker threads: a turn past its timeout, a worker out of heap, and a
 * worker that exits are each contained to their session, which restarts from its journal —
 * until it crashes more often than the restart policy allows.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { SimulatedClock } from '../../src/testing/simulated-clock.js';
import {
  fixtureRegistry,
  logEvents,
  mockAgent,
  rejectionOf,
  SHARED_KEYS,
  sharedCells,
  shutdown,
  track,
  waitForCell,
} from './helpers.js';

let mock: MockLlm;

beforeAll(async () => {
  mock = await startMockLlm({
    rules: [
      { match: /^spin/, steps: [{ toolCalls: [{ name: 'spin', arguments: {} }] }] },
      { match: /^lock/, steps: [{ toolCalls: [{ name: 'lock', arguments: {} }] }] },
      { match: /^exhaust/, steps: [{ toolCalls: [{ name: 'exhaust_heap', arguments: {} }] }] },
      { match: /^exit/, steps: [{ toolCalls: [{ name: 'crash', arguments: { how: 'exit' } }] }] },
      {
        match: /^throw/,
        steps: [{ toolCalls: [{ name: 'crash', arguments: { how: 'throw' } }] }],
      },
    ],
  });
});

afterAll(async () => {
  await mock.close();
});

function userContents(history: readonly { role: string; content: string }[]): string[] {
  return history.filter((m) => m.role === 'user').map((m) => m.content);
}

describe('a turn past turnTimeoutMs (real clock)', () => {
  const spin = sharedCells(SHARED_KEYS.spin, 1);
  const lock = sharedCells(SHARED_KEYS.lock, 2);
  let supervisor: Supervisor;

  beforeAll(async () => {
    const { registry, tools } = await fixtureRegistry(['spin', 'lock']);
    // Long enough for the tool to be running when the timeout fires on a loaded machine.
    supervisor = new Supervisor({ tools: registry, turnTimeoutMs: 1_000, interruptGraceMs: 500 });
    supervisor.register('cell', mockAgent(mock, { tools }));
  });

  afterAll(async () => {
    Atomics.store(lock, 0, 1);
    Atomics.notify(lock, 0);
    await shutdown(supervisor);
  });

  it('ends a turn whose tool honours its signal with AGENTCELL_TURN_TIMEOUT, keeping its worker', async () => {
    const session = supervisor.session('timeout:cooperative', { agent: 'cell' });
    const log = logEvents(supervisor);
    expect((await session.send('before')).text).toBe('echo: before');
    const thread = session.threadId;
    const error = await rejectionOf(session.send('lock and wait'));
    expect(error.code).toBe('AGENTCELL_TURN_TIMEOUT');
    expect(error.details?.['inFlightTools']).toEqual(['lock']);
    expect(Atomics.load(lock, 1)).toBe(1);
    // Interrupted within the grace period: no crash, no restart, same thread.
    expect((await session.send('after')).text).toBe('echo: after');
    expect(session.threadId).toBe(thread);
    expect(log.of('session:crash')).toEqual([]);
    expect(userContents(await session.history())).toEqual(['before', 'after']);
  });

  it('fails with AGENTCELL_TURN_TIMEOUT naming the spinning tool, while another session keeps answering; then restarts with its history', async () => {
    const a = supervisor.session('timeout:a', { agent: 'cell' });
    const b = supervisor.session('timeout:b', { agent: 'cell' });
    const log = logEvents(supervisor);
    // Both workers are up before the clock starts to matter.
    expect((await a.send('before')).text).toBe('echo: before');
    expect((await b.send('warm up')).text).toBe('echo: warm up');
    const firstThread = a.threadId;

    const spinning = track(a.send('spin forever'));
    await waitForCell(spin, 0, 1);
    // B answers while A's worker is stuck in a loop that never yields.
    let answeredDuring = 0;
    for (let i = 0; !spinning.settled; i++) {
      const reply = await b.send(`ping ${i}`);
      expect(reply.text).toBe(`echo: ping ${i}`);
      if (!spinning.settled) answeredDuring++;
    }
    expect(answeredDuring).toBeGreaterThan(0);

    const error = await rejectionOf(spinning.promise);
    expect(error.code).toBe('AGENTCELL_TURN_TIMEOUT');
    expect(error.details?.['inFlightTools']).toContain('spin');
    expect(
      log.of('turn:end').find((e) => e.key === 'timeout:a' && e.outcome !== 'ok'),
    ).toMatchObject({ outcome: 'AGENTCELL_TURN_TIMEOUT' });

    // The next message restarts A from its journal: the timed-out turn is not in it.
    expect((await a.send('after')).text).toBe('echo: after');
    expect(a.threadId).not.toBe(firstThread);
    expect(userContents(await a.history())).toEqual(['before', 'after']);
    expect(log.of('session:start').filter((e) => e.key === 'timeout:a')).toMatchObject([
      { restoredTurns: 0, threadId: firstThread },
      { restoredTurns: 1, threadId: a.threadId },
    ]);
    // B started once and never restarted.
    expect(log.of('session:start').filter((e) => e.key === 'timeout:b')).toHaveLength(1);
    expect(log.of('session:crash').map((e) => e.key)).toEqual(['timeout:a']);
  });
});

describe('a worker out of heap (resourceLimits)', () => {
  let supervisor: Supervisor;

  beforeAll(async () => {
    const { registry, tools } = await fixtureRegistry(['exhaust_heap']);
    supervisor = new Supervisor({
      tools: registry,
      resourceLimits: { maxOldGenerationSizeMb: 32 },
    });
    supervisor.register('cell', mockAgent(mock, { tools }));
  });

  afterAll(() => shutdown(supervisor));

  it('fails only that turn with AGENTCELL_SESSION_CRASHED; the session comes back with its history', async () => {
    const hog = supervisor.session('heap:hog', { agent: 'cell' });
    const other = supervisor.session('heap:other', { agent: 'cell' });
    const log = logEvents(supervisor);
    expect((await hog.send('first')).text).toBe('echo: first');
    expect((await other.send('hello')).text).toBe('echo: hello');

    const error = await rejectionOf(hog.send('exhaust the heap'));
    expect(error.code).toBe('AGENTCELL_SESSION_CRASHED');
    expect(error.details?.['errorCode']).toBe('ERR_WORKER_OUT_OF_MEMORY');
    expect(error.details?.['inFlightTools']).toContain('exhaust_heap');

    expect((await other.send('still here')).text).toBe('echo: still here');
    expect((await hog.send('second')).text).toBe('echo: second');
    expect(userContents(await hog.history())).toEqual(['first', 'second']);
    expect(log.of('session:crash').map((e) => e.key)).toEqual(['heap:hog']);
    expect(log.of('session:start').filter((e) => e.key === 'heap:other')).toHaveLength(1);
    expect(log.of('session:start').filter((e) => e.key === 'heap:hog')).toMatchObject([
      { restoredTurns: 0 },
      { restoredTurns: 1 },
    ]);
  });
});

describe('a worker that exits mid-turn', () => {
  let supervisor: Supervisor;

  beforeAll(async () => {
    const { registry, tools } = await fixtureRegistry(['crash']);
    supervisor = new Supervisor({
      tools: registry,
      restart: { maxRestarts: 1, windowMs: 60_000, backoffMs: 0 },
    });
    supervisor.register('cell', mockAgent(mock, { tools }));
  });

  afterAll(() => shutdown(supervisor));

  it('fails its turn with AGENTCELL_SESSION_CRASHED, restarts, answers what was queued, keeps its history; past maxRestarts the session fails', async () => {
    const session = supervisor.session('crash:s', { agent: 'cell' });
    const log = logEvents(supervisor);
    expect((await session.send('one')).text).toBe('echo: one');
    const firstThread = session.threadId;

    // The crash and two messages queued behind it.
    const crashed = session.send('exit now');
    const queued = [session.send('two'), session.send('three')];
    const error = await rejectionOf(crashed);
    expect(error.code).toBe('AGENTCELL_SESSION_CRASHED');
    expect(error.details?.['exitCode']).toBe(3);
    expect((await Promise.all(queued)).map((reply) => reply.text)).toEqual([
      'echo: two',
      'echo: three',
    ]);
    expect(session.threadId).not.toBe(firstThread);
    expect(userContents(await session.history())).toEqual(['one', 'two', 'three']);

    const [crash] = log.of('session:crash');
    expect(crash?.key).toBe('crash:s');
    expect(crash?.error.code).toBe('AGENTCELL_SESSION_CRASHED');
    expect(crash?.inFlightTools).toEqual(['crash']);
    expect(log.of('session:restart')).toEqual([{ key: 'crash:s', restarts: 1, delayMs: 0 }]);
    expect(log.of('session:start').filter((e) => e.key === 'crash:s')).toMatchObject([
      { restoredTurns: 0 },
      { restoredTurns: 1 },
    ]);

    // The second crash within the window is one more than maxRestarts: the session fails.
    const failed = log.next('session:fail');
    const secondCrash = session.send('throw now');
    const waiting = [session.send('four'), session.send('five')];
    expect((await rejectionOf(secondCrash)).code).toBe('AGENTCELL_SESSION_CRASHED');
    for (const message of waiting) {
      expect((await rejectionOf(message)).code).toBe('AGENTCELL_SESSION_FAILED');
    }
    const failure = await failed;
    expect(failure.key).toBe('crash:s');
    expect(failure.error.code).toBe('AGENTCELL_SESSION_FAILED');
    expect(session.status).toBe('failed');
    expect((await rejectionOf(session.send('six'))).code).toBe('AGENTCELL_SESSION_FAILED');
    expect(log.of('session:restart')).toHaveLength(1);
    // What was journaled before the failure is still there.
    expect(userContents(await session.history())).toEqual(['one', 'two', 'three']);
    expect(supervisor.stats()).toMatchObject({ crashes: 2, restarts: 1 });
  });
});

describe('restart backoff on the supervisor clock', () => {
  const supervisors: Supervisor[] = [];
  const clocks: SimulatedClock[] = [];

  afterAll(async () => {
    // Lets any restart still waiting on a simulated clock go on, so shutdown can finish.
    for (const clock of clocks) clock.increment(60_000);
    await Promise.all(supervisors.map((supervisor) => shutdown(supervisor)));
  });

  async function crashedSession(key: string) {
    const clock = new SimulatedClock(0);
    clocks.push(clock);
    const { registry, tools } = await fixtureRegistry(['crash']);
    const supervisor = new Supervisor({
      tools: registry,
      clock,
      restart: { maxRestarts: 3, windowMs: 60_000, backoffMs: 5_000, maxBackoffMs: 5_000 },
    });
    supervisors.push(supervisor);
    supervisor.register('cell', mockAgent(mock, { tools }));
    const log = logEvents(supervisor);
    const session = supervisor.session(key, { agent: 'cell' });
    const crashed = session.send('exit please');
    const queued = track(session.send('queued behind the crash'));
    expect((await rejectionOf(crashed)).code).toBe('AGENTCELL_SESSION_CRASHED');
    expect(await log.next('session:restart')).toEqual({ key, restarts: 1, delayMs: 5_000 });
    // The queued message's turn is now waiting for the restart, on the simulated clock.
    await vi.waitFor(() => expect(clock.pendingTimers).toBe(1));
    return { clock, supervisor, session, queued };
  }

  it('waits the backoff on the injected clock before restarting', async () => {
    const { clock, queued } = await crashedSession('backoff:wait');
    clock.increment(4_999);
    expect(queued.settled).toBe(false);
    expect(clock.pendingTimers).toBe(1);
    clock.increment(1);
    expect((await queued.promise).text).toBe('echo: queued behind the crash');
  });

  it('destroy() during a restart backoff settles at once and fails the waiting message', async () => {
    const { supervisor, queued } = await crashedSession('backoff:destroy');
    const destroyed = supervisor.destroy('shutting down');
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      destroyed.then(() => 'destroyed'),
      new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve('still waiting after 2 s'), 2_000);
      }),
    ]);
    clearTimeout(timer);
    expect(outcome).toBe('destroyed');
    expect((await rejectionOf(queued.promise)).code).toBe('AGENTCELL_SUPERVISOR_DESTROYED');
  });
});
