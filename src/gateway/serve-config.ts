/**
 * The config file of `agentcell serve`: JSON data, or the exports of a module. It is validated
 * in full (every problem listed by path, secrets never echoed) and turned into the options of
 * `startServer`.
 */
import { z } from 'zod';
import { Agent, type AgentConfig } from '../agent/agent.js';
import { isAgentcellError } from '../errors.js';
import { ToolRegistry } from '../tools/registry.js';
import { TENANT_ID } from './options.js';
import { invalid, type ServerOptions, type ServeTenant, tenantProblems } from './serve-options.js';

/** The model name agents without one get when pointed at the mock LLM. */
const MOCK_MODEL = 'mock-model';
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

function describeIssue(path: readonly PropertyKey[], code: string, message: string): string {
  const where = path
    .map((part, index) =>
      typeof part === 'number' ? `[${part}]` : `${index === 0 ? '' : '.'}${String(part)}`,
    )
    .join('');
  const secret = path.some((part) => SECRET_FIELDS.has(String(part)));
  return `${where || 'config'}: ${secret ? `invalid (${code})` : message}`;
}
