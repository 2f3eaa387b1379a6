/**
 * The apiKey and auth values never reach a session thread, in either placement, while the
 * model (started to require that key) answers every call: a tool running in the session's own
 * thread searches that thread's heap snapshot, environment and workerData for the secrets.
 * A marker the thread does hold (the agent's instructions) is searched the same way, so a
 * search that finds nothing proves something.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TurnEvent } from '../../src/agent/turn-events.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { EVERYTHING_STDIO } from '../tools/mcp/servers.js';
import { fixtureRegistry, mockAgent, shutdown } from './helpers.js';

const API_KEY = 'sk-threadsecret-5d1c9e27';
const HEADER_SECRET = 'hdr-threadsecret-a83f04b6';
const ORGANIZATION = 'org-threadsecret-7e2b';
const VISIBLE = 'marker-in-the-instructions-41c8';
const MCP_CONFIG_ENV = 'mcpenv-threadsecret-0c9d21';
const MCP_RESOLVED_ENV = 'mcpcred-threadsecret-e5a7f3';

/** The messages name what to look for: the secrets themselves must not travel in a message. */
const NEEDLES = {
  'api-key': API_KEY,
  'header-value': HEADER_SECRET,
  organization: ORGANIZATION,
  'mcp-config-env': MCP_CONFIG_ENV,
  'mcp-resolved-env': MCP_RESOLVED_ENV,
  visible: VISIBLE,
} as const;

const reversed = (text: string) => [...text].reverse().join('');

interface ProbeResult {
  readonly isMainThread: boolean;
  readonly heap: boolean;
  readonly env: boolean;
  readonly workerData: boolean;
}

let mock: MockLlm;

beforeAll(async () => {
  mock = await startMockLlm({
    apiKey: API_KEY,
    rules: Object.entries(NEEDLES).map(([label, needle]) => ({
      match: new RegExp(`^probe ${label}$`),
      steps: [
        { toolCalls: [{ name: 'secret_probe', arguments: { reversed: reversed(needle) } }] },
        { reply: 'probed' },
      ],
    })),
  });
});

afterAll(async () => {
  await mock.close();
});

describe.each(['dedicated', 'pooled'] as const)('%s placement', (placement) => {
  let supervisor: Supervisor;

  beforeAll(async () => {
    const { registry, tools } = await fixtureRegistry(['secret_probe']);
    supervisor = new Supervisor({
      tools: registry,
      placement,
      warmPoolSize: 0,
      mcp: { credentials: () => ({ env: { RESOLVED_TOKEN: MCP_RESOLVED_ENV } }) },
    });
    supervisor.register(
      'cell',
      mockAgent(mock, {
        apiKey: API_KEY,
        auth: { headers: { 'x-secret-header': HEADER_SECRET }, organization: ORGANIZATION },
        instructions: `Answer. ${VISIBLE}`,
        tools,
        mcpServers: [
          { name: 'everything', ...EVERYTHING_STDIO, env: { CONFIG_TOKEN: MCP_CONFIG_ENV } },
        ],
      }),
    );
  });

  afterAll(async () => {
    await shutdown(supervisor);
  });

  async function probe(label: keyof typeof NEEDLES): Promise<ProbeResult> {
    const session = supervisor.session(`secrets:${placement}`, { agent: 'cell' });
    const events: TurnEvent[] = [];
    for await (const event of session.stream(`probe ${label}`)) events.push(event);
    const end = events.find((event) => event.type === 'tool-end');
    if (end?.type !== 'tool-end' || !end.ok)
      throw new Error(`the probe failed: ${JSON.stringify(end)}`);
    return JSON.parse(end.result) as ProbeResult;
  }

  it('the probe finds what the thread does hold (the instructions)', async () => {
    const found = await probe('visible');
    expect(found.isMainThread).toBe(false);
    expect(found.heap).toBe(true);
  });

  it.each([
    ['the apiKey', 'api-key'],
    ['an auth header value', 'header-value'],
    ['the organization', 'organization'],
  ] as const)(
    '%s is nowhere in the thread, and the model got it on every call',
    async (_, label) => {
      const before = mock.requests.length;
      const { isMainThread, heap, env, workerData } = await probe(label);
      expect({ isMainThread, heap, env, workerData }).toEqual({
        isMainThread: false,
        heap: false,
        env: false,
        workerData: false,
      });
      const calls = mock.requests.slice(before);
      expect(calls.length).toBe(2);
      for (const call of calls) {
        expect(call.headers.authorization).toBe(`Bearer ${API_KEY}`);
        expect(call.headers['x-secret-header']).toBe(HEADER_SECRET);
      }
    },
  );

  it.each([
    ['an MCP server env value of the config', 'mcp-config-env'],
    ['MCP credentials from the resolver', 'mcp-resolved-env'],
  ] as const)('%s is nowhere in the thread, while the server is connected', async (_, label) => {
    const { heap, env, workerData } = await probe(label);
    expect({ heap, env, workerData }).toEqual({ heap: false, env: false, workerData: false });
    expect(supervisor.stats().mcpConnections).toBe(1);
  });
});
