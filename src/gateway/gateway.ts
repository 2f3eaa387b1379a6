/**
 * The HTTP gateway: a supervisor's sessions behind authenticated JSON and SSE routes, as a
 * `node:http` handler (also Express/Connect middleware) and as a Fastify plugin serving the
 * same routes. Tenants address their own sessions only; errors reach callers as
 * `{ error: { code, message } }` and only when they are marked public.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Supervisor } from '../runtime/supervisor.js';
import type { FastifyPlugin } from './fastify-plugin.js';
import { GatewayCore, type NextFunction } from './gateway-core.js';
import { sendJson } from './http.js';
import { type GatewayOptions, parseGatewayOptions } from './options.js';
import { ROUTE_METHODS, ROUTE_PATTERNS } from './routes.js';

export type { NextFunction } from './gateway-core.js';
export type { GatewayErrorListener, GatewayOptions, TenantOptions } from './options.js';

/** A gateway over one supervisor; see {@link createGateway}. */
export interface Gateway {
  /**
   * Request handler for `node:http` (`createServer(gateway.handler)`), or middleware for
   * Express/Connect: paths that are not the gateway's go to `next` when it is given.
   */
  readonly handler: (req: IncomingMessage, res: ServerResponse, next?: NextFunction) => void;
  /**
   * A Fastify (v5) plugin serving the same routes: `app.register(gateway.fastifyPlugin)`,
   * with a `prefix` if wanted. It reads request bodies itself (its routes take no Fastify
   * body parser) and answers on the raw response.
   */
  readonly fastifyPlugin: FastifyPlugin;
  /**
   * Prometheus text exposition of the gateway's registry: the supervisor's and the gateway's
   * metrics, and Node's process metrics unless `metricsRegistry` is the embedder's own.
   */
  metrics(): Promise<string>;
  /**
   * Graceful shutdown: new messages get 503 (`AGENTCELL_SUPERVISOR_CLOSED`) and `/healthz`
   * reports `closing`, while the messages already accepted run to their reply. Does not
   * close the supervisor. Idempotent.
   */
  close(): Promise<void>;
}

function splitUrl(url: string | undefined): { path: string; query: URLSearchParams } {
  const raw = url ?? '/';
  const at = raw.indexOf('?');
  return at < 0
    ? { path: raw, query: new URLSearchParams() }
    : { path: raw.slice(0, at), query: new URLSearchParams(raw.slice(at + 1)) };
}

/**
 * An HTTP gateway over `supervisor`'s sessions. Routes (under `basePath`), JSON unless noted:
 *
 * - `POST /v1/sessions/:key/messages` `{ message, agent? }` → `{ reply, turnId, usage, output? }`;
 *   with `Accept: text/event-stream`, the turn's events as SSE, ending in `done` or `error`
 * - `POST /v1/sessions/:key/interrupt` `{ reason? }` → `{ interrupted }`
 * - `GET /v1/sessions/:key/events`: the session's turns as SSE, whoever sends them, for up to
 *   `options.observers.maxPerSession` clients; one that falls behind is dropped
 * - `GET /v1/sessions/:key` (`?history=1` adds the history), `DELETE /v1/sessions/:key` → 204
 * - `GET /v1/sessions` → `{ sessions: [key, ...] }`, the caller's own keys
 * - `GET /healthz` (no auth) → `{ status: 'ok' | 'closing' }`; `GET /metrics` → Prometheus text
 * - OpenAI-compatible: `GET /v1/models` (the tenant's agents), `POST /v1/chat/completions`
 *   (`model` = agent; session key from `options.chatCompletions.sessionKeySources`; JSON or
 *   `stream: true`), `POST /v1/responses` (Open Responses: `previous_response_id` or
 *   `conversation` binds the session; JSON or `stream: true`) and `GET /v1/responses/:id` (a
 *   stored response, `options.responses.maxStored` kept in memory); their errors are
 *   `{ error: { message, type, code } }`
 * - AI SDK UI message stream (v1), for `useChat`: `POST /v1/ui/chat` (`DefaultChatTransport`'s
 *   body; `id` = the session key) streams the turn as UI message chunks;
 *   `GET /v1/ui/chat/:id/stream` replays the chat's running turn, or answers 204
 *
 * Every route but `/healthz` and `/metrics` needs `Authorization: Bearer <token>` of a tenant in
 * `options.tenants`; keys are the tenant's own (supervisor keys `${tenantId}:${key}`).
 * Throws `AGENTCELL_OPTIONS_INVALID` listing every bad option (never echoing a token).
 *
 * @example
 * import { createServer } from 'node:http';
 * const gateway = createGateway(supervisor, {
 *   tenants: { [process.env.ACME_TOKEN!]: { id: 'acme', maxConcurrentTurns: 8 } },
 *   defaultAgent: 'support',
 * });
 * createServer(gateway.handler).listen(8080);
 * // curl -H "Authorization: Bearer $ACME_TOKEN" -d '{"message":"hi"}' \
 * //   localhost:8080/v1/sessions/user-3/messages
 * process.on('SIGTERM', async () => { await gateway.close(); await supervisor.close(); });
 */
export function createGateway(supervisor: Supervisor, options: GatewayOptions): Gateway {
  const core = new GatewayCore(supervisor, parseGatewayOptions(options));
  const base = core.basePath;

  const handler = (req: IncomingMessage, res: ServerResponse, next?: NextFunction): void => {
    const { path, query } = splitUrl(req.url);
    const inside = base === '' || path === base || path.startsWith(`${base}/`);
    if (!inside) {
      if (next) {
        next();
        return;
      }
      sendJson(res, 404, {
        error: { code: 'AGENTCELL_NOT_FOUND', message: `no route for ${path.slice(0, 200)}` },
      });
      return;
    }
    void core.dispatch(req, res, path.slice(base.length), query, next);
  };

  const fastifyPlugin: FastifyPlugin = async (instance) => {
    // Bodies are read (and size-limited) by the gateway itself, from the raw request.
    instance.removeAllContentTypeParsers();
    instance.addContentTypeParser('*', (_request, _payload, done) => done(null));
    const strip = instance.prefix.length + base.length;
    for (const pattern of ROUTE_PATTERNS) {
      instance.route({
        method: [...ROUTE_METHODS],
        url: `${base}${pattern}`,
        handler: async (request, reply) => {
          reply.hijack();
          const { path, query } = splitUrl(request.raw.url);
          await core.dispatch(request.raw, reply.raw, path.slice(strip), query);
        },
      });
    }
  };

  return {
    handler,
    fastifyPlugin,
    metrics: () => core.metrics(),
    close: () => core.close(),
  };
}
