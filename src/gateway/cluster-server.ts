/**
 * `agentcell serve --cluster redis://…`: the HTTP gateway's message route on a ClusterNode, so
 * that several serve processes (behind any HTTP load balancer) serve one cluster. Whichever
 * process a request reaches, the message goes into its session's durable inbox and the turn
 * runs on the node owning the session's shard; the reply comes back to the accepting process.
 *
 * Routes (same paths, auth and error shape as the single-node gateway):
 * - `POST /v1/sessions/:key/messages` `{ message, agent? }` → `{ reply, turnId, usage }`;
 *   with `Accept: text/event-stream`, one `final` event once the turn is journaled, then
 *   `done` (token streaming does not cross nodes), or one `error` event;
 * - `GET /healthz` (no auth) → `{ status: 'ok' | 'closing', node }`.
 * Everything else answers 404: history, interrupt, the dashboard and metrics are per node and
 * not served in cluster mode yet.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyPluginAsync } from 'fastify';
import type { Agent } from '../agent/agent.js';
import { ClusterNode, type ClusterNodeOptions } from '../cluster/node.js';
import { MessageInvalidError, OptionsInvalidError } from '../errors.js';
import type { SupervisorOptions } from '../runtime/options.js';
import type { ToolRegistry } from '../tools/registry.js';
import type { Gateway } from './gateway.js';
import {
  bearerToken,
  ClientGoneError,
  publicError,
  readBody,
  sendJson,
  wantsEventStream,
} from './http.js';
import type { RunningServer, ServeTenant } from './serve.js';
import { sseFrame } from './sse.js';

/** Largest request body read. */
const MAX_BODY_BYTES = 1024 * 1024;
const MESSAGES_ROUTE = /^\/v1\/sessions\/([^/]+)\/messages$/;

export interface ClusterServerOptions {
  /** The cluster's Redis, `redis://…`. */
  readonly redis: string;
  readonly agents: readonly Agent[];
  readonly tools?: ToolRegistry;
  readonly tenants: readonly ServeTenant[];
  /** @default 8080 */
  readonly port?: number;
  /** @default '127.0.0.1' */
  readonly host?: string;
  readonly defaultAgent?: string;
  readonly supervisor?: Omit<SupervisorOptions, 'tools' | 'store'>;
  /** The node's options but `redis` and `supervisor` (nodeId, shards, prefix, timings…). */
  readonly node?: Omit<ClusterNodeOptions, 'redis' | 'supervisor'>;
}

export interface RunningClusterServer extends RunningServer {
  readonly node: ClusterNode;
}

/**
 * Starts a ClusterNode with `options.agents`, joins the cluster, and serves the message route
 * over HTTP. `close()` stops listening, refuses new messages (503), lets the node hand its
 * shards over drained and waits for the replies its callers are owed.
 */
export async function startClusterServer(
  options: ClusterServerOptions,
): Promise<RunningClusterServer> {
  const first = options.agents[0];
  if (!first) throw new OptionsInvalidError('agents: give at least one agent');
  const defaultAgent = options.defaultAgent ?? first.name;
  if (options.tools) await options.tools.load();
  const node = new ClusterNode({
    ...options.node,
    redis: options.redis,
    supervisor: { ...options.supervisor, ...(options.tools && { tools: options.tools }) },
  });
  for (const agent of options.agents) node.register(agent.name, agent);
  const tenants = new Map(options.tenants.map((tenant) => [tenant.token, tenant]));
  let closing = false;

  const answer = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === '/healthz' && req.method === 'GET') {
      sendJson(res, 200, { status: closing ? 'closing' : 'ok', node: node.nodeId });
      return;
    }
    const match = MESSAGES_ROUTE.exec(path);
    if (!match || req.method !== 'POST') {
      sendJson(res, 404, {
        error: {
          code: 'AGENTCELL_NOT_FOUND',
          message: `no route for ${req.method} ${path.slice(0, 200)} in cluster mode`,
        },
      });
      return;
    }
    const token = bearerToken(req);
    const tenant = token === undefined ? undefined : tenants.get(token);
    if (!tenant) {
      sendJson(res, 401, {
        error: { code: 'AGENTCELL_UNAUTHORIZED', message: 'a valid bearer token is required' },
      });
      return;
    }
    const stream = wantsEventStream(req);
    try {
      if (closing) {
        sendJson(res, 503, {
          error: { code: 'AGENTCELL_SUPERVISOR_CLOSED', message: 'the server is closing' },
        });
        return;
      }
      const body = parseBody(await readBody(req, MAX_BODY_BYTES));
      const agent = body.agent ?? defaultAgent;
      if (tenant.agents && !tenant.agents.includes(agent)) {
        throw new MessageInvalidError(`agent ${JSON.stringify(agent)} is not allowed here`);
      }
      let key: string;
      try {
        key = decodeURIComponent(match[1] ?? '');
      } catch {
        throw new MessageInvalidError('the session key is not valid URL encoding');
      }
      const accepted = await node.submit(`${tenant.id}:${key}`, body.message, { agent });
      if (stream) {
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache, no-transform',
          'x-accel-buffering': 'no',
          'x-content-type-options': 'nosniff',
        });
        res.write(`: accepted ${accepted.requestId}\n\n`);
      }
      const reply = await accepted.reply;
      const done = { reply: reply.text, turnId: reply.turnId, usage: reply.usage };
      if (stream) {
        res.write(sseFrame('final', { type: 'final', ...done, sessionKey: key }));
        res.end(sseFrame('done', done));
      } else {
        sendJson(res, 200, done);
      }
    } catch (error) {
      if (error instanceof ClientGoneError) return;
      const { status, code, message } = publicError(error, (text) =>
        text.replaceAll(`${tenant.id}:`, ''),
      );
      if (res.headersSent) {
        res.end(sseFrame('error', { code, message }));
      } else {
        sendJson(res, status, { error: { code, message } });
      }
    }
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    answer(req, res).catch(() => {
      if (!res.writableEnded) sendJson(res, 500, { error: { code: 'AGENTCELL_INTERNAL' } });
    });
  };
  const fastifyPlugin: FastifyPluginAsync = async (instance) => {
    instance.removeAllContentTypeParsers();
    instance.addContentTypeParser('*', (_request, _payload, done) => done(null));
    instance.route({
      method: ['GET', 'POST'],
      url: '/*',
      handler: async (request, reply) => {
        reply.hijack();
        await answer(request.raw, reply.raw);
      },
    });
  };
  const gateway: Gateway = {
    handler,
    fastifyPlugin,
    metrics: () => '',
    close: async () => {
      closing = true;
    },
  };

  await node.start();
  const server = createServer(handler);
  const host = options.host ?? '127.0.0.1';
  try {
    await new Promise<void>((done, fail) => {
      server.once('error', fail);
      server.listen(options.port ?? 8080, host, () => {
        server.off('error', fail);
        done();
      });
    });
  } catch (error) {
    await node.destroy('the server did not start');
    throw error;
  }
  const { port } = server.address() as AddressInfo;
  const closed = new Promise<void>((done) => server.once('close', done));
  let closingAll: Promise<void> | undefined;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    host,
    port,
    storeDir: undefined,
    agents: options.agents.map((agent) => ({ name: agent.name, llm: agent.config.llm })),
    tenants: new Set(options.tenants.map((tenant) => tenant.id)).size,
    supervisor: node.supervisor,
    gateway,
    server: server as Server,
    node,
    close: () => {
      closingAll ??= (async () => {
        server.close();
        server.closeIdleConnections();
        await gateway.close();
        // Hands the shards over drained and waits for the replies owed to this node's callers.
        await node.close();
        server.closeIdleConnections();
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          closed,
          new Promise<void>((done) => {
            timer = setTimeout(done, 1_000);
          }),
        ]);
        clearTimeout(timer);
        server.closeAllConnections();
        await closed;
      })();
      return closingAll;
    },
  };
}

function parseBody(raw: Buffer): { message: string; agent: string | undefined } {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new MessageInvalidError('the body is not JSON');
  }
  const body = (typeof value === 'object' && value !== null ? value : {}) as Record<
    string,
    unknown
  >;
  const { message, agent } = body;
  if (typeof message !== 'string') {
    throw new MessageInvalidError('expected a JSON body { "message": string, "agent"?: string }');
  }
  if (agent !== undefined && typeof agent !== 'string') {
    throw new MessageInvalidError('agent: expected a string');
  }
  return { message, agent };
}
