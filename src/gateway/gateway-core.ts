/**
 * What the gateway does for one request, whichever server hands it over: routing, tenancy,
 * the message turn (JSON or SSE), graceful close and the metrics it keeps. `createGateway`
 * wraps it as a `node:http` handler and a Fastify plugin.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { GatewayClosingError, NotFoundError } from '../errors.js';
import { errorFields, log } from '../log.js';
import type { Session } from '../runtime/session.js';
import type { StreamOptions } from '../runtime/session-types.js';
import type { Supervisor } from '../runtime/supervisor.js';
import { answerApproval } from './approvals.js';
import { DashboardHub } from './dashboard.js';
import { sendDashboardPage } from './dashboard-page.js';
import {
  bearerToken,
  ClientGoneError,
  isHidden,
  type PublicError,
  parseBody,
  publicError,
  readJson,
  sendJson,
  wantsEventStream,
} from './http.js';
import { idempotencyOf } from './idempotency.js';
import { GatewayMetrics, sendMetrics } from './metrics.js';
import { ObserverHub } from './observers.js';
import { openSession } from './open-session.js';
import { type ChatCompletionsContext, serveChatCompletion } from './openai/chat-completions.js';
import { errorBody } from './openai/chunks.js';
import { sendModels } from './openai/models.js';
import { ResponseStore } from './openai/response-store.js';
import { type ResponsesContext, sendStoredResponse, serveResponse } from './openai/responses.js';
import type { GatewayErrorListener, ResolvedGatewayOptions } from './options.js';
import { rewriteFor } from './route-context.js';
import { decodeKey, matchRoute, ROUTE_LABELS, type Route, speaksOpenAi } from './routes.js';
import { sessionView } from './session-view.js';
import { streamTurn } from './sse.js';
import { namespacedKey, ownKeys, type Tenant, Tenants, tenantLimitError } from './tenants.js';
import { traceContextOf } from './trace-context.js';
import { UiChatRoutes } from './ui-stream/route.js';

/** Connect/Express `next`: called for paths outside the gateway's routes. */
export type NextFunction = (error?: unknown) => void;

const messageBodySchema = z.strictObject({
  message: z.string().min(1, 'expected a non-empty string'),
  agent: z.string().min(1).max(64).optional(),
});

const interruptBodySchema = z.strictObject({ reason: z.string().max(200).optional() });

/** What one request has established so far: for error messages and the server log. */
interface Scope {
  tenant?: Tenant;
  key?: string;
  namespaced?: string;
  /** Errors answer in OpenAI's shape. */
  openai?: boolean;
}

const logHidden: GatewayErrorListener = (error, context) => {
  log('gateway').error({ ...errorFields(error), ...context }, 'request failed');
};

export class GatewayCore {
  readonly #supervisor: Supervisor;
  readonly #options: ResolvedGatewayOptions;
  readonly #tenants: Tenants;
  readonly #metrics: GatewayMetrics;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #dashboard: DashboardHub;
  readonly #observers: ObserverHub;
  readonly #chat: ChatCompletionsContext;
  readonly #responses: ResponsesContext;
  readonly #uiChat: UiChatRoutes;
  /** Unix seconds: when the agents listed as models became available here. */
  readonly #startedAt = Math.floor(Date.now() / 1000);
  #closing: Promise<void> | undefined;

  constructor(supervisor: Supervisor, options: ResolvedGatewayOptions) {
    this.#supervisor = supervisor;
    this.#options = options;
    this.#tenants = new Tenants(options.tenants);
    this.#metrics = new GatewayMetrics(
      supervisor,
      () => ({
        closing: this.#isClosing,
        tenants: this.#tenants.all(),
        observers: this.#observers.figures(),
      }),
      options.metricsRegistry,
    );
    this.#dashboard = new DashboardHub(supervisor, { isClosing: () => this.#isClosing });
    this.#observers = new ObserverHub({ ...options.observers, heartbeatMs: options.heartbeatMs });
    this.#chat = {
      supervisor,
      options,
      tenantIds: new Set(this.#tenants.all().map((tenant) => tenant.id)),
      admit: (tenant, start) => this.#admit(tenant, start),
      countReply: (...reply) => this.#metrics.countReply(...reply),
      onFailure: (error, req, scope) => this.#logIfHidden(error, req, scope),
      toPublic: (error, scope) => publicError(error, rewriteFor(scope)),
    };
    this.#responses = { ...this.#chat, responses: new ResponseStore(options.responses.maxStored) };
    this.#uiChat = new UiChatRoutes(this.#chat);
  }

  get basePath(): string {
    return this.#options.basePath;
  }

  get #isClosing(): boolean {
    return this.#closing !== undefined || this.#supervisor.status !== 'open';
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
      this.#metrics.close();
      // Dashboards watch the drain above; their streams end once it is done.
      this.#dashboard.close();
      this.#observers.close();
    })();
    return this.#closing;
  }

  metrics(): Promise<string> {
    return this.#metrics.render();
  }

  /** Serves `path` (relative to the base path). Without a route: `next`, or a 404. */
  async dispatch(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    query: URLSearchParams,
    next?: NextFunction,
  ): Promise<void> {
    const method = req.method ?? 'GET';
    const scope: Scope = { openai: speaksOpenAi(path) };
    let label = 'unmatched';
    try {
      const route = matchRoute(method, path);
      if (!route && next) {
        next();
        return;
      }
      res.once('close', () =>
        this.#metrics.countRequest(label, res.headersSent ? res.statusCode : 499),
      );
      if (!route) throw new NotFoundError(`no route for ${method} ${path.slice(0, 200)}`);
      label = ROUTE_LABELS[route.name];
      await this.#serve(route, req, res, query, scope);
    } catch (error) {
      try {
        this.#fail(req, res, error, scope);
      } catch (failed) {
        // Mostly a response already under way: the connection is cut instead of answered.
        log('gateway').debug({ ...errorFields(failed), route: label }, 'an error went unanswered');
        res.destroy();
      }
    }
  }

  async #serve(
    route: Route,
    req: IncomingMessage,
    res: ServerResponse,
    query: URLSearchParams,
    scope: Scope,
  ): Promise<void> {
    switch (route.name) {
      case 'healthz': {
        const closing = this.#isClosing;
        return sendJson(res, closing ? 503 : 200, { status: closing ? 'closing' : 'ok' });
      }
      case 'metrics':
        return sendMetrics(req, res, this.#options, this.#metrics);
      case 'dashboard':
        return sendDashboardPage(res);
      case 'dashboardEvents': {
        const tenant = this.#authenticate(req, scope);
        if (this.#dashboard.closed) throw new GatewayClosingError('the gateway is closing');
        return this.#dashboard.stream(res, tenant);
      }
      case 'listSessions': {
        const tenant = this.#authenticate(req, scope);
        const keys = await this.#supervisor.allSessionKeys();
        return sendJson(res, 200, { sessions: ownKeys(tenant, keys) });
      }
      case 'getSession': {
        const session = await this.#existing(req, route.rawKey, scope);
        const withHistory = ['1', 'true'].includes(query.get('history') ?? '');
        return sendJson(res, 200, await sessionView(session, scope.key ?? '', withHistory));
      }
      case 'deleteSession': {
        await this.#existing(req, route.rawKey, scope);
        await this.#supervisor.deleteSession(scope.namespaced ?? '');
        return sendJson(res, 204, undefined);
      }
      case 'interrupt': {
        const session = await this.#existing(req, route.rawKey, scope);
        const body = parseBody(
          interruptBodySchema,
          (await readJson(req, this.#options.maxBodyBytes)) ?? {},
          'an interrupt takes { reason?: string }',
        );
        const interrupted = await session.interrupt(body.reason ?? 'interrupted by the client');
        return sendJson(res, 200, { interrupted });
      }
      case 'answerApproval': {
        const session = await this.#existing(req, route.rawKey, scope);
        const body = await readJson(req, this.#options.maxBodyBytes);
        return sendJson(res, 202, await answerApproval(session, route.rawId, body));
      }
      case 'observeSession': {
        const session = await this.#existing(req, route.rawKey, scope);
        const toPublic = (error: unknown) => publicError(error, rewriteFor(scope));
        return this.#observers.stream(res, session, scope.key ?? '', toPublic);
      }
      case 'postMessage':
        return this.#postMessage(req, res, route.rawKey, scope);
      case 'models':
        return sendModels(res, this.#supervisor, this.#authenticate(req, scope), this.#startedAt);
      case 'chatCompletions': {
        const tenant = this.#authenticate(req, scope);
        this.#assertAccepting();
        return serveChatCompletion(this.#chat, req, res, tenant, scope);
      }
      case 'createResponse': {
        const tenant = this.#authenticate(req, scope);
        this.#assertAccepting();
        return serveResponse(this.#responses, req, res, tenant, scope);
      }
      case 'getResponse':
        return sendStoredResponse(this.#responses, res, this.#authenticate(req, scope), route.id);
      case 'uiChat':
      case 'uiChatStream':
        return this.#uiChat.serve(route, req, res, this.#authenticate(req, scope), scope);
    }
  }

  #authenticate(req: IncomingMessage, scope: Scope): Tenant {
    scope.tenant = this.#tenants.authenticate(bearerToken(req));
    return scope.tenant;
  }

  /** Authenticates, then resolves the caller's key to its namespaced supervisor key. */
  #resolveKey(req: IncomingMessage, rawKey: string, scope: Scope): string {
    const tenant = this.#authenticate(req, scope);
    scope.key = decodeKey(rawKey);
    scope.namespaced = namespacedKey(tenant, scope.key);
    return scope.namespaced;
  }

  /**
   * The caller's session, open here or journaled (served before a restart, or by another node);
   * 404 when it has none by that key (never creates one).
   */
  async #existing(req: IncomingMessage, rawKey: string, scope: Scope): Promise<Session> {
    const session = await this.#supervisor.find(this.#resolveKey(req, rawKey, scope));
    if (!session) throw new NotFoundError(`no session ${JSON.stringify(scope.key)}`);
    return session;
  }

  #assertAccepting(): void {
    if (this.#closing) throw new GatewayClosingError('the gateway is closing');
    // The supervisor's own state is checked by supervisor.session(): closed or destroyed.
  }

  async #postMessage(
    req: IncomingMessage,
    res: ServerResponse,
    rawKey: string,
    scope: Scope,
  ): Promise<void> {
    const namespaced = this.#resolveKey(req, rawKey, scope);
    const tenant = scope.tenant as Tenant;
    this.#assertAccepting();
    const body = parseBody(
      messageBodySchema,
      await readJson(req, this.#options.maxBodyBytes),
      'a message takes { message: string, agent?: string }',
    );
    // A malformed idempotency key is refused before any session opens.
    const submit = { ...idempotencyOf(req), ...traceContextOf(req) };
    // A conversation journaled before (a restart, another node) goes on with its own agent.
    const existing = await this.#supervisor.find(namespaced);
    await this.#admit(tenant, () => {
      const session = openSession(this.#supervisor, this.#options.defaultAgent, {
        tenant,
        key: scope.key ?? '',
        namespaced,
        requested: body.agent,
        existing,
      });
      return this.#runTurn(req, res, session, { message: body.message, submit }, scope);
    });
  }

  /**
   * Runs `start` as a message turn of `tenant`, counted against its limit and tracked for
   * close(). The gateway may have started closing while the body was read, so that is checked
   * again here; from the check to the tracking nothing awaits, so close() cannot miss it.
   */
  async #admit(tenant: Tenant, start: () => Promise<void>): Promise<void> {
    this.#assertAccepting();
    const limit = tenant.maxConcurrentTurns;
    if (limit !== undefined && tenant.turnsInFlight >= limit) {
      throw tenantLimitError(tenant, 'maxConcurrentTurns', limit);
    }
    tenant.turnsInFlight++;
    let turn: Promise<void>;
    try {
      turn = start();
    } catch (error) {
      tenant.turnsInFlight--;
      throw error;
    }
    const tracked = turn.catch(() => {}); // awaited just below: its failure is answered there
    this.#inFlight.add(tracked);
    try {
      await turn;
    } finally {
      tenant.turnsInFlight--;
      this.#inFlight.delete(tracked);
    }
  }

  async #runTurn(
    req: IncomingMessage,
    res: ServerResponse,
    session: Session,
    { message, submit }: { message: string; submit: StreamOptions },
    scope: Scope,
  ): Promise<void> {
    const tenantId = scope.tenant?.id ?? '';
    if (wantsEventStream(req)) {
      await streamTurn(res, {
        session,
        message,
        submit,
        key: scope.key ?? '',
        interruptOnDisconnect: this.#options.interruptOnDisconnect,
        heartbeatMs: this.#options.heartbeatMs,
        toPublic: (error) => publicError(error, rewriteFor(scope)),
        onReply: (turnId, usage) =>
          this.#metrics.countReply(tenantId, session.agent, turnId, usage),
        onFailure: (error) => this.#logIfHidden(error, req, scope),
      });
      return;
    }
    const reply = await session.send(message, submit);
    this.#metrics.countReply(tenantId, session.agent, reply.turnId, reply.usage);
    sendJson(res, 200, {
      reply: reply.text,
      turnId: reply.turnId,
      usage: reply.usage,
      ...(reply.output !== undefined && { output: reply.output }),
    });
  }

  #logIfHidden(error: unknown, req: IncomingMessage, scope: Scope): void {
    if (!isHidden(error)) return;
    const listener = this.#options.onError ?? logHidden;
    try {
      listener(error, {
        method: req.method ?? 'GET',
        path: (req.url ?? '').split('?')[0] ?? '',
        ...(scope.tenant && { tenant: scope.tenant.id }),
      });
    } catch {
      // A failing log listener must not turn into a second failure of the request.
    }
  }

  #fail(req: IncomingMessage, res: ServerResponse, error: unknown, scope: Scope): void {
    if (error instanceof ClientGoneError) {
      res.destroy();
      return;
    }
    this.#logIfHidden(error, req, scope);
    const shown: PublicError = publicError(error, rewriteFor(scope));
    const headers: Record<string, string> = {};
    if (shown.status === 429 || shown.status === 503) {
      headers['retry-after'] = String(this.#options.retryAfterSeconds);
    }
    if (shown.status === 401) headers['www-authenticate'] = 'Bearer';
    // A body left unread (too large, or refused before it was read) is not worth draining.
    if (!req.complete) headers['connection'] = 'close';
    const body = scope.openai
      ? errorBody(shown)
      : { error: { code: shown.code, message: shown.message } };
    sendJson(res, shown.status, body, headers);
  }
}
