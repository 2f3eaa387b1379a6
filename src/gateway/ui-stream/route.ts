/**
 * The AI SDK's UI message stream for `useChat`: `POST /v1/ui/chat` runs the chat's turn and
 * streams it as UI message chunks; `GET /v1/ui/chat/:id/stream` replays the chat's running
 * turn to a client that reconnects, or answers 204 when none runs.
 *
 * The chat id is the session key within the tenant, and the session's journal is the history:
 * the client's transcript is read for its newest user message, and otherwise only as history.ts
 * says (regenerating, a chat the session does not know).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TurnEvent } from '../../agent/turn-events.js';
import { NotFoundError } from '../../errors.js';
import type { Session } from '../../runtime/session.js';
import { readJson, sendJson } from '../http.js';
import { idempotencyOf } from '../idempotency.js';
import { openSession } from '../open-session.js';
import type { RouteContext, RouteScope } from '../route-context.js';
import { decodeKey, type Route } from '../routes.js';
import { admitted, settle } from '../sse.js';
import { assertNoTenantPrefix, namespacedKey, type Tenant } from '../tenants.js';
import { traceContextOf } from '../trace-context.js';
import { watchTurnConnection } from '../turn-connection.js';
import { answerAndFollow } from './approval-turn.js';
import { DONE_FRAME, UI_STREAM_HEADERS, UiMessageChunks, uiFrame } from './chunks.js';
import { historyFor } from './history.js';
import { readUiChatRequest } from './request.js';
import { ChatStreams } from './resume.js';

export class UiChatRoutes {
  readonly #context: RouteContext;
  readonly #streams = new ChatStreams();

  constructor(context: RouteContext) {
    this.#context = context;
  }

  /** Serves one of the UI chat routes for `tenant`. */
  serve(
    route: Extract<Route, { name: 'uiChat' | 'uiChatStream' }>,
    req: IncomingMessage,
    res: ServerResponse,
    tenant: Tenant,
    scope: RouteScope,
  ): Promise<void> {
    return route.name === 'uiChat'
      ? this.#post(req, res, tenant, scope)
      : this.#resume(res, tenant, route.rawId, scope);
  }

  /** `POST /v1/ui/chat`: bad input is refused before anything runs, as JSON. */
  async #post(
    req: IncomingMessage,
    res: ServerResponse,
    tenant: Tenant,
    scope: RouteScope,
  ): Promise<void> {
    const { supervisor, options } = this.#context;
    const body = await readJson(req, options.maxBodyBytes);
    const request = readUiChatRequest(body);
    const submit = { ...idempotencyOf(req, body), ...traceContextOf(req) };
    const namespaced = this.#chatKey(tenant, request.chatId, scope);
    // A conversation journaled before (a restart, another node) goes on with its own agent.
    const existing = await supervisor.find(namespaced);
    if (request.approvals.length > 0) {
      if (!existing) throw new NotFoundError(`no chat ${JSON.stringify(request.chatId)}`);
      const events = await answerAndFollow(existing, request.approvals);
      const shown = new Set(request.approvals.map((answer) => answer.toolCallId));
      return this.#stream(req, res, existing, events, tenant, scope, shown);
    }
    await this.#context.admit(tenant, async () => {
      const session = openSession(supervisor, options.defaultAgent, {
        tenant,
        key: request.chatId,
        namespaced,
        requested: request.agent,
        existing,
      });
      // Worked out only for a new submission: a repeat is answered as it was.
      const history = async () => historyFor(request, await session.history());
      const events = session.stream(request.message, { history, ...submit });
      await this.#stream(req, res, session, events, tenant, scope);
    });
  }

  /** `GET /v1/ui/chat/:id/stream`: the running turn from its start, or 204. */
  async #resume(
    res: ServerResponse,
    tenant: Tenant,
    rawId: string,
    scope: RouteScope,
  ): Promise<void> {
    const relay = this.#streams.resumable(this.#chatKey(tenant, decodeKey(rawId), scope));
    if (!relay) return sendJson(res, 204, undefined);
    res.writeHead(200, UI_STREAM_HEADERS);
    res.flushHeaders();
    await relay.pipe(res, this.#context.options.heartbeatMs);
  }

  #chatKey(tenant: Tenant, chatId: string, scope: RouteScope): string {
    assertNoTenantPrefix(chatId, this.#context.tenantIds);
    scope.key = chatId;
    scope.namespaced = namespacedKey(tenant, chatId);
    return scope.namespaced;
  }

  /**
   * Streams the turn to this client through the chat's relay, so that a client reconnecting
   * reads the same stream. The turn runs to its end whether or not this client stays.
   */
  async #stream(
    req: IncomingMessage,
    res: ServerResponse,
    session: Session,
    events: AsyncIterable<TurnEvent>,
    tenant: Tenant,
    scope: RouteScope,
    shown?: ReadonlySet<string>,
  ): Promise<void> {
    const context = this.#context;
    // A refusal that comes at once (mailbox full, session busy) is answered with its status.
    const { iterator, first } = await admitted(events);
    const key = scope.namespaced ?? '';
    const relay = this.#streams.open(key);
    res.writeHead(200, UI_STREAM_HEADERS);
    res.flushHeaders();
    const piped = relay.pipe(res, context.options.heartbeatMs);
    // Keep-alives come from the relay, which also serves clients that resume.
    const watch = watchTurnConnection(res, session, {
      interruptOnDisconnect: context.options.interruptOnDisconnect,
      heartbeatMs: 0,
    });
    const chunks = new UiMessageChunks({ key: scope.key ?? '', agent: session.agent }, shown);
    const send = (list: ReturnType<UiMessageChunks['next']>) => {
      for (const chunk of list) relay.push(uiFrame(chunk));
    };
    try {
      let final: Extract<TurnEvent, { type: 'final' }> | undefined;
      let asked = 0;
      for (let step = await first; ; step = await settle(iterator.next())) {
        if (!step.ok) throw step.error;
        if (step.result.done) break;
        const event = step.result.value;
        watch.seen(event.turnId);
        if (event.type === 'final') final = event;
        else send(chunks.next(event));
        // Paused for approval: this stream ends; the client's answers bring the rest.
        if (event.type === 'approval-required' && ++asked === event.approvals) break;
      }
      if (asked > 0 && !final) {
        void iterator.return?.();
        send(chunks.paused());
      } else {
        if (!final) throw new Error('the turn ended without a reply');
        context.countReply(tenant.id, session.agent, final.turnId, final.usage);
        send(chunks.finish(final.turnId, final.reply, final.usage));
      }
    } catch (error) {
      context.onFailure(error, req, scope);
      send(chunks.fail(context.toPublic(error, scope).message));
    } finally {
      watch.close();
      relay.push(DONE_FRAME);
      this.#streams.close(key, relay);
    }
    await piped;
  }
}
