import OpenAI from 'openai';
import type {
  ChatCompletionChunk,
  ChatCompletionMessageParam,
} from 'openai/resources/chat/completions';
import { beforeAll, describe, expect, it } from 'vitest';
import { type MockLlmRequest, startMockLlm } from '../../src/testing/index.js';
import { useMockLlm } from '../support/harness.js';

const mock = useMockLlm();
let client: OpenAI;

beforeAll(() => {
  client = new OpenAI({ baseURL: mock.url, apiKey: 'k', maxRetries: 0 });
});

const MODEL = 'mock-model';

function user(content: string): ChatCompletionMessageParam[] {
  return [{ role: 'user', content }];
}

async function collect(stream: AsyncIterable<ChatCompletionChunk>): Promise<ChatCompletionChunk[]> {
  const chunks: ChatCompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

function streamedText(chunks: readonly ChatCompletionChunk[]): string {
  return chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
}

interface AssembledCall {
  id: string;
  name: string;
  arguments: string;
}

/** Rebuilds tool calls from deltas the way a real client has to. */
function streamedToolCalls(chunks: readonly ChatCompletionChunk[]): AssembledCall[] {
  const calls: AssembledCall[] = [];
  for (const chunk of chunks) {
    for (const delta of chunk.choices[0]?.delta.tool_calls ?? []) {
      const call = calls[delta.index] ?? { id: '', name: '', arguments: '' };
      calls[delta.index] = call;
      if (delta.id) call.id = delta.id;
      if (delta.function?.name) call.name = delta.function.name;
      call.arguments += delta.function?.arguments ?? '';
    }
  }
  return calls;
}

function post(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${mock.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer k', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const weatherRule = {
  match: /weather/i,
  steps: [
    {
      toolCalls: [
        { name: 'get_weather', arguments: { city: 'Paris' } },
        { name: 'get_time', arguments: '{"tz":"CET"}' },
      ],
    },
    { reply: 'Sunny at noon.' },
  ],
};

describe('replies', () => {
  it('answers a matching rule as JSON with usage', async () => {
    mock.setRules([{ match: 'hello', steps: [{ reply: 'Hi there!' }] }]);
    const completion = await client.chat.completions.create({
      model: MODEL,
      messages: user('well hello'),
    });
    expect(completion.object).toBe('chat.completion');
    expect(completion.model).toBe(MODEL);
    expect(completion.choices[0]?.message.content).toBe('Hi there!');
    expect(completion.choices[0]?.finish_reason).toBe('stop');
    // ceil(10 / 4) prompt tokens, ceil(9 / 4) completion tokens.
    expect(completion.usage).toEqual({ prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 });
  });

  it('streams a reply in chunks ending with a usage chunk', async () => {
    mock.setRules([{ match: 'hello', steps: [{ reply: 'Hi there, how are you today?' }] }]);
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: user('hello'),
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = await collect(stream);
    expect(streamedText(chunks)).toBe('Hi there, how are you today?');
    expect(chunks.length).toBeGreaterThan(5);
    expect(chunks[0]?.choices[0]?.delta.role).toBe('assistant');
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    const last = chunks.at(-1);
    expect(last?.choices).toEqual([]);
    expect(last?.usage).toEqual({ prompt_tokens: 2, completion_tokens: 7, total_tokens: 9 });
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe('stop');
  });

  it('sends no usage chunk unless asked, and ends with [DONE]', async () => {
    const res = await post({ model: MODEL, messages: user('hi'), stream: true });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await res.text();
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(text).not.toContain('"usage"');
    expect(text).toContain('"finish_reason":"stop"');
  });

  it('echoes the last user message by default', async () => {
    const completion = await client.chat.completions.create({
      model: MODEL,
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'first' },
        { role: 'assistant', content: 'ok' },
        { role: 'user', content: [{ type: 'text', text: 'second' }] },
      ],
    });
    expect(completion.choices[0]?.message.content).toBe('echo: second');
  });

  it('uses the first matching rule', async () => {
    mock.setRules([
      { match: 'nope', steps: [{ reply: 'wrong' }] },
      { match: /b+/g, steps: [{ reply: 'first' }] },
      { steps: [{ reply: 'catch-all' }] },
    ]);
    for (let i = 0; i < 2; i++) {
      const completion = await client.chat.completions.create({
        model: MODEL,
        messages: user('abc'),
      });
      expect(completion.choices[0]?.message.content).toBe('first');
    }
    const other = await client.chat.completions.create({ model: MODEL, messages: user('xyz') });
    expect(other.choices[0]?.message.content).toBe('catch-all');
  });
});

describe('tool calls', () => {
  it('returns parallel tool calls as JSON', async () => {
    mock.setRules([weatherRule]);
    const completion = await client.chat.completions.create({
      model: MODEL,
      messages: user('weather and time in Paris?'),
    });
    const choice = completion.choices[0];
    expect(choice?.finish_reason).toBe('tool_calls');
    expect(choice?.message.content).toBeNull();
    const calls = choice?.message.tool_calls ?? [];
    expect(calls).toHaveLength(2);
    expect(calls.map((c) => c.id)).toEqual([
      expect.stringMatching(/^call_\d+$/),
      expect.stringMatching(/^call_\d+$/),
    ]);
    expect(calls[0]?.id).not.toBe(calls[1]?.id);
    const [first, second] = calls;
    expect(first?.type === 'function' && first.function).toEqual({
      name: 'get_weather',
      arguments: '{"city":"Paris"}',
    });
    expect(second?.type === 'function' && second.function).toEqual({
      name: 'get_time',
      arguments: '{"tz":"CET"}',
    });
  });

  it('streams parallel tool calls as indexed deltas', async () => {
    mock.setRules([weatherRule]);
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: user('weather?'),
      stream: true,
    });
    const chunks = await collect(stream);
    const calls = streamedToolCalls(chunks);
    expect(calls.map(({ name, arguments: args }) => ({ name, args }))).toEqual([
      { name: 'get_weather', args: '{"city":"Paris"}' },
      { name: 'get_time', args: '{"tz":"CET"}' },
    ]);
    expect(calls[0]?.id).toMatch(/^call_\d+$/);
    expect(calls[0]?.id).not.toBe(calls[1]?.id);
    // Arguments arrive in fragments, as they do from a real provider.
    const fragments = chunks.filter(
      (c) => c.choices[0]?.delta.tool_calls?.[0]?.function?.arguments,
    );
    expect(fragments.length).toBeGreaterThan(2);
    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe('tool_calls');
  });

  it('moves to the next step after a tool round', async () => {
    mock.setRules([weatherRule]);
    const messages: ChatCompletionMessageParam[] = [
      { role: 'user', content: 'weather?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '{}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_a', content: 'sunny' },
    ];
    const completion = await client.chat.completions.create({ model: MODEL, messages });
    expect(completion.choices[0]?.message.content).toBe('Sunny at noon.');
    // Past the last step a reply repeats.
    const later = await client.chat.completions.create({
      model: MODEL,
      messages: [...messages, { role: 'assistant', content: 'x' }],
    });
    expect(later.choices[0]?.message.content).toBe('Sunny at noon.');
  });

  it('summarises tool results by default when the script has run out', async () => {
    mock.setRules([{ match: 'look', steps: [{ toolCalls: [{ name: 'a', arguments: {} }] }] }]);
    const completion = await client.chat.completions.create({
      model: MODEL,
      messages: [
        { role: 'user', content: 'look' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'c1', type: 'function', function: { name: 'a', arguments: '{}' } },
            { id: 'c2', type: 'function', function: { name: 'a', arguments: '{}' } },
          ],
        },
        { role: 'tool', tool_call_id: 'c1', content: 'one' },
        { role: 'tool', tool_call_id: 'c2', content: 'two' },
      ],
    });
    expect(completion.choices[0]?.message.content).toBe('tool results: one; two');
  });
});

describe('faults', () => {
  it('answers [[mock:429]] with retry headers in the OpenAI error shape', async () => {
    const res = await post({ model: MODEL, messages: user('go [[mock:429]]') });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after-ms')).toBe('10');
    expect(res.headers.get('retry-after')).toBe('0');
    const body = (await res.json()) as { error: { message: string; type: string; code: string } };
    expect(body.error).toMatchObject({ code: 'rate_limit_exceeded', type: expect.any(String) });
    await expect(
      client.chat.completions.create({ model: MODEL, messages: user('go [[mock:429]]') }),
    ).rejects.toMatchObject({ status: 429 });
  });

  it('fails only the first N requests with a counted marker', async () => {
    const messages = user('once [[mock:429x1]]');
    await expect(client.chat.completions.create({ model: MODEL, messages })).rejects.toBeInstanceOf(
      OpenAI.RateLimitError,
    );
    const ok = await client.chat.completions.create({ model: MODEL, messages });
    expect(ok.choices[0]?.message.content).toBe('echo: once [[mock:429x1]]');
    // Another message text has a counter of its own.
    await expect(
      client.chat.completions.create({ model: MODEL, messages: user('other [[mock:429x1]]') }),
    ).rejects.toMatchObject({ status: 429 });
    mock.reset();
    await expect(client.chat.completions.create({ model: MODEL, messages })).rejects.toMatchObject({
      status: 429,
    });
  });

  it('lets a retrying client through after the counted failures', async () => {
    const retrying = new OpenAI({ baseURL: mock.url, apiKey: 'k', maxRetries: 2 });
    const completion = await retrying.chat.completions.create({
      model: MODEL,
      messages: user('retry me [[mock:429x2]]'),
    });
    // retry-after-ms keeps the SDK's backoff at 10 ms.
    expect(completion.choices[0]?.message.content).toBe('echo: retry me [[mock:429x2]]');
    expect(mock.requests).toHaveLength(3);
  });

  it('answers [[mock:500]] with a server error', async () => {
    await expect(
      client.chat.completions.create({ model: MODEL, messages: user('[[mock:500]]') }),
    ).rejects.toMatchObject({ status: 500 });
  });

  it('sends malformed JSON and malformed streams', async () => {
    const messages = user('[[mock:malformed]]');
    // The SDK would log the unparsable chunk; the failure is what this test wants.
    const quiet = new OpenAI({ baseURL: mock.url, apiKey: 'k', maxRetries: 0, logLevel: 'off' });
    await expect(quiet.chat.completions.create({ model: MODEL, messages })).rejects.toThrow();
    const stream = await quiet.chat.completions.create({ model: MODEL, messages, stream: true });
    await expect(collect(stream)).rejects.toThrow();
    const res = await post({ model: MODEL, messages });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(() => JSON.parse(text)).toThrow();
  });

  it('stalls a stream after the first chunk until the client aborts', async () => {
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: MODEL, messages: user('hang [[mock:stall]]'), stream: true },
      { signal: controller.signal },
    );
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.done).toBe(false);
    controller.abort();
    // The SDK ends an aborted stream quietly or with an abort error depending on timing.
    await iterator.next().catch(() => undefined);
    const aborted = await mock.waitForAbort();
    expect(aborted.aborted).toBe(true);
    expect(aborted.body?.messages[0]?.content).toBe('hang [[mock:stall]]');
    expect(mock.requests[0]?.aborted).toBe(true);
  });

  it('stalls a JSON response after the headers', async () => {
    const controller = new AbortController();
    const aborted = new Promise<MockLlmRequest>((resolve) => mock.events.once('abort', resolve));
    const res = await fetch(`${mock.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: user('[[mock:stall]]') }),
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    controller.abort();
    await expect(res.text()).rejects.toThrow();
    expect(await aborted).toBe(mock.requests[0]);
    expect(mock.requests[0]?.aborted).toBe(true);
  });

  it('takes a fault from the x-mock-fault header', async () => {
    const res = await post({ model: MODEL, messages: user('plain') }, { 'x-mock-fault': '500' });
    expect(res.status).toBe(500);
    const body = (await res.json()) as { error: { message: string; type: string; code: unknown } };
    expect(body.error.type).toBe('server_error');
  });

  it('runs counted fault steps of a rule before the step they guard', async () => {
    mock.setRules([
      {
        match: 'flaky',
        steps: [
          { fault: { kind: '429', times: 1 } },
          { toolCalls: [{ name: 't', arguments: {} }] },
          { fault: { kind: '500', times: 1 } },
          { reply: 'done' },
        ],
      },
    ]);
    const turn: ChatCompletionMessageParam[] = user('flaky');
    await expect(
      client.chat.completions.create({ model: MODEL, messages: turn }),
    ).rejects.toMatchObject({ status: 429 });
    const toolStep = await client.chat.completions.create({ model: MODEL, messages: turn });
    const call = toolStep.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === 'function' && call.function.name).toBe('t');
    const afterTools: ChatCompletionMessageParam[] = [
      ...turn,
      {
        role: 'assistant',
        content: null,
        tool_calls: toolStep.choices[0]?.message.tool_calls ?? [],
      },
      { role: 'tool', tool_call_id: call?.id ?? '', content: 'r' },
    ];
    await expect(
      client.chat.completions.create({ model: MODEL, messages: afterTools }),
    ).rejects.toMatchObject({ status: 500 });
    const final = await client.chat.completions.create({ model: MODEL, messages: afterTools });
    expect(final.choices[0]?.message.content).toBe('done');
  });
});

describe('latency', () => {
  it('sends the first chunk of a paced stream before the rest', async () => {
    mock.setLatency({ firstTokenMs: 5, tokensPerSecond: 50 });
    const res = await post({
      model: MODEL,
      messages: user('a reply long enough to need many chunks'),
      stream: true,
    });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    const first = decoder.decode((await reader.read()).value);
    expect(first).toContain('"role":"assistant"');
    expect(first).not.toContain('[DONE]');
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read())
      rest += decoder.decode(r.value);
    expect(rest.endsWith('data: [DONE]\n\n')).toBe(true);
  });

  it('delays a slow JSON response behind a fast one', async () => {
    // Wide margins: the fast request must finish while the slow one is still waiting.
    mock.setLatency({ firstTokenMs: 250, tokensPerSecond: 100 });
    const order: string[] = [];
    const slow = client.chat.completions
      .create({ model: MODEL, messages: user('slow') })
      .then(() => order.push('slow'));
    await mock.waitForRequests(1);
    mock.setLatency({});
    await client.chat.completions.create({ model: MODEL, messages: user('fast') });
    order.push('fast');
    await slow;
    expect(order).toEqual(['fast', 'slow']);
  });

  it('clears pacing timers when the client goes away', async () => {
    mock.setLatency({ firstTokenMs: 1, tokensPerSecond: 1 });
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: MODEL, messages: user('long long long long'), stream: true },
      { signal: controller.signal },
    );
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.next();
    controller.abort();
    const aborted = await mock.waitForAbort();
    expect(aborted.aborted).toBe(true);
  });
});

describe('http surface', () => {
  it('lists models', async () => {
    const page = await client.models.list();
    expect(page.data.map((m) => m.id)).toEqual(['mock-model']);
  });

  it('answers unknown paths with 404 and bad JSON with 400', async () => {
    const missing = await fetch(`${mock.url}/nope`);
    expect(missing.status).toBe(404);
    const missingBody = (await missing.json()) as { error: { message: string } };
    expect(missingBody.error.message).toContain('/v1/nope');
    const bad = await post('{not json');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { type: string } }).error.type).toBe(
      'invalid_request_error',
    );
    const shapeless = await post({ model: MODEL });
    expect(shapeless.status).toBe(400);
  });

  it('records every request with lowercased headers', async () => {
    const tools = [
      {
        type: 'function' as const,
        function: { name: 'lookup', parameters: { type: 'object', properties: {} } },
      },
    ];
    await client.chat.completions.create({ model: MODEL, messages: user('rec'), tools });
    await fetch(`${mock.url}/models`, { headers: { 'X-Custom': 'Yes' } });
    await mock.waitForRequests(2);
    const [chat, models] = mock.requests;
    expect(chat?.method).toBe('POST');
    expect(chat?.path).toBe('/v1/chat/completions');
    expect(chat?.headers.authorization).toBe('Bearer k');
    expect(chat?.body?.tools).toEqual(tools);
    expect(chat?.body?.messages).toEqual(user('rec'));
    expect(chat?.aborted).toBe(false);
    expect(typeof chat?.receivedAt).toBe('number');
    expect(models?.headers['x-custom']).toBe('Yes');
    expect(models?.body).toBeUndefined();
  });

  it('rejects a wrong or missing API key when one is configured', async () => {
    const locked = await startMockLlm({ apiKey: 'secret', models: ['a', 'b'] });
    try {
      const wrong = new OpenAI({ baseURL: locked.url, apiKey: 'k', maxRetries: 0 });
      await expect(wrong.models.list()).rejects.toMatchObject({ status: 401 });
      const bare = await fetch(`${locked.url}/chat/completions`, { method: 'POST', body: '{}' });
      expect(bare.status).toBe(401);
      const right = new OpenAI({ baseURL: locked.url, apiKey: 'secret', maxRetries: 0 });
      expect((await right.models.list()).data.map((m) => m.id)).toEqual(['a', 'b']);
      expect(locked.requests.map((r) => r.headers.authorization)).toEqual([
        'Bearer k',
        undefined,
        'Bearer secret',
      ]);
    } finally {
      await locked.close();
    }
  });

  it('closes stalled connections on close()', async () => {
    const other = await startMockLlm();
    const res = await fetch(`${other.url}/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: MODEL, messages: user('[[mock:stall]]'), stream: true }),
    });
    const reader = res.body!.getReader();
    await reader.read();
    const aborted = other.waitForAbort();
    await other.close();
    await other.close();
    expect((await aborted).aborted).toBe(true);
    await expect(reader.read()).rejects.toThrow();
  });
});

describe('options', () => {
  it('refuses unknown options and bad values, naming each, as AGENTCELL_OPTIONS_INVALID', async () => {
    const bad = { port: 70_000, latancy: {}, latency: { firstTokenMs: -1 } };
    const caught = await startMockLlm(bad as never).catch((error: unknown) => error);
    expect(caught).toMatchObject({ code: 'AGENTCELL_OPTIONS_INVALID' });
    const message = (caught as Error).message;
    expect(message).toContain('options.port');
    expect(message).toContain('latancy');
    expect(message).toContain('options.latency.firstTokenMs');
  });

  it('checks a latency set later, keeping the one it had', async () => {
    expect(() => mock.setLatency({ tokensPerSecond: -5 })).toThrow(
      expect.objectContaining({ code: 'AGENTCELL_OPTIONS_INVALID' }),
    );
    const completion = await client.chat.completions.create({
      model: MODEL,
      messages: user('still fine'),
    });
    expect(completion.choices[0]?.message.content).toBe('echo: still fine');
  });
});
