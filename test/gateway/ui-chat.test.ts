/**
 * `POST /v1/ui/chat` and `GET /v1/ui/chat/:id/stream` driven by the `ai` package's own client
 * (`DefaultChatTransport`, `readUIMessageStream`): text and tool turns, agentcell's data parts,
 * the session's history across messages, regenerate, and resuming a dropped stream.
 */
import { DefaultChatTransport, type UIMessage } from 'ai';
import { describe, expect, it } from 'vitest';
import { parseExposition } from './helpers.js';
import { serveGateway, until } from './setup.js';
import {
  ACME,
  assemble,
  assistantSaid,
  dataOf,
  GLOBEX,
  UiChat,
  userMessage,
  useUiWorld,
} from './ui-chat-setup.js';

const { world, served, transport, dialogueSeenFor, requestsFor } = useUiWorld();

/** The `type` of every chunk of a raw stream, and whether it ended with [DONE]. */
function chunkTypes(text: string): { types: string[]; done: boolean } {
  const data = text
    .split('\n\n')
    .filter((frame) => frame.startsWith('data: '))
    .map((frame) => frame.slice('data: '.length));
  const done = data.at(-1) === '[DONE]';
  const types = data
    .filter((each) => each !== '[DONE]')
    .map((each) => (JSON.parse(each) as { type: string }).type);
  return { types, done };
}

describe('POST /v1/ui/chat', () => {
  it('streams a text turn as UI message chunks, with the session, turn and usage as data parts', async () => {
    const message = await new UiChat(transport(), 'ui-text').send('hello there');
    expect(message.role).toBe('assistant');
    expect(message.parts.filter((part) => part.type === 'text')).toEqual([
      { type: 'text', text: 'echo: hello there', state: 'done' },
    ]);
    const turn = dataOf(message, 'agentcell-turn') as { turnId: string };
    expect(turn.turnId).toEqual(expect.any(String));
    expect(message.id).toBe(turn.turnId);
    expect(dataOf(message, 'agentcell-session')).toEqual({ key: 'ui-text', agent: 'echo' });
    expect(dataOf(message, 'agentcell-usage')).toMatchObject({ totalTokens: expect.any(Number) });
    expect(world.supervisor.sessionKeys()).toContain('acme:ui-text');
  });

  it('answers with the v1 header and the chunk sequence, ending in [DONE]', async () => {
    const response = await fetch(`${served.server.url}/v1/ui/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ACME}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        id: 'ui-raw',
        messages: [userMessage('raw please')],
        trigger: 'submit-message',
      }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-vercel-ai-ui-message-stream')).toBe('v1');
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const { types, done } = chunkTypes(await response.text());
    expect(done).toBe(true);
    const deltas = types.filter((type) => type === 'text-delta').length;
    expect(deltas).toBeGreaterThan(0);
    expect(types).toEqual([
      'start',
      'data-agentcell-session',
      'data-agentcell-turn',
      'start-step',
      'text-start',
      ...Array<string>(deltas).fill('text-delta'),
      'text-end',
      'finish-step',
      'data-agentcell-usage',
      'finish',
    ]);
  });

  it('streams the tools the session ran: input, output and the final text, step by step', async () => {
    const message = await new UiChat(transport(), 'ui-tools').send('weather in Paris?');
    const parts = message.parts.filter((part) => !part.type.startsWith('data-'));
    expect(parts).toEqual([
      { type: 'step-start' },
      expect.objectContaining({
        type: 'tool-lookup',
        state: 'output-available',
        input: { city: 'Paris' },
        output: 'sunny, 21 °C',
        toolCallId: expect.any(String),
      }),
      { type: 'step-start' },
      { type: 'text', text: 'Sunny in Paris.', state: 'done' },
    ]);
  });

  it('reports a failed tool as its error, and the turn goes on', async () => {
    const message = await new UiChat(transport(), 'ui-broken').send('broken tool please');
    expect(message.parts).toContainEqual(
      expect.objectContaining({
        type: 'tool-broken',
        state: 'output-error',
        errorText: expect.stringContaining('the broken tool broke'),
      }),
    );
    const text = message.parts.filter((part) => part.type === 'text');
    expect(text).toEqual([{ type: 'text', text: 'It broke.', state: 'done' }]);
  });

  it('runs a chat’s messages in one session: the second sees the first', async () => {
    const chat = new UiChat(transport(), 'ui-two');
    await chat.send('first one');
    await chat.send('second one');
    expect(dialogueSeenFor('second one')).toEqual([
      'user: first one',
      'assistant: echo: first one',
      'user: second one',
    ]);
    // Another tenant's chat of the same id is another session.
    await new UiChat(transport(GLOBEX), 'ui-two').send('third one');
    expect(dialogueSeenFor('third one')).toEqual(['user: third one']);
  });

  it('regenerates the last answer on the history before it', async () => {
    const chat = new UiChat(transport(), 'ui-regen');
    await chat.send('r1');
    const answer = await chat.send('r2');
    const again = await chat.regenerate();
    expect(again.id).not.toBe(answer.id);
    expect(requestsFor('r2')).toBe(2);
    expect(dialogueSeenFor('r2')).toEqual(['user: r1', 'assistant: echo: r1', 'user: r2']);
    const session = await world.supervisor.find('acme:ui-regen');
    const history = (await session?.history()) ?? [];
    expect(history.map((message) => `${message.role}: ${message.content}`)).toEqual([
      'user: r1',
      'assistant: echo: r1',
      'user: r2',
      'assistant: echo: r2',
    ]);
  });

  it('takes only the newest message from a client that sends no more (prepareSendMessagesRequest)', async () => {
    const lean = new DefaultChatTransport<UIMessage>({
      api: `${served.server.url}/v1/ui/chat`,
      headers: { authorization: `Bearer ${ACME}` },
      prepareSendMessagesRequest: ({ id, messages, trigger, messageId }) => ({
        body: { id, message: messages.at(-1), trigger, messageId },
      }),
    });
    const chat = new UiChat(lean, 'ui-lean');
    await chat.send('lean one');
    await chat.send('lean two');
    expect(dialogueSeenFor('lean two')).toEqual([
      'user: lean one',
      'assistant: echo: lean one',
      'user: lean two',
    ]);
  });

  it('adopts the client’s transcript as the history of a chat the session does not know', async () => {
    const chat = new UiChat(transport(), 'ui-adopt');
    chat.messages.push(userMessage('kept by the client'), assistantSaid('an answer it kept'));
    await chat.send('and now?');
    expect(dialogueSeenFor('and now?')).toEqual([
      'user: kept by the client',
      'assistant: an answer it kept',
      'user: and now?',
    ]);
  });

  it('runs the agent the body names', async () => {
    const message = await new UiChat(transport(ACME, { agent: 'other' }), 'ui-other').send('hi');
    expect(dataOf(message, 'agentcell-session')).toEqual({ key: 'ui-other', agent: 'other' });
  });

  it('ends a turn that fails after the start with an error chunk, then finish', async () => {
    const stream = await transport().sendMessages({
      chatId: 'ui-explode',
      messages: [userMessage('explode now')],
      trigger: 'submit-message',
      messageId: undefined,
      abortSignal: undefined,
    });
    const { message, errors } = await assemble(stream);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toEqual(expect.any(String));
    expect(dataOf(message, 'agentcell-session')).toEqual({ key: 'ui-explode', agent: 'echo' });
  });
});

describe('GET /v1/ui/chat/:id/stream', () => {
  it('replays the running turn to a client that reconnects, then streams it live to the end', async () => {
    const chatId = 'ui-resume';
    const client = transport();
    const first = new AbortController();
    const stream = await client.sendMessages({
      chatId,
      messages: [userMessage('hold the line')],
      trigger: 'submit-message',
      messageId: undefined,
      abortSignal: first.signal,
    });
    const reader = stream.getReader();
    // The turn is held inside its tool call: the first connection has its start, then drops.
    const held = await world.gate.next();
    expect((await reader.read()).value?.type).toBe('start');
    first.abort();
    await reader.read().catch(() => undefined);

    // The reply streams slowly, so the reconnected client reads most of it live.
    world.mock.setLatency({ tokensPerSecond: 50 });
    try {
      // Another tenant's chat of that id runs nothing.
      expect(await transport(GLOBEX).reconnectToStream({ chatId })).toBeNull();
      const resumed = await client.reconnectToStream({ chatId });
      if (!resumed) throw new Error('expected the running turn to resume');
      held.release();
      const { message, errors } = await assemble(resumed);
      expect(errors).toEqual([]);
      expect(message.parts.filter((part) => !part.type.startsWith('data-'))).toEqual([
        { type: 'step-start' },
        expect.objectContaining({ type: 'tool-gate', state: 'output-available', output: 'opened' }),
        { type: 'step-start' },
        { type: 'text', text: 'tool results: opened', state: 'done' },
      ]);
      expect(message.id).toBe((dataOf(message, 'agentcell-turn') as { turnId: string }).turnId);
    } finally {
      world.mock.setLatency({});
    }
    // Once the turn ended there is nothing to resume.
    expect(await client.reconnectToStream({ chatId })).toBeNull();
  });

  it('has nothing to resume when interruptOnDisconnect stopped the turn', async () => {
    const eager = await serveGateway(world.supervisor, {
      tenants: { [ACME]: { id: 'acme' } },
      defaultAgent: 'echo',
      interruptOnDisconnect: true,
    });
    try {
      const client = new DefaultChatTransport<UIMessage>({
        api: `${eager.server.url}/v1/ui/chat`,
        headers: { authorization: `Bearer ${ACME}` },
      });
      const ended = world.turnEnd('acme:ui-cut');
      const controller = new AbortController();
      const stream = await client.sendMessages({
        chatId: 'ui-cut',
        messages: [userMessage('hold and cut')],
        trigger: 'submit-message',
        messageId: undefined,
        abortSignal: controller.signal,
      });
      void stream.getReader().closed.catch(() => undefined);
      const call = await world.gate.next();
      controller.abort();
      // The gateway counts a request once its response has closed.
      await until(async () =>
        parseExposition(await eager.gateway.metrics()).samples.some(
          (s) => s.name === 'agentcell_http_requests_total' && s.value > 0,
        ),
      );
      call.release();
      expect((await ended).outcome).toBe('AGENTCELL_INTERRUPTED');
      expect(await client.reconnectToStream({ chatId: 'ui-cut' })).toBeNull();
    } finally {
      await eager.close();
    }
  });

  it('answers 204 when the chat runs no turn', async () => {
    expect(await transport().reconnectToStream({ chatId: 'ui-never' })).toBeNull();
    const response = await fetch(`${served.server.url}/v1/ui/chat/ui-text/stream`, {
      headers: { authorization: `Bearer ${ACME}` },
    });
    expect(response.status).toBe(204);
  });
});
