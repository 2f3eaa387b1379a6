/**
 * Server-sent events: framing of a turn's events, `done` and `error` endings, and a client
 * that disconnects mid-turn (the turn completes and is journaled, unless interruptOnDisconnect).
 */
import { describe, expect, it } from 'vitest';
import { createGateway, type Gateway } from '../../src/gateway/gateway.js';
import { forwardTo, listen } from '../support/harness.js';
import { expectNoSecrets, parseExposition, parseSse } from './helpers.js';
import { TOKENS, until, useGatewayWorld } from './setup.js';

const { acme: ACME } = TOKENS;

const world = useGatewayWorld();
const client = forwardTo(() => world.client);

describe('SSE', () => {
  it('streams the turn’s events as `event: <type>` frames and ends with `done`', async () => {
    const answer = await client.send(ACME, 'live', { message: 'stream me please' }, true);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(answer.text).toMatch(/^event: turn-start\ndata: \{.*\}\n\n/);
    const frames = parseSse(answer.text);
    const types = frames.map((f) => f.event);
    expect(types[0]).toBe('turn-start');
    expect(types.slice(-2)).toEqual(['final', 'done']);
    expect(types).toContain('text');
    const events = frames.slice(0, -1).map((f) => f.data as Record<string, unknown>);
    for (const [index, event] of events.entries()) {
      expect(event['type']).toBe(frames[index]?.event);
      expect(event['sessionKey']).toBe('live');
      expect(event['seq']).toBe(index);
    }
    const text = events
      .filter((e) => e['type'] === 'text')
      .map((e) => e['delta'])
      .join('');
    expect(text).toBe('echo: stream me please');
    const done = frames.at(-1)?.data as { reply: string; turnId: string };
    expect(done).toMatchObject({ reply: 'echo: stream me please', turnId: events[0]?.['turnId'] });
    expect(done).toHaveProperty('usage');
  });

  it('ends with `error` { code, message } when the turn fails', async () => {
    const answer = await client.send(ACME, 'live-fail', { message: 'boom', agent: 'locked' }, true);
    expect(answer.status).toBe(200);
    const last = parseSse(answer.text).at(-1);
    expect(last?.event).toBe('error');
    expect(last?.data).toEqual({ code: 'AGENTCELL_LLM_AUTH_FAILED', message: expect.any(String) });
  });

  it('lets the turn finish and journal its reply when the client disconnects', async () => {
    const ended = world.turnEnd('acme:drop');
    const controller = new AbortController();
    const response = await fetch(`${world.server.url}/v1/sessions/drop/messages`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${ACME}`,
        'content-type': 'application/json',
        accept: 'text/event-stream',
      },
      body: JSON.stringify({ message: 'hold the line' }),
      signal: controller.signal,
    });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const call = await world.gate.next();
    const closedBefore = await requestsClosed();
    controller.abort();
    await until(async () => (await requestsClosed()) > closedBefore);
    call.release();
    expect((await ended).outcome).toBe('ok');
    const history = await world.supervisor.peek('acme:drop')?.history();
    expect(history?.at(-1)).toMatchObject({ role: 'assistant' });
    expect(history?.[0]).toMatchObject({ role: 'user', content: 'hold the line' });
  });

  it('interrupts the turn on disconnect when interruptOnDisconnect is set', async () => {
    const eager = createGateway(world.supervisor, {
      tenants: { [ACME]: { id: 'acme' } },
      interruptOnDisconnect: true,
    });
    const eagerServer = await listen(eager.handler);
    try {
      const ended = world.turnEnd('acme:drop-eager');
      const controller = new AbortController();
      const response = await fetch(`${eagerServer.url}/v1/sessions/drop-eager/messages`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${ACME}`,
          'content-type': 'application/json',
          accept: 'text/event-stream',
        },
        body: JSON.stringify({ message: 'hold and drop', agent: 'echo' }),
        signal: controller.signal,
      });
      expect(response.status).toBe(200);
      const call = await world.gate.next();
      controller.abort();
      await until(() => eagerClosed(eager));
      call.release();
      expect((await ended).outcome).toBe('AGENTCELL_INTERRUPTED');
      expect(await world.supervisor.peek('acme:drop-eager')?.history()).toEqual([]);
    } finally {
      await eager.close();
      await eagerServer.close();
    }
  });
});

describe('secrets', () => {
  it('never puts the apiKey in a response body (every body of this file)', () => {
    expectNoSecrets(world.bodies, 2);
  });
});

/** Requests of the messages route the gateway has seen close, from its own metrics. */
async function requestsClosed(): Promise<number> {
  return parseExposition(await world.gateway.metrics())
    .samples.filter(
      (s) =>
        s.name === 'agentcell_http_requests_total' &&
        s.labels['route'] === 'POST /v1/sessions/:key/messages',
    )
    .reduce((sum, s) => sum + s.value, 0);
}

async function eagerClosed(eager: Gateway): Promise<boolean> {
  return parseExposition(await eager.metrics()).samples.some(
    (s) => s.name === 'agentcell_http_requests_total' && s.value > 0,
  );
}
