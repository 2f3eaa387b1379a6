/**
 * Idempotent submission in one process: a repeat of a keyed message gets the first one's
 * outcome (while it runs, and after), runs no second turn and calls the model no more; the
 * same key with another message is a conflict; a refusal before any turn ran frees the key;
 * the window is read from the supervisor's clock; keys are per session.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TurnEvent } from '../../src/agent/turn-events.js';
import { MemoryStore } from '../../src/runtime/stores/memory.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { SimulatedClock } from '../../src/testing/simulated-clock.js';
import { caught, createGate, type Gate, rejectionOf } from '../support/harness.js';
import { mockAgent, shutdown } from './helpers.js';

const WINDOW_MS = 60_000;

describe('idempotent submission', () => {
  let mock: MockLlm;
  let supervisor: Supervisor;
  let gate: Gate;
  const store = new MemoryStore();
  const clock = new SimulatedClock(1_000_000);

  beforeAll(async () => {
    mock = await startMockLlm({
      rules: [
        { match: /^hold/, steps: [{ toolCalls: [{ name: 'gate', arguments: {} }] }] },
        { match: /^broken/, steps: [{ fault: { kind: 'malformed' } }] },
      ],
    });
    gate = createGate('gate');
    supervisor = new Supervisor({ store, clock, idempotencyWindowMs: WINDOW_MS });
    supervisor.register('echo', mockAgent(mock, { tools: [gate.tool] }));
    supervisor.register(
      'strict',
      mockAgent(mock, { tools: [gate.tool], execution: { maxRetries: 0 } }),
      { busyPolicy: 'reject' },
    );
  });

  afterAll(async () => {
    gate.releaseAll();
    await shutdown(supervisor);
    await mock.close();
  });

  /** The journaled turns of session `key` that carry idempotency key `idempotencyKey`. */
  async function turnsWithKey(key: string, idempotencyKey: string) {
    const records = await store.read(key);
    return records.filter((record) =>
      record.idempotency?.some((stamp) => stamp.key === idempotencyKey),
    );
  }

  it('a repeat sent while the first runs waits for it and gets its reply: one turn', async () => {
    const session = supervisor.session('idem:concurrent', { agent: 'echo' });
    const before = mock.requests.length;
    const first = session.send('hold on', { idempotencyKey: 'k-1' });
    const call = await gate.next();
    const repeat = session.send('hold on', { idempotencyKey: 'k-1' });
    const streamed: TurnEvent[] = [];
    const repeatStream = (async () => {
      for await (const event of session.stream('hold on', { idempotencyKey: 'k-1' })) {
        streamed.push(event);
      }
    })();
    call.release();
    const [a, b] = await Promise.all([first, repeat, repeatStream]);
    expect(b).toEqual(a);
    // A repeat that joined hears the outcome as one final event.
    expect(streamed).toEqual([
      expect.objectContaining({ type: 'final', reply: a.text, turnId: a.turnId }),
    ]);
    // One turn: a tool call and the reply after it, and nothing for the repeats.
    expect(mock.requests.length - before).toBe(2);
    expect(await turnsWithKey('idem:concurrent', 'k-1')).toHaveLength(1);
    expect(await store.read('idem:concurrent')).toHaveLength(1);
  });

  it('a repeat sent after the first was answered gets the same reply from the ledger', async () => {
    const session = supervisor.session('idem:sequential', { agent: 'echo' });
    const before = mock.requests.length;
    const first = await session.send('once', { idempotencyKey: 'k-2' });
    const repeat = await session.send('once', { idempotencyKey: 'k-2' });
    expect(repeat).toEqual(first);
    expect(first.text).toBe('echo: once');
    expect(mock.requests.length - before).toBe(1);
    expect(await store.read('idem:sequential')).toHaveLength(1);
  });

  it('the same key with another message (or another history) is a typed conflict', async () => {
    const session = supervisor.session('idem:conflict', { agent: 'echo' });
    await session.send('first', { idempotencyKey: 'k-3' });
    const before = mock.requests.length;
    const other = await rejectionOf(session.send('second', { idempotencyKey: 'k-3' }));
    expect(other.code).toBe('AGENTCELL_IDEMPOTENCY_CONFLICT');
    expect(other.message).toContain('send a new key for a new message');
    const history = [{ role: 'user' as const, content: 'earlier' }];
    const withHistory = await rejectionOf(
      session.send('first', { idempotencyKey: 'k-3', history }),
    );
    expect(withHistory.code).toBe('AGENTCELL_IDEMPOTENCY_CONFLICT');
    expect(mock.requests.length).toBe(before);
    expect(await store.read('idem:conflict')).toHaveLength(1);
  });

  it('keys are per session: the same key in another session is another message', async () => {
    const a = await supervisor.session('idem:scope-a', { agent: 'echo' }).send('hi', {
      idempotencyKey: 'shared',
    });
    const b = await supervisor.session('idem:scope-b', { agent: 'echo' }).send('hi', {
      idempotencyKey: 'shared',
    });
    expect(b.turnId).not.toBe(a.turnId);
  });

  it('after the window, the same key starts a new turn', async () => {
    const session = supervisor.session('idem:window', { agent: 'echo' });
    const first = await session.send('tick', { idempotencyKey: 'k-4' });
    clock.increment(WINDOW_MS - 1);
    expect(await session.send('tick', { idempotencyKey: 'k-4' })).toEqual(first);
    clock.increment(1);
    const later = await session.send('tick', { idempotencyKey: 'k-4' });
    expect(later.turnId).not.toBe(first.turnId);
    expect(await store.read('idem:window')).toHaveLength(2);
  });

  it('a refusal before any turn ran frees the key: the retry runs', async () => {
    const session = supervisor.session('idem:refused', { agent: 'strict' });
    const holding = session.send('hold this');
    const call = await gate.next();
    const refused = await rejectionOf(session.send('later', { idempotencyKey: 'k-5' }));
    expect(refused.code).toBe('AGENTCELL_SESSION_BUSY');
    call.release();
    await holding;
    const retried = await session.send('later', { idempotencyKey: 'k-5' });
    expect(retried.text).toBe('echo: later');
  });

  it('a turn that ran and failed answers its repeat with the same typed error, running nothing', async () => {
    const session = supervisor.session('idem:failed', { agent: 'strict' });
    const failure = await rejectionOf(session.send('broken reply', { idempotencyKey: 'k-6' }));
    expect(failure.code).toMatch(/^AGENTCELL_LLM_/);
    const before = mock.requests.length;
    const repeat = await rejectionOf(session.send('broken reply', { idempotencyKey: 'k-6' }));
    expect(repeat).toBe(failure);
    expect(mock.requests.length).toBe(before);
    expect(await store.read('idem:failed')).toHaveLength(0);
  });

  it.each([
    ['empty', ''],
    ['too long', 'k'.repeat(256)],
    ['with a space', 'two words'],
  ])('an idempotency key that is %s is refused before anything runs', async (_what, key) => {
    const before = mock.requests.length;
    const session = supervisor.session('idem:bad-key', { agent: 'echo' });
    const refused = await rejectionOf(session.send('hi', { idempotencyKey: key }));
    expect(refused.code).toBe('AGENTCELL_IDEMPOTENCY_KEY_INVALID');
    expect(refused.message).toContain('1 to 255 printable ASCII characters');
    expect(mock.requests.length).toBe(before);
  });
  it('takes the window as a Supervisor option: a positive number of milliseconds', () => {
    const error = caught(() => new Supervisor({ idempotencyWindowMs: 0 }));
    expect(error.code).toBe('AGENTCELL_OPTIONS_INVALID');
    expect(error.message).toContain('options.idempotencyWindowMs');
  });
});
