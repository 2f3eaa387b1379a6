/**
 * Per-session credentials: each session's calls carry what the resolver gives its tenant,
 * seen by a real MCP server (headers over streamable HTTP, environment over stdio); sessions
 * of one tenant share a connection, two tenants never do, and no credential reaches a log line.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Supervisor } from '../../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../../src/testing/mock-llm.js';
import type { McpCredentialsRequest } from '../../../src/tools/mcp/options.js';
import { type CapturedLog, captureLog } from '../../fixtures/log-capture.js';
import { mockAgent, shutdown } from '../../runtime/helpers.js';
import { FAULT_STDIO, type HttpServer, startFaultHttp } from './servers.js';

const TOKENS: Record<string, string> = { acme: 'tok-acme-51f0c2', globex: 'tok-globex-9a7e44' };

let mock: MockLlm;
let http: HttpServer;
let supervisor: Supervisor;
let logs: CapturedLog;
const asked: McpCredentialsRequest[] = [];

beforeAll(async () => {
  logs = captureLog();
  [mock, http] = await Promise.all([
    startMockLlm({
      rules: [
        {
          match: 'who over http',
          steps: [{ toolCalls: [{ name: 'web__whoami', arguments: {} }] }],
        },
        {
          match: 'who over stdio',
          steps: [{ toolCalls: [{ name: 'local__whoami', arguments: {} }] }],
        },
      ],
    }),
    startFaultHttp(),
  ]);
  supervisor = new Supervisor({
    warmPoolSize: 0,
    mcp: {
      credentials: (request) => {
        asked.push(request);
        const token = TOKENS[request.tenant];
        if (!token) return undefined;
        return request.server === 'web'
          ? { headers: { authorization: `Bearer ${token}` } }
          : { env: { MCP_TOKEN: token } };
      },
    },
  });
  supervisor.register(
    'cell',
    mockAgent(mock, {
      toolTimeout: 20_000,
      mcpServers: [
        { name: 'web', url: http.url },
        { name: 'local', ...FAULT_STDIO, tools: ['whoami'] },
      ],
    }),
  );
});

afterAll(async () => {
  await shutdown(supervisor);
  await Promise.all([mock?.close(), http?.close()]);
  logs?.restore();
});

const whoami = async (key: string, over: 'http' | 'stdio') =>
  (await supervisor.session(key, { agent: 'cell' }).send(`who over ${over}`)).text;

describe('per-session credentials', () => {
  it("each tenant's HTTP calls carry its own token, even when they run at once", async () => {
    const replies = await Promise.all([
      whoami('acme:alice', 'http'),
      whoami('globex:bob', 'http'),
      whoami('acme:carol', 'http'),
    ]);
    expect(replies[0]).toContain(`authorization=Bearer ${TOKENS['acme']}`);
    expect(replies[1]).toContain(`authorization=Bearer ${TOKENS['globex']}`);
    expect(replies[2]).toContain(`authorization=Bearer ${TOKENS['acme']}`);
    expect(replies.join()).not.toMatch(/authorization=-/);
  });

  it("each tenant's stdio server runs with its own environment, in a process of its own", async () => {
    const acme = await whoami('acme:alice', 'stdio');
    const acmeAgain = await whoami('acme:dave', 'stdio');
    const globex = await whoami('globex:bob', 'stdio');
    expect(acme).toContain(`token=${TOKENS['acme']}`);
    expect(globex).toContain(`token=${TOKENS['globex']}`);
    const pid = (text: string) => /pid=(\d+)/.exec(text)?.[1];
    expect(pid(acmeAgain)).toBe(pid(acme));
    expect(pid(globex)).not.toBe(pid(acme));
  });

  it('a tenant the resolver does not know gets no one else’s credentials', async () => {
    expect(await whoami('initech:eve', 'http')).toContain('authorization=- ');
    expect(await whoami('initech:eve', 'stdio')).toContain('token=- ');
  });

  it('asks the resolver with the session key, its tenant and the server name', () => {
    expect(asked).toContainEqual({ sessionKey: 'globex:bob', tenant: 'globex', server: 'web' });
    expect(asked).toContainEqual({ sessionKey: 'acme:dave', tenant: 'acme', server: 'local' });
  });

  it('opens one connection per server and tenant', () => {
    // web × {acme, globex, initech} + local × {acme, globex, initech}
    expect(supervisor.stats().mcpConnections).toBe(6);
  });

  it('writes no credential to the log', () => {
    const text = JSON.stringify(logs.lines);
    for (const token of Object.values(TOKENS)) expect(text).not.toContain(token);
  });
});
