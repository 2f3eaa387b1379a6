/**
 * `agentcell serve`: agents from a config file behind the HTTP gateway and its dashboard, on a
 * FileStore, until SIGINT or SIGTERM (then it drains: turns in flight finish and are journaled).
 * Exit codes: 0 after a graceful stop, 2 for a bad config or bad options, 1 for anything else.
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Command, type CommanderError, InvalidArgumentError } from 'commander';
import { isAgentcellError } from '../errors.js';
import {
  parseServeConfig,
  type RunningServer,
  type ServerOptions,
  startServer,
} from '../gateway/serve.js';
import { type MockLlm, startMockLlm } from '../testing/mock-llm.js';
import { parseInteger } from './mock-llm.js';

/** Exit code of a config or option problem. */
export const EXIT_CONFIG = 2;

const MODULE_EXTENSIONS = new Set(['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts']);
const CONFIG_KEYS = [
  'agents',
  'tools',
  'tenants',
  'store',
  'port',
  'host',
  'defaultAgent',
  'supervisor',
  'gateway',
] as const;

export interface ServeCommandOptions {
  readonly config: string;
  readonly mock?: boolean;
  readonly port?: number;
  readonly host?: string;
  readonly store?: string;
  /** A cluster's Redis (`redis://…`): serve as one node of it instead of on a FileStore. */
  readonly cluster?: string;
  /** The cluster's key prefix in Redis (one per cluster). */
  readonly clusterPrefix?: string;
  readonly mockFirstTokenMs: number;
  readonly mockTokensPerSecond: number;
}

/** A problem with the config or the options: printed as is, exit code 2. */
export class ServeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ServeConfigError';
  }
}

const EXAMPLES = `
Config (JSON):
  {
    "agents": [{ "name": "support", "llm": "gpt-4o-mini", "baseUrl": "https://api.openai.com/v1",
                 "apiKeyEnv": "OPENAI_API_KEY", "instructions": "Answer briefly." }],
    "tenants": [{ "id": "acme", "tokenEnv": "ACME_TOKEN" }],
    "store": "./.agentcell", "port": 8080, "host": "127.0.0.1"
  }
  Agents take every agent config field; "apiKeyEnv" reads the key from the environment.
  Tenants take "token" or "tokenEnv" (16+ characters), and optionally "agents",
  "maxConcurrentTurns", "maxSessions". Optional: "defaultAgent", "supervisor", "gateway".

Config (module, .mjs or .js): export { agents, tools, tenants } (or a default object), where
  agents are Agent instances and tools a ToolRegistry. A .ts module needs a TypeScript loader:
  node --import tsx node_modules/agentcell/dist/src/cli/main.js serve --config agents.ts

Examples:
  agentcell serve --config agents.json --mock          # no API key: the bundled mock LLM
  ACME_TOKEN=... OPENAI_API_KEY=... agentcell serve --config agents.json --port 8080
`;

/** `agentcell serve`. */
export function serveCommand(program: Command): void {
  program
    .command('serve')
    .description(
      'serve agents over HTTP (JSON and SSE routes, Prometheus metrics, a live dashboard) on a file store',
    )
    .requiredOption(
      '-c, --config <file>',
      'agents.json, or a module (.mjs/.js; .ts needs a loader such as tsx: node --import tsx) exporting { agents, tools?, tenants }',
    )
    .option('--mock', 'run every agent against the bundled mock LLM (on 127.0.0.1): no API key')
    .option(
      '--port <port>',
      'port to listen on, 0 for a free one (default: config, else 8080)',
      parsePort,
    )
    .option('--host <host>', 'address to listen on (default: config, else 127.0.0.1)')
    .option('--store <dir>', 'journal directory (default: config, else ./.agentcell)')
    .option(
      '--cluster <redis-url>',
      'serve as one node of a cluster on this Redis (redis://…) instead of on a file store',
    )
    .option(
      '--cluster-prefix <prefix>',
      "with --cluster: the cluster's Redis key prefix (default agentcell:)",
    )
    .option(
      '--mock-first-token-ms <ms>',
      'mock LLM: latency before the first token',
      parseInteger,
      150,
    )
    .option(
      '--mock-tokens-per-second <n>',
      'mock LLM: tokens per second (0 = instant)',
      parseInteger,
      40,
    )
    .addHelpText('after', EXAMPLES)
    .exitOverride((error: CommanderError) => {
      // Help and version exit 0; a usage error is a bad option, like a bad config.
      process.exit(error.exitCode === 0 ? 0 : EXIT_CONFIG);
    })
    .action(async (options: ServeCommandOptions) => {
      await serve(options);
    });
}

function parsePort(value: string): number {
  const port = parseInteger(value);
  if (port > 65_535) throw new InvalidArgumentError(`expected a port up to 65535, got ${value}`);
  return port;
}

/** What `serve` writes; the process streams by default. */
export interface ServeIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
}

const processIo: ServeIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
};

/** Runs the command: starts, prints, and stops on SIGINT/SIGTERM; exits the process. */
async function serve(options: ServeCommandOptions, io: ServeIo = processIo): Promise<void> {
  let started: { running: RunningServer; mock: MockLlm | undefined };
  try {
    started = await start(options, io);
  } catch (error) {
    io.err(`agentcell serve: ${describeFailure(error, options.config)}`);
    process.exit(isConfigProblem(error) ? EXIT_CONFIG : 1);
  }
  const { running, mock } = started;
  for (const line of startupLines(running, options.config, mock)) io.out(line);

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      io.err(`agentcell serve: ${signal} again, stopping now (turns in flight fail)`);
      void running.supervisor.destroy(`${signal} received twice`).finally(() => process.exit(1));
      return;
    }
    stopping = true;
    const stats = running.supervisor.stats();
    const pending = stats.turnsInFlight + stats.turnsWaitingForAdmission + stats.queuedMessages;
    io.out(
      `agentcell serve: ${signal}, stopping: no new messages; ${pending} turn${pending === 1 ? '' : 's'} in flight or queued to finish`,
    );
    void (async () => {
      try {
        await running.close();
        await mock?.close();
        io.out('agentcell serve: stopped (every accepted turn answered and journaled)');
        process.exit(0);
      } catch (error) {
        io.err(`agentcell serve: shutdown failed: ${messageOf(error)}`);
        process.exit(1);
      }
    })();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

/** Loads the config, starts the mock LLM if asked, then the server. Cleans up on failure. */
export async function start(
  options: ServeCommandOptions,
  io: Pick<ServeIo, 'env'>,
): Promise<{ running: RunningServer; mock: MockLlm | undefined }> {
  const raw = await loadConfig(options.config);
  const mock = options.mock
    ? await startMockLlm({
        host: '127.0.0.1',
        latency: {
          firstTokenMs: options.mockFirstTokenMs,
          tokensPerSecond: options.mockTokensPerSecond,
        },
      })
    : undefined;
  try {
    const parsed = parseServeConfig(raw, {
      env: io.env,
      ...(mock && { modelServer: mock.url }),
    });
    const serverOptions: ServerOptions = {
      ...parsed,
      ...(options.port !== undefined && { port: options.port }),
      ...(options.host !== undefined && { host: options.host }),
      ...(options.store !== undefined && { store: options.store }),
    };
    if (options.cluster !== undefined) {
      const { store: _store, ...rest } = serverOptions;
      // Loaded only here: a single-node server never loads the Redis client.
      const { redisCluster } = await import('../cluster/redis-cluster.js');
      const cluster = redisCluster({
        redis: options.cluster,
        ...(options.clusterPrefix !== undefined && { prefix: options.clusterPrefix }),
      });
      return { running: await startServer({ ...rest, cluster }), mock };
    }
    return { running: await startServer(serverOptions), mock };
  } catch (error) {
    await mock?.close();
    throw error;
  }
}

/** The config's value: parsed JSON, or a module's exports (its default export if it has one). */
export async function loadConfig(path: string): Promise<unknown> {
  const file = resolve(path);
  const extension = extname(file).toLowerCase();
  if (MODULE_EXTENSIONS.has(extension)) return loadModule(path, file, extension);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ServeConfigError(`cannot read the config ${path}: ${codeOf(error) ?? 'unreadable'}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    // V8's message quotes the text around the error, which may hold a token: only say where.
    const at = /position (\d+)/.exec((error as Error).message)?.[1];
    const where = at === undefined ? '' : ` (${lineAndColumn(text, Number(at))})`;
    throw new ServeConfigError(`the config ${path} is not valid JSON${where}`);
  }
}

async function loadModule(path: string, file: string, extension: string): Promise<unknown> {
  let exported: Record<string, unknown>;
  try {
    exported = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (error) {
    const code = codeOf(error);
    if (code === 'ERR_MODULE_NOT_FOUND' && (error as Error).message.includes(file)) {
      throw new ServeConfigError(`cannot read the config ${path}: ENOENT`);
    }
    if (code === 'ERR_UNKNOWN_FILE_EXTENSION' && extension.endsWith('ts')) {
      throw new ServeConfigError(
        `the config ${path} is TypeScript, which needs a loader: run node --import tsx <agentcell>/dist/src/cli/main.js serve --config ${path} (or write the config as .mjs)`,
      );
    }
    throw new ServeConfigError(`the config module ${path} failed to load: ${messageOf(error)}`);
  }
  const fallback = exported['default'];
  if (typeof fallback === 'object' && fallback !== null && 'agents' in fallback) return fallback;
  const picked: Record<string, unknown> = {};
  for (const key of CONFIG_KEYS) {
    if (exported[key] !== undefined) picked[key] = exported[key];
  }
  return picked;
}

function lineAndColumn(text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n');
  return `line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1}`;
}

/** The startup banner: where, what and how many; never a token or a key. */
export function startupLines(
  running: RunningServer,
  configPath: string,
  mock: MockLlm | undefined,
): string[] {
  const agents = running.agents.map((agent) => `${agent.name} (${agent.llm ?? 'default model'})`);
  const lines = [
    `agentcell serve: listening on ${running.url}`,
    `  dashboard  ${running.url}/  (sign in with a tenant token)`,
    `  messages   POST ${running.url}/v1/sessions/:key/messages  (Authorization: Bearer <token>)`,
    `  metrics    ${running.url}/metrics`,
    `  config     ${resolve(configPath)}`,
    `  agents     ${agents.join(', ')}`,
    `  model      ${mock ? `bundled mock LLM at ${mock.url}` : "each agent's own baseUrl"}`,
    running.cluster
      ? `  cluster    node ${running.cluster.nodeId} of ${running.cluster.shards} shards on Redis`
      : `  store      ${running.storeDir ?? 'a store of the config module'}`,
    `  tenants    ${running.tenants}`,
  ];
  if (!isLoopback(running.host)) {
    lines.push(
      '  warning    listening beyond loopback over plain HTTP: bearer tokens travel unencrypted; put TLS in front',
    );
  }
  lines.push(
    'Ctrl-C or SIGTERM stops it: new messages are refused, turns in flight finish and are journaled.',
  );
  return lines;
}

function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

function isConfigProblem(error: unknown): boolean {
  return (
    error instanceof ServeConfigError ||
    isAgentcellError(error, 'AGENTCELL_OPTIONS_INVALID') ||
    isAgentcellError(error, 'AGENTCELL_CONFIG_INVALID') ||
    isAgentcellError(error, 'AGENTCELL_TOOL_NOT_FOUND') ||
    isAgentcellError(error, 'AGENTCELL_TOOL_INVALID') ||
    isAgentcellError(error, 'AGENTCELL_BLUEPRINT_INVALID')
  );
}

/** A failure to start, for the terminal: a listed config problem gets one line per problem. */
export function describeFailure(error: unknown, configPath: string): string {
  const paths = isAgentcellError(error) ? error.details?.['paths'] : undefined;
  if (Array.isArray(paths) && paths.length > 0) {
    const problems = paths.map((path) => `\n  - ${String(path)}`).join('');
    return `the config ${configPath} is not valid:${problems}`;
  }
  return messageOf(error);
}

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function messageOf(error: unknown): string {
  if (codeOf(error) === 'EADDRINUSE') {
    return `the address is in use (${(error as Error).message}); choose another --port`;
  }
  return error instanceof Error ? error.message.trimEnd() : String(error);
}
