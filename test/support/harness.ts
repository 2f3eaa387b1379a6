/**
 * The set-up that tests across areas share: a fixture started before a file's (or a describe
 * block's) tests and stopped after them, a temporary directory, the mock LLM wired that way,
 * agents pointed at it, fixture tool modules loaded, supervisors ended even when a failed test
 * left a turn running, an HTTP server on 127.0.0.1, a gate host tool that holds a turn until
 * the test opens it, and readers for what the mock received. Area helpers build on these and
 * keep what only their area needs.
 */
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { Agent, type AgentConfig } from '../../src/agent/agent.js';
import type { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, type MockLlmOptions, startMockLlm } from '../../src/testing/mock-llm.js';
import {
  type ChatCompletionMessage,
  type ChatCompletionRequest,
  lastUserText,
} from '../../src/testing/mock-llm-script.js';
import { defineTool } from '../../src/tools/define-tool.js';
import { ToolRegistry } from '../../src/tools/registry.js';
import type { Tool, ToolContext } from '../../src/tools/tool.js';

// ---------------------------------------------------------------------------------------------
// Fixtures

/**
 * A stand-in for the value that `current()` returns once it exists: every property read and
 * write goes to that value (methods bound to it, so classes with private fields work). Module-level code
 * can hold it before the hooks start the value; using it that early throws.
 */
export function forwardTo<T extends object>(current: () => T): T {
  const bound = new WeakMap<object, unknown>();
  const read = (property: string | symbol): unknown => {
    const target = current();
    const value: unknown = Reflect.get(target, property, target);
    if (typeof value !== 'function') return value;
    if (!bound.has(value)) bound.set(value, value.bind(target));
    return bound.get(value);
  };
  return new Proxy({} as T, {
    get: (_, property) => read(property),
    set: (_, property, value) => Reflect.set(current(), property, value),
    has: (_, property) => Reflect.has(current(), property),
    ownKeys: () => Reflect.ownKeys(current()),
    getOwnPropertyDescriptor: (_, property) => {
      const descriptor = Reflect.getOwnPropertyDescriptor(current(), property);
      return descriptor && { ...descriptor, configurable: true };
    },
  });
}

/**
 * Starts a fixture in `beforeAll` and stops it in `afterAll` of the enclosing suite (the file,
 * or the describe block it is called in); returns a stand-in for it (see {@link forwardTo}).
 * A fixture whose start failed is not stopped.
 */
export function useFixture<T extends object>(
  start: () => T | Promise<T>,
  stop: (value: T) => unknown,
  what = 'the fixture',
): T {
  let value: T | undefined;
  beforeAll(async () => {
    value = await start();
  });
  afterAll(async () => {
    if (value !== undefined) await stop(value);
  });
  return forwardTo(() => {
    if (value === undefined) throw new Error(`${what} is used before its beforeAll hook ran`);
    return value;
  });
}

/**
 * A temporary directory for the enclosing suite: made at once (so module-level code can name
 * paths in it), removed with everything in it after the suite's tests.
 */
export function useTempDir(prefix = 'agentcell-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

// ---------------------------------------------------------------------------------------------
// The mock LLM and agents on it

/**
 * The mock LLM for the enclosing suite: started once, closed after, and before each test
 * reset to how it started (no requests recorded, the rules and latency of `options`).
 */
export function useMockLlm(options: MockLlmOptions = {}): MockLlm {
  const mock = useFixture(
    () => startMockLlm(options),
    (started) => started.close(),
    'the mock LLM',
  );
  beforeEach(() => {
    mock.reset();
    mock.setRules(options.rules ?? []);
    mock.setLatency(options.latency ?? {});
  });
  return mock;
}

/** An agent on `mock` (model `mock-model`) with retries that take a millisecond. */
export function agentFor(mock: MockLlm, config: Partial<AgentConfig> = {}): Agent {
  return new Agent({
    name: 'cell',
    llm: 'mock-model',
    baseUrl: mock.url,
    apiKey: 'sk-test',
    ...config,
    execution: { retryBaseDelayMs: 1, ...config.execution },
  });
}

/** The body the mock received as request `index` (fails the test when there is none). */
export function bodyOf(mock: MockLlm, index: number): ChatCompletionRequest {
  const body = mock.requests[index]?.body;
  if (!body) throw new Error(`the mock has no request #${index} with a body`);
  return body;
}

/** The messages of request `index`. */
export function messagesOf(mock: MockLlm, index: number): readonly ChatCompletionMessage[] {
  return bodyOf(mock, index).messages;
}

/** The last user message of each request the mock got, in order (requests without a body skipped). */
export function userTexts(mock: MockLlm): string[] {
  return mock.requests.flatMap((request) =>
    request.body ? [lastUserText(request.body.messages)] : [],
  );
}

// ---------------------------------------------------------------------------------------------
// Tools

/**
 * A registry holding fixture tool modules of test/fixtures/tools (`files`: the tool name each
 * exports → its file), loaded so agents can list them, plus any host tools; and the loaded
 * tools, in that order, to give an Agent.
 */
export async function fixtureToolRegistry(
  files: Readonly<Record<string, string>>,
  hostTools: readonly Tool[] = [],
): Promise<{ registry: ToolRegistry; tools: Tool[] }> {
  const registry = new ToolRegistry();
  for (const [name, file] of Object.entries(files)) {
    registry.registerModule(name, new URL(`../fixtures/tools/${file}`, import.meta.url));
  }
  for (const tool of hostTools) registry.register(tool);
  await registry.load();
  return {
    registry,
    tools: [...Object.keys(files).map((name) => registry.get(name)), ...hostTools],
  };
}

// ---------------------------------------------------------------------------------------------
// Supervisors

/**
 * Ends a supervisor: close() (drains), falling back to destroy() if a failed test left a turn
 * that would never end.
 */
export async function shutdown(supervisor: Supervisor, graceMs = 5_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), graceMs);
  });
  const outcome = await Promise.race([supervisor.close().then(() => 'closed' as const), late]);
  clearTimeout(timer);
  if (outcome === 'late') await supervisor.destroy('a test left a turn running');
}

// ---------------------------------------------------------------------------------------------
// HTTP

export interface Listening {
  readonly url: string;
  readonly port: number;
  /** Stops listening and drops every open connection. */
  close(): Promise<void>;
}

/** `text` parsed as JSON, or undefined when it is not JSON. */
export function jsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Serves `handler` on 127.0.0.1 on a free port. */
export async function listen(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<Listening> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Errors

/** What a test sees of an agentcell error (matched on `code`, never `instanceof`). */
export interface Caught {
  readonly code?: unknown;
  readonly name?: unknown;
  readonly message: string;
  readonly details?: {
    readonly paths?: readonly string[];
    readonly problems?: readonly string[];
    readonly [key: string]: unknown;
  };
}

/** Runs `fn`, which must throw, and returns what it threw. */
export function caught(fn: () => unknown): Caught {
  try {
    fn();
  } catch (error) {
    return error as Caught;
  }
  throw new Error('expected the call to throw, but it returned normally');
}

/** Awaits `promise`, which must reject, and returns the rejection reason. */
export async function rejectionOf(promise: Promise<unknown>): Promise<Caught> {
  try {
    await promise;
  } catch (error) {
    return error as Caught;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

// ---------------------------------------------------------------------------------------------
// The gate

/** One call of a gate tool, as the test sees it. */
export interface GateCall {
  readonly sessionKey: string;
  readonly context: Omit<ToolContext, 'signal'>;
  /** Lets the call return `result`. */
  release(result?: string): void;
}

/**
 * A host tool (runs in the test's thread) whose every call waits until the test releases it,
 * so a test can hold a turn mid-way and act while it is held, with no sleeps.
 */
export interface Gate {
  readonly tool: Tool;
  /** Resolves with the next call that entered the tool (calls are queued in order). */
  next(): Promise<GateCall>;
  /** Releases every call held now. */
  releaseAll(): void;
}

export function createGate(name = 'gate'): Gate {
  const arrived: GateCall[] = [];
  const waiters: ((call: GateCall) => void)[] = [];
  const held = new Set<GateCall>();
  const tool = defineTool({
    name,
    description: 'Waits until the test opens it',
    host: true,
    run: (_args, context) =>
      new Promise<string>((resolve) => {
        const call: GateCall = {
          sessionKey: context.sessionKey,
          context: {
            sessionKey: context.sessionKey,
            turnId: context.turnId,
            agentName: context.agentName,
            toolCallId: context.toolCallId,
          },
          release: (result = 'opened') => {
            held.delete(call);
            resolve(result);
          },
        };
        held.add(call);
        const waiter = waiters.shift();
        if (waiter) waiter(call);
        else arrived.push(call);
      }),
  });
  return {
    tool,
    next: () => {
      const call = arrived.shift();
      if (call) return Promise.resolve(call);
      return new Promise((resolve) => waiters.push(resolve));
    },
    releaseAll: () => {
      for (const call of [...held]) call.release();
    },
  };
}
