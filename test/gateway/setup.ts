/**
 * The world of a gateway test file: one mock LLM, one supervisor with a few agents (all with
 * the sentinel apiKey), a gate tool to hold turns, and a way to wait for a turn's end; and a
 * gateway in front of a supervisor, served on 127.0.0.1.
 */
import type { Agent, AgentConfig } from '../../src/agent/agent.js';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/gateway/gateway.js';
import type { SupervisorEvents } from '../../src/runtime/events.js';
import { MemoryStore } from '../../src/runtime/stores/memory.js';
import type { JournalStore } from '../../src/runtime/stores/store.js';
import { Supervisor, type SupervisorOptions } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import {
  agentFor,
  createGate,
  forwardTo,
  type Gate,
  type Listening,
  listen,
  shutdown,
  useFixture,
} from '../support/harness.js';
import { Client, SENTINEL } from './helpers.js';

export interface World {
  readonly mock: MockLlm;
  readonly gate: Gate;
  readonly supervisor: Supervisor;
  /** Where the supervisor journals (a MemoryStore unless the options name one). */
  readonly store: JournalStore;
  /** An agent on the mock with the sentinel apiKey and millisecond retries. */
  agent(name: string, config?: Partial<AgentConfig>): Agent;
  /** Resolves with the next `turn:end` of supervisor key `key` (register before acting). */
  turnEnd(key: string): Promise<SupervisorEvents['turn:end'][0]>;
  /** close(), or destroy() if a failed test left a turn that never ends. */
  shutdown(): Promise<void>;
}

/** Messages starting with "hold" call the gate tool first, then get the mock's echo. */
async function createWorld(options: SupervisorOptions = {}): Promise<World> {
  const mock = await startMockLlm({
    rules: [{ match: /^hold/, steps: [{ toolCalls: [{ name: 'gate', arguments: {} }] }] }],
  });
  const gate = createGate('gate');
  const store = options.store ?? new MemoryStore();
  const supervisor = new Supervisor({ ...options, store });
  return {
    mock,
    gate,
    supervisor,
    store,
    agent: (name, config = {}) => agentFor(mock, { name, apiKey: SENTINEL, ...config }),
    turnEnd: (key) =>
      new Promise((resolve) => {
        const listener = (event: SupervisorEvents['turn:end'][0]) => {
          if (event.key !== key) return;
          supervisor.off('turn:end', listener);
          resolve(event);
        };
        supervisor.on('turn:end', listener);
      }),
    shutdown: async () => {
      gate.releaseAll();
      await shutdown(supervisor);
      await mock.close();
    },
  };
}

/** The world of the enclosing suite, with the agents `register` gives its supervisor. */
export function useWorld(register: (world: World) => void = () => {}): World {
  return useFixture(
    async () => {
      const world = await createWorld();
      register(world);
      return world;
    },
    (world) => world.shutdown(),
    'the world',
  );
}

/** A gateway served on 127.0.0.1 with a client that records every body it reads. */
export interface ServedGateway {
  readonly gateway: Gateway;
  readonly server: Listening;
  readonly client: Client;
  readonly bodies: string[];
  close(): Promise<void>;
}

export async function serveGateway(
  supervisor: Supervisor,
  options: GatewayOptions,
): Promise<ServedGateway> {
  const gateway = createGateway(supervisor, options);
  const server = await listen(gateway.handler);
  const bodies: string[] = [];
  return {
    gateway,
    server,
    client: new Client(server.url, bodies),
    bodies,
    close: async () => {
      await gateway.close();
      await server.close();
    },
  };
}

/**
 * A gateway in front of `world`'s supervisor for the enclosing suite (closed before the world
 * shuts down); each part stands in for what the suite's hooks start.
 */
export function useGateway(world: World, options: GatewayOptions): Omit<ServedGateway, 'close'> {
  const served = useFixture(
    () => serveGateway(world.supervisor, options),
    (each) => each.close(),
    'the gateway',
  );
  return {
    gateway: forwardTo(() => served.gateway),
    server: forwardTo(() => served.server),
    client: forwardTo(() => served.client),
    bodies: forwardTo(() => served.bodies),
  };
}

/** Waits until `check()` holds, polling state (never a fixed sleep); fails after `timeoutMs`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('the condition did not hold in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export const TOKENS = {
  acme: 'acme-token-0123456789abcdef',
  globex: 'globex-token-0123456789abcdef',
  limited: 'limited-token-0123456789abcdef',
} as const;

/** Body limit of the gateway of {@link startGatewayWorld}. */
export const BODY_LIMIT = 2_048;

/** A world with a gateway in front of it, served on 127.0.0.1. */
export interface GatewayWorld extends World {
  readonly gateway: Gateway;
  readonly server: Listening;
  /** Records every body it reads into `bodies`. */
  readonly client: Client;
  readonly bodies: string[];
  /** What the gateway hid behind generic 500s (its onError). */
  readonly hidden: unknown[];
  stop(): Promise<void>;
}

/**
 * Agents: `echo` (the default; "hold…" messages wait on the gate), `other`, `strict` (busy
 * policy reject, with the gate), `hooked` (a hook that throws, carrying the sentinel) and
 * `locked` (its model server refuses the sentinel key). Tenants: `acme` (every agent),
 * `globex` (echo only), `limited` (echo only, 1 turn at a time, 2 sessions).
 */
async function startGatewayWorld(): Promise<GatewayWorld> {
  const world = await createWorld({
    maxQueuedPerSession: 1,
    hooks: {
      boom: () => {
        throw new Error(`hook blew up holding ${SENTINEL}`);
      },
    },
  });
  // Accepts only another key: the agent's sentinel key is refused (an auth failure).
  const lockedMock = await startMockLlm({ apiKey: 'sk-the-right-one' });
  const { supervisor, agent, gate } = world;
  const cold = { warmPoolSize: 0 };
  supervisor.register('echo', agent('echo', { tools: [gate.tool] }));
  supervisor.register('other', agent('other'), cold);
  supervisor.register('strict', agent('strict', { tools: [gate.tool] }), {
    ...cold,
    busyPolicy: 'reject',
  });
  supervisor.register('hooked', agent('hooked', { hooks: { beforeLlmCall: ['boom'] } }), cold);
  supervisor.register('locked', agent('locked', { baseUrl: lockedMock.url }), cold);
  const hidden: unknown[] = [];
  const served = await serveGateway(supervisor, {
    tenants: {
      [TOKENS.acme]: { id: 'acme' },
      [TOKENS.globex]: { id: 'globex', agents: ['echo'] },
      [TOKENS.limited]: { id: 'limited', agents: ['echo'], maxConcurrentTurns: 1, maxSessions: 2 },
    },
    defaultAgent: 'echo',
    maxBodyBytes: BODY_LIMIT,
    onError: (error) => hidden.push(error),
  });
  return {
    ...world,
    gateway: served.gateway,
    server: served.server,
    client: served.client,
    bodies: served.bodies,
    hidden,
    stop: async () => {
      world.gate.releaseAll();
      await served.close();
      await world.shutdown();
      await lockedMock.close();
    },
  };
}

/** The gateway world of {@link startGatewayWorld} for the enclosing suite. */
export function useGatewayWorld(): GatewayWorld {
  return useFixture(startGatewayWorld, (world) => world.stop(), 'the gateway world');
}
