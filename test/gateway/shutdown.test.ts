/**
 * Graceful shutdown: gateway.close() refuses new messages (503, Retry-After) while the turns
 * already accepted, JSON and streamed, run to their reply; a closing, closed or destroyed
 * supervisor is a 503 too.
 */
import { describe, expect, it } from 'vitest';
import { createGateway } from '../../src/gateway/gateway.js';
import { listen } from '../support/harness.js';
import { Client, codeOf, parseSse, SENTINEL } from './helpers.js';
import { useGateway, useWorld } from './setup.js';

const TOKEN = 'shutdown-token-0123456789';

const world = useWorld(({ supervisor, agent, gate }) => {
  supervisor.register('echo', agent('echo', { tools: [gate.tool] }));
});
const { gateway, client, bodies } = useGateway(world, {
  tenants: { [TOKEN]: { id: 'team' } },
  defaultAgent: 'echo',
  retryAfterSeconds: 7,
});

describe('gateway.close()', () => {
  it('answers new messages 503 while the turns in flight complete, then resolves', async () => {
    const inFlight = client.send(TOKEN, 'a', { message: 'hold until shutdown' });
    const first = await world.gate.next();
    const streamed = client.send(TOKEN, 'b', { message: 'hold streamed' }, true);
    const second = await world.gate.next();

    let closed = false;
    const closing = gateway.close().then(() => {
      closed = true;
    });
    expect(gateway.close()).toBe(gateway.close());

    for (const stream of [false, true]) {
      const refused = await client.send(TOKEN, 'c', { message: 'too late' }, stream);
      expect({ status: refused.status, code: codeOf(refused) }).toEqual({
        status: 503,
        code: 'AGENTCELL_GATEWAY_CLOSING',
      });
      expect(refused.headers.get('retry-after')).toBe('7');
    }
    expect(world.supervisor.peek('team:c')).toBeUndefined();
    const health = await client.request('GET', '/healthz');
    expect({ status: health.status, body: health.json }).toEqual({
      status: 503,
      body: { status: 'closing' },
    });
    // Reads are still served while the turns finish.
    const running = await client.request('GET', '/v1/sessions/a', { token: TOKEN });
    expect(running.json).toMatchObject({ key: 'a', busy: true });
    expect(closed).toBe(false);

    first.release();
    second.release();
    const answer = await inFlight;
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({ reply: 'tool results: opened' });
    const frames = parseSse((await streamed).text);
    expect(frames.at(-1)?.event).toBe('done');
    await closing;
    expect(closed).toBe(true);
    const history = await world.supervisor.peek('team:b')?.history();
    expect(history?.at(-1)).toMatchObject({ role: 'assistant' });
  });
});

describe('a supervisor that is not open', () => {
  it('maps closed and destroyed to 503 with Retry-After, and /healthz says closing', async () => {
    const fresh = createGateway(world.supervisor, {
      tenants: { [TOKEN]: { id: 'team' } },
      defaultAgent: 'echo',
    });
    const freshServer = await listen(fresh.handler);
    const freshClient = new Client(freshServer.url, bodies);
    try {
      expect((await freshClient.send(TOKEN, 'd', { message: 'hi' })).status).toBe(200);
      await world.supervisor.close();
      const closed = await freshClient.send(TOKEN, 'e', { message: 'hi' });
      expect({ status: closed.status, code: codeOf(closed) }).toEqual({
        status: 503,
        code: 'AGENTCELL_SUPERVISOR_CLOSED',
      });
      expect(closed.headers.get('retry-after')).toBe('1');
      expect((await freshClient.request('GET', '/healthz')).status).toBe(503);

      await world.supervisor.destroy('test');
      const destroyed = await freshClient.send(TOKEN, 'd', { message: 'hi' });
      expect({ status: destroyed.status, code: codeOf(destroyed) }).toEqual({
        status: 503,
        code: 'AGENTCELL_SUPERVISOR_DESTROYED',
      });
      for (const body of bodies) expect(body).not.toContain(SENTINEL);
    } finally {
      await fresh.close();
      await freshServer.close();
    }
  });
});
