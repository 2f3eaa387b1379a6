/**
 * Bad input is rejected at the edge with a typed error, before anything reaches a worker; a
 * turn that calls back into its own session fails fast instead of deadlocking.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { defineTool } from '../../src/tools/define-tool.js';
import { type Caught, mockAgent, rejectionOf, shutdown, thrownBy } from './helpers.js';

let mock: MockLlm;
let supervisor: Supervisor;
const innerErrors: Caught[] = [];

const reenter = defineTool({
  name: 'reenter',
  description: 'Sends a message to a session (by default the one whose turn called it)',
  parameters: { type: 'object', properties: { target: { type: 'string' } } },
  host: true,
  run: async (args: { target?: string }, context) => {
    const key = args.target ?? context.sessionKey;
    try {
      const inner = await supervisor.session(key, { agent: 'cell' }).send('from inside');
      return `inner reply: ${inner.text}`;
    } catch (error) {
      innerErrors.push(error as Caught);
      throw error;
    }
  },
});

beforeAll(async () => {
  mock = await startMockLlm({
    rules: [
      { match: /^reenter/, steps: [{ toolCalls: [{ name: 'reenter', arguments: {} }] }] },
      {
        match: /^call the other/,
        steps: [{ toolCalls: [{ name: 'reenter', arguments: { target: 'bad:other' } }] }],
      },
    ],
  });
  supervisor = new Supervisor({ maxMessageBytes: 64 });
  supervisor.register('cell', mockAgent(mock, { tools: [reenter] }));
});

afterAll(async () => {
  await shutdown(supervisor);
  await mock.close();
});

describe('supervisor options', () => {
  it('lists every bad option in AGENTCELL_OPTIONS_INVALID', () => {
    const error = thrownBy(
      () =>
        new Supervisor({ maxConcurrentTurns: 0, nope: 1 } as unknown as ConstructorParameters<
          typeof Supervisor
        >[0]),
    );
    expect(error.code).toBe('AGENTCELL_OPTIONS_INVALID');
    const paths = error.details?.['paths'] as string[];
    expect(paths.some((path) => path.startsWith('options.maxConcurrentTurns'))).toBe(true);
    expect(paths.some((path) => path.includes('nope'))).toBe(true);
    expect(error.message).toContain('maxConcurrentTurns');
    expect(error.message).toContain('nope');
  });

  it.each([
    ['mcp.maxConnections', { maxConnections: 0 }],
    ['mcp.credentials', { credentials: 'token-123' }],
    ['mcp.maxResultBytes', { maxResultBytes: -1 }],
    ['mcp.idle', { idle: 5 }],
  ])('refuses a bad %s in AGENTCELL_OPTIONS_INVALID', (path, mcp) => {
    const error = thrownBy(
      () => new Supervisor({ mcp } as unknown as ConstructorParameters<typeof Supervisor>[0]),
    );
    expect(error.code).toBe('AGENTCELL_OPTIONS_INVALID');
    expect(error.message).toContain(`options.${path.split('.')[0]}`);
    expect(error.message).toContain(path.split('.')[1]);
  });
});

describe('session keys and agents', () => {
  it.each([
    ['a path separator', 'a/b'],
    ['an empty key', ''],
    ['300 characters', 'k'.repeat(300)],
    ['a newline', 'line\nbreak'],
    ['a backslash', 'a\\b'],
    ['a parent reference', 'a..b'],
  ])('rejects a key with %s: AGENTCELL_SESSION_KEY_INVALID', (_what, key) => {
    expect(thrownBy(() => supervisor.session(key, { agent: 'cell' })).code).toBe(
      'AGENTCELL_SESSION_KEY_INVALID',
    );
  });

  it('rejects a session of an unregistered agent: AGENTCELL_AGENT_NOT_REGISTERED', () => {
    expect(thrownBy(() => supervisor.session('fine-key', { agent: 'missing' })).code).toBe(
      'AGENTCELL_AGENT_NOT_REGISTERED',
    );
  });

  it('refuses to register an agent with an inline tool no worker can load: AGENTCELL_TOOL_NOT_FOUND', () => {
    const inline = defineTool({
      name: 'inline',
      description: 'lives in this thread',
      run: () => 1,
    });
    const agent = new Agent({ name: 'inline-user', llm: 'mock-model', tools: [inline] });
    expect(thrownBy(() => supervisor.register('inline-user', agent)).code).toBe(
      'AGENTCELL_TOOL_NOT_FOUND',
    );
    expect(thrownBy(() => supervisor.session('k', { agent: 'inline-user' })).code).toBe(
      'AGENTCELL_AGENT_NOT_REGISTERED',
    );
  });
});

describe('messages', () => {
  it.each<[string, unknown]>([
    ['an empty string', ''],
    ['only whitespace', '  \n '],
    ['a number', 123],
    ['undefined', undefined],
    ['65 bytes (maxMessageBytes is 64)', 'x'.repeat(65)],
    ['40 characters but 80 UTF-8 bytes', 'é'.repeat(40)],
  ])(
    'rejects %s with AGENTCELL_MESSAGE_INVALID (a rejected promise, no worker)',
    async (_what, message) => {
      const session = supervisor.session('bad:messages', { agent: 'cell' });
      let promise: Promise<unknown> | undefined;
      expect(() => {
        promise = session.send(message as string);
      }).not.toThrow();
      const error = await rejectionOf(promise as Promise<unknown>);
      expect(error.code).toBe('AGENTCELL_MESSAGE_INVALID');
      expect(session.threadId).toBeUndefined();
      expect(await session.history()).toEqual([]);
    },
  );

  it('accepts a message of exactly maxMessageBytes', async () => {
    const session = supervisor.session('bad:limit', { agent: 'cell' });
    const message = 'y'.repeat(64);
    expect((await session.send(message)).text).toBe(`echo: ${message}`);
  });
});

describe('re-entrancy', () => {
  it('a host tool sending to its own session gets AGENTCELL_SESSION_REENTRANT; the model is told and the turn completes', async () => {
    const session = supervisor.session('bad:reenter', { agent: 'cell' });
    const reply = await session.send('reenter please');
    expect(innerErrors.map((error) => error.code)).toEqual(['AGENTCELL_SESSION_REENTRANT']);
    // The error crossed back into the worker with its code, and the model was told.
    expect(reply.text).toMatch(/^tool results: error AGENTCELL_SESSION_REENTRANT: /);
    const users = (await session.history()).filter((m) => m.role === 'user');
    expect(users.map((m) => m.content)).toEqual(['reenter please']);
  });

  it('a host tool may send to another session and await its reply', async () => {
    const session = supervisor.session('bad:caller', { agent: 'cell' });
    innerErrors.length = 0;
    const reply = await session.send('call the other session');
    expect(innerErrors).toEqual([]);
    expect(reply.text).toBe('tool results: inner reply: echo: from inside');
    const other = supervisor.session('bad:other', { agent: 'cell' });
    expect((await other.history()).map((m) => m.content)).toEqual([
      'from inside',
      'echo: from inside',
    ]);
  });
});
