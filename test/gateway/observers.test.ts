/**
 * `GET /v1/sessions/:key/events`: observers of a session see its turns live whichever route
 * drove them, only the session's tenant may watch, at most `observers.maxPerSession` at once,
 * a client that stops reading is dropped while the turn and the other observers go on, and
 * closing the session (or the gateway) ends the streams with a last event saying why.
 */
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { defineTool } from '../../src/tools/define-tool.js';
import { forwardTo } from '../support/harness.js';
import {
  expectError,
  expectNoSecrets,
  parseExposition,
  parseSse,
  SENTINEL,
  type SseFrame,
} from './helpers.js';
import { type Observer, observe, stalledObserver } from './observer-client.js';
import { serveGateway, until, useGateway, useWorld } from './setup.js';

const ACME = 'acme-token-0123456789abcdef';
const GLOBEX = 'globex-token-0123456789abcdef';
/**
 * Results of the blob tool: under the observers' bound each, and together more than the kernel
 * buffers for a socket (~4 MB on loopback) plus that bound.
 */
const BLOB_BYTES = 128 * 1024;
const BLOBS = 64;
const MAX_BUFFERED = 256 * 1024;

/** The observer the blob tool waits for: each call returns once it has read the one before. */
let pacedBy: Observer | undefined;
let blobCalls = 0;
const blob = defineTool({
  name: 'blob',
  description: 'Returns a large result',
  host: true,
  run: async () => {
    const before = blobCalls++;
    const reader = pacedBy;
    const ends = () => reader?.frames.filter((frame) => frame.event === 'tool-end').length ?? 0;
    await reader?.next(() => ends() >= before);
    return 'x'.repeat(BLOB_BYTES);
  },
});

const world = useWorld(({ supervisor, agent, mock, gate }) => {
  mock.setRules([
    { match: /^hold/, steps: [{ toolCalls: [{ name: 'gate', arguments: {} }] }] },
    {
      match: /^blob/,
      steps: [
        { toolCalls: Array.from({ length: BLOBS }, () => ({ name: 'blob', arguments: {} })) },
        { reply: 'blobs done' },
      ],
    },
  ]);
  supervisor.register('echo', agent('echo', { tools: [gate.tool, blob] }));
});
const OPTIONS = {
  tenants: { [ACME]: { id: 'acme' }, [GLOBEX]: { id: 'globex' } },
  defaultAgent: 'echo',
  observers: { maxPerSession: 2, maxBufferedBytes: MAX_BUFFERED },
};
const served = useGateway(world, OPTIONS);
const client = forwardTo(() => served.client);
const url = () => served.server.url;

/** Starts the session `key` of acme with one message (observers need it to exist). */
async function open(key: string): Promise<void> {
  expect((await client.send(ACME, key, { message: 'hello' })).status).toBe(200);
}

/** The frames of the turn `turnId`, once its `final` (or `turn-failed`) arrived. */
async function turnOf(observer: Observer, turnId: string): Promise<SseFrame[]> {
  const ofTurn = (frame: SseFrame) => (frame.data as { turnId?: string }).turnId === turnId;
  await observer.next(
    (frame) => ofTurn(frame) && (frame.event === 'final' || frame.event === 'turn-failed'),
  );
  return observer.frames.filter(ofTurn);
}

function expectWholeTurn(frames: readonly SseFrame[], key: string, reply: string): void {
  expect(frames[0]?.event).toBe('turn-start');
  expect(frames.at(-1)).toMatchObject({ event: 'final', data: { reply } });
  for (const [seq, frame] of frames.entries()) {
    expect(frame.data).toMatchObject({ type: frame.event, sessionKey: key, seq });
  }
}

async function metric(name: string): Promise<number | undefined> {
  return parseExposition(await served.gateway.metrics()).value(name);
}

describe('observers', () => {
  it('two observers see every event of a turn sent to the messages route', async () => {
    await open('watched');
    const [first, second] = [
      await observe(url(), ACME, 'watched'),
      await observe(url(), ACME, 'watched'),
    ];
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const answer = await client.send(ACME, 'watched', { message: 'look at me' });
    const { turnId } = answer.json as { turnId: string };
    const seen = await turnOf(first, turnId);
    expectWholeTurn(seen, 'watched', 'echo: look at me');
    expect(seen[0]?.data).toMatchObject({ message: 'look at me' });
    expect(await turnOf(second, turnId)).toEqual(seen);
    expect(JSON.stringify(seen)).not.toContain(SENTINEL);
    first.close();
    second.close();
  });

  it('sees a turn driven through /v1/chat/completions by the openai SDK', async () => {
    await open('via-openai');
    const [first, second] = [
      await observe(url(), ACME, 'via-openai'),
      await observe(url(), ACME, 'via-openai'),
    ];
    const sdk = new OpenAI({ baseURL: `${url()}/v1`, apiKey: ACME, maxRetries: 0 });
    const completion = await sdk.chat.completions.create(
      { model: 'echo', messages: [{ role: 'user', content: 'from the sdk' }] },
      { headers: { 'x-agentcell-session': 'via-openai' } },
    );
    expect(completion.choices[0]?.message.content).toBe('echo: from the sdk');
    const final = await first.next(
      (frame) =>
        frame.event === 'final' && (frame.data as { reply: string }).reply === 'echo: from the sdk',
    );
    const { turnId } = final.data as { turnId: string };
    const seen = await turnOf(first, turnId);
    expectWholeTurn(seen, 'via-openai', 'echo: from the sdk');
    expect(await turnOf(second, turnId)).toEqual(seen);
    first.close();
    second.close();
  });

  it('shows a failed turn as turn-failed with its public code', async () => {
    await open('failing');
    const observer = await observe(url(), ACME, 'failing');
    const reply = client.send(ACME, 'failing', { message: 'hold it' });
    await world.gate.next();
    await client.request('POST', '/v1/sessions/failing/interrupt', { token: ACME });
    expect((await reply).status).toBe(409);
    const failed = await observer.next((frame) => frame.event === 'turn-failed');
    expect(failed.data).toMatchObject({
      sessionKey: 'failing',
      code: 'AGENTCELL_INTERRUPTED',
      message: expect.any(String),
    });
    expect(Object.keys(failed.data as object).sort()).toEqual(
      ['code', 'message', 'seq', 'sessionKey', 'turnId', 'type'].sort(),
    );
    observer.close();
  });

  it('answers another tenant’s key, and an unknown one, with the 404 of the other session routes', async () => {
    await open('private');
    const other = await client.request('GET', '/v1/sessions/private/events', { token: GLOBEX });
    const unknown = await client.request('GET', '/v1/sessions/nobody/events', { token: ACME });
    const read = await client.request('GET', '/v1/sessions/private', { token: GLOBEX });
    expectError(other, 404, 'AGENTCELL_NOT_FOUND');
    expectError(unknown, 404, 'AGENTCELL_NOT_FOUND');
    expect(other.json).toEqual({
      error: { ...(read.json as { error: object }).error },
    });
    expectError(
      await client.request('GET', '/v1/sessions/private/events'),
      401,
      'AGENTCELL_UNAUTHORIZED',
    );
  });

  it('takes at most maxPerSession observers of a session, and one more once one left', async () => {
    await open('crowded');
    const first = await observe(url(), ACME, 'crowded');
    const second = await observe(url(), ACME, 'crowded');
    const third = await client.request('GET', '/v1/sessions/crowded/events', { token: ACME });
    const error = expectError(third, 429, 'AGENTCELL_OBSERVER_LIMIT');
    expect(error.message).toContain('"crowded" already has 2 observers');
    expect(error.message).toContain('observers.maxPerSession');
    expect(third.headers.get('retry-after')).toBe('1');
    const watching = (await metric('agentcell_observers')) ?? 0;
    first.close();
    await until(async () => ((await metric('agentcell_observers')) ?? 0) < watching);
    const again = await observe(url(), ACME, 'crowded');
    expect(again.status).toBe(200);
    second.close();
    again.close();
  });

  it('drops an observer that stops reading, while the turn completes and another sees it all', async () => {
    await open('slow');
    const dropped = (await metric('agentcell_observers_dropped_total')) ?? 0;
    const stalled = await stalledObserver(url(), ACME, 'slow');
    const fast = await observe(url(), ACME, 'slow');
    // The fast observer reads in this process too: paced, it is never a whole burst behind.
    pacedBy = fast;
    const answer = await client.send(ACME, 'slow', { message: 'blob please' });
    expect(answer.status).toBe(200);
    const { turnId } = answer.json as { turnId: string };
    const seen = await turnOf(fast, turnId);
    expectWholeTurn(seen, 'slow', 'blobs done');
    const results = seen.filter((frame) => frame.event === 'tool-end');
    expect(results.map((frame) => (frame.data as { result: string }).result.length)).toEqual(
      Array.from({ length: BLOBS }, () => BLOB_BYTES),
    );
    await until(async () => ((await metric('agentcell_observers_dropped_total')) ?? 0) > dropped);

    const frames = parseSse(await stalled.drain());
    expect(frames.at(-1)).toEqual({
      event: 'end',
      data: { reason: 'slow', message: expect.stringContaining('fell behind') },
    });
    expect(frames.some((frame) => frame.event === 'final')).toBe(false);
    pacedBy = undefined;
    fast.close();
  });

  it('ends the streams when the session is deleted', async () => {
    await open('doomed');
    const [first, second] = [
      await observe(url(), ACME, 'doomed'),
      await observe(url(), ACME, 'doomed'),
    ];
    const deleted = await client.request('DELETE', '/v1/sessions/doomed', { token: ACME });
    expect(deleted.status).toBe(204);
    for (const observer of [first, second]) {
      await observer.ended;
      expect(observer.frames.at(-1)).toEqual({
        event: 'end',
        data: { reason: 'session-closed', message: 'the session was closed' },
      });
    }
  });

  it('ends the streams when the gateway closes, and then takes no new observer', async () => {
    await open('shutting');
    const other = await serveGateway(world.supervisor, OPTIONS);
    try {
      const observer = await observe(other.server.url, ACME, 'shutting');
      await other.gateway.close();
      await observer.ended;
      expect(observer.frames.at(-1)).toMatchObject({
        event: 'end',
        data: { reason: 'gateway-closing' },
      });
      const refused = await other.client.request('GET', '/v1/sessions/shutting/events', {
        token: ACME,
      });
      expectError(refused, 503, 'AGENTCELL_GATEWAY_CLOSING');
    } finally {
      await other.close();
    }
  });

  it('never shows the apiKey (every JSON body of this file)', () => {
    expectNoSecrets(served.bodies, 5);
  });
});
