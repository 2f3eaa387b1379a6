/**
 * Gateway options as a table: each bad option is AGENTCELL_OPTIONS_INVALID naming its path,
 * and a tenant's token (a secret) never appears in the message.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createGateway, type GatewayOptions } from '../../src/gateway/gateway.js';
import { Supervisor } from '../../src/runtime/supervisor.js';

const TOKEN = 'a-secret-token-0123456789';
const supervisor = new Supervisor();

afterAll(() => supervisor.close());

function problemWith(options: unknown): { code?: unknown; message: string } {
  try {
    createGateway(supervisor, options as GatewayOptions);
  } catch (error) {
    return error as { code?: unknown; message: string };
  }
  throw new Error('expected createGateway to throw');
}

const tenants = { [TOKEN]: { id: 'acme' } };

describe('createGateway options', () => {
  it.each([
    ['no options', undefined, 'options.tenants'],
    ['no tenants', {}, 'options.tenants'],
    ['an empty tenant map', { tenants: {} }, 'at least one tenant'],
    ['a short token', { tenants: { 'short-token': { id: 'acme' } } }, 'options.tenants[0]'],
    ['a token with a space', { tenants: { [`${TOKEN} x`]: { id: 'acme' } } }, 'tenants[0]'],
    ['a tenant id with ":"', { tenants: { [TOKEN]: { id: 'ac:me' } } }, 'options.tenants[0].id'],
    ['an unknown tenant field', { tenants: { [TOKEN]: { id: 'acme', quota: 1 } } }, 'tenants[0]'],
    [
      'a zero maxConcurrentTurns',
      { tenants: { [TOKEN]: { id: 'acme', maxConcurrentTurns: 0 } } },
      'options.tenants[0].maxConcurrentTurns',
    ],
    [
      'a fractional maxSessions',
      { tenants: { [TOKEN]: { id: 'acme', maxSessions: 1.5 } } },
      'options.tenants[0].maxSessions',
    ],
    [
      'an agents list with a bad name',
      { tenants: { [TOKEN]: { id: 'acme', agents: ['../x'] } } },
      'options.tenants[0].agents.0',
    ],
    [
      'two tokens giving one tenant different limits',
      {
        tenants: {
          [TOKEN]: { id: 'acme', maxSessions: 1 },
          [`${TOKEN}-2`]: { id: 'acme', maxSessions: 2 },
        },
      },
      'same agents and limits',
    ],
    ['a negative maxBodyBytes', { tenants, maxBodyBytes: -1 }, 'options.maxBodyBytes'],
    [
      'a session key source that is neither a header nor a known body field',
      { tenants, chatCompletions: { sessionKeySources: ['body:messages'] } },
      'options.chatCompletions.sessionKeySources.0',
    ],
    [
      'a header source in upper case',
      { tenants, chatCompletions: { clientHistorySources: ['header:X-Chat'] } },
      'options.chatCompletions.clientHistorySources.0',
    ],
    [
      'an unknown chatCompletions field',
      { tenants, chatCompletions: { history: 'client' } },
      'options.chatCompletions',
    ],
    ['a basePath with a trailing slash', { tenants, basePath: '/api/' }, 'options.basePath'],
    ['a basePath without a leading slash', { tenants, basePath: 'api' }, 'options.basePath'],
    [
      'a non-boolean interruptOnDisconnect',
      { tenants, interruptOnDisconnect: 'yes' },
      'options.interruptOnDisconnect',
    ],
    [
      'a fractional retryAfterSeconds',
      { tenants, retryAfterSeconds: 1.5 },
      'options.retryAfterSeconds',
    ],
    ['a short metricsToken', { tenants, metricsToken: 'short' }, 'options.metricsToken'],
    [
      'a metricsToken equal to a tenant token',
      { tenants, metricsToken: TOKEN },
      'options.metricsToken',
    ],
    ['an onError that is not a function', { tenants, onError: 'log' }, 'options.onError'],
    ['a defaultAgent that is not a name', { tenants, defaultAgent: '' }, 'options.defaultAgent'],
    ['an unknown option', { tenants, maxBody: 10 }, 'maxBody'],
  ])('%s → AGENTCELL_OPTIONS_INVALID naming %s', (_name, options, fragment) => {
    const error = problemWith(options);
    expect(error.code).toBe('AGENTCELL_OPTIONS_INVALID');
    expect(error.message).toContain(fragment);
    expect(error.message).not.toContain(TOKEN);
    expect(error.message).not.toContain('short-token');
  });

  it('lists every problem at once', () => {
    const error = problemWith({ tenants, maxBodyBytes: 0, basePath: 'x', heartbeatMs: -5 });
    for (const path of ['options.maxBodyBytes', 'options.basePath', 'options.heartbeatMs']) {
      expect(error.message).toContain(path);
    }
  });

  it('accepts tokens sharing one tenant with the same settings, and minimal options', () => {
    const shared = {
      [TOKEN]: { id: 'acme', agents: ['echo'] },
      [`${TOKEN}-next`]: { id: 'acme', agents: ['echo'] },
    };
    expect(() => createGateway(supervisor, { tenants: shared }).close()).not.toThrow();
    expect(() => createGateway(supervisor, { tenants }).close()).not.toThrow();
  });
});
