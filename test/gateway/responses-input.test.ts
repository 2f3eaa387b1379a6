/**
 * Bad input to `POST /v1/responses` and `GET /v1/responses/:id`: each refused with a typed 4xx
 * in OpenAI's error shape (the SDK's APIError carries status and our code), nothing run.
 */
import type OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { createGateway } from '../../src/gateway/gateway.js';
import { postBytes } from './helpers.js';
import { ACME, apiErrorOf, BODY_LIMIT, useOpenAiWorld } from './openai-setup.js';

const { world, served, acme, globex } = useOpenAiWorld();

type Body = Record<string, unknown>;

describe('bad input: a typed 4xx in OpenAI’s shape, nothing run', () => {
  const create = (body: Body | (() => Promise<Body>), headers: Record<string, string> = {}) =>
    (async () => {
      const fields = typeof body === 'function' ? await body() : body;
      return acme.responses.create(
        {
          model: 'echo',
          input: 'hi',
          ...fields,
        } as OpenAI.Responses.ResponseCreateParamsNonStreaming,
        { headers },
      );
    })();
  const globexResponse = async (): Promise<Body> => ({
    previous_response_id: (await globex.responses.create({ model: 'echo', input: 'mine' })).id,
  });

  it.each([
    ['an unknown model', { model: 'nobody' }, {}, 404, 'AGENTCELL_AGENT_NOT_REGISTERED'],
    ['no model', { model: '' }, {}, 400, 'AGENTCELL_MESSAGE_INVALID'],
    ['an empty input', { input: '' }, {}, 400, 'AGENTCELL_MESSAGE_INVALID'],
    ['a blank input', { input: '  ' }, {}, 400, 'AGENTCELL_MESSAGE_INVALID'],
    ['an empty item list', { input: [] }, {}, 400, 'AGENTCELL_MESSAGE_INVALID'],
    ['an input that is a number', { input: 42 }, {}, 400, 'AGENTCELL_MESSAGE_INVALID'],
    [
      'a malformed item',
      { input: [{ role: 'user', content: 42 }] },
      {},
      400,
      'AGENTCELL_MESSAGE_INVALID',
    ],
    [
      'an item without content',
      { input: [{ role: 'user' }] },
      {},
      400,
      'AGENTCELL_MESSAGE_INVALID',
    ],
    [
      'a function call output',
      { input: [{ type: 'function_call_output', call_id: 'c', output: 'x' }] },
      {},
      400,
      'AGENTCELL_MESSAGE_INVALID',
    ],
    [
      'an image part',
      { input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'x' }] }] },
      {},
      400,
      'AGENTCELL_MESSAGE_INVALID',
    ],
    [
      'a last item not from the user',
      {
        input: [
          { role: 'user', content: 'q' },
          { role: 'assistant', content: 'a' },
        ],
      },
      {},
      400,
      'AGENTCELL_MESSAGE_INVALID',
    ],
    ['a background response', { background: true }, {}, 400, 'AGENTCELL_MESSAGE_INVALID'],
    [
      'an unknown previous_response_id',
      { previous_response_id: 'resp_nobody' },
      {},
      404,
      'AGENTCELL_NOT_FOUND',
    ],
    [
      'both conversation and previous_response_id',
      { conversation: 'c-1', previous_response_id: 'resp_nobody' },
      {},
      400,
      'AGENTCELL_MESSAGE_INVALID',
    ],
    [
      'another tenant’s conversation key',
      { conversation: 'globex:k' },
      {},
      400,
      'AGENTCELL_SESSION_KEY_INVALID',
    ],
    [
      'an invalid conversation key',
      { conversation: '../etc' },
      {},
      400,
      'AGENTCELL_SESSION_KEY_INVALID',
    ],
    [
      'another tenant’s key in a header',
      {},
      { 'X-Session-Id': 'globex:k' },
      400,
      'AGENTCELL_SESSION_KEY_INVALID',
    ],
    ['an oversized body', { input: 'x'.repeat(BODY_LIMIT) }, {}, 413, 'AGENTCELL_BODY_TOO_LARGE'],
  ])('%s', async (_what, body, headers, status, code) => {
    const requests = world.mock.requests.length;
    const sessions = world.supervisor.sessionKeys().length;
    const error = await apiErrorOf(create(body, headers));
    expect({ status: error.status, code: error.code }).toEqual({ status, code });
    expect(Object.keys(error.error as object).sort()).toEqual(['code', 'message', 'type']);
    expect(world.mock.requests.length).toBe(requests);
    expect(world.supervisor.sessionKeys().length).toBe(sessions);
  });

  it('another tenant’s response id is unknown, to continue or to read', async () => {
    const body = await globexResponse();
    const requests = world.mock.requests.length;
    const error = await apiErrorOf(create(body));
    expect({ status: error.status, code: error.code }).toEqual({
      status: 404,
      code: 'AGENTCELL_NOT_FOUND',
    });
    expect(error.message).not.toContain('globex');
    const read = await apiErrorOf(acme.responses.retrieve(String(body['previous_response_id'])));
    expect({ status: read.status, code: read.code }).toEqual({
      status: 404,
      code: 'AGENTCELL_NOT_FOUND',
    });
    expect(world.mock.requests.length).toBe(requests);
  });

  it('a model other than the one the conversation runs on', async () => {
    const first = await acme.responses.create({ model: 'echo', input: 'on echo' });
    const requests = world.mock.requests.length;
    const error = await apiErrorOf(
      acme.responses.create({ model: 'other', input: 'x', previous_response_id: first.id }),
    );
    expect({ status: error.status, code: error.code }).toEqual({
      status: 400,
      code: 'AGENTCELL_OPTIONS_INVALID',
    });
    expect(world.mock.requests.length).toBe(requests);
  });

  it('a response whose session was deleted since', async () => {
    const first = await acme.responses.create({ model: 'echo', input: 'soon gone' });
    const deleted = await served.client.request('DELETE', `/v1/sessions/${first.id}`, {
      token: ACME,
    });
    expect(deleted.status).toBe(204);
    const requests = world.mock.requests.length;
    const error = await apiErrorOf(
      acme.responses.create({ model: 'echo', input: 'x', previous_response_id: first.id }),
    );
    expect({ status: error.status, code: error.code }).toEqual({
      status: 409,
      code: 'AGENTCELL_HISTORY_CONFLICT',
    });
    expect(error.message).toContain('is gone');
    expect(world.mock.requests.length).toBe(requests);
    expect(world.supervisor.sessionKeys()).not.toContain(`acme:${first.id}`);
  });

  it('a body that is not UTF-8', async () => {
    const bad = new Uint8Array(
      Buffer.concat([
        Buffer.from('{"model":"echo","input":"caf'),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('"}'),
      ]),
    );
    const answer = await postBytes(`${served.server.url}/v1/responses`, ACME, bad);
    expect(answer.status).toBe(400);
    expect(answer.json).toEqual({
      error: {
        message: expect.stringContaining('UTF-8'),
        type: 'invalid_request_error',
        code: 'AGENTCELL_MESSAGE_INVALID',
      },
    });
  });

  it('a route method the responses path does not take', async () => {
    const answer = await served.client.request('DELETE', '/v1/responses/resp_x', { token: ACME });
    expect(answer.status).toBe(404);
    expect(answer.json).toMatchObject({ error: { type: 'not_found_error' } });
  });
});

describe('responses.maxStored', () => {
  it('is a whole number of responses, 0 or more', () => {
    const tenants = { [ACME]: { id: 'acme' } };
    expect(() =>
      createGateway(world.supervisor, { tenants, responses: { maxStored: -1 } }),
    ).toThrow(/options\.responses\.maxStored/);
  });
});
