/**
 * Pooled placement: turns as piscina tasks on a bounded pool. Each test gets its own pool of
 * one thread, so "the same thread" is guaranteed and module-level state starts fresh. Pool
 * threads run the compiled entry in dist/ (`npm run build` first).
 */
import { threadId as hostThreadId, MessageChannel, type MessagePort } from 'node:worker_threads';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { toBlueprint } from '../../src/agent/blueprint.js';
import { encodeJournal, type JournalRecord } from '../../src/agent/journal.js';
import type { ChatMessage } from '../../src/agent/messages.js';
import type { TurnEvent } from '../../src/agent/turn-events.js';
import { ModelService } from '../../src/llm/model-service.js';
import { ModelCallServer } from '../../src/runtime/placement/model-calls.js';
import {
  PooledRunner,
  TurnPool,
  type TurnPoolOptions,
} from '../../src/runtime/placement/pooled.js';
import type { WorkerExit } from '../../src/runtime/placement/worker-handle.js';
import { threadAgentOf } from '../../src/runtime/thread-agent.js';
import { type MockLlm, startMockLlm } from '../../src/testing/index.js';
import { contentText } from '../../src/testing/mock-llm-script.js';
import { defineTool } from '../../src/tools/define-tool.js';
import { ToolRegistry } from '../../src/tools/registry.js';
import type { Tool } from '../../src/tools/tool.js';
import type { HostApi, TurnEnd } from '../../src/worker/api.js';
import { isModelCall } from '../../src/worker/model-protocol.js';
import {
  runTurnTask,
  type TurnTaskInput,
  type TurnTaskMessage,
} from '../../src/worker/turn-task-core.js';

const FIXTURES = new URL('../fixtures/tools/', import.meta.url);
/** The host's model service: the turns' model calls are made there. */
const models = new ModelService();

/** What a task posts on its port, in order (it posts batches), with its model calls answered. */
function collect(port: MessagePort, received: TurnTaskMessage[]): void {
  const server = new ModelCallServer(models, port, { sessionKey: 'pooled:direct' });
  port.on('message', (batch: TurnTaskMessage[]) => {
    for (const message of batch) {
      if (isModelCall(message)) server.handle(message);
      else received.push(message);
    }
  });
}
const MODULE_TOOLS = {
  counter: 'counter-tool.js',
  factory_counter: 'factory-counter-tool.js',
  spin: 'spin-tool.js',
  crash: 'crash-tool.js',
} as const;

/** Set while the host tool `gate` holds a turn; calling it lets the turn go on. */
let openGate: (() => void) | undefined;
const hostCalls: { threadId: number; sessionKey: string }[] = [];

const hostEcho = defineTool<{ text: string }>({
  name: 'host_echo',
  description: 'Echoes in the host thread',
  parameters: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
  host: true,
  run: ({ text }, context) => {
    hostCalls.push({ threadId: hostThreadId, sessionKey: context.sessionKey });
    return `host saw ${text} on thread ${hostThreadId}`;
  },
});

const gate = defineTool({
  name: 'gate',
  description: 'Waits until the test opens the gate',
  host: true,
  run: () =>
    new Promise<string>((resolve) => {
      openGate = () => {
        openGate = undefined;
        resolve('gate opened');
      };
    }),
});

const HOST_TOOLS: readonly Tool[] = [hostEcho, gate];

function call(name: string, args: Record<string, unknown> = {}) {
  return { toolCalls: [{ name, arguments: args }] };
}

let mock: MockLlm;
let registry: ToolRegistry;
let agent: Agent;
const pools: TurnPool[] = [];

beforeAll(async () => {
  mock = await startMockLlm({
    rules: [
      { match: 'use counter', steps: [call('counter')] },
      { match: 'use factory', steps: [call('factory_counter')] },
      { match: 'spin', steps: [call('spin')] },
      { match: 'crash', steps: [call('crash', { how: 'exit' })] },
      { match: 'ask host', steps: [call('host_echo', { text: 'ping' })] },
      { match: 'hold', steps: [call('gate'), { reply: 'held and done' }] },
    ],
  });
  registry = new ToolRegistry();
  for (const [name, file] of Object.entries(MODULE_TOOLS)) {
    registry.registerModule(name, new URL(file, FIXTURES));
  }
  for (const tool of HOST_TOOLS) registry.register(tool);
  await registry.load();
  agent = new Agent({
    name: 'pooled',
    llm: 'mock-model',
    baseUrl: mock.url,
    apiKey: 'k',
    tools: [...Object.keys(MODULE_TOOLS).map((name) => registry.get(name)), ...HOST_TOOLS],
    execution: { retryBaseDelayMs: 1, maxBudget: 1 },
  });
});

afterAll(async () => {
  await mock.close();
});

afterEach(async () => {
  await Promise.all(pools.splice(0).map((pool) => pool.destroy()));
  mock.reset();
  hostCalls.length = 0;
});

function onePool(options: TurnPoolOptions = {}): TurnPool {
  const pool = new TurnPool({ maxThreads: 1, minThreads: 1, ...options });
  pools.push(pool);
  return pool;
}

const host: HostApi = {
  callTool: async (name, args, context) => {
    const tool = HOST_TOOLS.find((each) => each.name === name);
    if (!tool?.run) throw new Error(`no host tool ${name}`);
    return tool.run(args as never, { ...context, signal: new AbortController().signal });
  },
  runHook: async () => {},
  validate: async () => true,
  approve: async () => true,
  mcpTools: async () => [],
  callMcpTool: async () => '',
};

interface Ran {
  readonly end: TurnEnd;
  readonly events: TurnEvent[];
  /** The pool thread that ran the turn. */
  readonly threadId: number | undefined;
}

/** A session on `pool`: its runner, and a journal it appends each completed turn to. */
function session(pool: TurnPool, key: string, journal: JournalRecord[] = []) {
  const runner = PooledRunner.create(
    pool,
    {
      sessionKey: key,
      ...threadAgentOf(toBlueprint(agent), models),
      journal: encodeJournal(journal),
      tools: registry.entries(),
      handoffs: {},
      hooks: [],
      validators: [],
      host,
      models,
    },
    { journal: async () => encodeJournal(journal), interruptGraceMs: 300 },
  );
  let turns = 0;
  return {
    runner,
    journal,
    /** Starts a turn; `ran` settles with its end, events and thread. */
    start(message: string, turnId = `${key}#${++turns}`) {
      const events: TurnEvent[] = [];
      let threadId: number | undefined;
      const ran = runner
        .runTurn(turnId, message, (event) => {
          threadId ??= runner.currentThreadId;
          events.push(event);
        })
        .then((end): Ran => {
          if (end.ok && end.result) {
            const { delta } = end.result;
            journal.push({ turnId, messages: delta.messages, usage: delta.usage, at: 0 });
          }
          return { end, events, threadId };
        });
      return { turnId, ran };
    },
    async send(message: string): Promise<Ran> {
      return this.start(message).ran;
    },
  };
}

function reply(end: TurnEnd): string {
  if (!end.ok) throw new Error(`the turn failed: ${end.error.code} ${end.error.message}`);
  if (!end.result) throw new Error('the turn paused');
  return end.result.reply;
}

/** Texts of the messages the model was sent in the last request. */
function lastPrompt(): string[] {
  const body = mock.requests.at(-1)?.body;
  return (body?.messages ?? []).map(
    (message) => `${message.role}: ${contentText(message.content)}`,
  );
}

function exitOf(runner: PooledRunner): Promise<WorkerExit | 'running'> {
  return Promise.race([
    runner.exited,
    new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 20)),
  ]);
}

async function waitFor(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const ZERO_COST = {
  inputTokens: 0,
  outputTokens: 0,
  totalTokens: 0,
  costUsd: 0,
  llmCalls: 0,
} as const;

const history: ChatMessage[] = [
  { role: 'user', content: 'my name is Ada' },
  { role: 'assistant', content: 'Hello Ada' },
];

describe('pooled placement', () => {
  it('runs a turn as a pool task and returns the reply and its delta', async () => {
    const pool = onePool();
    const a = session(pool, 'a');
    const { end, threadId } = await a.send('hello');
    expect(reply(end)).toBe('echo: hello');
    if (!end.ok || !end.result) return;
    expect(end.result.delta.messages.map((message) => message.role)).toEqual(['user', 'assistant']);
    expect(end.result.delta.usage.llmCalls).toBe(1);
    expect(end.steered).toEqual([]);
    expect(threadId).toBeDefined();
    expect(pool.threadIds).toContain(threadId);
    expect(threadId).not.toBe(hostThreadId);
    expect(a.runner.threadId).toBe(-1);
    expect(await a.runner.stats()).toMatchObject({ threadId: -1, historyLength: 0 });
    expect(a.runner.eventLoopUtilization()).toEqual({ active: 0, utilization: 0 });
    // The turn-end can arrive before piscina hears that the task returned.
    await waitFor(() => pool.stats().completed === 1);
    expect(pool.stats()).toMatchObject({ threads: 1, queued: 0 });
  });

  it('gives the model the history of the journal, read afresh every turn', async () => {
    const pool = onePool();
    const a = session(pool, 'a', [{ turnId: 'old', messages: history, usage: ZERO_COST, at: 0 }]);
    await a.send('what is my name?');
    expect(lastPrompt()).toEqual(
      expect.arrayContaining([
        'user: my name is Ada',
        'assistant: Hello Ada',
        'user: what is my name?',
      ]),
    );
    await a.send('and again?');
    expect(lastPrompt()).toEqual(
      expect.arrayContaining([
        'user: my name is Ada',
        'user: what is my name?',
        'assistant: echo: what is my name?',
        'user: and again?',
      ]),
    );
  });

  it('keeps no runtime state in a pool thread between turns of different sessions', async () => {
    const pool = onePool();
    // A's journal restores its history and its usage, which is over the agent's budget.
    const a = session(pool, 'a', [
      { turnId: 'old', messages: history, usage: { ...ZERO_COST, costUsd: 5 }, at: 0 },
    ]);
    const b = session(pool, 'b');
    const first = await a.send('use factory');
    expect(first.end.ok).toBe(false);
    if (!first.end.ok) expect(first.end.error.code).toBe('AGENTCELL_BUDGET_EXCEEDED');

    const second = await b.send('use factory');
    expect(second.threadId).toBe(first.threadId);
    // Fresh usage (the budget passes), empty history, and a new factory instance.
    expect(reply(second.end)).toBe('tool results: instance=1 count=1');
    expect(lastPrompt().filter((text) => text.includes('Ada'))).toEqual([]);

    // B's own agent stays on the thread for its next turn: its factory instance goes on.
    const third = await b.send('use factory');
    expect(third.threadId).toBe(first.threadId);
    expect(reply(third.end)).toBe('tool results: instance=1 count=2');
  });

  it('shares module-level state of a tool module between sessions of one thread (the documented limit)', async () => {
    const pool = onePool();
    const a = session(pool, 'a');
    const b = session(pool, 'b');
    const fromA = await a.send('use counter');
    const fromB = await b.send('use counter');
    expect(fromB.threadId).toBe(fromA.threadId);
    expect(reply(fromA.end)).toBe('tool results: count=1');
    expect(reply(fromB.end)).toBe('tool results: count=2');
  });

  it('delivers events in order, seq increasing from 0, ended by the turn-end', async () => {
    const pool = onePool();
    const { end, events } = await session(pool, 'a').send('ask host');
    expect(end.ok).toBe(true);
    expect(events.map((event) => event.seq)).toEqual(events.map((_, index) => index));
    expect(events[0]?.type).toBe('turn-start');
    expect(events.at(-1)?.type).toBe('final');
    const types = events.map((event) => event.type);
    expect(types.indexOf('tool-start')).toBeLessThan(types.indexOf('tool-end'));
    expect(new Set(events.map((event) => event.turnId))).toEqual(new Set(['a#1']));
  });

  it('calls host tools back in the host thread from a pool thread', async () => {
    const pool = onePool();
    const { end, threadId } = await session(pool, 'tenant:7').send('ask host');
    expect(reply(end)).toBe(`tool results: host saw ping on thread ${hostThreadId}`);
    expect(hostCalls).toEqual([{ threadId: hostThreadId, sessionKey: 'tenant:7' }]);
    expect(threadId).not.toBe(hostThreadId);
  });

  it('queues turns while its thread starts, then refuses past maxQueue with AGENTCELL_CAPACITY_EXCEEDED', async () => {
    // A cold pool: turns waiting for the starting thread's room are not refused for it (as
    // piscina's own queue counts a starting thread's room).
    const pool = onePool({ turnsPerThread: 1, maxQueue: 1 });
    const cold = await Promise.all(['one', 'two'].map((key) => session(pool, key).send('hi')));
    expect(cold.map(({ end }) => reply(end))).toEqual(['echo: hi', 'echo: hi']);
    // The thread's one slot held, one turn waits, and the next is refused.
    const held = session(pool, 'held').start('hold');
    await waitFor(() => openGate !== undefined);
    const waiting = session(pool, 'waiting').start('hi');
    const refused = session(pool, 'refused').start('hi');
    await expect(refused.ran).rejects.toMatchObject({ code: 'AGENTCELL_CAPACITY_EXCEEDED' });
    expect(pool.stats().queued).toBe(1);
    openGate?.();
    expect(reply((await held.ran).end)).toBe('held and done');
    expect(reply((await waiting.ran).end)).toBe('echo: hi');
  });

  it('steers a message into the running turn', async () => {
    const pool = onePool();
    const a = session(pool, 'a');
    const { turnId, ran } = a.start('hold');
    await waitFor(() => openGate !== undefined);
    expect(await a.runner.steer(turnId, 'steer-1', 'also this')).toBe(true);
    openGate?.();
    const { end } = await ran;
    expect(end.steered).toEqual(['steer-1']);
    expect(reply(end)).toBe('echo: also this');
    expect(lastPrompt()).toEqual(expect.arrayContaining(['user: hold', 'user: also this']));
    expect(await a.runner.steer(turnId, 'steer-2', 'too late')).toBe(false);
  });

  it('interrupts cooperatively: the turn ends as interrupted and the thread serves the next turn', async () => {
    const pool = onePool();
    const a = session(pool, 'a');
    const before = pool.threadIds;
    const { turnId, ran } = a.start('[[mock:stall]] think forever');
    await mock.waitForRequests(1);
    expect(await a.runner.interrupt(turnId, 'user pressed stop')).toBe(true);
    const { end, threadId } = await ran;
    expect(end.ok).toBe(false);
    if (!end.ok) {
      expect(end.error.code).toBe('AGENTCELL_INTERRUPTED');
      expect(end.error.details).toMatchObject({ reason: 'user pressed stop' });
    }
    expect(a.journal).toEqual([]);
    expect(pool.threadIds).toEqual(before);
    expect(await exitOf(a.runner)).toBe('running');
    const next = await a.send('are you there?');
    expect(reply(next.end)).toBe('echo: are you there?');
    expect(next.threadId).toBe(threadId);
  });

  it('ends a turn still queued for a thread at once when interrupted, terminating nothing', async () => {
    const pool = onePool({ turnsPerThread: 1 });
    const a = session(pool, 'a');
    const b = session(pool, 'b');
    const busy = a.start('[[mock:stall]] hog the only thread');
    await mock.waitForRequests(1);
    const before = pool.threadIds;
    const queued = b.start('waiting in line');
    expect(b.runner.currentThreadId).toBeUndefined();
    expect(await b.runner.interrupt(queued.turnId, 'never mind')).toBe(true);
    const { end } = await queued.ran;
    expect(end.ok).toBe(false);
    if (!end.ok) expect(end.error.code).toBe('AGENTCELL_INTERRUPTED');
    expect(mock.requests).toHaveLength(1);
    await a.runner.interrupt(busy.turnId, 'done');
    await busy.ran;
    expect(pool.threadIds).toEqual(before);
  });

  it('escalates an ignored interrupt: the task is aborted, only its runner is gone, the pool goes on', async () => {
    const pool = onePool();
    const a = session(pool, 'a');
    const b = session(pool, 'b');
    const before = pool.threadIds;
    const { turnId, ran } = a.start('spin');
    await waitFor(() => a.runner.currentThreadId !== undefined && mock.requests.length >= 1);
    a.runner.eventLoopUtilization();
    a.runner.observeEventLoop();
    await new Promise((resolve) => setTimeout(resolve, 50));
    // An observer's reading (stats, metrics, a dashboard) takes nothing from the budget's.
    expect(a.runner.observeEventLoop().active).toBeGreaterThan(20);
    // The spinning thread's CPU shows as this session's (a budget can see it).
    expect(a.runner.eventLoopUtilization().active).toBeGreaterThan(20);
    const startedAt = Date.now();
    expect(await a.runner.interrupt(turnId, 'stop spinning')).toBe(true);
    const error = await ran.then(
      () => undefined,
      (thrown: unknown) => thrown as { code?: string; details?: Record<string, unknown> },
    );
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(250);
    expect(error?.code).toBe('AGENTCELL_SESSION_CRASHED');
    expect(error?.details).toMatchObject({ turnId, terminated: true });
    expect(await a.runner.exited).toMatchObject({ terminated: true });
    // B shares the pool, not the thread's fate.
    expect(await exitOf(b.runner)).toBe('running');
    const next = await b.send('still there?');
    expect(reply(next.end)).toBe('echo: still there?');
    expect(before).not.toContain(next.threadId);
    // A's session would replace its runner; a new one serves it from the same journal.
    const again = await session(pool, 'a', a.journal).send('and me?');
    expect(reply(again.end)).toBe('echo: and me?');
  });

  it('fails only the turn whose thread died, and replaces that thread', async () => {
    const pool = onePool();
    const a = session(pool, 'a');
    const b = session(pool, 'b');
    const before = pool.threadIds;
    const error = await a.send('crash').then(
      () => undefined,
      (thrown: unknown) => thrown as { code?: string; details?: Record<string, unknown> },
    );
    expect(error?.code).toBe('AGENTCELL_SESSION_CRASHED');
    expect(error?.details).toMatchObject({ exitCode: 3, terminated: false });
    expect(await a.runner.exited).toMatchObject({ code: 3, terminated: false });
    expect(await exitOf(b.runner)).toBe('running');
    const next = await b.send('still standing?');
    expect(reply(next.end)).toBe('echo: still standing?');
    expect(before).not.toContain(next.threadId);
  });

  it('terminate() aborts the running turn and retires the runner', async () => {
    const pool = onePool();
    const a = session(pool, 'a');
    const { ran } = a.start('[[mock:stall]] forever');
    await mock.waitForRequests(1);
    await a.runner.terminate();
    const error = await ran.then(
      () => undefined,
      (thrown: unknown) => thrown as { code?: string; details?: Record<string, unknown> },
    );
    expect(error?.code).toBe('AGENTCELL_SESSION_CRASHED');
    expect(error?.details).toMatchObject({ terminated: true });
    expect(await a.runner.exited).toEqual({ code: 1, terminated: true });
    await expect(a.runner.runTurn('later', 'hi', () => {})).rejects.toMatchObject({
      code: 'AGENTCELL_SESSION_CRASHED',
    });
    expect(reply((await session(pool, 'b').send('next')).end)).toBe('echo: next');
  });

  it('rejects bad pool options with a typed error', () => {
    expect(() => new TurnPool({ maxThreads: 0 })).toThrow(
      expect.objectContaining({ code: 'AGENTCELL_OPTIONS_INVALID' }),
    );
    expect(() => new TurnPool({ maxThreads: 1, minThreads: 2 })).toThrow(
      expect.objectContaining({ code: 'AGENTCELL_OPTIONS_INVALID' }),
    );
  });
});

describe('turn task core (without a thread)', () => {
  it('posts task-start, the events and the turn-end on its port, then closes it', async () => {
    const events = new MessageChannel();
    const hostChannel = new MessageChannel();
    const received: TurnTaskMessage[] = [];
    collect(events.port1, received);
    const closed = new Promise<void>((resolve) => events.port1.once('close', () => resolve()));
    const input: TurnTaskInput = {
      agent: {
        ...threadAgentOf(toBlueprint(agent), models),
        tools: registry.entries(),
        handoffs: {},
        hooks: [],
        validators: [],
      },
      sessionKey: 'core',
      journal: encodeJournal([]),
      turnId: 't1',
      message: 'hi core',
      port: events.port2,
      hostPort: hostChannel.port2,
    };
    const result = await runTurnTask(input);
    await closed;
    hostChannel.port1.close();
    expect(result).toEqual({ turnId: 't1', ok: true, threadId: hostThreadId });
    expect(received[0]).toEqual({ type: 'task-start', turnId: 't1', threadId: hostThreadId });
    const end = received.at(-1);
    expect(end?.type).toBe('turn-end');
    if (end?.type === 'turn-end') expect(reply(end)).toBe('echo: hi core');
  });

  it('reports a journal that does not decode as the turn-end error', async () => {
    const events = new MessageChannel();
    const hostChannel = new MessageChannel();
    const received: TurnTaskMessage[] = [];
    collect(events.port1, received);
    const closed = new Promise<void>((resolve) => events.port1.once('close', () => resolve()));
    const result = await runTurnTask({
      agent: {
        ...threadAgentOf(toBlueprint(agent), models),
        tools: registry.entries(),
        handoffs: {},
        hooks: [],
        validators: [],
      },
      sessionKey: 'core',
      journal: 'not a journal',
      turnId: 't2',
      message: 'hi',
      port: events.port2,
      hostPort: hostChannel.port2,
    });
    await closed;
    hostChannel.port1.close();
    expect(result.ok).toBe(false);
    const end = received.at(-1);
    expect(end).toMatchObject({ type: 'turn-end', turnId: 't2', ok: false });
    if (end?.type === 'turn-end' && !end.ok) expect(end.error.code).toBe('AGENTCELL_STORE_CORRUPT');
  });

  it('a task cancelled before it started runs nothing: no task-start, no model call', async () => {
    const events = new MessageChannel();
    const hostChannel = new MessageChannel();
    const received: TurnTaskMessage[] = [];
    const closed = new Promise<void>((resolve) => events.port1.once('close', () => resolve()));
    // Posted while the task waited on a blocked thread, before the host moved the turn.
    events.port1.postMessage({ type: 'cancel' });
    const requestsBefore = mock.requests.length;
    const result = await runTurnTask({
      agent: {
        ...threadAgentOf(toBlueprint(agent), models),
        tools: registry.entries(),
        handoffs: {},
        hooks: [],
        validators: [],
      },
      sessionKey: 'core',
      journal: encodeJournal([]),
      turnId: 't3',
      message: 'hi',
      port: events.port2,
      hostPort: hostChannel.port2,
    });
    collect(events.port1, received);
    await closed;
    hostChannel.port1.close();
    expect(result).toEqual({ turnId: 't3', ok: false, threadId: hostThreadId });
    expect(received).toEqual([]);
    expect(mock.requests.length).toBe(requestsBefore);
  });
});
