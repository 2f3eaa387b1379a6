/**
 * `GET /v1/models`, and bad input to `POST /v1/chat/completions`: each refused with a typed 4xx
 * in OpenAI's error shape (the SDK's APIError carries status and our code), nothing run.
 */
import type OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { postBytes } from './helpers.js';
import { ACME, apiErrorOf, assistant, BODY_LIMIT, useOpenAiWorld, user } from './openai-setup.js';

const { world, served, acme, globex, sdk } = useOpenAiWorld();

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
