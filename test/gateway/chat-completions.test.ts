/**
 * The OpenAI-compatible routes, driven by the real `openai` SDK: models, completions plain and
 * streamed, sessions picked from each client's header or field, history kept by the journal or
 * by the client, one-turn sessions that are not kept, tools run inside the session, and bad
 * input refused in OpenAI's error shape before anything runs.
 */
import OpenAI, { APIError } from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { describe, expect, it } from 'vitest';
import type { SupervisorEvents } from '../../src/runtime/events.js';
import { lastUserText } from '../../src/testing/mock-llm-script.js';
import { defineTool } from '../../src/tools/define-tool.js';
import { forwardTo, messagesOf } from '../support/harness.js';
import { postBytes } from './helpers.js';
import { serveGateway, useGateway, useWorld } from './setup.js';

const ACME = 'acme-token-0123456789abcdef';
const GLOBEX = 'globex-token-0123456789abcdef';
const BODY_LIMIT = 4_096;

const lookups: unknown[] = [];
const lookup = defineTool({
  name: 'lookup',
  description: 'Looks the weather up',
  host: true,
  run: (args) => {
    lookups.push(args);
    return 'sunny, 21 °C';
  },
});

const world = useWorld(({ supervisor, agent, mock }) => {
  mock.setRules([
    {
      match: /^weather/,
      steps: [
        { toolCalls: [{ name: 'lookup', arguments: { city: 'Paris' } }] },
        { reply: 'Sunny in Paris.' },
      ],
    },
  ]);
  supervisor.register('echo', agent('echo', { tools: [lookup] }));
  supervisor.register('other', agent('other'), { warmPoolSize: 0 });
});
const served = useGateway(world, {
  tenants: { [ACME]: { id: 'acme' }, [GLOBEX]: { id: 'globex', agents: ['echo'] } },
  maxBodyBytes: BODY_LIMIT,
});
const acme = forwardTo(() => sdk(ACME));
const globex = forwardTo(() => sdk(GLOBEX));

function sdk(token: string, base = served.server.url): OpenAI {
  // No retries: a refused request must reach the test as the one answer it got.
  return new OpenAI({ baseURL: `${base}/v1`, apiKey: token, maxRetries: 0 });
}

type Message = OpenAI.Chat.ChatCompletionMessageParam;
const user = (content: string): Message => ({ role: 'user', content });
const assistant = (content: string): Message => ({ role: 'assistant', content });

/** A plain completion on `echo`, with `headers`; the reply's text and response headers. */
async function ask(
  messages: Message[],
  headers: Record<string, string> = {},
  extra: Record<string, unknown> = {},
  client: OpenAI = acme,
): Promise<{ text: string; headers: Headers }> {
  const { data, response } = await client.chat.completions
    .create({ model: 'echo', messages, ...extra }, { headers })
    .withResponse();
  return { text: data.choices[0]?.message.content ?? '', headers: response.headers };
}

/** The user and assistant texts of the last request the mock got whose last user text is `last`. */
function dialogueSeenFor(last: string): string[] {
  const index = world.mock.requests.findLastIndex(
    (request) => request.body !== undefined && lastUserText(request.body.messages) === last,
  );
  if (index < 0) throw new Error(`the mock got no request ending in ${JSON.stringify(last)}`);
  return messagesOf(world.mock, index)
    .filter((message) => message.role === 'user' || message.role === 'assistant')
    .map((message) => `${message.role}: ${String(message.content)}`);
}

/** The error the SDK raised for `promise`. */
async function apiErrorOf(promise: Promise<unknown>): Promise<APIError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof APIError) return error;
    throw error;
  }
  throw new Error('expected the request to fail');
}

describe('GET /v1/models', () => {
  it("lists the tenant's agents as OpenAI models", async () => {
    const acmeModels = await acme.models.list();
    expect(acmeModels.data.map((model) => model.id)).toEqual(['echo', 'other']);
    expect(acmeModels.data[0]).toEqual({
      id: 'echo',
      object: 'model',
      created: expect.any(Number),
      owned_by: 'agentcell',
    });
    expect((await globex.models.list()).data.map((model) => model.id)).toEqual(['echo']);
  });

  it('refuses a caller without a valid token, in OpenAI’s error shape', async () => {
    const error = await apiErrorOf(sdk('not-a-valid-token-at-all').models.list());
    expect(error.status).toBe(401);
    expect(error.error).toEqual({
      message: expect.stringContaining('bearer token'),
      type: 'authentication_error',
      code: 'AGENTCELL_UNAUTHORIZED',
    });
  });
});

describe('POST /v1/chat/completions', () => {
  it('answers a plain completion with the session it ran in', async () => {
    const { data, response } = await acme.chat.completions
      .create(
        { model: 'echo', messages: [user('hello there')] },
        { headers: { 'X-Agentcell-Session': 'plain-1' } },
      )
      .withResponse();
    expect(data).toMatchObject({
      id: expect.stringMatching(/^chatcmpl-/),
      object: 'chat.completion',
      model: 'echo',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'echo: hello there' },
          finish_reason: 'stop',
        },
      ],
    });
    expect(data.usage?.total_tokens).toBeGreaterThan(0);
    expect(response.headers.get('x-agentcell-session')).toBe('plain-1');
    expect(response.headers.get('x-agentcell-session-source')).toBe('header:x-agentcell-session');
    expect(world.supervisor.sessionKeys()).toContain('acme:plain-1');
  });

  it('streams OpenAI chunks: role, content deltas, finish, usage, then [DONE]', async () => {
    const stream = await acme.chat.completions.create(
      {
        model: 'echo',
        messages: [user('stream me please')],
        stream: true,
        stream_options: { include_usage: true },
      },
      { headers: { 'X-Agentcell-Session': 'stream-1' } },
    );
    const chunks: ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const [first, ...rest] = chunks;
    expect(first?.choices[0]?.delta).toEqual({ role: 'assistant', content: '' });
    const usageChunk = rest.at(-1);
    const finish = rest.at(-2);
    const deltas = rest.slice(0, -2);
    expect(deltas.length).toBeGreaterThan(0);
    expect(deltas.map((chunk) => chunk.choices[0]?.delta.content).join('')).toBe(
      'echo: stream me please',
    );
    for (const chunk of chunks.slice(0, -1)) {
      expect(chunk).toMatchObject({ object: 'chat.completion.chunk', model: 'echo', usage: null });
      expect(chunk.id).toBe(first?.id);
    }
    expect(finish?.choices).toEqual([
      { index: 0, delta: {}, logprobs: null, finish_reason: 'stop' },
    ]);
    expect(usageChunk?.choices).toEqual([]);
    expect(usageChunk?.usage?.total_tokens).toBeGreaterThan(0);

    // The raw stream ends with [DONE]; without include_usage there is no usage at all.
    const raw = await acme.chat.completions
      .create(
        { model: 'echo', messages: [user('raw')], stream: true },
        { headers: { 'X-Agentcell-Session': 'stream-1' } },
      )
      .asResponse();
    const text = await raw.text();
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(text).not.toContain('usage');
  });

  it('keeps two interleaved conversations apart, each turn seeing its own earlier ones', async () => {
    const a = { 'X-Agentcell-Session': 'inter-a' };
    const b = { 'X-Agentcell-Session': 'inter-b' };
    await ask([user('a1')], a);
    await ask([user('b1')], b);
    // The server keeps the history: a client may send only the new message...
    expect((await ask([user('a2')], a)).text).toBe('echo: a2');
    // ...or the whole transcript, consistent with the journal.
    await ask([user('b1'), assistant('echo: b1'), user('b2')], b);
    expect(dialogueSeenFor('a2')).toEqual(['user: a1', 'assistant: echo: a1', 'user: a2']);
    expect(dialogueSeenFor('b2')).toEqual(['user: b1', 'assistant: echo: b1', 'user: b2']);
  });

  it('refuses a transcript that contradicts the journal (409), running nothing', async () => {
    const headers = { 'X-Agentcell-Session': 'conflict-1' };
    await ask([user('c1')], headers);
    const before = world.mock.requests.length;
    const error = await apiErrorOf(
      ask([user('c1 edited'), assistant('echo: c1'), user('c2')], headers),
    );
    expect(error.status).toBe(409);
    expect(error.code).toBe('AGENTCELL_HISTORY_CONFLICT');
    expect(error.message).toContain('X-Agentcell-History: client');
    expect(world.mock.requests.length).toBe(before);
  });

  it('client history replaces the journal’s: edit and regenerate', async () => {
    const headers = { 'X-Agentcell-Session': 'edit-1', 'X-Agentcell-History': 'client' };
    await ask([user('e1')], headers);
    await ask([user('e1'), assistant('echo: e1'), user('e2')], headers);
    // Edit the first message: the conversation restarts from the edited transcript.
    await ask([user('e1 edited')], headers);
    expect(dialogueSeenFor('e1 edited')).toEqual(['user: e1 edited']);
    // Regenerate the last answer: the same user message again, without the old answer.
    await ask([user('e1 edited'), assistant('echo: e1 edited'), user('e3')], headers);
    await ask([user('e1 edited'), assistant('echo: e1 edited'), user('e3')], headers);
    expect(dialogueSeenFor('e3')).toEqual([
      'user: e1 edited',
      'assistant: echo: e1 edited',
      'user: e3',
    ]);
    const session = await world.supervisor.find('acme:edit-1');
    expect((await session?.history())?.map((message) => message.content)).toEqual([
      'e1 edited',
      'echo: e1 edited',
      'e3',
      'echo: e3',
    ]);
  });

  it.each([
    ['header:x-agentcell-session', { 'X-Agentcell-Session': 'src-own' }, {}, 'src-own'],
    ['header:x-session-id', { 'X-Session-Id': 'src-generic' }, {}, 'src-generic'],
    ['body:session_id', {}, { session_id: 'src-body' }, 'src-body'],
    ['header:x-openwebui-chat-id', { 'X-OpenWebUI-Chat-Id': 'src-owui' }, {}, 'src-owui'],
    ['header:x-conversation-id', { 'X-Conversation-Id': 'src-librechat' }, {}, 'src-librechat'],
    ['body:prompt_cache_key', {}, { prompt_cache_key: 'src-cache' }, 'src-cache'],
    ['body:user', {}, { user: 'src-user' }, 'src-user'],
  ])('takes the session key from %s', async (source, headers, extra, key) => {
    const answer = await ask([user(`via ${source}`)], headers, extra);
    expect(answer.headers.get('x-agentcell-session-source')).toBe(source);
    expect(answer.headers.get('x-agentcell-session')).toBe(key);
    expect(world.supervisor.sessionKeys()).toContain(`acme:${key}`);
  });

  it('takes the first source present, in the configured order', async () => {
    const answer = await ask(
      [user('both')],
      { 'X-OpenWebUI-Chat-Id': 'order-chat', 'X-Conversation-Id': 'order-conv' },
      { user: 'order-user', prompt_cache_key: 'order-cache' },
    );
    expect(answer.headers.get('x-agentcell-session-source')).toBe('header:x-openwebui-chat-id');

    const custom = await serveGateway(world.supervisor, {
      tenants: { [ACME]: { id: 'acme' } },
      chatCompletions: { sessionKeySources: ['body:user', 'header:x-openwebui-chat-id'] },
    });
    try {
      const reordered = await ask(
        [user('reordered')],
        { 'X-OpenWebUI-Chat-Id': 'order-chat' },
        { user: 'order-user' },
        sdk(ACME, custom.server.url),
      );
      expect(reordered.headers.get('x-agentcell-session-source')).toBe('body:user');
    } finally {
      await custom.close();
    }
  });

  it('a key from `user` alone leaves the history to the client: one user, several chats', async () => {
    const me = { user: 'u-many-chats' };
    await ask([user('chat one')], {}, me);
    await ask([user('chat two')], {}, me);
    expect(dialogueSeenFor('chat two')).toEqual(['user: chat two']);
    await ask([user('chat one'), assistant('echo: chat one'), user('one more')], {}, me);
    expect(dialogueSeenFor('one more')).toEqual([
      'user: chat one',
      'assistant: echo: chat one',
      'user: one more',
    ]);
  });

  it('without a key runs a one-turn session and keeps nothing', async () => {
    const closed = new Promise<string>((resolve) => {
      const listener = ({ key }: SupervisorEvents['session:close'][0]) => {
        if (!key.startsWith('acme:once-')) return;
        world.supervisor.off('session:close', listener);
        resolve(key);
      };
      world.supervisor.on('session:close', listener);
    });
    const answer = await ask([user('remember me'), assistant('no'), user('forget me')]);
    expect(answer.text).toBe('echo: forget me');
    expect(answer.headers.get('x-agentcell-session-source')).toBe('none');
    expect(answer.headers.get('x-agentcell-session')).toBeNull();
    // Stateless, as a plain completion is: the request's messages were the history.
    expect(dialogueSeenFor('forget me')).toEqual([
      'user: remember me',
      'assistant: no',
      'user: forget me',
    ]);
    const key = await closed;
    await expect.poll(() => world.store.read(key)).toEqual([]);
    expect(world.supervisor.sessionKeys()).not.toContain(key);
  });

  it('runs tools inside the session and answers with the final text', async () => {
    const plain = await ask([user('weather in Paris?')], { 'X-Agentcell-Session': 'tools-1' });
    expect(plain.text).toBe('Sunny in Paris.');
    expect(lookups).toEqual([{ city: 'Paris' }]);
    const stream = await acme.chat.completions.create(
      { model: 'echo', messages: [user('weather again?')], stream: true },
      { headers: { 'X-Agentcell-Session': 'tools-1' } },
    );
    const parts: string[] = [];
    for await (const chunk of stream) {
      expect(chunk.choices[0]?.delta.tool_calls).toBeUndefined();
      parts.push(chunk.choices[0]?.delta.content ?? '');
    }
    expect(parts.join('')).toBe('Sunny in Paris.');
    expect(lookups.length).toBe(2);
  });

  it('keeps tenants apart under one key, and counts the turns in the metrics', async () => {
    const headers = { 'X-Agentcell-Session': 'shared-key' };
    await ask([user('acme secret')], headers);
    await ask([user('globex here')], headers, {}, globex);
    expect(dialogueSeenFor('globex here')).toEqual(['user: globex here']);
    expect(served.gateway.metrics()).toMatch(/route="POST \/v1\/chat\/completions"[^\n]* [1-9]/);
  });

  it('reports a failure after the stream started as an error event', async () => {
    const stream = await acme.chat.completions.create(
      { model: 'echo', messages: [user('fail [[mock:malformed]]')], stream: true },
      { headers: { 'X-Agentcell-Session': 'fails-1' } },
    );
    const error = await apiErrorOf(
      (async () => {
        for await (const _ of stream) {
          // Reads until the error event.
        }
      })(),
    );
    expect(error.error).toMatchObject({ code: 'AGENTCELL_LLM_BAD_RESPONSE', type: 'server_error' });
  });
});

describe('bad input: a typed 4xx in OpenAI’s shape, nothing run', () => {
  const create = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    acme.chat.completions.create(
      {
        model: 'echo',
        messages: [user('hi')],
        ...body,
      } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming,
      { headers },
    );

  it.each([
    ['an unknown model', { model: 'nobody' }, {}, 404, 'AGENTCELL_AGENT_NOT_REGISTERED'],
    ['no messages', { messages: [] }, {}, 400, 'AGENTCELL_MESSAGE_INVALID'],
    [
      'a malformed message',
      { messages: [{ role: 'user', content: 42 }] },
      {},
      400,
      'AGENTCELL_MESSAGE_INVALID',
    ],
    ['messages that are not a list', { messages: 'hi' }, {}, 400, 'AGENTCELL_MESSAGE_INVALID'],
    [
      'a last message not from the user',
      { messages: [user('q'), assistant('a')] },
      {},
      400,
      'AGENTCELL_MESSAGE_INVALID',
    ],
    [
      'a tool message',
      { messages: [{ role: 'tool', tool_call_id: 'x', content: 'r' }, user('q')] },
      {},
      400,
      'AGENTCELL_MESSAGE_INVALID',
    ],
    [
      'an image part',
      { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] },
      {},
      400,
      'AGENTCELL_MESSAGE_INVALID',
    ],
    ['an empty user message', { messages: [user('  ')] }, {}, 400, 'AGENTCELL_MESSAGE_INVALID'],
    [
      'an oversized body',
      { messages: [user('x'.repeat(BODY_LIMIT))] },
      {},
      413,
      'AGENTCELL_BODY_TOO_LARGE',
    ],
    [
      'a bad history header',
      {},
      { 'X-Agentcell-History': 'both' },
      400,
      'AGENTCELL_MESSAGE_INVALID',
    ],
    [
      'another tenant’s key (X-Agentcell-Session)',
      {},
      { 'X-Agentcell-Session': 'globex:k' },
      400,
      'AGENTCELL_SESSION_KEY_INVALID',
    ],
    [
      'another tenant’s key (X-Session-Id)',
      {},
      { 'X-Session-Id': 'globex:k' },
      400,
      'AGENTCELL_SESSION_KEY_INVALID',
    ],
    [
      'another tenant’s key (X-OpenWebUI-Chat-Id)',
      {},
      { 'X-OpenWebUI-Chat-Id': 'globex:k' },
      400,
      'AGENTCELL_SESSION_KEY_INVALID',
    ],
    [
      'another tenant’s key (X-Conversation-Id)',
      {},
      { 'X-Conversation-Id': 'globex:k' },
      400,
      'AGENTCELL_SESSION_KEY_INVALID',
    ],
    [
      'another tenant’s key (session_id)',
      { session_id: 'globex:k' },
      {},
      400,
      'AGENTCELL_SESSION_KEY_INVALID',
    ],
    [
      'an invalid key',
      {},
      { 'X-Agentcell-Session': '../etc' },
      400,
      'AGENTCELL_SESSION_KEY_INVALID',
    ],
  ])('%s', async (_what, body, headers, status, code) => {
    const requests = world.mock.requests.length;
    const sessions = world.supervisor.sessionKeys().length;
    const error = await apiErrorOf(create(body, headers));
    expect({ status: error.status, code: error.code }).toEqual({ status, code });
    expect(Object.keys(error.error as object).sort()).toEqual(['code', 'message', 'type']);
    expect(world.mock.requests.length).toBe(requests);
    expect(world.supervisor.sessionKeys().length).toBe(sessions);
  });

  it('a model the tenant may not use is an unknown model', async () => {
    const error = await apiErrorOf(
      globex.chat.completions.create({ model: 'other', messages: [user('hi')] }),
    );
    expect({ status: error.status, code: error.code }).toEqual({
      status: 404,
      code: 'AGENTCELL_AGENT_NOT_REGISTERED',
    });
  });

  it('a body that is not UTF-8', async () => {
    const bad = new Uint8Array(
      Buffer.concat([
        Buffer.from('{"model":"echo","messages":[{"role":"user","content":"caf'),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('"}]}'),
      ]),
    );
    const answer = await postBytes(`${served.server.url}/v1/chat/completions`, ACME, bad);
    expect(answer.status).toBe(400);
    expect(answer.json).toEqual({
      error: {
        message: expect.stringContaining('UTF-8'),
        type: 'invalid_request_error',
        code: 'AGENTCELL_MESSAGE_INVALID',
      },
    });
  });
});
