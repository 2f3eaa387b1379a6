/**
 * `session.observe`: an observer hears every turn of the session, whoever sent its message,
 * exactly as the turn's callers hear it; failed turns as `turn-failed`; the session's close
 * once. A throwing observer holds nothing up, and no event carries the agent's apiKey.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TurnEvent } from '../../src/agent/turn-events.js';
import type { RemoteNode } from '../../src/runtime/remote-placement.js';
import type { SessionGate } from '../../src/runtime/session-host.js';
import type { ObservedEvent } from '../../src/runtime/session-observers.js';
import { RoutedSession } from '../../src/runtime/session-routed.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { createGate, type Gate } from '../support/harness.js';
import { mockAgent, rejectionOf, shutdown, thrownBy } from './helpers.js';

const SECRET = 'sk-OBSERVE-sentinel';

describe('session.observe', () => {
  let mock: MockLlm;
  let supervisor: Supervisor;
  let gate: Gate;

  beforeAll(async () => {
    mock = await startMockLlm({
      rules: [{ match: /^hold/, steps: [{ toolCalls: [{ name: 'gate', arguments: {} }] }] }],
    });
    gate = createGate('gate');
    supervisor = new Supervisor({ warmPoolSize: 0 });
    supervisor.register('echo', mockAgent(mock, { apiKey: SECRET, tools: [gate.tool] }));
  });

  afterAll(async () => {
    gate.releaseAll();
    await shutdown(supervisor);
    await mock.close();
  });

  it('hears every event of every turn as its callers do, whoever sent the message', async () => {
    const session = supervisor.session('obs-1', { agent: 'echo' });
    const first: ObservedEvent[] = [];
    const second: ObservedEvent[] = [];
    session.observe({ onEvent: (event) => first.push(event) });
    session.observe({ onEvent: (event) => second.push(event) });

    const sent: TurnEvent[] = [];
    const reply = await session.send('one', { onEvent: (event) => sent.push(event) });
    const streamed: TurnEvent[] = [];
    for await (const event of session.stream('two')) streamed.push(event);

    expect(first).toEqual([...sent, ...streamed]);
    expect(second).toEqual(first);
    expect(first.filter((e) => e.type === 'final').map((e) => e.turnId)).toEqual([
      reply.turnId,
      streamed[0]?.turnId,
    ]);
    expect(JSON.stringify(first)).not.toContain(SECRET);
  });

  it('hears a failed turn as turn-failed, numbered after its last event', async () => {
    const session = supervisor.session('obs-2', { agent: 'echo' });
    const heard: ObservedEvent[] = [];
    session.observe({ onEvent: (event) => heard.push(event) });
    const reply = session.send('hold on');
    await gate.next();
    await session.interrupt('stop');
    expect((await rejectionOf(reply)).code).toBe('AGENTCELL_INTERRUPTED');
    const failed = heard.at(-1);
    expect(failed).toMatchObject({
      type: 'turn-failed',
      sessionKey: 'obs-2',
      turnId: heard[0]?.turnId,
      seq: heard.length - 1,
      error: { code: 'AGENTCELL_INTERRUPTED' },
    });
  });

  it('stops when asked; a throwing observer is removed and holds neither the turn nor the others up', async () => {
    const session = supervisor.session('obs-3', { agent: 'echo' });
    session.observe({
      onEvent: () => {
        throw new Error('observer bug');
      },
    });
    const kept: ObservedEvent[] = [];
    const stopped: ObservedEvent[] = [];
    session.observe({ onEvent: (event) => kept.push(event) });
    const stop = session.observe({ onEvent: (event) => stopped.push(event) });
    await session.send('one');
    stop();
    const { text } = await session.send('two');
    expect(text).toBe('echo: two');
    expect(kept.filter((e) => e.type === 'final')).toHaveLength(2);
    expect(stopped.filter((e) => e.type === 'final')).toHaveLength(1);
  });

  it('tells observers once when the session closes, and a closed session takes none', async () => {
    const session = supervisor.session('obs-4', { agent: 'echo' });
    let closes = 0;
    session.observe({ onEvent: () => {}, onClose: () => closes++ });
    await session.send('one');
    await session.close();
    expect(closes).toBe(1);
    expect(thrownBy(() => session.observe({ onEvent: () => {} })).code).toBe(
      'AGENTCELL_SESSION_CLOSED',
    );
    const destroyed = supervisor.session('obs-5', { agent: 'echo' });
    let destroyedCloses = 0;
    destroyed.observe({ onEvent: () => {}, onClose: () => destroyedCloses++ });
    await destroyed.destroy(new Error('gone'));
    expect(destroyedCloses).toBe(1);
  });
});

describe('session.observe in a cluster', () => {
  it('is refused with a typed error: the turns run on the node that owns the session', () => {
    const gate = {} as SessionGate;
    const node = {} as RemoteNode;
    const session = new RoutedSession('k', 'echo', gate, node, { busyPolicy: 'enqueue' });
    const error = thrownBy(() => session.observe({ onEvent: () => {} }));
    expect(error.code).toBe('AGENTCELL_OPTIONS_INVALID');
    expect(error.message).toContain('not supported in a cluster yet');
  });
});
