/**
 * Stateful MCP servers declared `perSession`: each session gets a connection (here, a server
 * process) of its own, closed when the session passivates, while other servers stay shared.
 * `server-memory` keeps its memory in the file MEMORY_FILE_PATH names, so the credentials
 * resolver names one file per session: two sessions then keep separate memories.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Supervisor } from '../../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../../src/testing/mock-llm.js';
import { mockAgent, shutdown } from '../../runtime/helpers.js';
import { FAULT_STDIO, MEMORY_STDIO } from './servers.js';

let mock: MockLlm;
let supervisor: Supervisor;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agentcell-mcp-memory-'));
  mock = await startMockLlm({
    rules: [
      {
        match: /^remember (\w+)$/,
        steps: [
          {
            toolCalls: [
              {
                name: 'memory__create_entities',
                arguments: { entities: [{ name: 'fact', entityType: 'note', observations: [] }] },
              },
            ],
          },
        ],
      },
      { match: 'recall', steps: [{ toolCalls: [{ name: 'memory__read_graph', arguments: {} }] }] },
      { match: 'own pid', steps: [{ toolCalls: [{ name: 'own__whoami', arguments: {} }] }] },
      { match: 'shared pid', steps: [{ toolCalls: [{ name: 'shared__whoami', arguments: {} }] }] },
    ],
  });
  supervisor = new Supervisor({
    warmPoolSize: 0,
    mcp: {
      credentials: ({ sessionKey, server }) =>
        server === 'memory'
          ? { env: { MEMORY_FILE_PATH: join(dir, `${sessionKey.replace(':', '-')}.jsonl`) } }
          : undefined,
    },
  });
  supervisor.register(
    'notes',
    mockAgent(mock, {
      toolTimeout: 20_000,
      mcpServers: [
        {
          name: 'memory',
          ...MEMORY_STDIO,
          perSession: true,
          tools: ['create_entities', 'read_graph'],
        },
        { name: 'own', ...FAULT_STDIO, perSession: true, tools: ['whoami'] },
        { name: 'shared', ...FAULT_STDIO, tools: ['whoami'] },
      ],
    }),
  );
});

afterAll(async () => {
  await shutdown(supervisor);
  await mock?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const send = async (key: string, message: string) =>
  (await supervisor.session(key, { agent: 'notes' }).send(message)).text;
const pid = (text: string) => /pid=(\d+)/.exec(text)?.[1];

describe('perSession MCP servers', () => {
  it('give each session a connection of its own, while a shared server stays shared', async () => {
    const [ownA, ownB, sharedA, sharedB] = await Promise.all([
      send('team:a', 'own pid'),
      send('team:b', 'own pid'),
      send('team:a', 'shared pid'),
      send('team:b', 'shared pid'),
    ]);
    expect(pid(ownA)).toBeDefined();
    expect(pid(ownB)).toBeDefined();
    expect(pid(ownA)).not.toBe(pid(ownB));
    expect(pid(sharedA)).toBe(pid(sharedB));
  });

  it('server-memory: two sessions keep separate memories', async () => {
    await send('team:a', 'remember fact');
    expect(await send('team:a', 'recall')).toContain('"name": "fact"');
    expect(await send('team:b', 'recall')).not.toContain('"name": "fact"');
  });

  it("close a session's own connections when it passivates; its next turn opens them again", async () => {
    const open = supervisor.stats().mcpConnections ?? 0;
    const before = pid(await send('team:a', 'own pid'));
    expect(await supervisor.session('team:a', { agent: 'notes' }).passivate('requested')).toBe(
      true,
    );
    // memory and own, of team:a
    expect(supervisor.stats().mcpConnections).toBe(open - 2);
    const after = pid(await send('team:a', 'own pid'));
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
    expect(await send('team:a', 'recall')).toContain('"name": "fact"');
  });
});
