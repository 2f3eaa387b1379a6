/**
 * A session's mailbox keeps order under a burst; different sessions run their turns at the
 * same time (proved with a barrier that sequential execution could never pass).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import {
  fixtureRegistry,
  logEvents,
  mockAgent,
  SHARED_KEYS,
  sharedCells,
  shutdown,
  userTexts,
} from './helpers.js';

const PARTIES = 4;

describe('ordering and concurrency', () => {
  const barrier = sharedCells(SHARED_KEYS.barrier, 1);
  let mock: MockLlm;
  let supervisor: Supervisor;

  beforeAll(async () => {
    mock = await startMockLlm({
      rules: [
        {
          match: /^barrier/,
          steps: [{ toolCalls: [{ name: 'barrier', arguments: { parties: PARTIES } }] }],
        },
      ],
    });
    const { registry, tools } = await fixtureRegistry(['barrier']);
    supervisor = new Supervisor({ tools: registry });
    supervisor.register('cell', mockAgent(mock, { tools }));
  });

  afterAll(async () => {
    await shutdown(supervisor);
    await mock.close();
  });

  it('answers 200 messages sent at once to one session in order, and journals them in order', async () => {
    const session = supervisor.session('order:burst', { agent: 'cell' });
    const log = logEvents(supervisor);
    mock.reset();
    const count = 200;
    const messages = Array.from({ length: count }, (_, i) => `m${i}`);
    const completed: string[] = [];
    const replies = await Promise.all(
      messages.map((message) =>
        session.send(message).then((reply) => {
          completed.push(reply.text);
          return reply;
        }),
      ),
    );

    const expected = messages.map((message) => `echo: ${message}`);
    expect(replies.map((reply) => reply.text)).toEqual(expected);
    // Resolved in order too, not just matched up at the end.
    expect(completed).toEqual(expected);
    expect(new Set(replies.map((reply) => reply.turnId)).size).toBe(count);
    // The model saw them one turn after another, in order.
    expect(userTexts(mock.requests)).toEqual(messages);

    const history = await session.history();
    expect(history).toHaveLength(2 * count);
    expect(history.filter((m) => m.role === 'user').map((m) => m.content)).toEqual(messages);
    expect(history.filter((m) => m.role === 'assistant').map((m) => m.content)).toEqual(expected);
    // One turn at a time: every turn ended before the next one started.
    const lifecycle = log.all
      .filter((entry) => entry.name === 'turn:start' || entry.name === 'turn:end')
      .map((entry) => entry.name);
    expect(lifecycle).toEqual(messages.flatMap(() => ['turn:start', 'turn:end']));
  });

  it(`runs the turns of ${PARTIES} sessions at the same time (a barrier of ${PARTIES} opens)`, {
    timeout: 20_000,
  }, async () => {
    Atomics.store(barrier, 0, 0);
    const sessions = Array.from({ length: PARTIES }, (_, i) =>
      supervisor.session(`order:barrier-${i}`, { agent: 'cell' }),
    );
    // Each turn calls the barrier tool; with turns run one by one the first would wait for
    // the others until its safety deadline and report a timeout instead.
    const replies = await Promise.all(sessions.map((session, i) => session.send(`barrier ${i}`)));
    expect(replies.map((reply) => reply.text)).toEqual(
      Array.from({ length: PARTIES }, () => 'tool results: barrier passed'),
    );
    expect(Atomics.load(barrier, 0)).toBe(PARTIES);
    const threads = new Set(sessions.map((session) => session.threadId));
    expect(threads.size).toBe(PARTIES);
  });
});
