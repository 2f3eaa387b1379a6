/**
 * The OpenAI-compatible LlmClient against the mock LLM over real HTTP: streaming, tool call
 * assembly, usage, retries, auth failures, aborts and stalled streams.
 */
import { describe, expect, it } from 'vitest';
import type { ChatMessage } from '../../src/agent/messages.js';
import { InterruptedError } from '../../src/errors.js';
import { LlmClient, type LlmClientOptions } from '../../src/llm/client.js';
import type { LlmRequest } from '../../src/llm/model.js';
import { startMockLlm } from '../../src/testing/index.js';
import { bodyOf, rejectionOf, useMockLlm } from '../support/harness.js';

const mock = useMockLlm();

function client(options: LlmClientOptions = {}): LlmClient {
  return new LlmClient({ baseUrl: mock.url, apiKey: 'k', retryBaseDelayMs: 1, ...options });
}

function ask(content: string, extra: Partial<LlmRequest> = {}): LlmRequest {
  return { model: 'mock-model', messages: [{ role: 'user', content }], ...extra };
}

const live = (): AbortSignal => new AbortController().signal;

/** The mock's usage estimate: a quarter of the characters, rounded up. */
const tokens = (text: string): number => Math.ceil(text.length / 4);

interface Retry {
  attempt: number;
  code: string;
  delayMs: number;
}

describe('a streamed completion', () => {
  it('delivers the text in deltas to the observer and assembles the reply', async () => {
    const text = 'The quick brown fox jumps over the lazy dog.';
    mock.setRules([{ match: 'fox', steps: [{ reply: text }] }]);
    const deltas: string[] = [];

    const response = await client().complete(ask('tell me about the fox'), live(), {
      onTextDelta: (delta) => deltas.push(delta),
    });

    expect(response.content).toBe(text);
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.join('')).toBe(text);
    expect(deltas.every((delta) => delta.length > 0)).toBe(true);
    expect(response.toolCalls).toEqual([]);
    expect(response.finishReason).toBe('stop');
    const body = bodyOf(mock, 0);
    expect(body.stream).toBe(true);
    expect(body.stream_options).toEqual({ include_usage: true });
  });

  it('assembles tool calls from streamed fragments', async () => {
    const weatherArgs = { city: 'Oslo', units: 'metric', days: 3, note: 'a long enough argument' };
    mock.setRules([
      {
        match: 'weather',
        steps: [
          {
            toolCalls: [
              { name: 'get_weather', arguments: weatherArgs },
              { name: 'get_time', arguments: { zone: 'Europe/Oslo' } },
            ],
          },
        ],
      },
    ]);
    const deltas: string[] = [];

    const response = await client().complete(
      ask('weather and time?', {
        tools: [
          { name: 'get_weather', description: 'Weather', parameters: { type: 'object' } },
          { name: 'get_time', description: 'Time', parameters: { type: 'object' } },
        ],
        parallelToolCalls: true,
      }),
      live(),
      { onTextDelta: (delta) => deltas.push(delta) },
    );

    expect(response.toolCalls).toEqual([
      {
        id: expect.stringMatching(/^call_/),
        name: 'get_weather',
        arguments: JSON.stringify(weatherArgs),
      },
      {
        id: expect.stringMatching(/^call_/),
        name: 'get_time',
        arguments: '{"zone":"Europe/Oslo"}',
      },
    ]);
    expect(response.toolCalls[0]?.id).not.toBe(response.toolCalls[1]?.id);
    expect(response.content).toBe('');
    expect(deltas).toEqual([]);
    expect(response.finishReason).toBe('tool_calls');
    const body = bodyOf(mock, 0);
    expect(body.tools?.map((tool) => tool.function.name)).toEqual(['get_weather', 'get_time']);
    expect(body.parallel_tool_calls).toBe(true);
  });

  it('reads usage from the stream', async () => {
    const reply = 'Usage is counted by the server.';
    mock.setRules([{ match: 'count', steps: [{ reply }] }]);
    const messages: ChatMessage[] = [
      { role: 'system', content: 'You count.' },
      { role: 'user', content: 'count this please' },
    ];

    const response = await client().complete({ model: 'mock-model', messages }, live());

    expect(response.inputTokens).toBe(tokens('You count.count this please'));
    expect(response.outputTokens).toBe(tokens(reply));
  });

  it('sends assistant tool calls and tool results in wire form', async () => {
    const messages: ChatMessage[] = [
      { role: 'user', content: 'weather?' },
      {
        role: 'assistant',
        content: '',
        toolCalls: [{ id: 'call_a', name: 'get_weather', arguments: '{"city":"Oslo"}' }],
      },
      { role: 'tool', toolCallId: 'call_a', name: 'get_weather', content: 'sunny' },
    ];

    const response = await client().complete({ model: 'mock-model', messages }, live());

    expect(response.content).toBe('tool results: sunny');
    const sent = bodyOf(mock, 0).messages;
    expect(sent[1]).toMatchObject({
      role: 'assistant',
      tool_calls: [
        {
          id: 'call_a',
          type: 'function',
          function: { name: 'get_weather', arguments: '{"city":"Oslo"}' },
        },
      ],
    });
    expect(sent[2]).toMatchObject({ role: 'tool', tool_call_id: 'call_a', content: 'sunny' });
  });

  it('asks for a json_schema response format for structured output', async () => {
    const schema = { type: 'object', properties: { a: { type: 'string' } } };

    await client().complete(
      ask('json', { jsonSchema: { name: 'answer', schema, strict: true } }),
      live(),
    );

    expect(bodyOf(mock, 0)).toMatchObject({
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'answer', schema, strict: true },
      },
    });
  });

  it('sends the api key as a bearer token and the extra headers', async () => {
    await client({ apiKey: 'sk-client-1', headers: { 'x-gateway-key': 'gw-1' } }).complete(
      ask('hi'),
      live(),
    );

    expect(mock.requests[0]?.headers.authorization).toBe('Bearer sk-client-1');
    expect(mock.requests[0]?.headers['x-gateway-key']).toBe('gw-1');
  });
});

// Broken, these would hang rather than fail: fail fast instead.
describe('retries', { timeout: 5_000 }, () => {
  it('honours retry-after: 429 twice with maxRetries 2 succeeds, waiting what the server said', async () => {
    const retries: Retry[] = [];
    // A backoff this long would time the test out: only the server's retry-after-ms (10) fits.
    const slowBackoff = client({ maxRetries: 2, retryBaseDelayMs: 60_000 });

    const response = await slowBackoff.complete(ask('hi [[mock:429x2]]'), live(), {
      onRetry: (attempt, error, delayMs) => retries.push({ attempt, code: error.code, delayMs }),
    });

    expect(response.content).toBe('echo: hi [[mock:429x2]]');
    expect(mock.requests).toHaveLength(3);
    expect(retries).toEqual([
      { attempt: 1, code: 'AGENTCELL_LLM_RATE_LIMITED', delayMs: 10 },
      { attempt: 2, code: 'AGENTCELL_LLM_RATE_LIMITED', delayMs: 10 },
    ]);
  });

  it('gives up after maxRetries with the last typed error', async () => {
    await expect(
      client({ maxRetries: 1 }).complete(ask('hi [[mock:429]]'), live()),
    ).rejects.toMatchObject({ code: 'AGENTCELL_LLM_RATE_LIMITED' });
    expect(mock.requests).toHaveLength(2);

    mock.reset();
    await expect(
      client({ maxRetries: 2 }).complete(ask('hi [[mock:500]]'), live()),
    ).rejects.toMatchObject({ code: 'AGENTCELL_LLM_REQUEST_FAILED', details: { status: 500 } });
    expect(mock.requests).toHaveLength(3);
  });

  it('does not retry a malformed response: AGENTCELL_LLM_BAD_RESPONSE', async () => {
    await expect(
      client({ maxRetries: 2 }).complete(ask('hi [[mock:malformed]]'), live()),
    ).rejects.toMatchObject({ code: 'AGENTCELL_LLM_BAD_RESPONSE' });
    expect(mock.requests).toHaveLength(1);
  });

  it('fails with AGENTCELL_LLM_REQUEST_FAILED when the server cannot be reached', async () => {
    const gone = await startMockLlm();
    const url = gone.url;
    await gone.close();

    await expect(
      new LlmClient({ baseUrl: url, maxRetries: 0 }).complete(ask('hi'), live()),
    ).rejects.toMatchObject({ code: 'AGENTCELL_LLM_REQUEST_FAILED' });
  });
});

describe('authentication', () => {
  it('401 fails with AGENTCELL_LLM_AUTH_FAILED and is not retried', async () => {
    const guarded = await startMockLlm({ apiKey: 'the-right-key' });
    try {
      const wrong = new LlmClient({ baseUrl: guarded.url, apiKey: 'a-wrong-key', maxRetries: 2 });

      const error = await rejectionOf(wrong.complete(ask('hi'), live()));

      expect(error).toMatchObject({ code: 'AGENTCELL_LLM_AUTH_FAILED', details: { status: 401 } });
      expect(error.message).not.toContain('a-wrong-key');
      expect(guarded.requests).toHaveLength(1);

      const right = new LlmClient({ baseUrl: guarded.url, apiKey: 'the-right-key' });
      await expect(right.complete(ask('hi'), live())).resolves.toMatchObject({
        content: 'echo: hi',
      });
    } finally {
      await guarded.close();
    }
  });
});

// Broken, these would hang rather than fail: fail fast instead.
describe('aborts', { timeout: 5_000 }, () => {
  it('an already aborted signal fails with AGENTCELL_INTERRUPTED without calling the server', async () => {
    const controller = new AbortController();
    controller.abort();

    await expect(client().complete(ask('hi'), controller.signal)).rejects.toMatchObject({
      code: 'AGENTCELL_INTERRUPTED',
    });
    expect(mock.requests).toHaveLength(0);
  });

  it('an abort during the call fails with AGENTCELL_INTERRUPTED and closes the connection', async () => {
    const controller = new AbortController();

    const call = client().complete(ask('wait [[mock:stall]]'), controller.signal);
    await mock.waitForRequests(1);
    controller.abort();

    await expect(call).rejects.toMatchObject({ code: 'AGENTCELL_INTERRUPTED' });
    const aborted = await mock.waitForAbort();
    expect(aborted.aborted).toBe(true);
    expect(mock.requests).toHaveLength(1);
  });

  it('rejects with the signal’s reason when it is an agentcell error', async () => {
    const controller = new AbortController();
    const reason = new InterruptedError('the user pressed stop', { details: { reason: 'stop' } });

    const call = client().complete(ask('wait [[mock:stall]]'), controller.signal);
    await mock.waitForRequests(1);
    controller.abort(reason);

    await expect(call).rejects.toBe(reason);
    await mock.waitForAbort();
  });

  it('an abort during the retry backoff stops the retries', async () => {
    const controller = new AbortController();

    const call = client({ maxRetries: 5 }).complete(ask('hi [[mock:500]]'), controller.signal, {
      onRetry: () => controller.abort(),
    });

    await expect(call).rejects.toMatchObject({ code: 'AGENTCELL_INTERRUPTED' });
    expect(mock.requests).toHaveLength(1);
  });
});

// Broken, these would hang rather than fail: fail fast instead.
describe('a stalled stream', { timeout: 5_000 }, () => {
  it('is cut off after idleTimeoutMs: AGENTCELL_LLM_REQUEST_FAILED with maxRetries 0', async () => {
    const call = client({ idleTimeoutMs: 100, maxRetries: 0 }).complete(
      ask('wait [[mock:stall]]'),
      live(),
    );

    const error = await rejectionOf(call);

    expect(error).toMatchObject({ code: 'AGENTCELL_LLM_REQUEST_FAILED' });
    expect(error.message).toContain('stalled');
    await mock.waitForAbort();
    expect(mock.requests).toHaveLength(1);
  });

  it('is retried, and the retry can succeed', async () => {
    const retries: Retry[] = [];

    const response = await client({ idleTimeoutMs: 100, maxRetries: 1 }).complete(
      ask('wait [[mock:stallx1]]'),
      live(),
      {
        onRetry: (attempt, error, delayMs) => retries.push({ attempt, code: error.code, delayMs }),
      },
    );

    expect(response.content).toBe('echo: wait [[mock:stallx1]]');
    expect(retries.map((retry) => retry.code)).toEqual(['AGENTCELL_LLM_REQUEST_FAILED']);
    expect(mock.requests).toHaveLength(2);
  });
});
