/**
 * What happens to a message that arrives while its session is in a turn: enqueue (default),
 * reject, interrupt, steer and coalesce. Turns are held mid-way by a host tool gate (or a
 * stalled model call), so every case is deterministic without sleeps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BusyPolicy } from '../../src/runtime/options.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { contentText } from '../../src/testing/mock-llm-script.js';
import {
  createGate,
  type EventLog,
  type Gate,
  logEvents,
  mockAgent,
  rejectionOf,
  shutdown,
  track,
  userTexts,
} from './helpers.js';

describe('busy policies', () => {
  let mock: MockLlm;
  let supervisor: Supervisor;
  let gate: Gate;
  let events: EventLog;

  beforeAll(async () => {
    mock = await startMockLlm({
      rules: [{ match: /^hold/, steps: [{ toolCalls: [{ name: 'gate', arguments: {} }] }] }],
    });
    gate = createGate('gate');
    supervisor = new Supervisor();
    supervisor.register('cell', mockAgent(mock, { tools: [gate.tool] }));
    events = logEvents(supervisor);
  });

  afterAll(async () => {
    gate.releaseAll();
    await shutdown(supervisor);
    await mock.close();
  });

  function session(key: string, busyPolicy?: BusyPolicy) {
    return supervisor.session(key, { agent: 'cell', ...(busyPolicy && { busyPolicy }) });
  }

  it('enqueue (the default) answers messages that arrive mid-turn afterwards, in order', async () => {
    const s = session('busy:enqueue');
    const order: string[] = [];
    const first = s.send('hold 1').then((reply) => {
      order.push(reply.text);
      return reply;
    });
    const call = await gate.next();
    const later = ['e1', 'e2'].map((text) =>
      s.send(text).then((reply) => {
        order.push(reply.text);
        return reply;
      }),
    );
    expect(s.queued).toBe(2);
    call.release('opened 1');
    const replies = await Promise.all([first, ...later]);
    expect(order).toEqual(['tool results: opened 1', 'echo: e1', 'echo: e2']);
    expect(new Set(replies.map((reply) => reply.turnId)).size).toBe(3);
    expect(call.context.turnId).toBe(replies[0]?.turnId);
  });

  it('reject fails a message sent mid-turn with AGENTCELL_SESSION_BUSY', async () => {
    const s = session('busy:reject', 'reject');
    const running = s.send('hold 2');
    const call = await gate.next();
    const error = await rejectionOf(s.send('too soon'));
    expect(error.code).toBe('AGENTCELL_SESSION_BUSY');
    expect(s.queued).toBe(0);
    call.release();
    expect((await running).text).toBe('tool results: opened');
  });

  it('reject accepts the next message of a caller that awaited its reply (the turn is over)', async () => {
    const s = session('busy:reject-sequential', 'reject');
    expect((await s.send('one')).text).toBe('echo: one');
    expect(s.busy).toBe(false);
    expect((await s.send('two')).text).toBe('echo: two');
  });

  it('reject also refuses a message while the previous one waits for global admission', async () => {
    const admissionGate = createGate('gate');
    const narrow = new Supervisor({ maxConcurrentTurns: 1 });
    try {
      narrow.register('cell', mockAgent(mock, { tools: [admissionGate.tool] }));
      // Another session holds the only turn slot.
      const held = narrow.session('admission:holder', { agent: 'cell' }).send('hold 5');
      const call = await admissionGate.next();
      const s = narrow.session('admission:reject', { agent: 'cell', busyPolicy: 'reject' });
      const first = s.send('first');
      await new Promise<void>((resolve) => setImmediate(resolve));
      expect(narrow.stats().turnsWaitingForAdmission).toBe(1);
      // The session already has a message in progress: a second one is refused, not queued.
      const second = track(s.send('second'));
      await new Promise<void>((resolve) => setImmediate(resolve));
      expect(second.settled).toBe(true);
      expect((await rejectionOf(second.promise)).code).toBe('AGENTCELL_SESSION_BUSY');
      call.release();
      await held;
      expect((await first).text).toBe('echo: first');
    } finally {
      admissionGate.releaseAll();
      await shutdown(narrow);
    }
  });

  it('interrupt ends the running turn with AGENTCELL_INTERRUPTED, answers the new message, and journals nothing of the cut turn', async () => {
    const s = session('busy:interrupt', 'interrupt');
    mock.reset();
    const old = s.send('[[mock:stall]] old message');
    await mock.waitForRequests(1);
    const fresh = s.send('new message');
    const error = await rejectionOf(old);
    expect(error.code).toBe('AGENTCELL_INTERRUPTED');
    expect((await fresh).text).toBe('echo: new message');
    expect(await s.history()).toEqual([
      { role: 'user', content: 'new message' },
      { role: 'assistant', content: 'echo: new message' },
    ]);
    const outcomes = events
      .of('turn:end')
      .filter((e) => e.key === 'busy:interrupt')
      .map((e) => e.outcome);
    expect(outcomes).toEqual(['AGENTCELL_INTERRUPTED', 'ok']);
  });

  it('steer hands a message sent mid-turn to the running turn at its next model call', async () => {
    const s = session('busy:steer', 'steer');
    mock.reset();
    const first = s.send('hold 3');
    const call = await gate.next();
    const steered = track(s.send('actually, steer here'));
    // Released only after the steered message was sent: the turn's next model call takes it.
    call.release('gate passed');
    const [firstReply, steeredReply] = await Promise.all([first, steered.promise]);

    expect(steeredReply.turnId).toBe(firstReply.turnId);
    expect(steeredReply.text).toBe(firstReply.text);
    expect(firstReply.text).toBe('echo: actually, steer here');
    expect(mock.requests).toHaveLength(2);
    const second = mock.requests[1]?.body?.messages ?? [];
    const last = second[second.length - 1];
    expect(last?.role).toBe('user');
    expect(contentText(last?.content)).toBe('actually, steer here');
    // The tool round came before the steered message.
    expect(second.map((m) => m.role).slice(-3)).toEqual(['assistant', 'tool', 'user']);
    // One turn, journaled once, with the steered message in it.
    const history = await s.history();
    expect(history.filter((m) => m.role === 'user').map((m) => m.content)).toEqual([
      'hold 3',
      'actually, steer here',
    ]);
    expect(events.of('turn:start').filter((e) => e.key === 'busy:steer')).toHaveLength(1);
  });

  it('steer: a message the running turn could not take still gets a turn of its own', async () => {
    const s = session('busy:steer-late', 'steer');
    mock.reset();
    // The turn is inside its (only) model call, which never answers: no next step to take it.
    const first = s.send('[[mock:stall]] stuck');
    await mock.waitForRequests(1);
    const steered = s.send('take me anyway');
    // Watched before the interrupt: its rejection may arrive before the interrupt's answer.
    const firstError = rejectionOf(first);
    expect(await s.interrupt('unstick')).toBe(true);
    expect((await firstError).code).toBe('AGENTCELL_INTERRUPTED');
    const reply = await steered;
    expect(reply.text).toBe('echo: take me anyway');
    expect(userTexts(mock.requests)).toEqual(['[[mock:stall]] stuck', 'take me anyway']);
    expect(await s.history()).toEqual([
      { role: 'user', content: 'take me anyway' },
      { role: 'assistant', content: 'echo: take me anyway' },
    ]);
  });

  it('coalesce turns the messages that arrived during a turn into one next turn', async () => {
    const s = session('busy:coalesce', 'coalesce');
    mock.reset();
    const first = s.send('hold 4');
    const call = await gate.next();
    const batch = ['c1', 'c2', 'c3'].map((text) => s.send(text));
    expect(s.queued).toBe(1);
    call.release();
    const firstReply = await first;
    const replies = await Promise.all(batch);

    const turnIds = new Set(replies.map((reply) => reply.turnId));
    expect(turnIds.size).toBe(1);
    expect(turnIds.has(firstReply.turnId)).toBe(false);
    const joined = 'c1\n\nc2\n\nc3';
    expect(replies.map((reply) => reply.text)).toEqual([1, 2, 3].map(() => `echo: ${joined}`));
    expect(userTexts(mock.requests)).toEqual(['hold 4', 'hold 4', joined]);
    expect(events.of('turn:start').filter((e) => e.key === 'busy:coalesce')).toHaveLength(2);
  });
});
