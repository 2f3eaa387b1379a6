/**
 * The agent loop end to end against the mock LLM over real HTTP: plain answers, events,
 * usage, retries, failures that leave the history alone, budgets, interrupts, streaming,
 * turn ordering and secrets. Tools live in turn-tools.test.ts, features in turn-features.test.ts.
 */
import { inspect } from 'node:util';
import pDefer from 'p-defer';
import { describe, expect, it } from 'vitest';
import type { ChatMessage } from '../../src/agent/messages.js';
import type { TurnEvent } from '../../src/agent/turn-events.js';
import { startMockLlm } from '../../src/testing/index.js';
import { defineTool } from '../../src/tools/define-tool.js';
import { bodyOf, type Caught, messagesOf, rejectionOf, useMockLlm } from '../support/harness.js';
import { makeAgent, recordEvents, rolesAndText, SENTINEL } from './helpers.js';

const mock = useMockLlm();

describe('a plain answer', () => {
  it('replies, grows the history by user + assistant and counts usage', async () => {
    const agent = makeAgent(mock);

    const reply = await agent.chat('hello there');

    expect(reply).toBe('echo: hello there');
    expect(agent.history).toEqual([
      { role: 'user', content: 'hello there' },
      { role: 'assistant', content: 'echo: hello there' },
    ]);
    expect(agent.usage.llmCalls).toBe(1);
    expect(agent.usage.inputTokens).toBeGreaterThan(0);
    expect(agent.usage.outputTokens).toBeGreaterThan(0);
    expect(agent.usage.totalTokens).toBe(agent.usage.inputTokens + agent.usage.outputTokens);
    expect(mock.requests).toHaveLength(1);
    expect(bodyOf(mock, 0).model).toBe('mock-model');
  });

  it('emits turn-start, text, usage and final in order, seq 0..n, tagged with session and turn', async () => {
    const agent = makeAgent(mock);
    const recorder = recordEvents();

    const result = await agent.run('tell me something longer than four characters', {
      sessionKey: 'web:tenant-1:user-9',
      onEvent: recorder.onEvent,
    });

    const { events } = recorder;
    const types = events.map((event) => event.type);
    expect(types[0]).toBe('turn-start');
    expect(types.at(-1)).toBe('final');
    expect(types.at(-2)).toBe('usage');
    const textIndexes = types.flatMap((type, i) => (type === 'text' ? [i] : []));
    expect(textIndexes.length).toBeGreaterThan(1);
    expect(Math.max(...textIndexes)).toBeLessThan(types.indexOf('usage'));
    expect(new Set(types)).toEqual(new Set(['turn-start', 'text', 'usage', 'final']));

    expect(events.map((event) => event.seq)).toEqual(events.map((_, i) => i));
    for (const event of events) {
      expect(event.sessionKey).toBe('web:tenant-1:user-9');
      expect(event.turnId).toBe(result.turnId);
    }
    expect(result.turnId).not.toBe('');

    expect(recorder.of('turn-start')[0]?.message).toBe(
      'tell me something longer than four characters',
    );
    expect(
      recorder
        .of('text')
        .map((event) => event.delta)
        .join(''),
    ).toBe(result.reply);
    const final = recorder.of('final')[0];
    expect(final?.reply).toBe(result.reply);
    expect(final?.usage).toEqual(recorder.of('usage')[0]?.usage);
    expect(final?.usage.llmCalls).toBe(1);
    expect(result.delta.messages).toEqual(agent.history);
  });

  it('tags events with the agent name when no session key is given, and a new turn id per turn', async () => {
    const agent = makeAgent(mock, { name: 'concierge' });
    const first = recordEvents();
    const second = recordEvents();

    await agent.chat('one', { onEvent: first.onEvent });
    await agent.chat('two', { onEvent: second.onEvent });

    expect(new Set(first.events.map((event) => event.sessionKey))).toEqual(new Set(['concierge']));
    const firstTurn = first.events[0]?.turnId;
    const secondTurn = second.events[0]?.turnId;
    expect(firstTurn).toBeDefined();
    expect(secondTurn).not.toBe(firstTurn);
    expect(second.events.map((event) => event.seq)).toEqual(second.events.map((_, i) => i));
  });

  it('sends the earlier turns to the model on the next turn', async () => {
    const agent = makeAgent(mock, { instructions: 'Be brief.' });

    await agent.chat('first');
    await agent.chat('second');

    expect(rolesAndText(messagesOf(mock, 1))).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'first' },
      { role: 'assistant', content: 'echo: first' },
      { role: 'user', content: 'second' },
    ]);
    expect(agent.history).toHaveLength(4);
    expect(agent.usage.llmCalls).toBe(2);
  });
});

describe('model server failures', () => {
  it('retries a 429 and then answers, emitting a retry event', async () => {
    const agent = makeAgent(mock);
    const recorder = recordEvents();

    const reply = await agent.chat('hi [[mock:429x1]]', { onEvent: recorder.onEvent });

    expect(reply).toBe('echo: hi [[mock:429x1]]');
    expect(mock.requests).toHaveLength(2);
    expect(recorder.of('retry')).toEqual([
      expect.objectContaining({ attempt: 1, code: 'AGENTCELL_LLM_RATE_LIMITED' }),
    ]);
    // The retry comes before any text of the answer.
    const types = recorder.events.map((event) => event.type);
    expect(types.indexOf('retry')).toBeLessThan(types.indexOf('text'));
    expect(agent.history).toHaveLength(2);
  });

  it('fails with AGENTCELL_LLM_REQUEST_FAILED after exhausting retries on 500, history unchanged', async () => {
    const agent = makeAgent(mock, { execution: { maxRetries: 1 } });
    await agent.chat('a good turn');
    const before = [...agent.history];
    mock.reset();
    const recorder = recordEvents();

    const error = await rejectionOf(
      agent.chat('this breaks [[mock:500]]', { onEvent: recorder.onEvent }),
    );

    expect(error).toMatchObject({
      code: 'AGENTCELL_LLM_REQUEST_FAILED',
      details: { status: 500 },
    });
    expect(mock.requests).toHaveLength(2);
    expect(recorder.of('retry')).toHaveLength(1);
    expect(recorder.of('final')).toHaveLength(0);
    expect(agent.history).toEqual(before);
  });

  it('fails with AGENTCELL_LLM_BAD_RESPONSE on malformed model output, history unchanged', async () => {
    const agent = makeAgent(mock);
    await agent.chat('a good turn');
    const before = [...agent.history];

    await expect(agent.chat('garbage please [[mock:malformed]]')).rejects.toMatchObject({
      code: 'AGENTCELL_LLM_BAD_RESPONSE',
    });

    expect(agent.history).toEqual(before);
    // Not a transient failure: no retry.
    expect(mock.requests).toHaveLength(2);
  });
});

describe('budget', () => {
  const pricey = {
    execution: { pricing: { inputPerMillion: 1e6, outputPerMillion: 1e6 }, maxBudget: 0.5 },
  };

  it('fails the turn that crosses the budget with AGENTCELL_BUDGET_EXCEEDED, history unchanged', async () => {
    const agent = makeAgent(mock, pricey);

    const error = await rejectionOf(agent.chat('an expensive question'));

    expect(error).toMatchObject({
      code: 'AGENTCELL_BUDGET_EXCEEDED',
      details: { maxBudgetUsd: 0.5 },
    });
    expect(agent.history).toEqual([]);
    expect(mock.requests).toHaveLength(1);
    // What was spent is still counted.
    expect(agent.usage.costUsd).toBeGreaterThan(0.5);
    expect(agent.usage.llmCalls).toBe(1);
  });

  it('fails a later turn before calling the model', async () => {
    const agent = makeAgent(mock, pricey);
    await expect(agent.chat('first')).rejects.toMatchObject({ code: 'AGENTCELL_BUDGET_EXCEEDED' });
    const spent = agent.usage;

    await expect(agent.chat('second')).rejects.toMatchObject({
      code: 'AGENTCELL_BUDGET_EXCEEDED',
    });

    expect(mock.requests).toHaveLength(1);
    expect(agent.usage).toEqual(spent);
    expect(agent.history).toEqual([]);
  });

  it('counts the cost from the pricing and lets turns under the budget through', async () => {
    const agent = makeAgent(mock, {
      execution: { pricing: { inputPerMillion: 1e6, outputPerMillion: 2e6 }, maxBudget: 1e9 },
    });

    await agent.chat('cheap enough');

    const { inputTokens, outputTokens, costUsd } = agent.usage;
    expect(costUsd).toBeCloseTo(inputTokens + 2 * outputTokens, 9);
  });
});

// Broken, these would hang rather than fail: fail fast instead.
describe('interrupts', { timeout: 5_000 }, () => {
  it('interrupts a streaming LLM call: AGENTCELL_INTERRUPTED, connection closed, history unchanged', async () => {
    const agent = makeAgent(mock);
    await agent.chat('before');
    const before = [...agent.history];
    const usageBefore = agent.usage;

    const turn = agent.chat('never finishes [[mock:stall]]');
    await mock.waitForRequests(2);
    expect(agent.interrupts.interrupt('user pressed stop')).toBe(true);

    await expect(turn).rejects.toMatchObject({
      code: 'AGENTCELL_INTERRUPTED',
      details: { reason: 'user pressed stop' },
    });
    const aborted = await mock.waitForAbort();
    expect(aborted.aborted).toBe(true);
    expect(aborted.body?.messages.at(-1)?.content).toBe('never finishes [[mock:stall]]');
    expect(agent.history).toEqual(before);
    expect(agent.history).toHaveLength(2);
    expect(agent.usage).toEqual(usageBefore);
    // Not retried after the interrupt.
    expect(mock.requests).toHaveLength(2);
  });

  it('interrupts a running tool: its signal is aborted and the turn rejects AGENTCELL_INTERRUPTED', async () => {
    const entered = pDefer<AbortSignal>();
    const waiter = defineTool({
      name: 'wait_for_it',
      description: 'Waits until aborted',
      run: (_args, context) => {
        entered.resolve(context.signal);
        return new Promise((_resolve, reject) => {
          context.signal.addEventListener('abort', () => reject(context.signal.reason), {
            once: true,
          });
        });
      },
    });
    mock.setRules([
      {
        match: 'slow job',
        steps: [{ toolCalls: [{ name: 'wait_for_it', arguments: {} }] }, { reply: 'done' }],
      },
    ]);
    const agent = makeAgent(mock, { tools: [waiter] });
    const recorder = recordEvents();

    const turn = agent.chat('start the slow job', { onEvent: recorder.onEvent });
    const toolSignal = await entered.promise;
    expect(toolSignal.aborted).toBe(false);
    agent.interrupts.interrupt('cancelled');

    await expect(turn).rejects.toMatchObject({ code: 'AGENTCELL_INTERRUPTED' });
    expect(toolSignal.aborted).toBe(true);
    expect(agent.history).toEqual([]);
    expect(mock.requests).toHaveLength(1);
    expect(recorder.of('final')).toHaveLength(0);
  });

  it('a stale interrupt (made after turn 1 ended) does not affect turn 2', async () => {
    const agent = makeAgent(mock);
    const first = await agent.run('turn one');

    expect(agent.interrupts.interrupt('too late')).toBe(false);
    expect(agent.interrupts.isInterrupted).toBe(false);

    await expect(agent.chat('turn two')).resolves.toBe('echo: turn two');
    expect(first.reply).toBe('echo: turn one');
    expect(agent.history).toHaveLength(4);
  });

  it('an interrupt aimed at turn 1 by id does not touch a running turn 2', async () => {
    const entered = pDefer<void>();
    const release = pDefer<void>();
    const hold = defineTool({
      name: 'hold',
      description: 'Holds until released',
      run: async () => {
        entered.resolve();
        await release.promise;
        return 'released';
      },
    });
    mock.setRules([
      { match: 'hold on', steps: [{ toolCalls: [{ name: 'hold', arguments: {} }] }] },
    ]);
    const agent = makeAgent(mock, { tools: [hold] });
    const first = await agent.run('turn one');

    const second = agent.chat('hold on please');
    await entered.promise;
    expect(agent.interrupts.interrupt('stale', first.turnId)).toBe(false);
    release.resolve();

    await expect(second).resolves.toBe('tool results: released');
  });

  it('an outside AbortSignal aborts the turn too', async () => {
    const agent = makeAgent(mock);
    const controller = new AbortController();

    const turn = agent.chat('stuck [[mock:stall]]', { signal: controller.signal });
    await mock.waitForRequests(1);
    controller.abort();

    await expect(turn).rejects.toMatchObject({ code: 'AGENTCELL_INTERRUPTED' });
    await mock.waitForAbort();
    expect(agent.history).toEqual([]);
  });
});

// Broken, these would hang rather than fail: fail fast instead.
describe('agent.stream()', { timeout: 5_000 }, () => {
  it('yields the turn events and then ends', async () => {
    const agent = makeAgent(mock);
    const events: TurnEvent[] = [];

    for await (const event of agent.stream('stream me')) events.push(event);

    expect(events[0]?.type).toBe('turn-start');
    expect(events.at(-1)).toMatchObject({ type: 'final', reply: 'echo: stream me' });
    expect(events.map((event) => event.seq)).toEqual(events.map((_, i) => i));
    expect(agent.history).toHaveLength(2);
  });

  it('throws the typed error from the iterator when the turn fails', async () => {
    const agent = makeAgent(mock, { execution: { maxRetries: 0 } });
    const seen: string[] = [];

    const error = await rejectionOf(
      (async () => {
        for await (const event of agent.stream('boom [[mock:500]]')) seen.push(event.type);
      })(),
    );

    expect(error).toMatchObject({ code: 'AGENTCELL_LLM_REQUEST_FAILED' });
    expect(seen).toContain('turn-start');
    expect(seen).not.toContain('final');
    expect(agent.history).toEqual([]);
  });
});

// Broken, these would hang rather than fail: fail fast instead.
describe('concurrent turns on one agent', { timeout: 5_000 }, () => {
  it('run one at a time, in call order', async () => {
    const entered = pDefer<void>();
    const release = pDefer<void>();
    const hold = defineTool({
      name: 'hold',
      description: 'Holds the first turn until released',
      run: async () => {
        entered.resolve();
        await release.promise;
        return 'held';
      },
    });
    mock.setRules([
      {
        match: 'first',
        steps: [{ toolCalls: [{ name: 'hold', arguments: {} }] }, { reply: 'first done' }],
      },
    ]);
    const agent = makeAgent(mock, { tools: [hold] });
    const order: string[] = [];
    const track = (label: string) => (event: TurnEvent) => {
      if (event.type === 'turn-start' || event.type === 'final')
        order.push(`${event.type}:${label}`);
    };

    const first = agent.chat('first', { onEvent: track('first') });
    const second = agent.chat('second', { onEvent: track('second') });
    const third = agent.chat('third', { onEvent: track('third') });
    await entered.promise;
    release.resolve();

    await expect(Promise.all([first, second, third])).resolves.toEqual([
      'first done',
      'echo: second',
      'echo: third',
    ]);
    expect(order).toEqual([
      'turn-start:first',
      'final:first',
      'turn-start:second',
      'final:second',
      'turn-start:third',
      'final:third',
    ]);
    // The second turn saw the whole first turn, so it started after the first was committed.
    const sentForSecond = rolesAndText(messagesOf(mock, 2)).map((m) => m.content);
    expect(sentForSecond).toEqual(expect.arrayContaining(['first', 'first done', 'second']));
    expect(agent.history.filter((m: ChatMessage) => m.role === 'user')).toEqual([
      { role: 'user', content: 'first' },
      { role: 'user', content: 'second' },
      { role: 'user', content: 'third' },
    ]);
  });
});

describe('the api key', () => {
  const HEADER_SECRET = 'gw-SENTINEL-456';

  it('is sent as a bearer token, with the auth headers', async () => {
    const agent = makeAgent(mock, { auth: { headers: { 'x-gateway-key': HEADER_SECRET } } });

    await agent.chat('hi');

    expect(mock.requests[0]?.headers.authorization).toBe(`Bearer ${SENTINEL}`);
    expect(mock.requests[0]?.headers['x-gateway-key']).toBe(HEADER_SECRET);
  });

  it('appears in no event, no error and no view of the agent', async () => {
    const failing = defineTool({
      name: 'explode',
      description: 'Always throws',
      run: () => {
        throw new Error('tool exploded');
      },
    });
    mock.setRules([
      { match: 'use the tool', steps: [{ toolCalls: [{ name: 'explode', arguments: {} }] }] },
    ]);
    const agent = makeAgent(mock, {
      tools: [failing],
      auth: { headers: { 'x-gateway-key': HEADER_SECRET } },
      execution: { maxRetries: 1 },
    });
    const authMock = await startMockLlm({ apiKey: 'the-right-key' });
    try {
      const refused = makeAgent(authMock, {
        auth: { headers: { 'x-gateway-key': HEADER_SECRET } },
      });
      const recorder = recordEvents();
      const onEvent = recorder.onEvent;

      await agent.chat('hello', { onEvent });
      await agent.chat('use the tool', { onEvent });
      const errors: Caught[] = [
        await rejectionOf(agent.chat('fail [[mock:500]]', { onEvent })),
        await rejectionOf(agent.chat('fail [[mock:malformed]]', { onEvent })),
        await rejectionOf(agent.chat('retry [[mock:429]]', { onEvent })),
        await rejectionOf(refused.chat('who am i', { onEvent })),
      ];

      expect(errors.map((error) => error.code)).toEqual([
        'AGENTCELL_LLM_REQUEST_FAILED',
        'AGENTCELL_LLM_BAD_RESPONSE',
        'AGENTCELL_LLM_RATE_LIMITED',
        'AGENTCELL_LLM_AUTH_FAILED',
      ]);
      expect(authMock.requests).toHaveLength(1);
      expect(recorder.of('tool-end')[0]?.error?.code).toBe('AGENTCELL_TOOL_FAILED');
      const views = [
        JSON.stringify(recorder.events),
        ...errors.map((error) => error.message),
        ...errors.map((error) => inspect(error, { depth: 8 })),
        JSON.stringify(agent),
        inspect(agent, { depth: 8 }),
        String(agent),
        JSON.stringify(refused),
        inspect(refused, { depth: 8 }),
      ];
      for (const view of views) {
        expect(view).not.toContain(SENTINEL);
        expect(view).not.toContain(HEADER_SECRET);
      }
      expect(JSON.parse(JSON.stringify(agent))).toMatchObject({
        apiKey: '[redacted]',
        auth: { headers: { 'x-gateway-key': '[redacted]' } },
      });
      // It was sent, all the same.
      expect(mock.requests.every((r) => r.headers.authorization === `Bearer ${SENTINEL}`)).toBe(
        true,
      );
    } finally {
      await authMock.close();
    }
  });
});
