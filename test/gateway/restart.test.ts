/**
 * A gateway restarted on the same FileStore: the sessions served before are still the
 * caller's — readable, listed, deletable, and a message goes on with the agent the session
 * had, not the default one. Another tenant still gets a 404.
 */
import { describe, expect, it } from 'vitest';
import { FileStore } from '../../src/runtime/stores/file.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { agentFor, useMockLlm, useTempDir } from '../support/harness.js';
import { expectError } from './helpers.js';
import { type ServedGateway, serveGateway } from './setup.js';

const ACME = 'acme-token-restart-0123456789';
const GLOBEX = 'globex-token-restart-0123456789';

const mock = useMockLlm();
const dir = useTempDir('agentcell-gateway-restart-');

interface Running extends Omit<ServedGateway, 'close'> {
  readonly supervisor: Supervisor;
  stop(): Promise<void>;
}

async function start(): Promise<Running> {
  const supervisor = new Supervisor({
    store: new FileStore({ dir }),
    placement: 'pooled',
    warmPoolSize: 0,
  });
  for (const name of ['echo', 'other']) supervisor.register(name, agentFor(mock, { name }));
  const served = await serveGateway(supervisor, {
    tenants: { [ACME]: { id: 'acme' }, [GLOBEX]: { id: 'globex' } },
    defaultAgent: 'echo',
  });
  return {
    ...served,
    supervisor,
    stop: async () => {
      await served.close();
      await supervisor.close();
    },
  };
}

describe('a gateway restarted on the same store', () => {
  it('still serves the sessions it served before, each with its own agent', async () => {
    const before = await start();
    try {
      expect(
        (await before.client.send(ACME, 'kept', { message: 'one', agent: 'other' })).status,
      ).toBe(200);
      expect((await before.client.send(ACME, 'dropped', { message: 'gone soon' })).status).toBe(
        200,
      );
    } finally {
      await before.stop();
    }

    const after = await start();
    try {
      const { client, supervisor } = after;
      expect(supervisor.sessionKeys()).toEqual([]);

      const read = await client.request('GET', '/v1/sessions/kept?history=1', { token: ACME });
      expect(read.status).toBe(200);
      expect(read.json).toMatchObject({
        key: 'kept',
        agent: 'other',
        history: [
          { role: 'user', content: 'one' },
          { role: 'assistant', content: 'echo: one' },
        ],
      });
      const list = await client.request('GET', '/v1/sessions', { token: ACME });
      expect((list.json as { sessions: string[] }).sessions.sort()).toEqual(['dropped', 'kept']);

      // No agent named: the conversation goes on with its own agent, not the default.
      const next = await client.send(ACME, 'kept', { message: 'two' });
      expect(next.status).toBe(200);
      expect(supervisor.peek('acme:kept')?.agent).toBe('other');
      const history = await client.request('GET', '/v1/sessions/kept?history=1', { token: ACME });
      expect((history.json as { history: unknown[] }).history).toHaveLength(4);
      // Naming another agent for it is refused, as it was before the restart.
      expectError(
        await client.send(ACME, 'kept', { message: 'three', agent: 'echo' }),
        400,
        'AGENTCELL_OPTIONS_INVALID',
      );

      expect((await client.request('DELETE', '/v1/sessions/dropped', { token: ACME })).status).toBe(
        204,
      );
      expectError(
        await client.request('GET', '/v1/sessions/dropped', { token: ACME }),
        404,
        'AGENTCELL_NOT_FOUND',
      );

      // Another tenant: the same key is nothing of its own.
      for (const [method, path] of [
        ['GET', '/v1/sessions/kept'],
        ['DELETE', '/v1/sessions/kept'],
        ['POST', '/v1/sessions/kept/interrupt'],
      ] as const) {
        expectError(
          await client.request(method, path, { token: GLOBEX }),
          404,
          'AGENTCELL_NOT_FOUND',
        );
      }
      const theirs = await client.request('GET', '/v1/sessions', { token: GLOBEX });
      expect((theirs.json as { sessions: string[] }).sessions).toEqual([]);
    } finally {
      await after.stop();
    }
  });
});
