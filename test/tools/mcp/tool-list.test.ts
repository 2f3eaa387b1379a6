/**
 * The tool list the model is offered: names within OpenAI's limits, and a list that follows
 * the server when it says its tools changed (`notifications/tools/list_changed`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Supervisor } from '../../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../../src/testing/mock-llm.js';
import { mcpToolName } from '../../../src/tools/mcp/tool-names.js';
import { mockAgent, shutdown } from '../../runtime/helpers.js';
import { FAULT_STDIO } from './servers.js';

const OPENAI_NAME = /^[A-Za-z0-9_-]{1,64}$/;

describe('mcpToolName', () => {
  it.each([
    ['files', 'read', 'files__read'],
    ['files', 'read-file_2', 'files__read-file_2'],
  ])('%s + %s → %s', (server, tool, name) => {
    expect(mcpToolName(server, tool)).toBe(name);
  });

  it('rewrites characters OpenAI refuses, and keeps two such names apart', () => {
    const dotted = mcpToolName('files', 'fs.read');
    const slashed = mcpToolName('files', 'fs/read');
    expect(dotted).toMatch(OPENAI_NAME);
    expect(slashed).toMatch(OPENAI_NAME);
    expect(dotted).not.toBe(slashed);
  });

  it('fits a 128-character MCP name into 64, and keeps two that share a beginning apart', () => {
    const server = 'a'.repeat(24);
    const first = mcpToolName(server, `${'t'.repeat(100)}_one`);
    const second = mcpToolName(server, `${'t'.repeat(100)}_two`);
    expect(first).toMatch(OPENAI_NAME);
    expect(first).toHaveLength(64);
    expect(first).not.toBe(second);
    expect(first.startsWith(`${server}__`)).toBe(true);
  });
});

describe('a server whose tools change', () => {
  let mock: MockLlm;
  let supervisor: Supervisor;

  beforeAll(async () => {
    mock = await startMockLlm({
      rules: [
        { match: 'grow', steps: [{ toolCalls: [{ name: 'local__grow', arguments: {} }] }] },
        { match: 'extra', steps: [{ toolCalls: [{ name: 'local__extra', arguments: {} }] }] },
      ],
    });
    supervisor = new Supervisor({ warmPoolSize: 0 });
    supervisor.register(
      'cell',
      mockAgent(mock, { toolTimeout: 20_000, mcpServers: [{ name: 'local', ...FAULT_STDIO }] }),
    );
  });

  afterAll(async () => {
    await shutdown(supervisor);
    await mock?.close();
  });

  const offered = () => mock.requests.at(-1)?.body?.tools?.map((tool) => tool.function.name) ?? [];

  it('is listed again after notifications/tools/list_changed, so the next turn offers the new tool', async () => {
    const session = supervisor.session('c:grow', { agent: 'cell' });
    expect((await session.send('grow')).text).toBe('tool results: grown');
    expect(offered()).not.toContain('local__extra');
    expect((await session.send('extra')).text).toBe('tool results: extra ran');
    expect(offered()).toContain('local__extra');
  });
});
