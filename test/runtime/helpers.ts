/**
 * Helpers for the runtime tests: agents wired to the mock LLM, fixture tool modules loaded the
 * way workers load them, shared-memory cells for coordinating with tools inside worker
 * threads, a gate for host tools, event recorders and error catchers that match on `code`.
 */
import { setEnvironmentData } from 'node:worker_threads';
import { Agent, type AgentConfig } from '../../src/agent/agent.js';
import type { SupervisorEvents as SupervisorEventMap } from '../../src/runtime/events.js';
import type { Supervisor } from '../../src/runtime/supervisor.js';
import type { MockLlm, MockLlmRequest } from '../../src/testing/mock-llm.js';
import { lastUserText } from '../../src/testing/mock-llm-script.js';
import { defineTool } from '../../src/tools/define-tool.js';
import { ToolRegistry } from '../../src/tools/registry.js';
import type { Tool, ToolContext } from '../../src/tools/tool.js';

/** Keys under which fixture tools find their SharedArrayBuffer (see each fixture). */
export const SHARED_KEYS = {
  lock: 'agentcell-test:lock',
  barrier: 'agentcell-test:barrier',
  spin: 'agentcell-test:spin',
} as const;

/** Fixture tool modules under test/fixtures/tools, by the tool name they export. */
export const FIXTURE_TOOLS = {
  counter: 'counter-tool.js',
  lock: 'lock-tool.js',
  barrier: 'barrier-tool.js',
  spin: 'spin-tool.js',
  exhaust_heap: 'exhaust-heap-tool.js',
  crash: 'crash-tool.js',
  echo: 'echo-tool.js',
  secret_probe: 'secret-probe-tool.js',
} as const;
export type FixtureToolName = keyof typeof FIXTURE_TOOLS;

/** An agent talking to `mock` with millisecond retries. */
export function mockAgent(mock: MockLlm, config: Partial<AgentConfig> = {}): Agent {
  return new Agent({
    name: 'cell',
    llm: 'mock-model',
    baseUrl: mock.url,
    apiKey: 'sk-test',
    ...config,
    execution: { retryBaseDelayMs: 1, ...config.execution },
  });
}

/**
 * A registry holding the named fixture modules (loaded, so agents can list them) plus any
 * host tools, and the loaded tools to give an Agent.
 */
export async function fixtureRegistry(
  names: readonly FixtureToolName[],
  hostTools: readonly Tool[] = [],
): Promise<{ registry: ToolRegistry; tools: Tool[] }> {
  const registry = new ToolRegistry();
  for (const name of names) {
    registry.registerModule(
      name,
      new URL(`../fixtures/tools/${FIXTURE_TOOLS[name]}`, import.meta.url),
    );
  }
  for (const tool of hostTools) registry.register(tool);
  await registry.load();
  return {
    registry,
    tools: [...names.map((name) => registry.get(name)), ...hostTools],
  };
}

/**
 * Int32 cells on a SharedArrayBuffer published under `key` for worker threads started from
 * now on (environment data is copied into new workers; a SharedArrayBuffer stays shared).
 */
export function sharedCells(key: string, length: number): Int32Array {
  const buffer = new SharedArrayBuffer(length * Int32Array.BYTES_PER_ELEMENT);
  setEnvironmentData(key, buffer);
  return new Int32Array(buffer);
}

/** Waits (without blocking this thread) until `cells[index] >= atLeast`. */
export async function waitForCell(
  cells: Int32Array,
  index: number,
  atLeast: number,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = Atomics.load(cells, index);
    if (value >= atLeast) return;
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`cell ${index} stayed at ${value}, expected ${atLeast}`);
    const waiting = Atomics.waitAsync(cells, index, value, left);
    if (waiting.async) await waiting.value;
  }
}

/** What a test sees of an agentcell error (matched on `code`, never `instanceof`). */
export interface Caught {
  readonly code?: unknown;
  readonly name?: unknown;
  readonly message: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

/** Runs `fn`, which must throw, and returns what it threw. */
export function thrownBy(fn: () => unknown): Caught {
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

/** Tracks whether a promise has settled yet, without ever causing an unhandled rejection. */
export interface Tracked<T> {
  readonly promise: Promise<T>;
  readonly settled: boolean;
}

export function track<T>(promise: Promise<T>): Tracked<T> {
  let settled = false;
  promise.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  return {
    promise,
    get settled() {
      return settled;
    },
  };
}

/** A promise with its settle functions. */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((res) => {
    resolve = res;
  });
  return { promise, resolve };
}

/** One call of a gated host tool, as the test sees it. */
export interface GateCall {
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
    run: (_args, context) => {
      const open = deferred<string>();
      const call: GateCall = {
        context: {
          sessionKey: context.sessionKey,
          turnId: context.turnId,
          agentName: context.agentName,
          toolCallId: context.toolCallId,
        },
        release: (result = 'opened') => {
          held.delete(call);
          open.resolve(result);
        },
      };
      held.add(call);
      const waiter = waiters.shift();
      if (waiter) waiter(call);
      else arrived.push(call);
      return open.promise;
    },
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

type Payload<K extends keyof SupervisorEventMap> = SupervisorEventMap[K][0];

/** Every lifecycle event a supervisor emits, in order. */
export interface EventLog {
  readonly all: { readonly name: keyof SupervisorEventMap; readonly payload: unknown }[];
  of<K extends keyof SupervisorEventMap>(name: K): Payload<K>[];
  /** Resolves with the next event `name` (matching `where`) emitted from now on, or one already logged. */
  next<K extends keyof SupervisorEventMap>(
    name: K,
    where?: (payload: Payload<K>) => boolean,
  ): Promise<Payload<K>>;
}

export function logEvents(supervisor: Supervisor): EventLog {
  const names: (keyof SupervisorEventMap)[] = [
    'session:start',
    'turn:start',
    'turn:end',
    'session:crash',
    'session:restart',
    'session:fail',
    'session:close',
  ];
  const all: { name: keyof SupervisorEventMap; payload: unknown }[] = [];
  const listeners: { name: keyof SupervisorEventMap; check: (payload: unknown) => boolean }[] = [];
  for (const name of names) {
    (supervisor.on as (event: string, listener: (payload: unknown) => void) => Supervisor)(
      name,
      (payload) => {
        all.push({ name, payload });
        for (const listener of [...listeners]) {
          if (listener.name === name && listener.check(payload)) {
            listeners.splice(listeners.indexOf(listener), 1);
          }
        }
      },
    );
  }
  const of = <K extends keyof SupervisorEventMap>(name: K): Payload<K>[] =>
    all.filter((entry) => entry.name === name).map((entry) => entry.payload as Payload<K>);
  return {
    all,
    of,
    next: (name, where = () => true) => {
      const seen = of(name).find(where);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve) => {
        listeners.push({
          name,
          check: (payload) => {
            const typed = payload as Payload<typeof name>;
            if (!where(typed)) return false;
            resolve(typed);
            return true;
          },
        });
      });
    },
  };
}

/** The last user message of each chat completion request, in the order the mock got them. */
export function userTexts(requests: readonly MockLlmRequest[]): string[] {
  return requests.map((request) => (request.body ? lastUserText(request.body.messages) : ''));
}

/** Live worker threads as Node reports them: each live session worker holds MessagePorts. */
export function workerResources(): number {
  return process
    .getActiveResourcesInfo()
    .filter((name) => name === 'MessagePort' || name.includes('Worker')).length;
}

/**
 * Waits until the worker resources are back to `count`. Closing a MessagePort releases its
 * handle a loop iteration or two later (Node closes handles asynchronously), so the count is
 * checked until it settles, within a bound, instead of at one instant.
 */
export async function settledWorkerResources(count: number, timeoutMs = 2_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = workerResources();
    if (now === count || Date.now() >= deadline) return now;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

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
