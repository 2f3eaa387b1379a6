/**
 * MCP servers that fail: down, slow, crashing mid-call, answering too much, answering wrongly,
 * or reporting an error. Each is a typed tool error the model is told; the session keeps
 * working, and a server that went away is connected again on the next call.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Supervisor } from '../../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../../src/testing/mock-llm.js';
import { type CapturedLog, captureLog } from '../../fixtures/log-capture.js';
import { mockAgent, shutdown } from '../../runtime/helpers.js';
import { FAULT_STDIO, startFaultHttp } from './servers.js';

let mock: MockLlm;
let supervisor: Supervisor;
let closedPort: number;
let logs: CapturedLog;

const call = (name: string, args: unknown = {}) => ({
  match: `call ${name}`,
  steps: [{ toolCalls: [{ name, arguments: args }] }],
});

beforeAll(async () => {
  logs = captureLog();
  // A port that was free a moment ago and is closed now: nothing answers there.
  const probe = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => probe.once('listening', resolve));
  closedPort = (probe.address() as { port: number }).port;
  await new Promise((resolve) => probe.close(resolve));
  mock = await startMockLlm({
    rules: [
      call('local__whoami'),
      call('remote__whoami'),
      call('local__crash'),
      call('local__slow', { ms: 30_000 }),
      call('local__huge', { bytes: 50_000 }),
      call('local__malformed'),
      call('local__fails'),
    ],
  });
  supervisor = new Supervisor({ warmPoolSize: 0, mcp: { maxResultBytes: 10_000 } });
  const servers = [
    { name: 'local', ...FAULT_STDIO },
    { name: 'down', url: `http://127.0.0.1:${closedPort}/mcp`, connectTimeoutMs: 5_000 },
  ];
  supervisor.register('cell', mockAgent(mock, { toolTimeout: 20_000, mcpServers: servers }));
  supervisor.register(
    'impatient',
    mockAgent(mock, { name: 'impatient', toolTimeout: 300, mcpServers: servers.slice(0, 1) }),
  );
});

afterAll(async () => {
  await shutdown(supervisor);
  await mock?.close();
  logs?.restore();
});

const send = async (key: string, message: string, agent = 'cell') =>
  (await supervisor.session(key, { agent }).send(message)).text;

describe('MCP failures reach the model as typed tool errors', () => {
  it('a server down from the start: its tools are not offered, the session works, one warning', async () => {
    mock.reset();
    expect(await send('f:down', 'just talk')).toBe('echo: just talk');
    expect(await send('f:down', 'still talking')).toBe('echo: still talking');
    const offered = mock.requests[0]?.body?.tools?.map((tool) => tool.function.name) ?? [];
    expect(offered).toContain('local__whoami');
    expect(offered.some((name) => name.startsWith('down__'))).toBe(false);
    const warnings = logs.lines.filter((line) => line['server'] === 'down' && line['level'] === 40);
    expect(warnings).toHaveLength(1);
  });

  it('an HTTP server that goes away after listing: AGENTCELL_MCP_UNAVAILABLE, then it is used again once back', async () => {
    const first = await startFaultHttp();
    const port = new URL(first.url).port;
    supervisor.register(
      'remote',
      mockAgent(mock, {
        name: 'remote',
        toolTimeout: 20_000,
        mcpServers: [{ name: 'remote', url: first.url }],
      }),
    );
    const session = supervisor.session('f:remote', { agent: 'remote' });
    expect((await session.send('call remote__whoami')).text).toMatch(
      /^tool results: authorization=-/,
    );
    await first.close();
    expect((await session.send('call remote__whoami')).text).toMatch(
      /^tool results: error AGENTCELL_MCP_UNAVAILABLE: MCP server remote went away during the call of remote__whoami/,
    );
    const second = await startFaultHttp(Number(port));
    try {
      expect((await session.send('call remote__whoami')).text).toMatch(
        /^tool results: authorization=-/,
      );
    } finally {
      await second.close();
    }
  });

  it('a server that crashes mid-call: AGENTCELL_MCP_UNAVAILABLE, then a new process serves the next call', async () => {
    const before = /pid=(\d+)/.exec(await send('f:crash', 'call local__whoami'))?.[1];
    expect(before).toBeDefined();
    expect(await send('f:crash', 'call local__crash')).toMatch(
      /^tool results: error AGENTCELL_MCP_UNAVAILABLE: MCP server local went away during the call of local__crash/,
    );
    const after = /pid=(\d+)/.exec(await send('f:crash', 'call local__whoami'))?.[1];
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
  });

  it('a slow call: AGENTCELL_TOOL_TIMEOUT after the agent’s toolTimeout, and the session goes on', async () => {
    expect(await send('f:slow', 'call local__slow', 'impatient')).toMatch(
      /^tool results: error AGENTCELL_TOOL_TIMEOUT: local__slow did not finish within 300 ms/,
    );
    expect(await send('f:slow', 'still there?', 'impatient')).toBe('echo: still there?');
  });

  it('a result over mcp.maxResultBytes: AGENTCELL_MCP_RESULT_TOO_LARGE', async () => {
    expect(await send('f:huge', 'call local__huge')).toMatch(
      /^tool results: error AGENTCELL_MCP_RESULT_TOO_LARGE: local__huge returned 50000 bytes, more than the 10000 allowed/,
    );
  });

  it('a result that is not valid MCP: AGENTCELL_MCP_TOOL_FAILED, and the connection stays', async () => {
    const before = /pid=(\d+)/.exec(await send('f:bad', 'call local__whoami'))?.[1];
    expect(await send('f:bad', 'call local__malformed')).toMatch(
      /^tool results: error AGENTCELL_MCP_TOOL_FAILED: local__malformed failed/,
    );
    expect(/pid=(\d+)/.exec(await send('f:bad', 'call local__whoami'))?.[1]).toBe(before);
  });

  it('an error result: AGENTCELL_MCP_TOOL_FAILED with what the server said', async () => {
    expect(await send('f:fails', 'call local__fails')).toMatch(
      /^tool results: error AGENTCELL_MCP_TOOL_FAILED: local__fails failed: the record is locked/,
    );
  });
});
