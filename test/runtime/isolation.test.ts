/**
 * Isolation between sessions of the same agent, on real worker threads: own thread, own
 * module state, no blocking and no interrupts across sessions.
 */
import { threadId as testThreadId } from 'node:worker_threads';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import {
  type EventLog,
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

const RELEASED = 0;
const ENTERED = 1;

describe('sessions of one agent are isolated from each other', () => {
  // Published before any worker starts: new workers get a copy of the environment data.
  const lock = sharedCells(SHARED_KEYS.lock, 2);
  let mock: MockLlm;
  let supervisor: Supervisor;
  let events: EventLog;

  beforeAll(async () => {
    mock = await startMockLlm({
      rules: [
        { match: /^count/, steps: [{ toolCalls: [{ name: 'counter', arguments: {} }] }] },
        { match: /^lock/, steps: [{ toolCalls: [{ name: 'lock', arguments: {} }] }] },
      ],
    });
    const { registry, tools } = await fixtureRegistry(['counter', 'lock']);
    supervisor = new Supervisor({ tools: registry });
    supervisor.register('cell', mockAgent(mock, { tools }));
    events = logEvents(supervisor);
  });

  afterAll(async () => {
    Atomics.store(lock, RELEASED, 1);
    Atomics.notify(lock, RELEASED);
    await shutdown(supervisor);
    await mock.close();
  });

  beforeEach(() => {
    Atomics.store(lock, RELEASED, 0);
    Atomics.store(lock, ENTERED, 0);
  });

  it('gives each session its own worker thread and its own copy of module-level state', async () => {
    const a = supervisor.session('iso:count-a', { agent: 'cell' });
    const b = supervisor.session('iso:count-b', { agent: 'cell' });

    expect((await a.send('count 1')).text).toBe('tool results: count=1');
    expect((await a.send('count 2')).text).toBe('tool results: count=2');
    expect((await a.send('count 3')).text).toBe('tool results: count=3');
    // B imported the same module in another thread: its counter starts over.
    expect((await b.send('count 1')).text).toBe('tool results: count=1');
    expect((await a.send('count 4')).text).toBe('tool results: count=4');
    expect((await b.send('count 2')).text).toBe('tool results: count=2');

    expect(a.threadId).toBeTypeOf('number');
    expect(b.threadId).toBeTypeOf('number');
    expect(a.threadId).not.toBe(b.threadId);
    expect([a.threadId, b.threadId]).not.toContain(testThreadId);
    const started = events.of('session:start');
    expect(started.find((e) => e.key === 'iso:count-a')?.threadId).toBe(a.threadId);
    expect(started.find((e) => e.key === 'iso:count-b')?.threadId).toBe(b.threadId);
  });

  it('a session held in a long-running tool does not block another session', async () => {
    const a = supervisor.session('iso:lock-a', { agent: 'cell' });
    const b = supervisor.session('iso:lock-b', { agent: 'cell' });

    const held = track(a.send('lock please'));
    await waitForCell(lock, ENTERED, 1);

    // B answers several turns while A is still inside its tool.
    for (let i = 0; i < 3; i++) {
      expect((await b.send(`hello ${i}`)).text).toBe(`echo: hello ${i}`);
    }
    expect(held.settled).toBe(false);
    expect(a.busy).toBe(true);
    expect(b.busy).toBe(false);

    Atomics.store(lock, RELEASED, 1);
    Atomics.notify(lock, RELEASED);
    expect((await held.promise).text).toBe('tool results: released');
  });

  it('interrupting one session fails only its turn; the other turn completes', async () => {
    const a = supervisor.session('iso:lock-a', { agent: 'cell' });
    const b = supervisor.session('iso:lock-b', { agent: 'cell' });

    const turnA = track(a.send('lock for A'));
    const turnB = track(b.send('lock for B'));
    // Both are inside the tool at once.
    await waitForCell(lock, ENTERED, 2);

    expect(await a.interrupt('stop A')).toBe(true);
    const error = await rejectionOf(turnA.promise);
    expect(error.code).toBe('AGENTCELL_INTERRUPTED');
    expect(turnB.settled).toBe(false);
    expect(b.busy).toBe(true);

    Atomics.store(lock, RELEASED, 1);
    Atomics.notify(lock, RELEASED);
    expect((await turnB.promise).text).toBe('tool results: released');

    // A is not broken by the interrupt, and the interrupted turn left no trace in its history.
    expect((await a.send('after the interrupt')).text).toBe('echo: after the interrupt');
    const history = await a.history();
    expect(history.filter((m) => m.role === 'user').map((m) => m.content)).toEqual([
      'lock please',
      'after the interrupt',
    ]);
    expect(
      events
        .of('turn:end')
        .filter((e) => e.key === 'iso:lock-a')
        .map((e) => e.outcome),
    ).toEqual(['ok', 'AGENTCELL_INTERRUPTED', 'ok']);
  });

  it('an interrupt while no turn runs is a no-op that never reaches a later turn', async () => {
    const a = supervisor.session('iso:lock-a', { agent: 'cell' });
    expect(a.busy).toBe(false);
    expect(await a.interrupt('stale')).toBe(false);
    expect((await a.send('next turn')).text).toBe('echo: next turn');
  });
});
