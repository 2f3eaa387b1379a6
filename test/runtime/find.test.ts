/**
 * `supervisor.find(key)` and `allSessionKeys()`: a session journaled by an earlier supervisor
 * on the same store is found again with the agent it ran, never created; bad keys, unknown
 * agents and a closed supervisor get typed errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { MemoryStore } from '../../src/runtime/stores/memory.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';

let mock: MockLlm;
const store = new MemoryStore();

function supervisorWith(agents: readonly string[]): Supervisor {
  const supervisor = new Supervisor({ store, placement: 'pooled', warmPoolSize: 0 });
  for (const name of agents) {
    supervisor.register(
      name,
      new Agent({ name, llm: 'mock-model', baseUrl: mock.url, apiKey: 'sk-test' }),
    );
  }
  return supervisor;
}

beforeAll(async () => {
  mock = await startMockLlm();
  const earlier = supervisorWith(['first', 'second']);
  await earlier.session('with-second', { agent: 'second' }).send('hello');
  await earlier.session('with-first', { agent: 'first' }).send('hi');
  earlier.session('never-sent', { agent: 'first' }); // opened, nothing journaled
  await earlier.close();
});

afterAll(() => mock?.close());

describe('supervisor.find', () => {
  it('reopens a journaled session with the agent it ran, history intact', async () => {
    const supervisor = supervisorWith(['first', 'second']);
    try {
      const session = await supervisor.find('with-second');
      expect(session?.agent).toBe('second');
      expect(supervisor.peek('with-second')).toBe(session);
      expect(await session?.history()).toEqual([
        { role: 'user', content: 'hello' },
        { role: 'assistant', content: 'echo: hello' },
      ]);
      expect(await supervisor.find('with-second')).toBe(session);
      expect((await session?.send('again'))?.text).toBe('echo: again');
      expect((await session?.stats())?.turns).toBe(2); // the journaled one and this
    } finally {
      await supervisor.close();
    }
  });

  it('finds nothing, and creates nothing, for a key without a journal', async () => {
    const supervisor = supervisorWith(['first', 'second']);
    try {
      expect(await supervisor.find('never-sent')).toBeUndefined();
      expect(await supervisor.find('nobody')).toBeUndefined();
      expect(supervisor.sessionKeys()).toEqual([]);
      expect((await supervisor.allSessionKeys()).sort()).toEqual(['with-first', 'with-second']);
      supervisor.session('only-here', { agent: 'first' });
      expect(await supervisor.find('only-here')).toBe(supervisor.peek('only-here'));
      expect((await supervisor.allSessionKeys()).sort()).toEqual([
        'only-here',
        'with-first',
        'with-second',
      ]);
    } finally {
      await supervisor.close();
    }
  });

  it('refuses a bad key, an agent not registered here, and a closed supervisor', async () => {
    const supervisor = supervisorWith(['first']);
    await expect(supervisor.find('')).rejects.toMatchObject({
      code: 'AGENTCELL_SESSION_KEY_INVALID',
    });
    await expect(supervisor.find('with-second')).rejects.toMatchObject({
      code: 'AGENTCELL_AGENT_NOT_REGISTERED',
      message: expect.stringContaining('"second"'),
    });
    expect(supervisor.peek('with-second')).toBeUndefined();
    expect((await supervisor.find('with-first'))?.agent).toBe('first');
    await supervisor.close();
    await expect(supervisor.find('with-first')).rejects.toMatchObject({
      code: 'AGENTCELL_SUPERVISOR_CLOSED',
    });
    await expect(supervisor.allSessionKeys()).rejects.toMatchObject({
      code: 'AGENTCELL_SUPERVISOR_CLOSED',
    });
  });
});
