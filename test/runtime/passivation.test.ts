/**
 * Many sessions on one machine, on real worker threads: idle sessions give their worker back
 * (after `idleTimeoutMs` on the injected clock, or least recently used first at
 * `maxLiveSessions`) and come back from the journal with their history; the reset policy
 * starts a new conversation after idle time or at a daily boundary.
 */
import { once } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SupervisorEvents } from '../../src/runtime/events.js';
import type { RegisterOptions, ResetPolicy } from '../../src/runtime/options.js';
import { shouldReset } from '../../src/runtime/reset-policy.js';
import { Supervisor, type SupervisorOptions } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { contentText } from '../../src/testing/mock-llm-script.js';
import { SimulatedClock } from '../../src/testing/simulated-clock.js';
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

/** A supervisor with one agent, `cell`, talking to the mock (closed after the file). */
function start(options: SupervisorOptions, register: RegisterOptions = {}): Supervisor {
  const supervisor = new Supervisor({ warmPoolSize: 0, ...options });
  supervisors.push(supervisor);
  supervisor.register('cell', mockAgent(mock, { tools: [gate.tool] }), register);
  return supervisor;
}

/** The next `name` event; call before the action that emits it, await after. */
async function nextEvent<K extends keyof SupervisorEvents>(
  supervisor: Supervisor,
  name: K,
): Promise<Payload<K>> {
  const [payload] = (await once(supervisor, name)) as SupervisorEvents[K];
  return payload;
}

/**
 * Which sessions hold a worker, from the events alone (a start adds, a passivation, reset,
 * crash or close removes), and the most seen at once, also as stats() saw it at each start.
 */
interface LiveWatch {
  readonly starts: Payload<'session:start'>[];
  readonly passivations: Payload<'session:passivate'>[];
  readonly maxByEvents: number;
  readonly maxByStats: number;
}

function watchLive(supervisor: Supervisor): LiveWatch {
  const live = new Set<string>();
  const watch = {
    starts: [] as Payload<'session:start'>[],
    passivations: [] as Payload<'session:passivate'>[],
    maxByEvents: 0,
    maxByStats: 0,
  };
  supervisor.on('session:start', (event) => {
    watch.starts.push(event);
    live.add(event.key);
    watch.maxByEvents = Math.max(watch.maxByEvents, live.size);
    watch.maxByStats = Math.max(watch.maxByStats, supervisor.stats().liveWorkers);
  });
  supervisor.on('session:passivate', (event) => {
    watch.passivations.push(event);
    live.delete(event.key);
  });
  const gone = ({ key }: { key: string }) => live.delete(key);
  supervisor.on('session:reset', gone);
  supervisor.on('session:crash', gone);
  supervisor.on('session:close', gone);
  return watch;
}

/** `role: text` of every non-system message of the model request at `index` (default: last). */
function prompt(index = -1): string[] {
  const messages = mock.requests.at(index)?.body?.messages ?? [];
  return messages
    .filter((message) => message.role !== 'system')
    .map((message) => `${message.role}: ${contentText(message.content)}`);
}

function userContents(history: readonly { role: string; content: unknown }[]): unknown[] {
  return history.filter((message) => message.role === 'user').map((message) => message.content);
}

describe('passivation after idleTimeoutMs (simulated clock)', () => {
  it('releases the worker of an idle session and activates it again from the journal, history intact', async () => {
    const clock = new SimulatedClock();
    const supervisor = start({ clock, idleTimeoutMs: 1000 });
    const watch = watchLive(supervisor);
    const session = supervisor.session('idle:ada', { agent: 'cell' });
    expect((await session.send('my name is Ada')).text).toBe('echo: my name is Ada');
    expect((await session.send('I like tea')).text).toBe('echo: I like tea');
    expect(supervisor.stats()).toMatchObject({ liveWorkers: 1, passivatedSessions: 0 });
    const thread = session.threadId;
    expect(thread).toBeTypeOf('number');

    const passivated = nextEvent(supervisor, 'session:passivate');
    clock.increment(999);
    // The idle timer would have fired inside increment(): it has not.
    expect(session.threadId).toBe(thread);
    clock.increment(1);
    expect(await passivated).toEqual({ key: 'idle:ada', reason: 'idle' });
    expect(supervisor.stats()).toMatchObject({ liveWorkers: 0, passivatedSessions: 1 });
    expect(session.isPassivated).toBe(true);
    expect(session.threadId).toBeUndefined();

    mock.reset();
    const started = nextEvent(supervisor, 'session:start');
    expect((await session.send('what is my name?')).text).toBe('echo: what is my name?');
    expect(await started).toMatchObject({
      key: 'idle:ada',
      afterPassivation: true,
      restoredTurns: 2,
    });
    // The model was sent the turns from before the passivation.
    expect(prompt()).toEqual([
      'user: my name is Ada',
      'assistant: echo: my name is Ada',
      'user: I like tea',
      'assistant: echo: I like tea',
      'user: what is my name?',
    ]);
    expect(supervisor.stats()).toMatchObject({ liveWorkers: 1, passivatedSessions: 0 });
    expect(session.isPassivated).toBe(false);
    expect(session.threadId).not.toBe(thread);
    expect(watch.starts.map((event) => event.afterPassivation)).toEqual([false, true]);
  });

  it('passivate() refuses a busy session (false) and releases an idle one (reason "requested")', async () => {
    const supervisor = start({});
    const session = supervisor.session('idle:busy', { agent: 'cell' });
    // Nothing to release before the first message.
    expect(await session.passivate()).toBe(false);

    const held = session.send('hold on');
    const call = await gate.next();
    expect(session.busy).toBe(true);
    expect(await session.passivate()).toBe(false);
    expect(session.isPassivated).toBe(false);
    expect(supervisor.stats().liveWorkers).toBe(1);
    call.release('done');
    expect((await held).text).toBe('tool results: done');

    const passivated = nextEvent(supervisor, 'session:passivate');
    expect(await session.passivate()).toBe(true);
    expect(await passivated).toEqual({ key: 'idle:busy', reason: 'requested' });
    expect(supervisor.stats().liveWorkers).toBe(0);
    expect((await session.send('back again')).text).toBe('echo: back again');
    expect(userContents(await session.history())).toEqual(['hold on', 'back again']);
  });

  it('a message that arrives while the idle passivation is stopping the worker keeps the live count and the ceiling', async () => {
    const clock = new SimulatedClock();
    const supervisor = start({ clock, idleTimeoutMs: 1000, maxLiveSessions: 1 });
    const watch = watchLive(supervisor);
    const a = supervisor.session('idle:race-a', { agent: 'cell' });
    expect((await a.send('one')).text).toBe('echo: one');

    const passivated = nextEvent(supervisor, 'session:passivate');
    clock.increment(1000);
    // The passivation has begun (the worker is being stopped); the next message comes now.
    const reply = a.send('two');
    expect(await passivated).toEqual({ key: 'idle:race-a', reason: 'idle' });
    expect((await reply).text).toBe('echo: two');
    expect(a.threadId).toBeTypeOf('number');
    expect(supervisor.stats().liveWorkers).toBe(1);

    // With one live slot, B's activation must first passivate A.
    const b = supervisor.session('idle:race-b', { agent: 'cell' });
    expect((await b.send('hello')).text).toBe('echo: hello');
    expect(watch.maxByEvents).toBeLessThanOrEqual(1);
    expect(watch.passivations.at(-1)).toEqual({ key: 'idle:race-a', reason: 'capacity' });
  });
});

describe('least recently used passivation at maxLiveSessions', () => {
  it('passivates the least recently used idle session to make room, never holding more than 2 workers', async () => {
    const supervisor = start({ maxLiveSessions: 2 });
    const watch = watchLive(supervisor);
    expect(supervisor.stats().maxLiveSessions).toBe(2);
    const [a, b, c] = ['lru:a', 'lru:b', 'lru:c'].map((key) =>
      supervisor.session(key, { agent: 'cell' }),
    );
    if (!a || !b || !c) throw new Error('unreachable');

    expect((await a.send('a1')).text).toBe('echo: a1');
    expect((await b.send('b1')).text).toBe('echo: b1');
    expect(watch.passivations).toEqual([]);
    // C needs a slot: A is the least recently used idle session.
    expect((await c.send('c1')).text).toBe('echo: c1');
    expect(watch.passivations).toEqual([{ key: 'lru:a', reason: 'capacity' }]);
    expect(a.isPassivated).toBe(true);
    expect(supervisor.stats()).toMatchObject({ liveWorkers: 2, passivatedSessions: 1 });

    // Touching A brings it back from its journal and passivates B, now the least recent.
    expect((await a.send('a2')).text).toBe('echo: a2');
    expect(watch.passivations.at(-1)).toEqual({ key: 'lru:b', reason: 'capacity' });
    expect(watch.starts.at(-1)).toMatchObject({
      key: 'lru:a',
      afterPassivation: true,
      restoredTurns: 1,
    });

    // Using C (already live) makes A the least recent: B's return passivates A, not C.
    expect((await c.send('c2')).text).toBe('echo: c2');
    expect((await b.send('b2')).text).toBe('echo: b2');
    expect(watch.passivations.map((event) => event.key)).toEqual(['lru:a', 'lru:b', 'lru:a']);
    expect(watch.passivations.every((event) => event.reason === 'capacity')).toBe(true);

    expect(watch.maxByEvents).toBeLessThanOrEqual(2);
    expect(watch.maxByStats).toBeLessThanOrEqual(2);
    expect(supervisor.stats().liveWorkers).toBe(2);
    expect(userContents(await a.history())).toEqual(['a1', 'a2']);
    expect(userContents(await b.history())).toEqual(['b1', 'b2']);
  });
});

describe('reset policy', () => {
  it('idleMs: after that much idle time the next message starts a new conversation', async () => {
    const clock = new SimulatedClock();
    const supervisor = start({ clock, idleTimeoutMs: 0 }, { reset: { idleMs: 5000 } });
    const resets: Payload<'session:reset'>[] = [];
    supervisor.on('session:reset', (event) => resets.push(event));
    const session = supervisor.session('reset:idle', { agent: 'cell' });
    expect((await session.send('my name is Ada')).text).toBe('echo: my name is Ada');

    // Just under the limit: same conversation.
    clock.increment(4999);
    mock.reset();
    expect((await session.send('still there?')).text).toBe('echo: still there?');
    expect(prompt()).toEqual([
      'user: my name is Ada',
      'assistant: echo: my name is Ada',
      'user: still there?',
    ]);
    expect(resets).toEqual([]);

    clock.increment(5000);
    mock.reset();
    const reset = nextEvent(supervisor, 'session:reset');
    expect((await session.send('who am I?')).text).toBe('echo: who am I?');
    expect(await reset).toEqual({ key: 'reset:idle' });
    // The model saw only the new message, and the conversation holds only the new turn.
    expect(prompt()).toEqual(['user: who am I?']);
    expect(await session.history()).toEqual([
      { role: 'user', content: 'who am I?' },
      { role: 'assistant', content: 'echo: who am I?' },
    ]);
    // The next turn goes on in the new conversation: no second reset.
    expect((await session.send('and now?')).text).toBe('echo: and now?');
    expect(userContents(await session.history())).toEqual(['who am I?', 'and now?']);
    expect(resets).toHaveLength(1);
  });

  it('dailyAtHour: crossing the daily boundary (UTC) starts a new conversation', async () => {
    const clock = new SimulatedClock(Date.UTC(2025, 0, 1, 3, 30));
    const supervisor = start({ clock, idleTimeoutMs: 0 }, { reset: { dailyAtHour: 4 } });
    const resets: Payload<'session:reset'>[] = [];
    supervisor.on('session:reset', (event) => resets.push(event));
    const session = supervisor.session('reset:daily', { agent: 'cell' });
    expect((await session.send('before four')).text).toBe('echo: before four');
    clock.increment(20 * 60_000); // 03:50, same side of the boundary
    expect((await session.send('still before')).text).toBe('echo: still before');
    expect(resets).toEqual([]);

    clock.increment(20 * 60_000); // 04:10
    mock.reset();
    expect((await session.send('after four')).text).toBe('echo: after four');
    expect(resets).toEqual([{ key: 'reset:daily' }]);
    expect(prompt()).toEqual(['user: after four']);
    expect(userContents(await session.history())).toEqual(['after four']);
  });

  it('the start after a reset reports the turns it restored: none', async () => {
    const clock = new SimulatedClock();
    const supervisor = start({ clock, idleTimeoutMs: 0 }, { reset: { idleMs: 1000 } });
    const session = supervisor.session('reset:restored', { agent: 'cell' });
    await session.send('one');
    await session.send('two');
    clock.increment(1000);
    const started = nextEvent(supervisor, 'session:start');
    await session.send('three');
    expect(await started).toMatchObject({ key: 'reset:restored', restoredTurns: 0 });
  });
});

describe('shouldReset', () => {
  const HOUR = 3_600_000;
  const at = (day: number, hour: number, minute = 0, ms = 0) =>
    Date.UTC(2025, 2, day, hour, minute, 0, ms);
  const cases: [string, ResetPolicy, number, number, boolean][] = [
    ['no policy never resets', {}, 0, 365 * 24 * HOUR, false],
    ['idleMs: 1 ms short', { idleMs: 5000 }, 1000, 5999, false],
    ['idleMs: exactly idleMs', { idleMs: 5000 }, 1000, 6000, true],
    ['idleMs: longer', { idleMs: 5000 }, 1000, 60_000, true],
    ['daily: same day, both before the hour', { dailyAtHour: 4 }, at(1, 1), at(1, 3, 59), false],
    ['daily: across the hour', { dailyAtHour: 4 }, at(1, 3, 59), at(1, 4, 1), true],
    ['daily: exactly at the hour', { dailyAtHour: 4 }, at(1, 3, 59), at(1, 4), true],
    ['daily: 1 ms before the hour', { dailyAtHour: 4 }, at(1, 3), at(1, 3, 59, 59_999), false],
    [
      'daily: last activity exactly at the hour waits for the next day',
      { dailyAtHour: 4 },
      at(1, 4),
      at(2, 3, 59),
      false,
    ],
    ['daily: ... and resets at it', { dailyAtHour: 4 }, at(1, 4), at(2, 4), true],
    [
      'daily: after the hour, until the next day',
      { dailyAtHour: 4 },
      at(1, 5),
      at(2, 3, 59),
      false,
    ],
    ['daily: after the hour, next day past it', { dailyAtHour: 4 }, at(1, 5), at(2, 4), true],
    ['daily: several days later', { dailyAtHour: 4 }, at(1, 5), at(9, 1), true],
    ['daily: hour 0 at midnight', { dailyAtHour: 0 }, at(1, 23, 59), at(2, 0), true],
    ['daily: hour 0 before midnight', { dailyAtHour: 0 }, at(1, 0, 1), at(1, 23, 59), false],
    ['daily: hour 23', { dailyAtHour: 23 }, at(1, 22), at(1, 23), true],
    ['daily: hour 23, across midnight', { dailyAtHour: 23 }, at(1, 23, 30), at(2, 0, 30), false],
    [
      'daily: across a month end',
      { dailyAtHour: 4 },
      Date.UTC(2025, 0, 31, 12),
      Date.UTC(2025, 1, 1, 4),
      true,
    ],
    [
      'both: idle not reached, boundary crossed',
      { idleMs: 10 * HOUR, dailyAtHour: 4 },
      at(1, 3),
      at(1, 5),
      true,
    ],
    [
      'both: idle reached, no boundary crossed',
      { idleMs: HOUR, dailyAtHour: 4 },
      at(1, 5),
      at(1, 7),
      true,
    ],
    ['both: neither', { idleMs: 10 * HOUR, dailyAtHour: 4 }, at(1, 5), at(1, 7), false],
  ];

  it.each(cases)('%s', (_name, policy, lastActivity, now, expected) => {
    expect(shouldReset(policy, lastActivity, now)).toBe(expected);
  });
});
