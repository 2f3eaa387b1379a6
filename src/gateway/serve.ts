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
import { OptionsInvalidError } from '../errors.js';
import { FileStore } from '../runtime/stores/file.js';
import type { JournalStore } from '../runtime/stores/store.js';
import { Supervisor } from '../runtime/supervisor.js';
import { ToolRegistry } from '../tools/registry.js';
import { createGateway, type Gateway } from './gateway.js';
import { invalid, type ServerOptions, tenantProblems } from './serve-options.js';

export {
  parseServeConfig,
  pointAgentAt,
  type ServeConfig,
  type ServeConfigContext,
} from './serve-config.js';
export type { ServerOptions, ServeTenant } from './serve-options.js';

/** Where journals go when no store is named (relative to the working directory). */
export const DEFAULT_STORE_DIR = '.agentcell';
export const DEFAULT_PORT = 8080;
/** Loopback by default: put TLS (a reverse proxy) in front before listening on a network. */
export const DEFAULT_HOST = '127.0.0.1';
/** How long a finished connection may take to go away on close before it is cut. */
const CONNECTION_GRACE_MS = 1_000;

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
