/**
 * The Idempotency-Key header over real HTTP on 127.0.0.1: on the message route (JSON and SSE)
 * and on Chat Completions through the openai SDK, a repeat gets the first answer and the
 * model is called for one turn; the key with another body is a 422; a malformed key is a 400
 * before anything runs; keys are per session, so per tenant.
 */
import OpenAI, { APIError } from 'openai';
import { describe, expect, it } from 'vitest';
import { parseSse } from './helpers.js';
import { useGateway, useWorld } from './setup.js';

const ACME = 'acme-token-0123456789abcdef';
const GLOBEX = 'globex-token-0123456789abcdef';

/**
 * The openai SDK sends its `idempotencyKey` request option only from a client that names the
 * header (OpenAI's own API takes none, so `OpenAI` leaves it unset); named, it also makes up
 * one key per request (`stainless-node-retry-<uuid>`) and keeps it across its retries.
 */
class IdempotentOpenAI extends OpenAI {
  protected override idempotencyHeader = 'Idempotency-Key';
}

describe('the Idempotency-Key header', () => {
  const world = useWorld(({ supervisor, agent, gate }) => {
    supervisor.register('echo', agent('echo', { tools: [gate.tool] }));
  });
  const served = useGateway(world, {
    tenants: { [ACME]: { id: 'acme' }, [GLOBEX]: { id: 'globex' } },
    defaultAgent: 'echo',
  });

  const post = (key: string, body: unknown, headers: Record<string, string>, token = ACME) =>
    served.client.request('POST', `/v1/sessions/${encodeURIComponent(key)}/messages`, {
      token,
      body,
      headers,
    });

  it('a repeat on the message route while the first runs gets the same answer: one turn', async () => {
    const before = world.mock.requests.length;
    const headers = { 'Idempotency-Key': 'msg-1' };
    const first = post('idem-http', { message: 'hold the line' }, headers);
    const call = await world.gate.next();
    const repeat = post('idem-http', { message: 'hold the line' }, headers);
    call.release();
    const [a, b] = await Promise.all([first, repeat]);
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(b.json).toEqual(a.json);
    // A tool call and the reply after it: the repeat called the model for nothing.
    expect(world.mock.requests.length - before).toBe(2);

    // Streamed, a repeat of a finished message is its outcome in one piece, then `done`.
    const streamed = await post(
      'idem-http',
      { message: 'hold the line' },
      { ...headers, accept: 'text/event-stream' },
    );
    const frames = parseSse(streamed.text);
    expect(frames.map((frame) => frame.event)).toEqual(['final', 'done']);
    const { turnId, reply } = a.json as { turnId: string; reply: string };
    expect(frames.at(-1)?.data).toMatchObject({ turnId, reply });
    expect(world.mock.requests.length - before).toBe(2);
  });

  it('the same key with another message is a 422 that says what to do', async () => {
    const headers = { 'Idempotency-Key': 'msg-2' };
    expect((await post('idem-conflict', { message: 'one' }, headers)).status).toBe(200);
    const before = world.mock.requests.length;
    const other = await post('idem-conflict', { message: 'two' }, headers);
    expect(other.status).toBe(422);
    expect(other.json).toMatchObject({
      error: {
        code: 'AGENTCELL_IDEMPOTENCY_CONFLICT',
        message: expect.stringContaining('send a new key for a new message'),
      },
    });
    expect(world.mock.requests.length).toBe(before);
  });

  it('keys are per session and tenant: the same key elsewhere is another message', async () => {
    const headers = { 'Idempotency-Key': 'msg-3' };
    const acme = await post('idem-scope', { message: 'hi' }, headers);
    const globex = await post('idem-scope', { message: 'hi' }, headers, GLOBEX);
    const elsewhere = await post('idem-scope-2', { message: 'hi' }, headers);
    const turns = [acme, globex, elsewhere].map(
      (answer) => (answer.json as { turnId: string }).turnId,
    );
    expect(new Set(turns).size).toBe(3);
  });

  it.each([
    ['empty', ''],
    ['longer than 255 characters', 'k'.repeat(256)],
    ['not printable ASCII', 'clé'],
  ])('a key that is %s is a 400 and runs nothing', async (_what, key) => {
    const before = world.mock.requests.length;
    const answer = await post('idem-bad', { message: 'hi' }, { 'Idempotency-Key': key });
    expect(answer.status).toBe(400);
    expect(answer.json).toMatchObject({ error: { code: 'AGENTCELL_IDEMPOTENCY_KEY_INVALID' } });
    expect(world.mock.requests.length).toBe(before);
  });

  it('Chat Completions through the openai SDK: a repeat with the header gets the same completion', async () => {
    const client = new OpenAI({
      baseURL: `${served.server.url}/v1`,
      apiKey: ACME,
      maxRetries: 0,
    });
    const body = { model: 'echo', messages: [{ role: 'user' as const, content: 'book it' }] };
    const headers = { 'X-Session-Id': 'idem-chat', 'Idempotency-Key': 'order-7' };
    const before = world.mock.requests.length;
    const first = await client.chat.completions.create(body, { headers });
    const repeat = await client.chat.completions.create(body, { headers });
    expect(repeat.id).toBe(first.id);
    expect(repeat.choices[0]?.message.content).toBe('echo: book it');
    // Streamed, the repeat is the same text in chunks of the same completion.
    const stream = await client.chat.completions.create({ ...body, stream: true }, { headers });
    let text = '';
    for await (const chunk of stream) {
      expect(chunk.id).toBe(first.id);
      text += chunk.choices[0]?.delta.content ?? '';
    }
    expect(text).toBe('echo: book it');
    expect(world.mock.requests.length - before).toBe(1);

    const conflict = await client.chat.completions
      .create({ ...body, messages: [{ role: 'user', content: 'book two' }] }, { headers })
      .catch((error: unknown) => error);
    expect(conflict).toBeInstanceOf(APIError);
    expect((conflict as APIError).status).toBe(422);
    expect((conflict as APIError).code).toBe('AGENTCELL_IDEMPOTENCY_CONFLICT');
  });

  it('Chat Completions: the SDK’s idempotencyKey option, and its own retry keys, once it names the header', async () => {
    const client = new IdempotentOpenAI({
      baseURL: `${served.server.url}/v1`,
      apiKey: ACME,
      maxRetries: 0,
    });
    const body = { model: 'echo', messages: [{ role: 'user' as const, content: 'pay me' }] };
    const headers = { 'X-Session-Id': 'idem-sdk' };
    const before = world.mock.requests.length;
    const first = await client.chat.completions.create(body, { headers, idempotencyKey: 'pay-9' });
    const repeat = await client.chat.completions.create(body, { headers, idempotencyKey: 'pay-9' });
    expect(repeat.id).toBe(first.id);
    expect(world.mock.requests.length - before).toBe(1);
    // Without the option the SDK makes up a key per request: a new request, a new turn.
    const fresh = await client.chat.completions.create(
      {
        ...body,
        messages: [
          ...body.messages,
          { role: 'assistant', content: 'echo: pay me' },
          { role: 'user', content: 'again' },
        ],
      },
      { headers },
    );
    expect(fresh.id).not.toBe(first.id);
    expect(world.mock.requests.length - before).toBe(2);
  });
  it('the UI chat and Responses routes answer a repeat once too', async () => {
    const headers = { 'Idempotency-Key': 'ui-1' };
    const uiBody = {
      id: 'idem-ui',
      trigger: 'submit-message',
      messages: [{ id: 'm1', role: 'user', parts: [{ type: 'text', text: 'draw it' }] }],
    };
    const before = world.mock.requests.length;
    const texts: string[] = [];
    for (let attempt = 0; attempt < 2; attempt++) {
      const answer = await served.client.request('POST', '/v1/ui/chat', {
        token: ACME,
        body: uiBody,
        headers,
      });
      expect(answer.status).toBe(200);
      const chunks = answer.text
        .split('\n\n')
        .filter((frame) => frame.startsWith('data: {'))
        .map(
          (frame) => JSON.parse(frame.slice('data: '.length)) as { type: string; delta?: string },
        );
      texts.push(
        chunks.flatMap((chunk) => (chunk.type === 'text-delta' ? [chunk.delta] : [])).join(''),
      );
    }
    expect(texts).toEqual(['echo: draw it', 'echo: draw it']);
    expect(world.mock.requests.length - before).toBe(1);

    const responseBody = { model: 'echo', input: 'plan it', conversation: 'idem-conv' };
    const outputs: unknown[] = [];
    for (let attempt = 0; attempt < 2; attempt++) {
      const answer = await served.client.request('POST', '/v1/responses', {
        token: ACME,
        body: responseBody,
        headers: { 'Idempotency-Key': 'resp-1' },
      });
      expect(answer.status).toBe(200);
      outputs.push(
        (answer.json as { output: { content: { text: string }[] }[] }).output[0]?.content[0]?.text,
      );
    }
    expect(outputs).toEqual(['echo: plan it', 'echo: plan it']);
    expect(world.mock.requests.length - before).toBe(2);
  });
});
