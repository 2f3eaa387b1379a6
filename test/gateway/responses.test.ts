/**
 * `POST /v1/responses` and `GET /v1/responses/:id` (Open Responses) driven by the real `openai`
 * SDK: responses plain and streamed, chained with `previous_response_id`, bound by
 * `conversation` or a session header, stored and retrieved, and tools run inside the session.
 */
import type { ResponseStreamEvent } from 'openai/resources/responses/responses';
import { describe, expect, it } from 'vitest';
import type { SupervisorEvents } from '../../src/runtime/events.js';
import { apiErrorOf, useOpenAiWorld } from './openai-setup.js';

const { world, served, lookups, acme, globex, dialogueSeenFor } = useOpenAiWorld();

/** Every event of a streamed response, in order. */
async function eventsOf(
  stream: AsyncIterable<ResponseStreamEvent>,
): Promise<ResponseStreamEvent[]> {
  const events: ResponseStreamEvent[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

describe('POST /v1/responses', () => {
  it('answers with a completed response object, in a session kept under its id', async () => {
    const { data, response } = await acme.responses
      .create({ model: 'echo', input: 'hello there' })
      .withResponse();
    expect(data).toMatchObject({
      id: expect.stringMatching(/^resp_[0-9a-f]{48}$/),
      object: 'response',
      created_at: expect.any(Number),
      status: 'completed',
      model: 'echo',
      previous_response_id: null,
      conversation: null,
      error: null,
      store: true,
      output: [
        {
          type: 'message',
          id: expect.stringMatching(/^msg_/),
          role: 'assistant',
          status: 'completed',
          content: [{ type: 'output_text', text: 'echo: hello there', annotations: [] }],
        },
      ],
    });
    expect(data.output_text).toBe('echo: hello there');
    expect(data.usage?.total_tokens).toBe(
      (data.usage?.input_tokens ?? 0) + (data.usage?.output_tokens ?? 0),
    );
    expect(data.usage?.total_tokens).toBeGreaterThan(0);
    expect(response.headers.get('x-agentcell-session-source')).toBe('response');
    expect(response.headers.get('x-agentcell-session')).toBe(data.id);
    expect(world.supervisor.sessionKeys()).toContain(`acme:${data.id}`);
  });

  it('streams the Open Responses events in order, numbered by sequence_number', async () => {
    const stream = await acme.responses.create({
      model: 'echo',
      input: 'stream me please',
      stream: true,
    });
    const events = await eventsOf(stream);
    const types = events.map((event) => event.type);
    const deltas = types.filter((type) => type === 'response.output_text.delta').length;
    expect(deltas).toBeGreaterThan(0);
    expect(types).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      ...Array<string>(deltas).fill('response.output_text.delta'),
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    const numbers = events.map((event) => event.sequence_number);
    expect(numbers).toEqual(numbers.map((_, index) => index));

    const by = <T extends ResponseStreamEvent['type']>(type: T) =>
      events.filter((event): event is Extract<ResponseStreamEvent, { type: T }> => {
        return event.type === type;
      });
    const [created] = by('response.created');
    expect(created?.response).toMatchObject({ status: 'in_progress', output: [] });
    const [added] = by('response.output_item.added');
    const itemId = added?.item.id;
    expect(added?.item).toMatchObject({ type: 'message', status: 'in_progress', content: [] });
    const text = by('response.output_text.delta')
      .map((event) => {
        expect(event).toMatchObject({ item_id: itemId, output_index: 0, content_index: 0 });
        return event.delta;
      })
      .join('');
    expect(text).toBe('echo: stream me please');
    expect(by('response.output_text.done')[0]).toMatchObject({ item_id: itemId, text });
    expect(by('response.content_part.done')[0]?.part).toMatchObject({ type: 'output_text', text });
    expect(by('response.output_item.done')[0]?.item).toMatchObject({ status: 'completed' });
    const [completed] = by('response.completed');
    expect(completed?.response).toMatchObject({
      id: created?.response.id,
      status: 'completed',
      output: [{ id: itemId, content: [{ type: 'output_text', text }] }],
    });
    expect(completed?.response.usage?.total_tokens).toBeGreaterThan(0);
    // What was streamed is stored as it completed.
    const stored = await acme.responses.retrieve(created?.response.id ?? '');
    expect(stored.output).toEqual(completed?.response.output);
  });

  it('feeds the SDK’s own stream helper, which rebuilds the response from the events', async () => {
    const final = await acme.responses
      .stream({ model: 'echo', input: 'helper stream' })
      .finalResponse();
    expect(final).toMatchObject({ status: 'completed', output_text: 'echo: helper stream' });
  });

  it('chains with previous_response_id: the second turn sees the first', async () => {
    const first = await acme.responses.create({ model: 'echo', input: 'chain one' });
    const second = await acme.responses.create({
      model: 'echo',
      input: [{ role: 'user', content: 'chain two' }],
      previous_response_id: first.id,
    });
    expect(second.previous_response_id).toBe(first.id);
    expect(dialogueSeenFor('chain two')).toEqual([
      'user: chain one',
      'assistant: echo: chain one',
      'user: chain two',
    ]);
    // Streamed, chained on the chained one.
    const stream = await acme.responses.create({
      model: 'echo',
      input: 'chain three',
      previous_response_id: second.id,
      stream: true,
    });
    const last = (await eventsOf(stream)).at(-1);
    expect(last).toMatchObject({
      type: 'response.completed',
      response: { previous_response_id: second.id },
    });
    expect(dialogueSeenFor('chain three')).toEqual([
      'user: chain one',
      'assistant: echo: chain one',
      'user: chain two',
      'assistant: echo: chain two',
      'user: chain three',
    ]);
    // The conversation has gone on past the first: answering it again would fork it.
    const before = world.mock.requests.length;
    const error = await apiErrorOf(
      acme.responses.create({ model: 'echo', input: 'fork', previous_response_id: first.id }),
    );
    expect({ status: error.status, code: error.code }).toEqual({
      status: 409,
      code: 'AGENTCELL_HISTORY_CONFLICT',
    });
    expect(error.message).toContain('not the latest of its conversation');
    expect(error.message).not.toContain('X-Agentcell-History');
    expect(world.mock.requests.length).toBe(before);
  });

  it('binds the session by conversation, as an id or { id }', async () => {
    const { data, response } = await acme.responses
      .create({ model: 'echo', input: 'conv one', conversation: 'conv-a' })
      .withResponse();
    expect(data.conversation).toEqual({ id: 'conv-a' });
    expect(response.headers.get('x-agentcell-session-source')).toBe('body:conversation');
    expect(response.headers.get('x-agentcell-session')).toBe('conv-a');
    await acme.responses.create({ model: 'echo', input: 'conv b', conversation: 'conv-b' });
    const again = await acme.responses.create({
      model: 'echo',
      input: 'conv two',
      conversation: { id: 'conv-a' },
    });
    expect(again.conversation).toEqual({ id: 'conv-a' });
    // A response chained on one of the conversation's is in the conversation too.
    const chained = await acme.responses.create({
      model: 'echo',
      input: 'conv three',
      previous_response_id: again.id,
    });
    expect(chained.conversation).toEqual({ id: 'conv-a' });
    expect(dialogueSeenFor('conv three')).toEqual([
      'user: conv one',
      'assistant: echo: conv one',
      'user: conv two',
      'assistant: echo: conv two',
      'user: conv three',
    ]);
    // The conversation id is the tenant's session key, as on every other route.
    const history = await served.client.request('GET', '/v1/sessions/conv-a?history=1', {
      token: 'acme-token-0123456789abcdef',
    });
    expect(history.status).toBe(200);
    // Another tenant's conversation of the same id is its own.
    await globex.responses.create({ model: 'echo', input: 'globex conv', conversation: 'conv-a' });
    expect(dialogueSeenFor('globex conv')).toEqual(['user: globex conv']);
  });

  it('takes a session key from the Chat Completions sources when nothing else binds it', async () => {
    const headers = { 'X-Agentcell-Session': 'resp-header' };
    const { response } = await acme.responses
      .create({ model: 'echo', input: 'header one' }, { headers })
      .withResponse();
    expect(response.headers.get('x-agentcell-session-source')).toBe('header:x-agentcell-session');
    await acme.responses.create({ model: 'echo', input: 'header two' }, { headers });
    expect(dialogueSeenFor('header two')).toEqual([
      'user: header one',
      'assistant: echo: header one',
      'user: header two',
    ]);
  });

  it('adds the input items before the last user message to the conversation', async () => {
    await acme.responses.create({
      model: 'echo',
      input: [
        { role: 'system', content: 'ignored: the agent has its own instructions' },
        { role: 'user', content: [{ type: 'input_text', text: 'item one' }] },
        { role: 'assistant', content: 'item answer' },
        { type: 'message', role: 'user', content: 'item two' },
      ],
    });
    expect(dialogueSeenFor('item two')).toEqual([
      'user: item one',
      'assistant: item answer',
      'user: item two',
    ]);
  });

  it('retrieves a stored response for its tenant only; store: false keeps nothing', async () => {
    const created = await acme.responses.create({ model: 'echo', input: 'keep me' });
    const retrieved = await acme.responses.retrieve(created.id);
    expect(retrieved).toEqual(created);
    const foreign = await apiErrorOf(globex.responses.retrieve(created.id));
    expect({ status: foreign.status, code: foreign.code }).toEqual({
      status: 404,
      code: 'AGENTCELL_NOT_FOUND',
    });
    expect(foreign.error).toMatchObject({ type: 'not_found_error' });

    const closed = new Promise<string>((resolve) => {
      const listener = ({ key }: SupervisorEvents['session:close'][0]) => {
        if (!key.startsWith('acme:once-')) return;
        world.supervisor.off('session:close', listener);
        resolve(key);
      };
      world.supervisor.on('session:close', listener);
    });
    const { data, response } = await acme.responses
      .create({ model: 'echo', input: 'forget me', store: false })
      .withResponse();
    expect(data).toMatchObject({ output_text: 'echo: forget me', store: false });
    expect(response.headers.get('x-agentcell-session-source')).toBe('none');
    const missing = await apiErrorOf(acme.responses.retrieve(data.id));
    expect(missing.status).toBe(404);
    const key = await closed;
    expect(world.supervisor.sessionKeys()).not.toContain(key);
  });

  it('runs tools inside the session and answers with the final text', async () => {
    const before = lookups.length;
    const plain = await acme.responses.create({ model: 'echo', input: 'weather in Paris?' });
    expect(plain.output_text).toBe('Sunny in Paris.');
    expect(plain.output).toHaveLength(1);
    const stream = await acme.responses.create({
      model: 'echo',
      input: 'weather again?',
      previous_response_id: plain.id,
      stream: true,
    });
    const events = await eventsOf(stream);
    expect(events.some((event) => event.type.includes('function_call'))).toBe(false);
    expect(events.at(-1)).toMatchObject({
      type: 'response.completed',
      response: { output: [{ content: [{ text: 'Sunny in Paris.' }] }] },
    });
    expect(lookups.length).toBe(before + 2);
  });

  it('reports a failure after the stream started as response.failed, and stores nothing', async () => {
    const stream = await acme.responses.create({
      model: 'echo',
      input: 'fail [[mock:malformed]]',
      stream: true,
    });
    const events = await eventsOf(stream);
    expect(events.map((event) => event.type)).toEqual([
      'response.created',
      'response.in_progress',
      'response.failed',
    ]);
    expect(events.map((event) => event.sequence_number)).toEqual([0, 1, 2]);
    const failed = events.at(-1);
    expect(failed).toMatchObject({
      type: 'response.failed',
      response: { status: 'failed', error: { code: 'AGENTCELL_LLM_BAD_RESPONSE' } },
    });
    const id = failed?.type === 'response.failed' ? failed.response.id : '';
    expect((await apiErrorOf(acme.responses.retrieve(id))).status).toBe(404);
    expect(await served.gateway.metrics()).toMatch(/route="POST \/v1\/responses"[^\n]* [1-9]/);
  });
});
