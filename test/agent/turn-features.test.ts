/**
 * Feature configs in the agent loop against the mock LLM over real HTTP: guardrails,
 * structured output, hooks, memory, templates, caching and steering.
 */
import { describe, expect, it, vi } from 'vitest';
import type { HookContext, Validator } from '../../src/agent/extensions.js';
import type { ChatCompletionRequest } from '../../src/testing/mock-llm-script.js';
import { defineTool } from '../../src/tools/define-tool.js';
import { bodyOf, messagesOf, rejectionOf, useMockLlm } from '../support/harness.js';
import { makeAgent, recordEvents, rolesAndText, SENTINEL } from './helpers.js';

const mock = useMockLlm();

const lookup = defineTool({
  name: 'lookup',
  description: 'Looks a word up',
  parameters: { type: 'object', properties: { word: { type: 'string' } }, required: ['word'] },
  run: (args: { word: string }) => `definition of ${args.word}`,
});

const lookupRule = {
  match: 'define',
  steps: [{ toolCalls: [{ name: 'lookup', arguments: { word: 'actor' } }] }, { reply: 'Defined.' }],
};

describe('guardrails', () => {
  // A guardrail retry appends the rejected reply and a user message with the feedback, so the
  // retried call's last user message is the feedback: that is what the second rule matches.
  const retryRules = [
    { match: 'Your previous reply was rejected', steps: [{ reply: 'A polite answer.' }] },
    { match: 'question', steps: [{ reply: 'A rude answer.' }] },
  ];

  it('retries with the feedback when a validator rejects, then passes', async () => {
    mock.setRules(retryRules);
    const judged: string[] = [];
    const polite: Validator = (reply) => {
      judged.push(reply);
      return reply.includes('rude') ? 'be polite' : true;
    };
    const agent = makeAgent(mock, { guardrails: { validators: ['polite'] } });

    const reply = await agent.chat('a question', { validators: { polite } });

    expect(reply).toBe('A polite answer.');
    expect(judged).toEqual(['A rude answer.', 'A polite answer.']);
    expect(mock.requests).toHaveLength(2);
    const retried = rolesAndText(messagesOf(mock, 1)).slice(-3);
    expect(retried[0]).toEqual({ role: 'user', content: 'a question' });
    expect(retried[1]).toEqual({ role: 'assistant', content: 'A rude answer.' });
    expect(retried[2]?.role).toBe('user');
    expect(retried[2]?.content).toContain('be polite');
    // The rejected attempt is not committed.
    expect(agent.history).toEqual([
      { role: 'user', content: 'a question' },
      { role: 'assistant', content: 'A polite answer.' },
    ]);
  });

  it('fails with AGENTCELL_GUARDRAIL_FAILED after maxRetries, history unchanged', async () => {
    const never = vi.fn<Validator>(() => 'never good enough');
    const agent = makeAgent(mock, { guardrails: { validators: ['never'], maxRetries: 1 } });

    const error = await rejectionOf(agent.chat('a question', { validators: { never } }));

    expect(error).toMatchObject({ code: 'AGENTCELL_GUARDRAIL_FAILED' });
    expect(error.message).toContain('never good enough');
    expect(mock.requests).toHaveLength(2);
    expect(never).toHaveBeenCalledTimes(2);
    expect(agent.history).toEqual([]);
  });

  it("fails at once with onFail: 'raise'", async () => {
    const agent = makeAgent(mock, { guardrails: { validators: ['never'], onFail: 'raise' } });

    await expect(
      agent.chat('a question', { validators: { never: () => false } }),
    ).rejects.toMatchObject({ code: 'AGENTCELL_GUARDRAIL_FAILED' });
    expect(mock.requests).toHaveLength(1);
  });

  it('blockPatterns reject a matching reply without any validator', async () => {
    mock.setRules([
      { match: 'Your previous reply was rejected', steps: [{ reply: 'I cannot share that.' }] },
      { match: 'question', steps: [{ reply: 'The PASSWORD is hunter2.' }] },
    ]);
    const agent = makeAgent(mock, { guardrails: { blockPatterns: [/password/i] } });

    await expect(agent.chat('a question')).resolves.toBe('I cannot share that.');
    expect(messagesOf(mock, 1).at(-1)?.content).toContain('blocked pattern');
    expect(agent.history.map((m) => m.content)).not.toContain('The PASSWORD is hunter2.');

    const strict = makeAgent(mock, { guardrails: { blockPatterns: [/password/i], maxRetries: 0 } });
    mock.setRules([{ match: 'question', steps: [{ reply: 'The password is hunter2.' }] }]);
    await expect(strict.chat('a question')).rejects.toMatchObject({
      code: 'AGENTCELL_GUARDRAIL_FAILED',
    });
    expect(strict.history).toEqual([]);
  });

  it('a validator name that is not registered fails before calling the model', async () => {
    const agent = makeAgent(mock, { guardrails: { validators: ['missing'] } });

    const error = await rejectionOf(agent.chat('a question', { validators: {} }));

    expect(error).toMatchObject({ code: 'AGENTCELL_GUARDRAIL_FAILED' });
    expect(error.message).toContain('missing');
    expect(mock.requests).toHaveLength(0);
  });
});

describe('structured output', () => {
  const schema = {
    type: 'object',
    properties: { answer: { type: 'string' }, confidence: { type: 'number' } },
    required: ['answer', 'confidence'],
    additionalProperties: false,
  };

  type ResponseFormatBody = ChatCompletionRequest & {
    response_format?: {
      type: string;
      json_schema?: { name: string; schema: unknown; strict: boolean };
    };
  };

  it('parses a valid JSON reply into result.output and asks for json_schema', async () => {
    mock.setRules([{ match: 'json', steps: [{ reply: '{"answer":"42","confidence":0.9}' }] }]);
    const agent = makeAgent(mock, { output: { schema, name: 'verdict', strict: true } });
    const recorder = recordEvents();

    const result = await agent.run('json please', { onEvent: recorder.onEvent });

    expect(result.output).toEqual({ answer: '42', confidence: 0.9 });
    expect(recorder.of('final')[0]?.output).toEqual({ answer: '42', confidence: 0.9 });
    const body = bodyOf(mock, 0) as ResponseFormatBody;
    expect(body.response_format).toEqual({
      type: 'json_schema',
      json_schema: { name: 'verdict', schema, strict: true },
    });
  });

  it.each([
    ['not JSON', 'the answer is 42'],
    ['not matching the schema', '{"answer":42}'],
  ])('fails with AGENTCELL_OUTPUT_INVALID on a reply %s, history unchanged', async (_, reply) => {
    mock.setRules([{ match: 'json', steps: [{ reply }] }]);
    const agent = makeAgent(mock, { output: { schema } });

    await expect(agent.run('json please')).rejects.toMatchObject({
      code: 'AGENTCELL_OUTPUT_INVALID',
    });
    expect(agent.history).toEqual([]);
  });
});

describe('hooks', () => {
  const everyPoint = {
    beforeLlmCall: ['trace'],
    afterLlmCall: ['trace'],
    beforeToolCall: ['trace'],
    afterToolCall: ['trace'],
    onTurnEnd: ['trace'],
  };

  it('are called in order, with the redacted config and the carried-only feature configs', async () => {
    mock.setRules([lookupRule]);
    const contexts: HookContext[] = [];
    const agent = makeAgent(mock, {
      tools: [lookup],
      hooks: everyPoint,
      knowledge: { sources: ['faq'], topK: 3 },
    });

    await agent.chat('define actor', {
      sessionKey: 'hooks:1',
      hooks: { trace: (context) => void contexts.push(context) },
    });

    expect(contexts.map((c) => c.point)).toEqual([
      'beforeLlmCall',
      'afterLlmCall',
      'beforeToolCall',
      'afterToolCall',
      'beforeLlmCall',
      'afterLlmCall',
      'onTurnEnd',
    ]);
    expect(contexts.map((c) => c.iteration)).toEqual([0, 0, 0, 0, 1, 1, 1]);
    for (const context of contexts) {
      expect(context).toMatchObject({ agentName: 'support', sessionKey: 'hooks:1' });
      expect(context.config).toMatchObject({
        apiKey: '[redacted]',
        knowledge: { sources: ['faq'], topK: 3 },
      });
    }
    expect(JSON.stringify(contexts)).not.toContain(SENTINEL);
    expect(contexts[3]).toMatchObject({
      tool: { name: 'lookup', arguments: '{"word":"actor"}' },
      toolResult: 'definition of actor',
    });
    expect(contexts[5]?.reply).toBe('Defined.');
    expect(contexts[6]).toMatchObject({ outcome: 'ok', reply: 'Defined.' });
  });

  it('onTurnEnd is told when a turn fails, once', async () => {
    const ends: HookContext[] = [];
    const agent = makeAgent(mock, {
      hooks: { onTurnEnd: ['end'] },
      execution: { maxRetries: 0 },
    });

    await expect(
      agent.chat('x [[mock:500]]', { hooks: { end: (c) => void ends.push(c) } }),
    ).rejects.toMatchObject({ code: 'AGENTCELL_LLM_REQUEST_FAILED' });

    expect(ends).toEqual([
      expect.objectContaining({ outcome: 'error', errorCode: 'AGENTCELL_LLM_REQUEST_FAILED' }),
    ]);
  });

  it('a throwing hook fails the turn with AGENTCELL_HOOK_FAILED, history unchanged', async () => {
    mock.setRules([lookupRule]);
    const run = vi.fn(() => 'never');
    const guarded = defineTool({ name: 'lookup', description: 'Looks up', run });
    const agent = makeAgent(mock, { tools: [guarded], hooks: { beforeToolCall: ['audit'] } });

    const error = await rejectionOf(
      agent.chat('define actor', {
        hooks: {
          audit: () => {
            throw new Error('audit log is down');
          },
        },
      }),
    );

    expect(error).toMatchObject({ code: 'AGENTCELL_HOOK_FAILED' });
    expect(error.message).toContain('audit log is down');
    expect(run).not.toHaveBeenCalled();
    expect(agent.history).toEqual([]);
    expect(mock.requests).toHaveLength(1);
  });

  it('an onTurnEnd hook that throws fails the turn and still runs only once for it', async () => {
    const outcomes: (string | undefined)[] = [];
    const agent = makeAgent(mock, { hooks: { onTurnEnd: ['metrics'] } });

    await expect(
      agent.chat('hi', {
        hooks: {
          metrics: (context) => {
            outcomes.push(context.outcome);
            throw new Error('metrics backend down');
          },
        },
      }),
    ).rejects.toMatchObject({ code: 'AGENTCELL_HOOK_FAILED' });

    expect(agent.history).toEqual([]);
    // One turn, one onTurnEnd: a metrics hook must not count this turn as both ok and failed.
    expect(outcomes).toHaveLength(1);
  });

  it('a hook name that is not registered fails before calling the model', async () => {
    const agent = makeAgent(mock, { hooks: { afterLlmCall: ['missing'] } });

    const error = await rejectionOf(agent.chat('hi'));

    expect(error).toMatchObject({ code: 'AGENTCELL_HOOK_FAILED' });
    expect(error.message).toContain('missing');
    expect(mock.requests).toHaveLength(0);
  });
});

describe('memory', () => {
  it('historyWindow sends only the last messages of the history', async () => {
    const agent = makeAgent(mock, { memory: { historyWindow: 2 } });

    await agent.chat('one');
    await agent.chat('two');
    await agent.chat('three');

    expect(rolesAndText(messagesOf(mock, 2)).slice(1)).toEqual([
      { role: 'user', content: 'two' },
      { role: 'assistant', content: 'echo: two' },
      { role: 'user', content: 'three' },
    ]);
    // The window limits what is sent, not what is kept.
    expect(agent.history).toHaveLength(6);
  });

  it('a window never starts with a tool message (or inside a tool round)', async () => {
    mock.setRules([lookupRule]);
    const agent = makeAgent(mock, { tools: [lookup], memory: { historyWindow: 2 } });

    await agent.chat('define actor');
    await agent.chat('and now?');

    const sent = messagesOf(mock, 2);
    expect(sent[0]?.role).toBe('system');
    expect(sent[1]?.role).toBe('user');
    // Every tool result sent still has the assistant call it answers.
    const callIds = new Set(sent.flatMap((m) => m.tool_calls?.map((call) => call.id) ?? []));
    for (const message of sent.filter((m) => m.role === 'tool')) {
      expect(callIds.has(message.tool_call_id ?? '')).toBe(true);
    }
  });

  it('enabled: false sends no history', async () => {
    const agent = makeAgent(mock, { memory: { enabled: false }, instructions: 'Be brief.' });

    await agent.chat('first');
    await agent.chat('second');

    expect(rolesAndText(messagesOf(mock, 1))).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'second' },
    ]);
  });
});

describe('templates', () => {
  it('fill the system prompt, the user prompt and the reply', async () => {
    const agent = makeAgent(mock, {
      name: 'helper',
      templates: {
        system: 'You are {{name}} from {{company}}.',
        prompt: 'Customer asks: {{message}}',
        response: '[{{name}}] {{reply}}',
        variables: new Map([['company', 'Acme']]),
      },
    });

    const reply = await agent.chat('hi');

    expect(rolesAndText(messagesOf(mock, 0))).toEqual([
      { role: 'system', content: 'You are helper from Acme.' },
      { role: 'user', content: 'Customer asks: hi' },
    ]);
    expect(reply).toBe('[helper] echo: Customer asks: hi');
  });
});

describe('caching', () => {
  it('answers a second identical turn from the cache', async () => {
    const agent = makeAgent(mock, { caching: { enabled: true }, memory: { enabled: false } });
    const recorder = recordEvents();

    const first = await agent.chat('same question');
    const second = await agent.chat('same question', { onEvent: recorder.onEvent });

    expect(second).toBe(first);
    expect(mock.requests).toHaveLength(1);
    expect(agent.usage.llmCalls).toBe(1);
    expect(recorder.of('final')[0]?.reply).toBe(first);
    expect(
      recorder
        .of('text')
        .map((e) => e.delta)
        .join(''),
    ).toBe(first);

    await agent.chat('another question');
    expect(mock.requests).toHaveLength(2);
  });

  it('is off by default', async () => {
    const agent = makeAgent(mock, { memory: { enabled: false } });

    await agent.chat('same question');
    await agent.chat('same question');

    expect(mock.requests).toHaveLength(2);
  });
});

describe('steering', () => {
  it('a steered message is sent as a user message at the next LLM step of the turn', async () => {
    mock.setRules([lookupRule]);
    const agent = makeAgent(mock, { tools: [lookup] });
    let calls = 0;
    const steering = () => (++calls === 2 ? ['actually, use British spelling'] : []);

    const reply = await agent.chat('define actor', { steering });

    const steered = { role: 'user', content: 'actually, use British spelling' };
    expect(rolesAndText(messagesOf(mock, 0))).not.toContainEqual(steered);
    expect(rolesAndText(messagesOf(mock, 1))).toContainEqual(steered);
    expect(rolesAndText(messagesOf(mock, 1)).at(-1)).toEqual(steered);
    expect(reply).toBe('echo: actually, use British spelling');
    expect(agent.history).toContainEqual(steered);
    expect(calls).toBe(2);
  });
});
