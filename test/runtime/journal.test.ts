/**
 * The journal and the numbers: turn events are tagged and ordered, a completed turn is
 * journaled once (before its reply), a failed one appends nothing, and session and supervisor
 * stats add up.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JournalRecord } from '../../src/agent/journal.js';
import { addUsage, ZERO_USAGE } from '../../src/agent/messages.js';
import type { TurnEvent } from '../../src/agent/turn-events.js';
import { MemoryStore } from '../../src/runtime/stores/memory.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { fixtureRegistry, logEvents, mockAgent, rejectionOf, shutdown } from './helpers.js';

function record(turnId: string, text: string, at = 0): JournalRecord {
  return {
    turnId,
    messages: [
      { role: 'user', content: text },
      { role: 'assistant', content: `echo: ${text}` },
    ],
    usage: { inputTokens: 1, outputTokens: 2, totalTokens: 3, costUsd: 0, llmCalls: 1 },
    at,
  };
}

describe('MemoryStore', () => {
  it('appends idempotently by turnId and keeps order', async () => {
    const store = new MemoryStore();
    await store.append('s', record('t1', 'one'));
    await store.append('s', record('t2', 'two'));
    await store.append('s', record('t1', 'one again'));
    const records = await store.read('s');
    expect(records.map((r) => r.turnId)).toEqual(['t1', 't2']);
    expect(records[0]?.messages[0]?.content).toBe('one');
  });

  it('keeps sessions apart, reads an unknown session as empty, and forgets on delete', async () => {
    const store = new MemoryStore();
    await store.append('a', record('t1', 'for a'));
    // The same turn id in another session is another record.
    await store.append('b', record('t1', 'for b'));
    expect((await store.read('a'))[0]?.messages[0]?.content).toBe('for a');
    expect((await store.read('b'))[0]?.messages[0]?.content).toBe('for b');
    expect(await store.read('never-seen')).toEqual([]);
    await store.delete('a');
    expect(await store.read('a')).toEqual([]);
    await store.append('a', record('t1', 'after delete'));
    expect((await store.read('a')).map((r) => r.messages[0]?.content)).toEqual(['after delete']);
    await store.close();
  });

  it('hands out copies: neither the appended record nor a read one is the stored object', async () => {
    const store = new MemoryStore();
    const messages: { role: 'user'; content: string }[] = [{ role: 'user', content: 'one' }];
    await store.append('s', { ...record('t1', 'one'), messages });
    messages[0]!.content = 'mutated after append';
    const read = [...(await store.read('s'))];
    const first = read[0]!;
    (first.messages[0] as { content: string }).content = 'mutated after read';
    read.push(record('t9', 'smuggled'));
    expect((await store.read('s')).map((r) => r.messages[0]?.content)).toEqual(['one']);
  });
});

describe('a session journal on real workers', () => {
  let mock: MockLlm;
  let supervisor: Supervisor;
  const store = new MemoryStore();

  beforeAll(async () => {
    mock = await startMockLlm({
      rules: [{ match: /^count/, steps: [{ toolCalls: [{ name: 'counter', arguments: {} }] }] }],
    });
    const { registry, tools } = await fixtureRegistry(['counter']);
    supervisor = new Supervisor({ tools: registry, store });
    supervisor.register('cell', mockAgent(mock, { tools, execution: { maxRetries: 0 } }));
  });

  afterAll(async () => {
    await shutdown(supervisor);
    await mock.close();
  });

  it('tags every turn event with the session key and turn id, numbered in order', async () => {
    const session = supervisor.session('journal:events', { agent: 'cell' });
    const log = logEvents(supervisor);
    const events: TurnEvent[] = [];
    for await (const event of session.stream('count please')) events.push(event);

    const types = events.map((event) => event.type);
    expect(types[0]).toBe('turn-start');
    expect(types.at(-1)).toBe('final');
    expect(types).toEqual(expect.arrayContaining(['tool-start', 'tool-end', 'usage', 'text']));
    expect(events.map((event) => event.seq)).toEqual(events.map((_, i) => i));
    const [started] = log.of('turn:start');
    expect(new Set(events.map((event) => event.turnId))).toEqual(new Set([started?.turnId]));
    expect(new Set(events.map((event) => event.sessionKey))).toEqual(new Set(['journal:events']));
    const final = events.at(-1);
    expect(final?.type === 'final' && final.reply).toBe('tool results: count=1');

    const records = await store.read('journal:events');
    expect(records.map((r) => r.turnId)).toEqual([started?.turnId]);
    expect(records[0]?.messages.map((m) => m.role)).toEqual([
      'user',
      'assistant',
      'tool',
      'assistant',
    ]);
  });

  it('journals each completed turn once, in order, before the reply; a failed turn appends nothing', async () => {
    const session = supervisor.session('journal:turns', { agent: 'cell' });
    const first = await session.send('first');
    // Journaled before the caller heard the reply.
    expect((await store.read('journal:turns')).map((r) => r.turnId)).toEqual([first.turnId]);
    const second = await session.send('second');

    const failed = await rejectionOf(session.send('[[mock:500]] third fails'));
    expect(failed.code).toBe('AGENTCELL_LLM_REQUEST_FAILED');
    const interrupted = session.send('[[mock:stall]] fourth is cut');
    await mock.waitForRequests(mock.requests.length + 1);
    // Watched before the interrupt: its rejection may arrive before the interrupt's answer.
    const interruptedError = rejectionOf(interrupted);
    await session.interrupt();
    expect((await interruptedError).code).toBe('AGENTCELL_INTERRUPTED');

    const records = await store.read('journal:turns');
    expect(records.map((r) => r.turnId)).toEqual([first.turnId, second.turnId]);
    expect(records.map((r) => r.usage)).toEqual([first.usage, second.usage]);
    expect(await session.history()).toEqual(records.flatMap((r) => r.messages));
    expect(records[0]!.at).toBeLessThanOrEqual(records[1]!.at);
  });

  it('session.stats() reports turns, usage, its thread and heap', async () => {
    const session = supervisor.session('journal:stats', { agent: 'cell' });
    const replies = [await session.send('a'), await session.send('count b')];
    await rejectionOf(session.send('[[mock:500]] c'));
    const stats = await session.stats();
    expect(stats).toMatchObject({
      key: 'journal:stats',
      agent: 'cell',
      status: 'idle',
      busy: false,
      queued: 0,
      turns: 2,
      failedTurns: 1,
      restarts: 0,
      threadId: session.threadId,
    });
    expect(stats.threadId).toBeTypeOf('number');
    expect(stats.usage).toEqual(
      replies.reduce((sum, reply) => addUsage(sum, reply.usage), ZERO_USAGE),
    );
    expect(stats.usage.llmCalls).toBe(3);
    expect(stats.heapUsedBytes).toBeGreaterThan(0);
    expect(stats.lastTurnCpuMs).toBeGreaterThanOrEqual(0);
  });

  it('supervisor.stats() counts turns by outcome', async () => {
    const stats = supervisor.stats();
    // events: 1 ok; turns: 2 ok, LLM failure, interrupt; stats: 2 ok, LLM failure.
    expect(stats.turns).toEqual({
      ok: 5,
      failed: 3,
      byCode: { AGENTCELL_LLM_REQUEST_FAILED: 2, AGENTCELL_INTERRUPTED: 1 },
    });
    expect(stats).toMatchObject({
      status: 'open',
      agents: 1,
      sessions: 3,
      liveWorkers: 3,
      busySessions: 0,
      queuedMessages: 0,
      crashes: 0,
      restarts: 0,
    });
  });
});
