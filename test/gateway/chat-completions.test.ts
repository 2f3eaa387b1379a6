/**
 * `POST /v1/chat/completions` driven by the real `openai` SDK: completions plain and streamed,
 * sessions picked from each client's header or field, history kept by the journal or by the
 * client, one-turn sessions that are not kept, and tools run inside the session.
 */
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { describe, expect, it } from 'vitest';
import type { SupervisorEvents } from '../../src/runtime/events.js';
import { ACME, apiErrorOf, assistant, useOpenAiWorld, user } from './openai-setup.js';
import { serveGateway } from './setup.js';

const { world, served, lookups, acme, globex, sdk, ask, dialogueSeenFor } = useOpenAiWorld();

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
    expect(await served.gateway.metrics()).toMatch(
      /route="POST \/v1\/chat\/completions"[^\n]* [1-9]/,
    );
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
