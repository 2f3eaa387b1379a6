/**
 * What a worker calls back in the supervisor's thread: host tools (with their session and
 * turn), the approver, and hooks (in order); and errors that cross from a worker keep their
 * code.
 */
import { threadId as testThreadId } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApprovalRequest, HookContext } from '../../src/agent/extensions.js';
import { NotFoundError } from '../../src/errors.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { defineTool } from '../../src/tools/define-tool.js';
import type { ToolContext } from '../../src/tools/tool.js';
import { fixtureRegistry, logEvents, mockAgent, rejectionOf, shutdown } from './helpers.js';

interface HostCall {
  readonly args: unknown;
  readonly context: ToolContext;
  readonly threadId: number;
}

let mock: MockLlm;
let supervisor: Supervisor;
const hostCalls: HostCall[] = [];
const approvals: ApprovalRequest[] = [];
const hookLog: { name: string; context: HookContext; threadId: number }[] = [];

const whoami = defineTool({
  name: 'whoami',
  description: 'Says which session and turn called it',
  parameters: { type: 'object', properties: { note: { type: 'string' } } },
  host: true,
  run: (args, context) => {
    hostCalls.push({ args, context, threadId: testThreadId });
    return `session ${context.sessionKey} turn ${context.turnId}`;
  },
});

const failing = defineTool({
  name: 'failing',
  description: 'Throws a typed error in the host',
  host: true,
  run: () => {
    throw new NotFoundError('no such record');
  },
});

function hook(name: string) {
  return (context: HookContext) => {
    hookLog.push({ name, context, threadId: testThreadId });
  };
}

beforeAll(async () => {
  mock = await startMockLlm({
    rules: [
      {
        match: /^who/,
        steps: [{ toolCalls: [{ name: 'whoami', arguments: { note: 'hello host' } }] }],
      },
      {
        match: /^guarded (\w+)/,
        steps: [{ toolCalls: [{ name: 'echo', arguments: { text: 'approve me' } }] }],
      },
      { match: /^deny/, steps: [{ toolCalls: [{ name: 'echo', arguments: { text: 'deny' } }] }] },
      { match: /^fail/, steps: [{ toolCalls: [{ name: 'failing', arguments: {} }] }] },
    ],
  });
  const { registry, tools } = await fixtureRegistry(['echo'], [whoami, failing]);
  supervisor = new Supervisor({
    tools: registry,
    approver: (request) => {
      approvals.push(request);
      return (request.arguments as { text?: unknown }).text !== 'deny';
    },
    hooks: { first: hook('first'), second: hook('second'), third: hook('third') },
  });
  supervisor.register(
    'cell',
    mockAgent(mock, {
      tools,
      approval: { tools: ['echo'] },
      execution: { maxRetries: 0 },
      hooks: {
        beforeLlmCall: ['first', 'second'],
        afterLlmCall: ['second', 'first'],
        onTurnEnd: ['third'],
      },
    }),
  );
});

afterAll(async () => {
  await shutdown(supervisor);
  await mock.close();
});

describe('host callbacks from a session worker', () => {
  it('runs a host tool in the supervisor thread with the session key and turn id of the call', async () => {
    const session = supervisor.session('host:a', { agent: 'cell' });
    hostCalls.length = 0;
    const reply = await session.send('who am i');
    expect(reply.text).toBe(`tool results: session host:a turn ${reply.turnId}`);
    expect(hostCalls).toHaveLength(1);
    const [call] = hostCalls;
    expect(call?.args).toEqual({ note: 'hello host' });
    expect(call?.context).toMatchObject({
      sessionKey: 'host:a',
      turnId: reply.turnId,
      agentName: 'cell',
    });
    expect(call?.context.toolCallId).toMatch(/^call_/);
    expect(call?.threadId).toBe(testThreadId);
    expect(session.threadId).not.toBe(testThreadId);
  });

  it('asks the approver given to the Supervisor, which sees the request, and honours its answer', async () => {
    const session = supervisor.session('host:b', { agent: 'cell' });
    approvals.length = 0;
    const approved = await session.send('guarded call');
    expect(approved.text).toContain('approve me');
    expect(approvals).toEqual([
      {
        agentName: 'cell',
        sessionKey: 'host:b',
        turnId: approved.turnId,
        tool: 'echo',
        arguments: { text: 'approve me' },
      },
    ]);
    const denied = await session.send('deny this');
    expect(denied.text).toMatch(/^tool results: error AGENTCELL_APPROVAL_DENIED: /);
    expect(approvals).toHaveLength(2);
  });

  it('runs the hooks registered with the Supervisor, in the supervisor thread, in the configured order', async () => {
    const session = supervisor.session('host:b', { agent: 'cell' });
    hookLog.length = 0;
    const reply = await session.send('plain message');
    expect(hookLog.map((entry) => `${entry.name}:${entry.context.point}`)).toEqual([
      'first:beforeLlmCall',
      'second:beforeLlmCall',
      'second:afterLlmCall',
      'first:afterLlmCall',
      'third:onTurnEnd',
    ]);
    for (const entry of hookLog) {
      expect(entry.threadId).toBe(testThreadId);
      expect(entry.context.sessionKey).toBe('host:b');
      expect(entry.context.turnId).toBe(reply.turnId);
    }
    expect(hookLog.at(-1)?.context).toMatchObject({ outcome: 'ok', reply: 'echo: plain message' });
  });
});

describe('errors that cross the thread boundary keep their code', () => {
  it('a model failure in the worker reaches the caller as AGENTCELL_LLM_REQUEST_FAILED', async () => {
    const session = supervisor.session('host:d', { agent: 'cell' });
    const log = logEvents(supervisor);
    const error = await rejectionOf(session.send('[[mock:500]] please fail'));
    expect(error.code).toBe('AGENTCELL_LLM_REQUEST_FAILED');
    expect(error.name).toBe('LlmRequestFailedError');
    expect(error.details?.['status']).toBe(500);
    expect(log.of('turn:end').map((e) => e.outcome)).toEqual(['AGENTCELL_LLM_REQUEST_FAILED']);
    // The failed turn ran its onTurnEnd hook with the code, and journaled nothing.
    expect(hookLog.at(-1)?.context).toMatchObject({
      point: 'onTurnEnd',
      outcome: 'error',
      errorCode: 'AGENTCELL_LLM_REQUEST_FAILED',
    });
    expect(await session.history()).toEqual([]);
  });

  it('a typed error thrown by a host tool reaches the worker (and the model) with its code', async () => {
    const session = supervisor.session('host:a', { agent: 'cell' });
    const reply = await session.send('fail in the host');
    expect(reply.text).toMatch(/^tool results: error AGENTCELL_NOT_FOUND: no such record/);
  });
});
