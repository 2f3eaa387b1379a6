/**
 * The shared session suite with turns as tasks on a shared pool of two threads, and what
 * pooled placement does and does not isolate, through the Supervisor: history comes from the
 * journal only, a factory tool's instance lasts across a session's turns (its agent stays on
 * its thread), while a tool module's module-level state is shared by every turn on a pool
 * thread (the documented limit).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/runtime/stores/memory.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { contentText } from '../../src/testing/mock-llm-script.js';
import { ToolRegistry } from '../../src/tools/registry.js';
import { mockAgent, shutdown } from './helpers.js';
import { PLACEMENT_RULES, placementSuite } from './placement-suite.js';

let mock: MockLlm;

beforeAll(async () => {
  mock = await startMockLlm({
    rules: [
      ...PLACEMENT_RULES,
      { match: /^factory/, steps: [{ toolCalls: [{ name: 'factory_counter', arguments: {} }] }] },
    ],
  });
});

afterAll(async () => {
  await mock.close();
});

placementSuite('pooled', { supervisor: { placement: 'pooled', poolThreads: 2 }, mock: () => mock });

describe('pooled placement through the Supervisor, on one pool thread', () => {
  const store = new MemoryStore();
  let supervisor: Supervisor;

  beforeAll(async () => {
    const registry = new ToolRegistry()
      .registerModule('counter', new URL('../fixtures/tools/counter-tool.js', import.meta.url))
      .registerModule(
        'factory_counter',
        new URL('../fixtures/tools/factory-counter-tool.js', import.meta.url),
      )
      .registerModule('crash', new URL('../fixtures/tools/crash-tool.js', import.meta.url));
    await registry.load();
    // One thread: every turn of every session runs on it.
    supervisor = new Supervisor({ placement: 'pooled', poolThreads: 1, tools: registry, store });
    supervisor.register(
      'cell',
      mockAgent(mock, {
        tools: [registry.get('counter'), registry.get('factory_counter'), registry.get('crash')],
      }),
    );
  });

  afterAll(async () => {
    await shutdown(supervisor);
  });

  /** `role: text` of the non-system messages of the last model request. */
  function lastPrompt(): string[] {
    return (mock.requests.at(-1)?.body?.messages ?? [])
      .filter((message) => message.role !== 'system')
      .map((message) => `${message.role}: ${contentText(message.content)}`);
  }

  it("two sessions on one thread never see each other's messages", async () => {
    const ada = supervisor.session('one-thread:ada', { agent: 'cell' });
    const bob = supervisor.session('one-thread:bob', { agent: 'cell' });
    await ada.send('my name is Ada');
    await bob.send('my name is Bob');
    await ada.send('what is my name?');
    expect(lastPrompt()).toEqual([
      'user: my name is Ada',
      'assistant: echo: my name is Ada',
      'user: what is my name?',
    ]);
    await bob.send('and mine?');
    expect(lastPrompt()).toEqual([
      'user: my name is Bob',
      'assistant: echo: my name is Bob',
      'user: and mine?',
    ]);
  });

  it('history comes from the journal alone: what the store holds is what the next turn sees', async () => {
    const s = supervisor.session('one-thread:journal', { agent: 'cell' });
    await s.send('remember the number 7');
    // Written behind the session's back: a dedicated worker would not see it, a pooled turn does.
    await store.append(s.key, {
      turnId: 'injected',
      messages: [
        { role: 'user', content: 'an injected question' },
        { role: 'assistant', content: 'an injected answer' },
      ],
      usage: { inputTokens: 0, outputTokens: 0, totalTokens: 0, costUsd: 0, llmCalls: 0 },
      at: 0,
    });
    await s.send('what do you know?');
    expect(lastPrompt()).toEqual([
      'user: remember the number 7',
      'assistant: echo: remember the number 7',
      'user: an injected question',
      'assistant: an injected answer',
      'user: what do you know?',
    ]);
    // And with the journal gone, nothing of the conversation is left anywhere.
    await store.delete(s.key);
    await s.send('anything left?');
    expect(lastPrompt()).toEqual(['user: anything left?']);
  });

  it("a factory tool's instance lasts across a session's turns, and each session has its own", async () => {
    const s = supervisor.session('one-thread:factory', { agent: 'cell' });
    const other = supervisor.session('one-thread:factory-other', { agent: 'cell' });
    const counts = async (session: typeof s) =>
      /count=(\d+)$/.exec((await session.send('factory')).text)?.[1];
    expect(await counts(s)).toBe('1');
    expect(await counts(other)).toBe('1');
    expect(await counts(s)).toBe('2');
    expect(await counts(s)).toBe('3');
    expect(await counts(other)).toBe('2');
  });

  it('a passivated session comes back with a fresh factory instance, as on a dedicated worker', async () => {
    const s = supervisor.session('one-thread:factory-passivated', { agent: 'cell' });
    const count = async () => /count=(\d+)$/.exec((await s.send('factory')).text)?.[1];
    expect(await count()).toBe('1');
    expect(await count()).toBe('2');
    await s.passivate();
    expect(await count()).toBe('1');
  });

  it('a session whose thread died comes back with a fresh factory instance, as on a dedicated worker', async () => {
    const s = supervisor.session('one-thread:factory-crashed', { agent: 'cell' });
    const count = async () => /count=(\d+)$/.exec((await s.send('factory')).text)?.[1];
    expect(await count()).toBe('1');
    expect(await count()).toBe('2');
    await expect(s.send('exit now')).rejects.toMatchObject({ code: 'AGENTCELL_SESSION_CRASHED' });
    expect(await count()).toBe('1');
  });

  it("a plain tool module's module-level counter is shared by every session on the thread (documented limit)", async () => {
    const a = supervisor.session('one-thread:count-a', { agent: 'cell' });
    const b = supervisor.session('one-thread:count-b', { agent: 'cell' });
    const count = async (session: typeof a) =>
      Number(/count=(\d+)$/.exec((await session.send('count')).text)?.[1]);
    const first = await count(a);
    expect(await count(b)).toBe(first + 1);
    expect(await count(a)).toBe(first + 2);
    expect(await count(b)).toBe(first + 3);
  });
});
