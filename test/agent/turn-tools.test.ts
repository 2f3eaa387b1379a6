/**
 * Tool calls in the agent loop against the mock LLM over real HTTP: a tool round, parallel and
 * sequential calls, timeouts, failures, invalid arguments, approval and handoffs.
 */
import { describe, expect, it, vi } from 'vitest';
import type { Agent } from '../../src/agent/agent.js';
import type { ApprovalRequest } from '../../src/agent/extensions.js';
import { defineTool } from '../../src/tools/define-tool.js';
import type { Tool, ToolContext } from '../../src/tools/tool.js';
import { createBarrier } from '../fixtures/barrier.js';
import { bodyOf, messagesOf, useMockLlm } from '../support/harness.js';
import { makeAgent, recordEvents, toolMessagesOf } from './helpers.js';

const mock = useMockLlm();

interface CityArgs {
  city: string;
}

const CITY_SCHEMA = {
  type: 'object',
  properties: { city: { type: 'string' } },
  required: ['city'],
  additionalProperties: false,
};

function weatherTool(run: (args: CityArgs, context: ToolContext) => unknown): Tool {
  return defineTool<CityArgs>({
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: CITY_SCHEMA,
    run,
  });
}

/** A rule: the model calls `calls` at step 0 and replies `reply` after the tool round. */
function toolRound(match: string, calls: { name: string; arguments: unknown }[], reply: string) {
  return { match, steps: [{ toolCalls: calls }, { reply }] };
}

describe('a tool call round', () => {
  it('gives the tool validated args and a context, and sends its result back to the model', async () => {
    const seen: { args: CityArgs; context: ToolContext; abortedAtCall: boolean }[] = [];
    const weather = weatherTool((args, context) => {
      seen.push({ args, context, abortedAtCall: context.signal.aborted });
      return { city: args.city, celsius: 21 };
    });
    mock.setRules([
      toolRound('weather', [{ name: 'get_weather', arguments: { city: 'Oslo' } }], 'It is 21 °C.'),
    ]);
    const agent = makeAgent(mock, { name: 'forecaster', tools: [weather] });
    const recorder = recordEvents();

    const result = await agent.run('weather in Oslo?', {
      sessionKey: 'slack:T01:C42',
      onEvent: recorder.onEvent,
    });

    expect(result.reply).toBe('It is 21 °C.');
    expect(seen).toHaveLength(1);
    const call = seen[0];
    expect(call?.args).toEqual({ city: 'Oslo' });
    expect(call?.context).toMatchObject({
      sessionKey: 'slack:T01:C42',
      turnId: result.turnId,
      agentName: 'forecaster',
    });
    expect(call?.context.signal).toBeInstanceOf(AbortSignal);
    expect(call?.abortedAtCall).toBe(false);

    // The model offered the tool, then got its result under the call's id.
    expect(bodyOf(mock, 0).tools?.map((tool) => tool.function.name)).toEqual(['get_weather']);
    const assistantCall = messagesOf(mock, 1).find((m) => m.role === 'assistant');
    const callId = assistantCall?.tool_calls?.[0]?.id;
    expect(callId).toBeTruthy();
    expect(call?.context.toolCallId).toBe(callId);
    expect(toolMessagesOf(mock, 1)).toEqual([
      expect.objectContaining({
        role: 'tool',
        tool_call_id: callId,
        content: '{"city":"Oslo","celsius":21}',
      }),
    ]);

    expect(recorder.of('tool-start')).toEqual([
      expect.objectContaining({ callId, name: 'get_weather', arguments: '{"city":"Oslo"}' }),
    ]);
    expect(recorder.of('tool-end')).toEqual([
      expect.objectContaining({ callId, ok: true, result: '{"city":"Oslo","celsius":21}' }),
    ]);
    expect(recorder.of('tool-end')[0]?.error).toBeUndefined();
    expect(agent.history.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant']);
    expect(agent.usage.llmCalls).toBe(2);
  });

  it('tells the model when it calls a tool the agent does not have', async () => {
    mock.setRules([toolRound('go', [{ name: 'no_such_tool', arguments: {} }], 'ok')]);
    const agent = makeAgent(mock);
    const recorder = recordEvents();

    await expect(agent.chat('go', { onEvent: recorder.onEvent })).resolves.toBe('ok');

    expect(recorder.of('tool-end')[0]?.error?.code).toBe('AGENTCELL_TOOL_NOT_FOUND');
    expect(toolMessagesOf(mock, 1)[0]?.content).toContain('AGENTCELL_TOOL_NOT_FOUND');
  });
});

describe('several tool calls in one step', () => {
  const alphaAndBeta = toolRound(
    'both',
    [
      { name: 'alpha', arguments: {} },
      { name: 'beta', arguments: {} },
    ],
    'both done',
  );

  function barrierTool(name: string, barrier: ReturnType<typeof createBarrier>): Tool {
    return defineTool({
      name,
      description: `Waits at the barrier (${name})`,
      run: async () => {
        await barrier.arrive();
        return `${name} passed`;
      },
    });
  }

  it('run concurrently: both reach a barrier that opens only when both are in', {
    timeout: 5_000,
  }, async () => {
    const barrier = createBarrier(2);
    mock.setRules([alphaAndBeta]);
    const agent = makeAgent(mock, {
      tools: [barrierTool('alpha', barrier), barrierTool('beta', barrier)],
    });

    await expect(agent.chat('run both')).resolves.toBe('both done');

    expect(barrier.arrived).toBe(2);
    // Results go back in call order.
    expect(toolMessagesOf(mock, 1).map((m) => m.content)).toEqual(['alpha passed', 'beta passed']);
  });

  it('run one after the other with parallelToolCalls: false, and the request says so', async () => {
    const log: string[] = [];
    const logged = (name: string) =>
      defineTool({
        name,
        description: `Logs its start and end (${name})`,
        run: async () => {
          log.push(`start:${name}`);
          // Yield to the event loop: a concurrently started call would get to run here.
          await new Promise<void>((resolve) => setImmediate(resolve));
          log.push(`end:${name}`);
          return name;
        },
      });
    mock.setRules([alphaAndBeta]);
    const agent = makeAgent(mock, {
      tools: [logged('alpha'), logged('beta')],
      parallelToolCalls: false,
    });

    await expect(agent.chat('run both')).resolves.toBe('both done');

    expect(log).toEqual(['start:alpha', 'end:alpha', 'start:beta', 'end:beta']);
    expect(bodyOf(mock, 0).parallel_tool_calls).toBe(false);
  });
});

describe('a tool that fails', () => {
  it('times out after toolTimeout: the model is told and the turn completes', async () => {
    let toolSignal: AbortSignal | undefined;
    const hang = defineTool({
      name: 'hang',
      description: 'Never resolves and ignores its signal',
      run: (_args, context) => {
        toolSignal = context.signal;
        return new Promise(() => {});
      },
    });
    mock.setRules([toolRound('hang', [{ name: 'hang', arguments: {} }], 'gave up waiting')]);
    const agent = makeAgent(mock, { tools: [hang], toolTimeout: 50 });
    const recorder = recordEvents();

    await expect(agent.chat('please hang', { onEvent: recorder.onEvent })).resolves.toBe(
      'gave up waiting',
    );

    const end = recorder.of('tool-end')[0];
    expect(end).toMatchObject({
      name: 'hang',
      ok: false,
      error: { code: 'AGENTCELL_TOOL_TIMEOUT' },
    });
    expect(toolMessagesOf(mock, 1)[0]?.content).toContain('AGENTCELL_TOOL_TIMEOUT');
    expect(toolSignal?.aborted).toBe(true);
    expect(agent.history).toHaveLength(4);
  });

  it('throws: the model is told, tool-end is not ok with AGENTCELL_TOOL_FAILED, the turn completes', async () => {
    const broken = defineTool({
      name: 'broken',
      description: 'Always throws',
      run: () => {
        throw new Error('disk full');
      },
    });
    mock.setRules([toolRound('break', [{ name: 'broken', arguments: {} }], 'sorry about that')]);
    const agent = makeAgent(mock, { tools: [broken] });
    const recorder = recordEvents();

    await expect(agent.chat('break it', { onEvent: recorder.onEvent })).resolves.toBe(
      'sorry about that',
    );

    const end = recorder.of('tool-end')[0];
    expect(end).toMatchObject({ ok: false, error: { code: 'AGENTCELL_TOOL_FAILED' } });
    expect(end?.error?.message).toContain('disk full');
    const told = toolMessagesOf(mock, 1)[0]?.content;
    expect(told).toContain('AGENTCELL_TOOL_FAILED');
    expect(told).toContain('disk full');
  });

  it('is never called with invalid arguments; the model is told what is wrong', async () => {
    const run = vi.fn(() => 'sunny');
    mock.setRules([
      toolRound('weather', [{ name: 'get_weather', arguments: { city: 5 } }], 'let me fix that'),
    ]);
    const agent = makeAgent(mock, { tools: [weatherTool(run)] });
    const recorder = recordEvents();

    await expect(agent.chat('weather?', { onEvent: recorder.onEvent })).resolves.toBe(
      'let me fix that',
    );

    expect(run).not.toHaveBeenCalled();
    expect(recorder.of('tool-end')[0]).toMatchObject({
      ok: false,
      error: { code: 'AGENTCELL_TOOL_FAILED' },
    });
    const told = toolMessagesOf(mock, 1)[0]?.content ?? '';
    expect(told).toContain('invalid arguments');
    expect(told).toContain('city');
    expect(told).toContain('must be string');
  });

  it('is never called with arguments that are not JSON', async () => {
    const run = vi.fn(() => 'sunny');
    mock.setRules([
      toolRound('weather', [{ name: 'get_weather', arguments: '{"city": Oslo' }], 'oops'),
    ]);
    const agent = makeAgent(mock, { tools: [weatherTool(run)] });

    await expect(agent.chat('weather?')).resolves.toBe('oops');

    expect(run).not.toHaveBeenCalled();
    expect(toolMessagesOf(mock, 1)[0]?.content).toContain('not valid JSON');
  });
});

describe('approval', () => {
  function deployTool(run: () => unknown): Tool {
    return defineTool({
      name: 'deploy',
      description: 'Deploys to an environment',
      parameters: { type: 'object', properties: { env: { type: 'string' } }, required: ['env'] },
      run,
    });
  }
  const statusTool = defineTool({ name: 'status', description: 'Status', run: () => 'green' });
  const rules = [
    toolRound(
      'ship',
      [
        { name: 'deploy', arguments: { env: 'prod' } },
        { name: 'status', arguments: {} },
      ],
      'shipping handled',
    ),
  ];

  it('a denied tool never runs; the model is told AGENTCELL_APPROVAL_DENIED; others need no approval', async () => {
    const run = vi.fn(() => 'deployed');
    mock.setRules(rules);
    const agent = makeAgent(mock, {
      name: 'ops',
      tools: [deployTool(run), statusTool],
      approval: { tools: ['deploy'] },
    });
    const asked: ApprovalRequest[] = [];
    const recorder = recordEvents();

    const reply = await agent.chat('ship it', {
      sessionKey: 'ops:1',
      onEvent: recorder.onEvent,
      approver: (request) => {
        asked.push(request);
        return false;
      },
    });

    expect(reply).toBe('shipping handled');
    expect(run).not.toHaveBeenCalled();
    expect(asked).toEqual([
      expect.objectContaining({
        tool: 'deploy',
        arguments: { env: 'prod' },
        agentName: 'ops',
        sessionKey: 'ops:1',
      }),
    ]);
    const ends = recorder.of('tool-end');
    expect(ends.find((e) => e.name === 'deploy')).toMatchObject({
      ok: false,
      error: { code: 'AGENTCELL_APPROVAL_DENIED' },
    });
    expect(ends.find((e) => e.name === 'status')).toMatchObject({ ok: true, result: 'green' });
    expect(toolMessagesOf(mock, 1).map((m) => m.content)).toEqual([
      expect.stringContaining('AGENTCELL_APPROVAL_DENIED'),
      'green',
    ]);
  });

  it('an approver that says yes lets the tool run', async () => {
    const run = vi.fn(() => 'deployed');
    mock.setRules(rules);
    const agent = makeAgent(mock, {
      tools: [deployTool(run), statusTool],
      approval: { tools: ['deploy'] },
    });

    await agent.chat('ship it', { approver: async () => true });

    expect(run).toHaveBeenCalledTimes(1);
    expect(toolMessagesOf(mock, 1).map((m) => m.content)).toEqual(['deployed', 'green']);
  });

  it('no approver means denied', async () => {
    const run = vi.fn(() => 'deployed');
    mock.setRules(rules);
    const agent = makeAgent(mock, {
      tools: [deployTool(run), statusTool],
      approval: { tools: 'all' },
    });
    const recorder = recordEvents();

    await agent.chat('ship it', { onEvent: recorder.onEvent });

    expect(run).not.toHaveBeenCalled();
    expect(recorder.of('tool-end').map((e) => e.error?.code)).toEqual([
      'AGENTCELL_APPROVAL_DENIED',
      'AGENTCELL_APPROVAL_DENIED',
    ]);
  });
});

describe('handoffs', () => {
  const handoffRules = [
    toolRound(
      'refund',
      [{ name: 'transfer_to_billing', arguments: { message: 'please process order 42' } }],
      'Billing has it covered.',
    ),
    { match: 'order 42', steps: [{ reply: 'Refund for order 42 approved.' }] },
  ];

  function billingAgent(): Agent {
    return makeAgent(mock, { name: 'billing', instructions: 'You handle billing.' });
  }

  it('hands off to another agent: its reply is the tool result, then the first agent answers', async () => {
    mock.setRules(handoffRules);
    const billing = billingAgent();
    const triage = makeAgent(mock, { name: 'triage', handoffs: [billing] });
    const recorder = recordEvents();

    const reply = await triage.chat('I want a refund', { onEvent: recorder.onEvent });

    expect(reply).toBe('Billing has it covered.');
    expect(bodyOf(mock, 0).tools?.map((tool) => tool.function.name)).toEqual([
      'transfer_to_billing',
    ]);
    expect(mock.requests).toHaveLength(3);
    // The billing agent's own call: its instructions, the handed-over message.
    const billingCall = messagesOf(mock, 1);
    expect(billingCall[0]).toMatchObject({ role: 'system', content: 'You handle billing.' });
    expect(billingCall.at(-1)).toMatchObject({ role: 'user', content: 'please process order 42' });
    expect(toolMessagesOf(mock, 2).map((m) => m.content)).toEqual([
      'Refund for order 42 approved.',
    ]);
    expect(recorder.of('tool-end')).toEqual([
      expect.objectContaining({
        name: 'transfer_to_billing',
        ok: true,
        result: 'Refund for order 42 approved.',
      }),
    ]);
    // The handoff ran on triage's own instance of billing, not on the template.
    expect(billing.history).toEqual([]);
  });

  it('resolves a handoff given by name with options.agents', async () => {
    mock.setRules(handoffRules);
    const billing = billingAgent();
    const triage = makeAgent(mock, { name: 'triage', handoffs: ['billing'] });

    const reply = await triage.chat('I want a refund', {
      agents: (name) => (name === 'billing' ? billing : undefined),
    });

    expect(reply).toBe('Billing has it covered.');
    expect(toolMessagesOf(mock, 2).map((m) => m.content)).toEqual([
      'Refund for order 42 approved.',
    ]);
  });

  it('tells the model AGENTCELL_HANDOFF_FAILED when a named handoff is not registered', async () => {
    mock.setRules(handoffRules);
    const triage = makeAgent(mock, { name: 'triage', handoffs: ['billing'] });
    const recorder = recordEvents();

    await expect(triage.chat('I want a refund', { onEvent: recorder.onEvent })).resolves.toBe(
      'Billing has it covered.',
    );

    expect(recorder.of('tool-end')[0]?.error?.code).toBe('AGENTCELL_HANDOFF_FAILED');
    expect(toolMessagesOf(mock, 1)[0]?.content).toContain('AGENTCELL_HANDOFF_FAILED');
  });

  it('refuses a cycle (a → b → a) and tells the model AGENTCELL_HANDOFF_FAILED', async () => {
    mock.setRules([
      toolRound(
        'start the loop',
        [{ name: 'transfer_to_b', arguments: { message: 'from a' } }],
        'a is done',
      ),
      // b tries to hand back to a; after its tool round the mock echoes the tool results.
      {
        match: 'from a',
        steps: [{ toolCalls: [{ name: 'transfer_to_a', arguments: { message: 'back to a' } }] }],
      },
    ]);
    const a = makeAgent(mock, { name: 'a', handoffs: ['b'] });
    const b = makeAgent(mock, { name: 'b', handoffs: ['a'] });
    const recorder = recordEvents();

    const reply = await a.chat('start the loop', {
      onEvent: recorder.onEvent,
      agents: (name) => ({ a, b })[name],
    });

    expect(reply).toBe('a is done');
    // a step 0, b step 0, b step 1 (told about the refused handoff), a step 1.
    expect(mock.requests).toHaveLength(4);
    const toldB = toolMessagesOf(mock, 2)[0]?.content ?? '';
    expect(toldB).toContain('AGENTCELL_HANDOFF_FAILED');
    expect(toldB).toContain('cycle');
    expect(mock.requests.some((r) => r.body?.messages.at(-1)?.content === 'back to a')).toBe(false);
    expect(recorder.of('tool-end')[0]?.result).toContain('AGENTCELL_HANDOFF_FAILED');
  });

  it('a message steered in during a handoff reaches the agent whose turn it is', async () => {
    mock.setRules(handoffRules);
    const billing = billingAgent();
    const triage = makeAgent(mock, { name: 'triage', handoffs: [billing] });
    // The steering queue of triage's session: one message arrives after triage's first step.
    let steps = 0;
    const steering = () => (++steps === 2 ? ['also check order 43'] : []);

    await triage.chat('I want a refund', { steering });

    // The user spoke to triage: triage's conversation must hold the message, not billing's.
    expect(triage.history).toContainEqual({ role: 'user', content: 'also check order 43' });
    expect(mock.requests.at(-1)?.body?.messages).toContainEqual(
      expect.objectContaining({ role: 'user', content: 'also check order 43' }),
    );
  });
});
