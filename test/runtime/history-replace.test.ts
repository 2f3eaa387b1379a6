/**
 * A message sent with its own history: the turn runs on that history instead of the session's,
 * the journal keeps it as a new conversation, and the next plain message goes on from there;
 * a malformed history is refused before anything runs. On both placements.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatMessage } from '../../src/agent/messages.js';
import { MemoryStore } from '../../src/runtime/stores/memory.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { createGate, type Gate, messagesOf } from '../support/harness.js';
import { mockAgent, rejectionOf, shutdown } from './helpers.js';

/** The user and assistant texts of the mock's request `index`. */
function dialogueOf(mock: MockLlm, index: number): string[] {
  return messagesOf(mock, index)
    .filter((message) => message.role === 'user' || message.role === 'assistant')
    .map((message) => `${message.role}: ${String(message.content)}`);
}

const EARLIER: ChatMessage[] = [
  { role: 'user', content: 'zero' },
  { role: 'assistant', content: 'echo: zero' },
];

describe.each(['dedicated', 'pooled'] as const)('history replacement (%s)', (placement) => {
  let mock: MockLlm;
  let supervisor: Supervisor;
  let gate: Gate;
  const store = new MemoryStore();

  beforeAll(async () => {
    mock = await startMockLlm({
      rules: [{ match: /^hold/, steps: [{ toolCalls: [{ name: 'gate', arguments: {} }] }] }],
    });
    gate = createGate('gate');
    supervisor = new Supervisor({ store, placement, poolThreads: 1 });
    supervisor.register('echo', mockAgent(mock));
    supervisor.register('coalescing', mockAgent(mock, { tools: [gate.tool] }), {
      busyPolicy: 'coalesce',
    });
  });

  afterAll(async () => {
    gate.releaseAll();
    await shutdown(supervisor);
    await mock.close();
  });

  it('runs the turn on the given history, and the next message goes on from it', async () => {
    const session = supervisor.session('s-1', { agent: 'echo' });
    await session.send('one');
    const reply = await session.send('edited', { history: EARLIER });
    expect(reply.text).toBe('echo: edited');
    expect(dialogueOf(mock, mock.requests.length - 1)).toEqual([
      'user: zero',
      'assistant: echo: zero',
      'user: edited',
    ]);
    await session.send('after');
    expect(dialogueOf(mock, mock.requests.length - 1)).toEqual([
      'user: zero',
      'assistant: echo: zero',
      'user: edited',
      'assistant: echo: edited',
      'user: after',
    ]);
    expect((await session.history()).map((message) => message.content)).toEqual([
      'zero',
      'echo: zero',
      'edited',
      'echo: edited',
      'after',
      'echo: after',
    ]);
    // The first conversation stays in the journal, before the marker that replaced it.
    const records = await store.read('s-1');
    expect(records.map((record) => record.reset === true)).toEqual([false, true, false, false]);
  });

  it('an empty history starts a fresh conversation', async () => {
    const session = supervisor.session('s-2', { agent: 'echo' });
    await session.send('forgotten');
    await session.send('fresh', { history: [] });
    expect(dialogueOf(mock, mock.requests.length - 1)).toEqual(['user: fresh']);
  });

  it('is its own turn, never joined with others under the coalesce policy', async () => {
    const session = supervisor.session('s-4', { agent: 'coalescing' });
    const held = session.send('hold on');
    const call = await gate.next();
    const plain = session.send('plain');
    const edited = session.send('edited', { history: EARLIER });
    call.release();
    await held;
    const [plainReply, editedReply] = await Promise.all([plain, edited]);
    expect(plainReply.text).toBe('echo: plain');
    expect(editedReply.text).toBe('echo: edited');
    expect(plainReply.turnId).not.toBe(editedReply.turnId);
    expect(dialogueOf(mock, mock.requests.length - 1)).toEqual([
      'user: zero',
      'assistant: echo: zero',
      'user: edited',
    ]);
  });

  it('refuses a malformed history before anything runs', async () => {
    const session = supervisor.session('s-3', { agent: 'echo' });
    const before = mock.requests.length;
    for (const history of [
      'not an array',
      [{ role: 'user' }],
      [{ role: 'narrator', content: 'x' }],
      [{ role: 'tool', content: 'x' }],
      [{ role: 'assistant', content: '', toolCalls: [{ id: 1 }] }],
    ]) {
      const error = await rejectionOf(
        session.send('hi', { history: history as unknown as ChatMessage[] }),
      );
      expect(error.code).toBe('AGENTCELL_MESSAGE_INVALID');
      expect(error.message).toMatch(/^history/);
    }
    expect(mock.requests.length).toBe(before);
    expect(await store.read('s-3')).toEqual([]);
  });
});
