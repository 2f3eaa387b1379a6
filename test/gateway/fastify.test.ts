/**
 * The Fastify plugin serves the same routes as the node:http handler, on a real Fastify
 * instance under a prefix, without changing how the rest of the app parses bodies.
 */
import { DefaultChatTransport, readUIMessageStream, type UIMessage } from 'ai';
import Fastify, { type FastifyInstance } from 'fastify';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway, type Gateway } from '../../src/gateway/gateway.js';
import { Client, codeOf, parseExposition, parseSse, postBytes, SENTINEL } from './helpers.js';
import { observe } from './observer-client.js';
import { useWorld } from './setup.js';

const ACME = 'acme-token-0123456789abcdef';
const GLOBEX = 'globex-token-0123456789abcdef';

const world = useWorld(({ supervisor, agent }) => {
  supervisor.register('echo', agent('echo'));
});
let gateway: Gateway;
let app: FastifyInstance;
let client: Client;
let origin: string;
const bodies: string[] = [];

beforeAll(async () => {
  gateway = createGateway(world.supervisor, {
    tenants: { [ACME]: { id: 'acme' }, [GLOBEX]: { id: 'globex' } },
    defaultAgent: 'echo',
    maxBodyBytes: 1_024,
  });
  app = Fastify();
  app.post('/own', async (request) => ({ echoed: request.body }));
  await app.register(gateway.fastifyPlugin, { prefix: '/api' });
  origin = await app.listen({ port: 0, host: '127.0.0.1' });
  client = new Client(`${origin}/api`, bodies);
});

afterAll(async () => {
  await gateway.close();
  await app.close();
});

describe('the Fastify plugin', () => {
  it('serves health and metrics without auth, and refuses the rest without a token', async () => {
    expect((await client.request('GET', '/healthz')).json).toEqual({ status: 'ok' });
    const metrics = await client.request('GET', '/metrics');
    expect(() => parseExposition(metrics.text)).not.toThrow();
    const refused = await client.request('GET', '/v1/sessions');
    expect({ status: refused.status, code: codeOf(refused) }).toEqual({
      status: 401,
      code: 'AGENTCELL_UNAUTHORIZED',
    });
  });

  it('runs a message, lists, reads, interrupts and deletes a session', async () => {
    const answer = await client.send(ACME, 'f-1', { message: 'via fastify' });
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({ reply: 'echo: via fastify', turnId: expect.any(String) });
    expect(world.supervisor.sessionKeys()).toContain('acme:f-1');
    expect((await client.request('GET', '/v1/sessions', { token: ACME })).json).toEqual({
      sessions: ['f-1'],
    });
    const read = await client.request('GET', '/v1/sessions/f-1?history=true', { token: ACME });
    expect(read.json).toMatchObject({ key: 'f-1', turns: 1, history: expect.any(Array) });
    const interrupt = await client.request('POST', '/v1/sessions/f-1/interrupt', { token: ACME });
    expect(interrupt.json).toEqual({ interrupted: false });
    const deleted = await client.request('DELETE', '/v1/sessions/f-1', { token: ACME });
    expect(deleted.status).toBe(204);
    expect(world.supervisor.peek('acme:f-1')).toBeUndefined();
  });

  it('streams SSE frames', async () => {
    const answer = await client.send(ACME, 'f-sse', { message: 'streamed' }, true);
    expect(answer.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const frames = parseSse(answer.text);
    expect(frames[0]?.event).toBe('turn-start');
    expect(frames.at(-1)).toMatchObject({ event: 'done', data: { reply: 'echo: streamed' } });
  });

  it('streams a session’s turns to an observer', async () => {
    await client.send(ACME, 'f-obs', { message: 'first' });
    const observer = await observe(`${origin}/api`, ACME, 'f-obs');
    expect(observer.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    await client.send(ACME, 'f-obs', { message: 'watched' });
    const final = await observer.next((frame) => frame.event === 'final');
    expect(final.data).toMatchObject({ sessionKey: 'f-obs', reply: 'echo: watched' });
    observer.close();
  });

  it('keeps tenants apart', async () => {
    await client.send(ACME, 'mine', { message: 'acme only' });
    for (const [method, path] of [
      ['GET', '/v1/sessions/mine'],
      ['DELETE', '/v1/sessions/mine'],
      ['POST', '/v1/sessions/mine/interrupt'],
      ['GET', '/v1/sessions/mine/events'],
    ] as const) {
      const answer = await client.request(method, path, { token: GLOBEX });
      expect({ status: answer.status, code: codeOf(answer) }).toEqual({
        status: 404,
        code: 'AGENTCELL_NOT_FOUND',
      });
    }
    expect((await client.request('GET', '/v1/sessions', { token: GLOBEX })).json).toEqual({
      sessions: [],
    });
  });

  it('reads bodies itself: 413 over the limit, 400 for malformed JSON or none', async () => {
    const large = await client.send(ACME, 'f-2', { message: 'x'.repeat(2_000) });
    expect({ status: large.status, code: codeOf(large) }).toEqual({
      status: 413,
      code: 'AGENTCELL_BODY_TOO_LARGE',
    });
    const malformed = await client.send(ACME, 'f-2', '{"message":');
    expect({ status: malformed.status, code: codeOf(malformed) }).toEqual({
      status: 400,
      code: 'AGENTCELL_MESSAGE_INVALID',
    });
    const none = await client.request('POST', '/v1/sessions/f-2/messages', { token: ACME });
    expect({ status: none.status, code: codeOf(none) }).toEqual({
      status: 400,
      code: 'AGENTCELL_MESSAGE_INVALID',
    });
  });

  it('refuses a body that is not valid UTF-8: nothing runs, nothing is journaled', async () => {
    const asked = world.mock.requests.length;
    const answer = await postBytes(`${origin}/api/v1/sessions/f-utf8/messages`, ACME);
    expect({ status: answer.status, code: codeOf(answer) }).toEqual({
      status: 400,
      code: 'AGENTCELL_MESSAGE_INVALID',
    });
    bodies.push(answer.text);
    expect(world.mock.requests.length).toBe(asked);
    expect(world.supervisor.peek('acme:f-utf8')).toBeUndefined();
    expect(await world.store.read('acme:f-utf8')).toEqual([]);
  });

  it('takes keys longer than Fastify’s maxParamLength, and rejects bad ones like the handler', async () => {
    const long = 'k'.repeat(200);
    expect((await client.send(ACME, long, { message: 'long key' })).status).toBe(200);
    const bad = await client.request('GET', '/v1/sessions/a%2Fb', { token: ACME });
    expect({ status: bad.status, code: codeOf(bad) }).toEqual({
      status: 400,
      code: 'AGENTCELL_SESSION_KEY_INVALID',
    });
    const unknown = await client.request('GET', '/v1/sessions/k/what', { token: ACME });
    expect(unknown.status).toBe(404);
  });

  it('serves the OpenAI-compatible routes to the openai SDK', async () => {
    const openai = new OpenAI({ baseURL: `${origin}/api/v1`, apiKey: ACME, maxRetries: 0 });
    expect((await openai.models.list()).data.map((model) => model.id)).toEqual(['echo']);
    const { data, response } = await openai.chat.completions
      .create(
        { model: 'echo', messages: [{ role: 'user', content: 'via fastify sdk' }] },
        { headers: { 'X-Agentcell-Session': 'f-openai' } },
      )
      .withResponse();
    expect(data.choices[0]?.message.content).toBe('echo: via fastify sdk');
    expect(response.headers.get('x-agentcell-session-source')).toBe('header:x-agentcell-session');
    const stream = await openai.chat.completions.create(
      { model: 'echo', messages: [{ role: 'user', content: 'streamed sdk' }], stream: true },
      { headers: { 'X-Agentcell-Session': 'f-openai' } },
    );
    const parts: string[] = [];
    for await (const chunk of stream) parts.push(chunk.choices[0]?.delta.content ?? '');
    expect(parts.join('')).toBe('echo: streamed sdk');
    const refused = await openai.chat.completions
      .create({ model: 'nobody', messages: [{ role: 'user', content: 'x' }] })
      .catch((error: unknown) => error);
    expect(refused).toMatchObject({ status: 404, code: 'AGENTCELL_AGENT_NOT_REGISTERED' });
  });

  it('serves /v1/responses to the openai SDK: create, chain and retrieve', async () => {
    const openai = new OpenAI({ baseURL: `${origin}/api/v1`, apiKey: ACME, maxRetries: 0 });
    const first = await openai.responses.create({ model: 'echo', input: 'fastify response' });
    expect(first.output_text).toBe('echo: fastify response');
    const second = await openai.responses.create({
      model: 'echo',
      input: 'fastify chained',
      previous_response_id: first.id,
    });
    expect(second.previous_response_id).toBe(first.id);
    expect((await openai.responses.retrieve(second.id)).output_text).toBe('echo: fastify chained');
    const refused = await openai.responses
      .create({ model: 'echo', input: 'x', previous_response_id: 'resp_nobody' })
      .catch((error: unknown) => error);
    expect(refused).toMatchObject({ status: 404, code: 'AGENTCELL_NOT_FOUND' });
  });

  it('serves the UI message stream to the ai package’s transport', async () => {
    const transport = new DefaultChatTransport<UIMessage>({
      api: `${origin}/api/v1/ui/chat`,
      headers: { authorization: `Bearer ${ACME}` },
    });
    const stream = await transport.sendMessages({
      chatId: 'f-ui',
      messages: [{ id: 'u-1', role: 'user', parts: [{ type: 'text', text: 'via useChat' }] }],
      trigger: 'submit-message',
      messageId: undefined,
      abortSignal: undefined,
    });
    let message: UIMessage | undefined;
    for await (const snapshot of readUIMessageStream({ stream })) message = snapshot;
    expect(message?.parts).toContainEqual({
      type: 'text',
      text: 'echo: via useChat',
      state: 'done',
    });
    expect(await transport.reconnectToStream({ chatId: 'f-ui' })).toBeNull();
  });

  it('leaves the app’s own body parsing alone', async () => {
    const response = await fetch(`${origin}/own`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ a: 1 }),
    });
    expect(await response.json()).toEqual({ echoed: { a: 1 } });
  });

  it('never puts the apiKey in a response body', () => {
    expect(bodies.length).toBeGreaterThan(10);
    for (const body of bodies) expect(body).not.toContain(SENTINEL);
  });
});
