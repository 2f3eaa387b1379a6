/**
 * Bad input to `POST /v1/ui/chat` and its resume route is refused with a typed 4xx in
 * agentcell's error shape before anything runs, and reaches the `ai` package's transport as an
 * error naming the code.
 */
import { describe, expect, it } from 'vitest';
import { expectError } from './helpers.js';
import { ACME, assistantSaid, UiChat, userMessage, useUiWorld } from './ui-chat-setup.js';

const { world, served, transport } = useUiWorld();

const hi = () => userMessage('hi');

describe('bad input', () => {
  const refusals: [string, unknown, number, string, string][] = [
    ['a body that is not JSON', '{not json', 400, 'AGENTCELL_MESSAGE_INVALID', 'not valid JSON'],
    ['no chat id', { messages: [hi()] }, 400, 'AGENTCELL_MESSAGE_INVALID', 'body.id'],
    [
      'no messages',
      { id: 'bad-1', messages: [] },
      400,
      'AGENTCELL_MESSAGE_INVALID',
      'body.messages',
    ],
    [
      'a message without parts',
      { id: 'bad-1', messages: [{ id: 'm', role: 'user', content: 'hi' }] },
      400,
      'AGENTCELL_MESSAGE_INVALID',
      'body.messages.0.parts',
    ],
    [
      'an unknown trigger',
      { id: 'bad-1', messages: [hi()], trigger: 'resubmit' },
      400,
      'AGENTCELL_MESSAGE_INVALID',
      'body.trigger',
    ],
    [
      'no user message',
      { id: 'bad-1', messages: [assistantSaid('hello')] },
      400,
      'AGENTCELL_MESSAGE_INVALID',
      'no user message',
    ],
    [
      'a user message without text',
      { id: 'bad-1', messages: [{ id: 'u', role: 'user', parts: [{ type: 'text', text: ' ' }] }] },
      400,
      'AGENTCELL_MESSAGE_INVALID',
      'has no text',
    ],
    [
      'a file in the new message',
      {
        id: 'bad-1',
        messages: [
          {
            id: 'u',
            role: 'user',
            parts: [{ type: 'file', url: 'data:,x', mediaType: 'text/plain' }],
          },
        ],
      },
      400,
      'AGENTCELL_MESSAGE_INVALID',
      'files are not taken',
    ],
    [
      'an unknown agent',
      { id: 'bad-1', messages: [hi()], agent: 'nope' },
      404,
      'AGENTCELL_AGENT_NOT_REGISTERED',
      '"nope"',
    ],
    [
      'agent and model naming different agents',
      { id: 'bad-1', messages: [hi()], agent: 'echo', model: 'other' },
      400,
      'AGENTCELL_MESSAGE_INVALID',
      'different agents',
    ],
    [
      "another tenant's chat",
      { id: 'globex:ui-two', messages: [hi()] },
      400,
      'AGENTCELL_SESSION_KEY_INVALID',
      "tenant's namespace",
    ],
  ];

  it.each(refusals)(
    'refuses %s with a typed 4xx, running nothing',
    async (_, body, status, code, hint) => {
      const requests = world.mock.requests.length;
      const sessions = world.supervisor.sessionKeys().length;
      const answer = await served.client.request('POST', '/v1/ui/chat', { token: ACME, body });
      expect(expectError(answer, status, code).message).toContain(hint);
      expect(world.mock.requests.length).toBe(requests);
      expect(world.supervisor.sessionKeys().length).toBe(sessions);
    },
  );

  it('refuses another agent for a chat that runs one, running nothing', async () => {
    await new UiChat(transport(), 'bad-agent').send('on echo');
    const requests = world.mock.requests.length;
    const body = { id: 'bad-agent', messages: [hi()], agent: 'other' };
    const answer = await served.client.request('POST', '/v1/ui/chat', { token: ACME, body });
    expect(expectError(answer, 400, 'AGENTCELL_OPTIONS_INVALID').message).toContain(
      'runs agent echo',
    );
    expect(world.mock.requests.length).toBe(requests);
  });

  it('refuses a caller without a token, and a resume of a key in another tenant’s namespace', async () => {
    const body = { id: 'bad-2', messages: [hi()] };
    expectError(
      await served.client.request('POST', '/v1/ui/chat', { body }),
      401,
      'AGENTCELL_UNAUTHORIZED',
    );
    const path = `/v1/ui/chat/${encodeURIComponent('globex:ui-two')}/stream`;
    const resume = await served.client.request('GET', path, { token: ACME });
    expectError(resume, 400, 'AGENTCELL_SESSION_KEY_INVALID');
  });

  it('reaches the transport as an error naming the code', async () => {
    const sent = transport().sendMessages({
      chatId: 'bad-3',
      messages: [assistantSaid('only me')],
      trigger: 'submit-message',
      messageId: undefined,
      abortSignal: undefined,
    });
    await expect(sent).rejects.toThrow('AGENTCELL_MESSAGE_INVALID');
  });

  it('answers other methods and paths under /v1/ui/chat with 404 AGENTCELL_NOT_FOUND', async () => {
    for (const [method, path] of [
      ['GET', '/v1/ui/chat'],
      ['POST', '/v1/ui/chat/c-1/stream'],
      ['GET', '/v1/ui/chat/c-1'],
      ['GET', '/v1/ui/chat/c-1/stream/more'],
    ] as const) {
      const answer = await served.client.request(method, path, { token: ACME });
      expectError(answer, 404, 'AGENTCELL_NOT_FOUND');
    }
  });
});
