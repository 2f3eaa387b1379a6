/**
 * Tenancy and backpressure: a tenant never sees, touches or reuses another tenant's session
 * on any route; a full mailbox, a busy session and a tenant's limits (concurrent turns, open
 * sessions) answer 429 with Retry-After, without affecting other tenants.
 */
import { describe, expect, it } from 'vitest';
import { forwardTo } from '../support/harness.js';
import { expectError, expectNoSecrets } from './helpers.js';
import { TOKENS, until, useGatewayWorld } from './setup.js';

const { acme: ACME, globex: GLOBEX, limited: LIMITED } = TOKENS;

const world = useGatewayWorld();
const client = forwardTo(() => world.client);

describe('tenant isolation', () => {
  it('never lets a tenant see, touch or reuse another tenant’s session, on any route', async () => {
    expect((await client.send(ACME, 'shared', { message: 'acme secret plan' })).status).toBe(200);

    const forGlobex = [
      await client.request('GET', '/v1/sessions/shared', { token: GLOBEX }),
      await client.request('GET', '/v1/sessions/shared?history=1', { token: GLOBEX }),
      await client.request('POST', '/v1/sessions/shared/interrupt', { token: GLOBEX }),
      await client.request('DELETE', '/v1/sessions/shared', { token: GLOBEX }),
    ];
    for (const answer of forGlobex) expectError(answer, 404, 'AGENTCELL_NOT_FOUND');
    const globexList = await client.request('GET', '/v1/sessions', { token: GLOBEX });
    expect((globexList.json as { sessions: string[] }).sessions).not.toContain('shared');

    // The same key is another session for globex: its own, empty conversation.
    expect((await client.send(GLOBEX, 'shared', { message: 'globex here' })).status).toBe(200);
    const globexView = await client.request('GET', '/v1/sessions/shared?history=1', {
      token: GLOBEX,
    });
    expect(JSON.stringify(globexView.json)).not.toContain('acme secret plan');
    const acmeView = await client.request('GET', '/v1/sessions/shared?history=1', { token: ACME });
    expect(JSON.stringify(acmeView.json)).not.toContain('globex here');
    expect((acmeView.json as { turns: number }).turns).toBe(1);
    expect(world.supervisor.sessionKeys()).toEqual(
      expect.arrayContaining(['acme:shared', 'globex:shared']),
    );
  });

  it('answers 404 for a key the tenant never used, without creating a session', async () => {
    const before = world.supervisor.sessionKeys().length;
    for (const [method, path] of [
      ['GET', '/v1/sessions/never'],
      ['DELETE', '/v1/sessions/never'],
      ['POST', '/v1/sessions/never/interrupt'],
    ] as const) {
      expectError(await client.request(method, path, { token: ACME }), 404, 'AGENTCELL_NOT_FOUND');
    }
    expect(world.supervisor.sessionKeys().length).toBe(before);
    expect(world.supervisor.peek('acme:never')).toBeUndefined();
  });

  it('does not let a key smuggle in another tenant’s namespace', async () => {
    const answer = await client.request(
      'GET',
      `/v1/sessions/${encodeURIComponent('acme:shared')}`,
      {
        token: GLOBEX,
      },
    );
    expectError(answer, 404, 'AGENTCELL_NOT_FOUND');
  });
});

describe('429 and Retry-After', () => {
  it('maps a full mailbox to 429 AGENTCELL_MAILBOX_FULL', async () => {
    const first = client.send(ACME, 'full', { message: 'hold it' });
    const call = await world.gate.next();
    const second = client.send(ACME, 'full', { message: 'queued' });
    await until(() => world.supervisor.peek('acme:full')?.queued === 1);
    const third = await client.send(ACME, 'full', { message: 'one too many' });
    expectError(third, 429, 'AGENTCELL_MAILBOX_FULL');
    expect(third.headers.get('retry-after')).toBe('1');
    const streamed = await client.send(ACME, 'full', { message: 'one too many' }, true);
    expectError(streamed, 429, 'AGENTCELL_MAILBOX_FULL');
    expect(streamed.headers.get('content-type')).toMatch(/^application\/json/);
    call.release();
    expect((await first).status).toBe(200);
    expect((await second).json).toMatchObject({ reply: 'echo: queued' });
  });

  it('maps a busy session under the reject policy to 429 AGENTCELL_SESSION_BUSY', async () => {
    const first = client.send(ACME, 'strict', { message: 'hold please', agent: 'strict' });
    const call = await world.gate.next();
    const busy = await client.send(ACME, 'strict', { message: 'me too' });
    const error = expectError(busy, 429, 'AGENTCELL_SESSION_BUSY');
    expect(error.message).toContain('session "strict" is in a turn');
    expect(busy.headers.get('retry-after')).toBe('1');
    call.release();
    expect((await first).status).toBe(200);
  });

  it('limits a tenant’s concurrent turns (429), then admits it again', async () => {
    const first = client.send(LIMITED, 'l-1', { message: 'hold for limited' });
    const call = await world.gate.next();
    const refused = await client.send(LIMITED, 'l-2', { message: 'hi' });
    const error = expectError(refused, 429, 'AGENTCELL_TENANT_LIMIT');
    expect(error.message).toContain('maxConcurrentTurns');
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(world.supervisor.peek('limited:l-2')).toBeUndefined();
    // Another tenant is not limited by it.
    expect((await client.send(GLOBEX, 'g-free', { message: 'hi' })).status).toBe(200);
    call.release();
    expect((await first).status).toBe(200);
    expect((await client.send(LIMITED, 'l-2', { message: 'hi' })).status).toBe(200);
  });

  it('limits a tenant’s open sessions (429) until it deletes one', async () => {
    const refused = await client.send(LIMITED, 'l-3', { message: 'hi' });
    expect(expectError(refused, 429, 'AGENTCELL_TENANT_LIMIT').message).toContain('maxSessions');
    expect((await client.send(LIMITED, 'l-1', { message: 'existing is fine' })).status).toBe(200);
    await client.request('DELETE', '/v1/sessions/l-2', { token: LIMITED });
    expect((await client.send(LIMITED, 'l-3', { message: 'hi' })).status).toBe(200);
  });
});

describe('secrets', () => {
  it('never puts the apiKey in a response body (every body of this file)', () => {
    expectNoSecrets(world.bodies, 15);
  });
});
