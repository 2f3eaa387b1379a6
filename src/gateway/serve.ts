/**
 * A set of agents served over HTTP in one call: a Supervisor on a FileStore, the gateway (its
 * JSON and SSE routes, metrics and the dashboard) on `node:http`, and a shutdown that drains.
 * `agentcell serve` is this plus a config file, signals and startup output; tests call it
 * in-process.
 */
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { z } from 'zod';
import { Agent, type AgentConfig } from '../agent/agent.js';
import { isAgentcellError, OptionsInvalidError } from '../errors.js';
import type { RemotePlacement as ClusterOptions } from '../runtime/remote-placement.js';
import { FileStore } from '../runtime/stores/file.js';
import type { JournalStore } from '../runtime/stores/store.js';
import { Supervisor, type SupervisorOptions } from '../runtime/supervisor.js';
import { ToolRegistry } from '../tools/registry.js';
import { createGateway, type Gateway, type GatewayOptions } from './gateway.js';

/** Where journals go when no store is named (relative to the working directory). */
export const DEFAULT_STORE_DIR = '.agentcell';
export const DEFAULT_PORT = 8080;
/** Loopback by default: put TLS (a reverse proxy) in front before listening on a network. */
export const DEFAULT_HOST = '127.0.0.1';
/** The model name agents without one get when pointed at the mock LLM. */
const MOCK_MODEL = 'mock-model';
/** How long a finished connection may take to go away on close before it is cut. */
const CONNECTION_GRACE_MS = 1_000;

/** One tenant: a bearer token, who it speaks for, and its limits. */
export interface ServeTenant {
  readonly id: string;
  /** A secret: never printed, never in an error message. */
  readonly token: string;
  readonly agents?: readonly string[];
  readonly maxConcurrentTurns?: number;
  readonly maxSessions?: number;
}

export interface ServerOptions {
  /** Registered under their own names. */
  readonly agents: readonly Agent[];
  /** Tools the agents' workers load (modules) or call back (host tools). */
  readonly tools?: ToolRegistry;
  readonly tenants: readonly ServeTenant[];
  /** The FileStore directory, or a store of your own (not closed by `close()`). @default './.agentcell' */
  readonly store?: string | JournalStore;
  /**
   * Serve as one node of a cluster on Redis instead of on a store: several servers behind any
   * HTTP load balancer then serve the same sessions (see `Supervisor`'s `cluster` option).
   */
  readonly cluster?: ClusterOptions;
  /** 0 picks a free port. @default 8080 */
  readonly port?: number;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** The agent a new session runs when a message names none. @default the first agent */
  readonly defaultAgent?: string;
  readonly supervisor?: Omit<SupervisorOptions, 'tools' | 'store'>;
  readonly gateway?: Omit<GatewayOptions, 'tenants' | 'defaultAgent'>;
}

/** A running server; see {@link startServer}. */
export interface RunningServer {
  /** e.g. `http://127.0.0.1:8080`; the dashboard is at `${url}/`. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Absolute directory of the FileStore; undefined with a store of your own or a cluster. */
  readonly storeDir: string | undefined;
  /** In cluster mode, this node and the cluster's shard count. */
  readonly cluster: { readonly nodeId: string; readonly shards: number } | undefined;
  readonly agents: readonly { readonly name: string; readonly llm: string | undefined }[];
  /** How many tenants (ids, not tokens) the gateway knows. */
  readonly tenants: number;
  readonly supervisor: Supervisor;
  readonly gateway: Gateway;
  readonly server: Server;
  /**
   * Graceful shutdown: stops listening, refuses new messages (503), lets every accepted turn
   * finish and be journaled (the gateway's, then the supervisor's queues), flushes the store,
   * then closes the remaining connections. Idempotent.
   */
  close(): Promise<void>;
}

/**
 * Starts a supervisor with `options.agents`, the gateway in front of it and an HTTP server.
 * Throws `AGENTCELL_OPTIONS_INVALID` (or `AGENTCELL_CONFIG_INVALID`) for bad options, and the
 * listen error (e.g. `EADDRINUSE`) when the port is taken; nothing is left running then.
 *
 * @example
 * const running = await startServer({
 *   agents: [new Agent({ name: 'support', llm: 'gpt-4o-mini', baseUrl, apiKey })],
 *   tenants: [{ id: 'acme', token: process.env.ACME_TOKEN! }],
 * });
 * console.log(`dashboard: ${running.url}/`);
 * process.once('SIGTERM', () => void running.close().then(() => process.exit(0)));
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const agents = [...options.agents];
  const first = agents[0];
  if (!first) throw new OptionsInvalidError('agents: give at least one agent');
  const problems = tenantProblems(options.tenants);
  if (problems.length > 0) throw invalid('invalid server options', problems);
  if (options.cluster && options.store !== undefined) {
    throw new OptionsInvalidError('store: a cluster keeps its journals in Redis; leave it out');
  }
  const tools = options.tools ?? new ToolRegistry();
  await tools.load();
  const custom = typeof options.store === 'object' ? options.store : undefined;
  const storeDir =
    options.cluster || typeof options.store === 'object'
      ? undefined
      : resolve(options.store ?? DEFAULT_STORE_DIR);
  if (storeDir !== undefined) await mkdir(storeDir, { recursive: true });
  const store: JournalStore | undefined = options.cluster
    ? undefined
    : (custom ?? new FileStore({ dir: storeDir ?? DEFAULT_STORE_DIR }));
  const supervisor = new Supervisor({
    ...options.supervisor,
    tools,
    ...(store && { store }),
    ...(options.cluster && { cluster: options.cluster }),
  });
  try {
    for (const agent of agents) supervisor.register(agent.name, agent);
    // A cluster node joins before it listens: it takes its shards even if no request comes.
    await supervisor.start();
    const tenants = Object.fromEntries(
      options.tenants.map(({ token, agents: allowed, ...tenant }) => [
        token,
        { ...tenant, ...(allowed && { agents: [...allowed] }) },
      ]),
    );
    const gateway = createGateway(supervisor, {
      ...options.gateway,
      tenants,
      defaultAgent: options.defaultAgent ?? first.name,
    });
    const server = createServer(gateway.handler);
    const host = options.host ?? DEFAULT_HOST;
    try {
      await listen(server, options.port ?? DEFAULT_PORT, host);
    } catch (error) {
      await gateway.close();
      throw error;
    }
    const { port } = server.address() as AddressInfo;
    const closed = new Promise<void>((done) => server.once('close', done));
    let closing: Promise<void> | undefined;
    return {
      url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
      host,
      port,
      storeDir,
      cluster: supervisor.cluster(),
      agents: agents.map((agent) => ({ name: agent.name, llm: agent.config.llm })),
      tenants: new Set(options.tenants.map((tenant) => tenant.id)).size,
      supervisor,
      gateway,
      server,
      close: () => {
        closing ??= (async () => {
          server.close();
          server.closeIdleConnections();
          await gateway.close();
          await supervisor.close();
          if (!custom) await store?.close();
          // Answers already written go out; connections still open after a grace are cut.
          server.closeIdleConnections();
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            closed,
            new Promise<void>((done) => {
              timer = setTimeout(done, CONNECTION_GRACE_MS);
            }),
          ]);
          clearTimeout(timer);
          server.closeAllConnections();
          await closed;
        })();
        return closing;
      },
    };
  } catch (error) {
    await supervisor.destroy('the server did not start');
    if (!custom) await store?.close();
    throw error;
  }
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((done, fail) => {
    const onError = (error: Error) => fail(error);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      done();
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The config file of `agentcell serve`: JSON data, or the exports of a module.

const TENANT_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** As the gateway wants a bearer token: visible ASCII without spaces, 16 to 512 characters. */
const TOKEN = /^[\x21-\x7e]{16,512}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SECRET_FIELDS: ReadonlySet<string> = new Set(['token', 'apiKey', 'auth']);

const positiveInt = z.number().int().positive();

const tenantEntrySchema = z.strictObject({
  id: z.string().regex(TENANT_ID, 'use 1 to 64 letters, digits, "_" or "-"'),
  /** The bearer token itself; prefer `tokenEnv` so the file holds no secret. */
  token: z.string().optional(),
  /** The environment variable holding the token. */
  tokenEnv: z.string().regex(ENV_NAME, 'expected an environment variable name').optional(),
  agents: z.array(z.string()).optional(),
  maxConcurrentTurns: positiveInt.optional(),
  maxSessions: positiveInt.optional(),
});

const serveConfigSchema = z.strictObject({
  $schema: z.string().optional(),
  /** Agent configs (JSON) or Agents (a module); each is registered under its name. */
  agents: z.array(z.unknown()).min(1, 'give at least one agent'),
  /** A module config only: the registry of the agents' tools. */
  tools: z
    .custom<ToolRegistry>((value) => value instanceof ToolRegistry, 'expected a ToolRegistry')
    .optional(),
  tenants: z.array(tenantEntrySchema).min(1, 'give at least one tenant'),
  store: z.string().min(1, 'expected a directory').optional(),
  port: z.number().int().min(0).max(65_535).optional(),
  host: z.string().min(1).optional(),
  defaultAgent: z.string().optional(),
  supervisor: z.record(z.string(), z.unknown()).optional(),
  gateway: z.record(z.string(), z.unknown()).optional(),
});

/** The config of `agentcell serve`, as a JSON file holds it (a module may give Agents instead). */
export type ServeConfig = z.input<typeof serveConfigSchema>;

export interface ServeConfigContext {
  /** Where `apiKeyEnv` and `tokenEnv` are read. @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * The base URL of a model server every agent is pointed at instead of its own (the bundled
   * mock LLM): agents then need no `llm`, `baseUrl` or key, and their keys are dropped.
   */
  readonly modelServer?: string;
}

/**
 * Validates a serve config (parsed JSON, or a module's exports) and builds its agents.
 * Throws `AGENTCELL_OPTIONS_INVALID` listing every problem by path (`agents[0].llm: ...`);
 * tokens and keys are never echoed.
 */
export function parseServeConfig(input: unknown, context: ServeConfigContext = {}): ServerOptions {
  const env = context.env ?? process.env;
  const result = serveConfigSchema.safeParse(input);
  if (!result.success) {
    throw invalid(
      'invalid serve config',
      result.error.issues.map((issue) => describeIssue(issue.path, issue.code, issue.message)),
    );
  }
  const config = result.data;
  const problems: string[] = [];
  const agents: Agent[] = [];
  config.agents.forEach((entry, index) => {
    const agent = buildAgent(entry, index, env, context.modelServer, problems);
    if (agent) agents.push(agent);
  });
  const names = new Set<string>();
  for (const agent of agents) {
    if (names.has(agent.name)) problems.push(`agents: two agents are named ${agent.name}`);
    names.add(agent.name);
  }
  const tenants: ServeTenant[] = [];
  const positions: number[] = [];
  config.tenants.forEach((entry, index) => {
    const where = `tenants[${index}] (${entry.id})`;
    const { token: literal, tokenEnv, ...tenant } = entry;
    let token = literal;
    if ((literal === undefined) === (tokenEnv === undefined)) {
      problems.push(`${where}: give token or tokenEnv (one of them)`);
      return;
    }
    if (tokenEnv !== undefined) {
      token = env[tokenEnv];
      if (token === undefined || token === '') {
        problems.push(`${where}.tokenEnv: the environment variable ${tokenEnv} is not set`);
        return;
      }
    }
    for (const agent of tenant.agents ?? []) {
      if (!names.has(agent)) problems.push(`${where}.agents: no agent named ${agent}`);
    }
    tenants.push({ ...tenant, token: token ?? '' });
    positions.push(index);
  });
  problems.push(...tenantProblems(tenants, positions));
  if (config.defaultAgent !== undefined && !names.has(config.defaultAgent)) {
    problems.push(`defaultAgent: no agent named ${config.defaultAgent}`);
  }
  if (problems.length > 0) throw invalid('invalid serve config', problems);
  return {
    agents,
    tenants,
    ...(config.tools && { tools: config.tools }),
    ...(config.store !== undefined && { store: config.store }),
    ...(config.port !== undefined && { port: config.port }),
    ...(config.host !== undefined && { host: config.host }),
    ...(config.defaultAgent !== undefined && { defaultAgent: config.defaultAgent }),
    ...(config.supervisor && { supervisor: config.supervisor as ServerOptions['supervisor'] }),
    ...(config.gateway && { gateway: config.gateway as ServerOptions['gateway'] }),
  };
}

function buildAgent(
  entry: unknown,
  index: number,
  env: Readonly<Record<string, string | undefined>>,
  modelServer: string | undefined,
  problems: string[],
): Agent | undefined {
  const where = `agents[${index}]`;
  if (entry instanceof Agent) return modelServer ? pointAgentAt(entry, modelServer) : entry;
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    problems.push(`${where}: expected an agent config object (or an Agent, in a module config)`);
    return undefined;
  }
  const { apiKeyEnv, ...config } = entry as Record<string, unknown>;
  const before = problems.length;
  if (apiKeyEnv !== undefined) {
    if (typeof apiKeyEnv !== 'string' || !ENV_NAME.test(apiKeyEnv)) {
      problems.push(`${where}.apiKeyEnv: expected an environment variable name`);
    } else if (config['apiKey'] !== undefined) {
      problems.push(`${where}: give apiKey or apiKeyEnv, not both`);
    } else if (!modelServer) {
      const value = env[apiKeyEnv];
      if (value === undefined || value === '') {
        problems.push(`${where}.apiKeyEnv: the environment variable ${apiKeyEnv} is not set`);
      } else {
        config['apiKey'] = value;
      }
    }
  }
  if (modelServer) {
    delete config['apiKey'];
    delete config['auth'];
    config['baseUrl'] = modelServer;
    config['llm'] ??= MOCK_MODEL;
  } else {
    for (const field of ['llm', 'baseUrl']) {
      if (config[field] === undefined) {
        problems.push(`${where}.${field}: required (or run with --mock)`);
      }
    }
  }
  if (Array.isArray(config['tools']) && config['tools'].some((tool) => typeof tool === 'string')) {
    problems.push(
      `${where}.tools: a JSON config cannot give agents tools; use a module config (agents.mjs) that exports Agents and a ToolRegistry`,
    );
    return undefined;
  }
  try {
    // Whatever the file holds: the constructor validates it and lists what is wrong.
    const agent = new Agent(config as unknown as AgentConfig);
    return problems.length === before ? agent : undefined;
  } catch (error) {
    const paths = isAgentcellError(error, 'AGENTCELL_CONFIG_INVALID')
      ? (error.details?.['paths'] as unknown)
      : undefined;
    if (!Array.isArray(paths)) throw error;
    for (const path of paths) problems.push(String(path).replace(/^config/, where));
    return undefined;
  }
}

/**
 * The same agent pointed at another model server (the mock LLM): its key and auth headers
 * are dropped, a missing model name becomes `mock-model`; tools and handoffs are kept.
 */
export function pointAgentAt(agent: Agent, baseUrl: string): Agent {
  const { apiKey, auth, ...spec } = agent.config;
  void apiKey;
  void auth;
  const config = {
    ...spec,
    llm: spec.llm ?? MOCK_MODEL,
    baseUrl,
    tools: agent.tools,
    handoffs: agent.handoffs,
  };
  return new Agent(config as AgentConfig);
}

/**
 * Problems no schema sees: token shape and reuse. A token is named by its tenant, never shown.
 * `positions` are the tenants' indexes in the config, when some were left out.
 */
function tenantProblems(
  tenants: readonly ServeTenant[],
  positions: readonly number[] = [],
): string[] {
  const problems: string[] = [];
  if (tenants.length === 0 && positions.length === 0) {
    problems.push('tenants: give at least one tenant');
  }
  const seen = new Map<string, number>();
  tenants.forEach((tenant, at) => {
    const index = positions[at] ?? at;
    const where = `tenants[${index}] (${tenant.id})`;
    if (!TOKEN.test(tenant.token)) {
      problems.push(`${where}: the token must be 16 to 512 visible ASCII characters`);
    }
    const earlier = seen.get(tenant.token);
    if (earlier !== undefined) {
      problems.push(`${where}: uses the same token as tenants[${earlier}]`);
    } else {
      seen.set(tenant.token, index);
    }
  });
  return problems;
}

function describeIssue(path: readonly PropertyKey[], code: string, message: string): string {
  const where = path
    .map((part, index) =>
      typeof part === 'number' ? `[${part}]` : `${index === 0 ? '' : '.'}${String(part)}`,
    )
    .join('');
  const secret = path.some((part) => SECRET_FIELDS.has(String(part)));
  return `${where || 'config'}: ${secret ? `invalid (${code})` : message}`;
}

function invalid(title: string, problems: readonly string[]): OptionsInvalidError {
  return new OptionsInvalidError(`${title}:\n  ${problems.join('\n  ')}\n`, {
    details: { paths: [...problems] },
  });
}
