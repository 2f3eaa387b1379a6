/**
 * Per-session budgets on real worker threads: tokens of the session in all (a turn past them
 * fails before it starts, and nothing is journaled for it), CPU per turn (the worker is
 * terminated, the session goes on), and `setBudget` to change a budget on a live session.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { fixtureRegistry, mockAgent, rejectionOf, shutdown } from './helpers.js';

let mock: MockLlm;
let supervisor: Supervisor;

beforeAll(async () => {
  mock = await startMockLlm({
    rules: [{ match: /^spin/, steps: [{ toolCalls: [{ name: 'spin', arguments: {} }] }] }],
  });
  const { registry, tools } = await fixtureRegistry(['spin']);
  supervisor = new Supervisor({ tools: registry, warmPoolSize: 0 });
  supervisor.register('cell', mockAgent(mock, { tools }));
});

afterAll(async () => {
  await shutdown(supervisor);
  await mock.close();
});

describe('a session budget', () => {
  it('refuses a turn once the session spent its tokens, until the budget is raised', async () => {
    const session = supervisor.session('budget:tokens', {
      agent: 'cell',
      budget: { maxTokens: 1 },
    });
    expect((await session.send('one')).text).toBe('echo: one');
    const error = await rejectionOf(session.send('two'));
    expect(error.code).toBe('AGENTCELL_BUDGET_EXCEEDED');
    expect(error.message).toContain('budget.maxTokens');
    expect((await session.history()).map((message) => message.content)).toEqual([
      'one',
      'echo: one',
    ]);

    session.setBudget({ maxTokens: 1_000_000 });
    expect(session.budget).toEqual({ maxTokens: 1_000_000 });
    expect((await session.send('three')).text).toBe('echo: three');
    session.setBudget(undefined);
    expect(session.budget).toBeUndefined();
    expect((await session.send('four')).text).toBe('echo: four');
  });

  it('refuses a malformed budget with AGENTCELL_OPTIONS_INVALID and keeps the one it had', () => {
    const session = supervisor.session('budget:bad', { agent: 'cell', budget: { maxTokens: 5 } });
    for (const bad of [
      { maxTokens: -1 },
      { maxTokens: 1.5 },
      { maxCostUsd: 'lots' },
      { other: 1 },
    ]) {
      expect(() => session.setBudget(bad as never)).toThrow(
        expect.objectContaining({ code: 'AGENTCELL_OPTIONS_INVALID' }),
      );
    }
    expect(session.budget).toEqual({ maxTokens: 5 });
  });

  it('terminates a turn past its CPU budget; the session answers the next message', async () => {
    const session = supervisor.session('budget:cpu', {
      agent: 'cell',
      // Well above what a turn costs on a loaded machine (its thread's busy time, not its CPU
      // time, is what is measured), and far below what the spinning tool takes.
      budget: { maxTurnCpuMs: 1000 },
    });
    expect((await session.send('before')).text).toBe('echo: before');
    const thread = session.threadId;
    const error = await rejectionOf(session.send('spin'));
    expect(error.code).toBe('AGENTCELL_BUDGET_EXCEEDED');
    expect(error.message).toContain('budget.maxTurnCpuMs');
    expect(error.details?.['inFlightTools']).toEqual(['spin']);
    expect((await session.send('after')).text).toBe('echo: after');
    expect(session.threadId).not.toBe(thread);
    expect((await session.history()).map((message) => message.content)).toEqual([
      'before',
      'echo: before',
      'after',
      'echo: after',
    ]);
  });
});
