/**
 * The official `server-everything`, over stdio and over streamable HTTP: its tools become the
 * agent's tools (prefixed, filtered by the allow-list), the model calls them, a session thread
 * calls them back on the host, and the model is told their results.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Supervisor } from '../../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../../src/testing/mock-llm.js';
import { mockAgent, shutdown } from '../../runtime/helpers.js';
import { EVERYTHING_STDIO, type HttpServer, startEverythingHttp } from './servers.js';

let mock: MockLlm;
let http: HttpServer;
let supervisor: Supervisor;

beforeAll(async () => {
  [mock, http] = await Promise.all([
    startMockLlm({
      rules: [
        {
          match: /^echo over (\w+)$/,
          steps: [{ toolCalls: [{ name: 'stdio__echo', arguments: { message: 'hello' } }] }],
        },
        {
          match: 'sum over http',
          steps: [{ toolCalls: [{ name: 'web__get-sum', arguments: { a: 2, b: 40 } }] }],
        },
        {
          match: 'echo through ev_',
          steps: [{ toolCalls: [{ name: 'ev___echo', arguments: { message: 'longest' } }] }],
        },
        {
          match: 'outside the allow-list',
          steps: [{ toolCalls: [{ name: 'stdio__get-env', arguments: {} }] }],
        },
      ],
    }),
    startEverythingHttp(),
  ]);
  supervisor = new Supervisor({ warmPoolSize: 0 });
  supervisor.register(
    'cell',
    mockAgent(mock, {
      toolTimeout: 20_000,
      mcpServers: [
        { name: 'stdio', ...EVERYTHING_STDIO, tools: ['echo', 'get-sum'] },
        { name: 'web', url: http.url, tools: ['get-sum'] },
      ],
    }),
  );
});

afterAll(async () => {
  await shutdown(supervisor);
  await Promise.all([mock?.close(), http?.close()]);
});

describe('server-everything', () => {
  it('offers the allowed tools of both servers, prefixed by server name', async () => {
    mock.reset();
    await supervisor.session('t1:offer', { agent: 'cell' }).send('hello');
    const offered = mock.requests[0]?.body?.tools?.map((tool) => tool.function.name);
    expect(offered?.sort()).toEqual(['stdio__echo', 'stdio__get-sum', 'web__get-sum']);
  });

  it('calls a tool over stdio and tells the model its result', async () => {
    const { text } = await supervisor
      .session('t1:stdio', { agent: 'cell' })
      .send('echo over stdio');
    expect(text).toBe('tool results: Echo: hello');
  });

  it('calls a tool over streamable HTTP and tells the model its result', async () => {
    const { text } = await supervisor.session('t1:http', { agent: 'cell' }).send('sum over http');
    expect(text).toMatch(/^tool results: .*42/);
  });

  it('refuses a tool the allow-list leaves out, and the session keeps working', async () => {
    const session = supervisor.session('t1:denied', { agent: 'cell' });
    const { text } = await session.send('outside the allow-list');
    expect(text).toMatch(/^tool results: error AGENTCELL_TOOL_NOT_FOUND/);
    expect((await session.send('echo over stdio')).text).toBe('tool results: Echo: hello');
  });

  it('finds the server of a name by its longest prefix (`ev___echo` is ev_’s, not ev’s)', async () => {
    supervisor.register(
      'prefixes',
      mockAgent(mock, {
        name: 'prefixes',
        mcpServers: [
          { name: 'ev', ...EVERYTHING_STDIO, tools: ['echo'] },
          { name: 'ev_', ...EVERYTHING_STDIO, tools: ['echo'] },
        ],
      }),
    );
    const { text } = await supervisor
      .session('t1:prefixes', { agent: 'prefixes' })
      .send('echo through ev_');
    expect(text).toBe('tool results: Echo: longest');
  });

  it('works the same under pooled placement', async () => {
    const pooled = new Supervisor({ placement: 'pooled', poolThreads: 1 });
    try {
      pooled.register(
        'cell',
        mockAgent(mock, { mcpServers: [{ name: 'stdio', ...EVERYTHING_STDIO }] }),
      );
      const { text } = await pooled.session('t1:pooled', { agent: 'cell' }).send('echo over stdio');
      expect(text).toBe('tool results: Echo: hello');
    } finally {
      await shutdown(pooled);
    }
  });

  it('shares one connection per server between sessions of a tenant, never across tenants', async () => {
    const before = supervisor.stats().mcpConnections ?? 0;
    await supervisor.session('t1:another', { agent: 'cell' }).send('echo over stdio');
    expect(supervisor.stats().mcpConnections).toBe(before);
    await supervisor.session('t2:first', { agent: 'cell' }).send('echo over stdio');
    // t2's own stdio process and HTTP client
    expect(supervisor.stats().mcpConnections).toBe(before + 2);
  });
});
