/**
 * `POST /v1/chat/completions` on live sessions: `model` names the agent, a header or body
 * field names the session (see session-source), and the history comes from the journal or
 * the request (see history). Tools run inside the session as on every route; the client gets
 * the final answer, as a completion or a stream of chunks.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MessageInvalidError } from '../../errors.js';
import type { Session } from '../../runtime/session.js';
import type { LazyHistory, SendOptions } from '../../runtime/session-types.js';
import { readJson, sendJson } from '../http.js';
import { idempotencyOf } from '../idempotency.js';
import { assertSameAgent, openSession } from '../open-session.js';
import type { RouteContext, RouteScope } from '../route-context.js';
import { assertNoTenantPrefix, namespacedKey, type Tenant } from '../tenants.js';
import { traceContextOf } from '../trace-context.js';
import { completion, completionId } from './chunks.js';
import { HISTORY_HEADER, type HistoryMode, planHistory } from './history.js';
import { type ChatTurnRequest, readChatRequest } from './request.js';
import { asHeaderValue, findSessionKey, SESSION_HEADER, SOURCE_HEADER } from './session-source.js';
import { type CompletionStreamOptions, streamCompletion } from './stream.js';

/** What the route needs from the gateway that serves it. */
export type ChatCompletionsContext = RouteContext;

/** What the request established, for error messages (the caller's key, not the namespaced one). */
export type ChatScope = RouteScope;

/** The session a request runs in, and how. */
interface Target {
  readonly key: string;
  readonly namespaced: string;
  /** A one-turn session, deleted after its turn. */
  readonly once: boolean;
  readonly mode: HistoryMode;
  /** Where the key came from, for the response header. */
  readonly source: string;
}

export async function serveChatCompletion(
  context: ChatCompletionsContext,
  req: IncomingMessage,
  res: ServerResponse,
  tenant: Tenant,
  scope: ChatScope,
): Promise<void> {
  const { supervisor, options } = context;
  const body = await readJson(req, options.maxBodyBytes);
  const request = readChatRequest(body);
  const target = targetOf(context, req, request, tenant);
  // A one-turn session keeps nothing a repeat could be answered from: its key is only checked.
  const idempotency = idempotencyOf(req, body);
  const submit = { ...(target.once ? {} : idempotency), ...traceContextOf(req) };
  scope.key = target.key;
  scope.namespaced = target.namespaced;
  // Set now, so that error answers carry them too.
  res.setHeader(SOURCE_HEADER, target.source);
  if (!target.once) res.setHeader(SESSION_HEADER, asHeaderValue(target.key));
  const existing = target.once ? undefined : await supervisor.find(target.namespaced);
  if (existing) {
    assertSameAgent(
      tenant,
      target.key,
      existing,
      request.model,
      `send model ${JSON.stringify(existing.agent)} or use another session key`,
    );
  }
  await context.admit(tenant, async () => {
    const session = openSession(supervisor, undefined, {
      tenant,
      key: target.key,
      namespaced: target.namespaced,
      requested: request.model,
      existing,
    });
    try {
      // Planned against the journal only for a new submission: a repeat is answered as it was.
      const history: LazyHistory = async () =>
        planHistory(target.mode, request.earlier, target.once ? [] : await session.history());
      await runTurn(
        context,
        res,
        session,
        request,
        { history, ...submit },
        {
          onReply: (turnId, usage) => context.countReply(tenant.id, session.agent, turnId, usage),
          onFailure: (error) => context.onFailure(error, req, scope),
          toPublic: (error) => context.toPublic(error, scope),
        },
      );
    } finally {
      // Not kept: nothing of it stays (a failure to delete is the server log's business).
      if (target.once) {
        await supervisor
          .deleteSession(target.namespaced)
          .catch((error: unknown) => context.onFailure(error, req, scope));
      }
    }
  });
}

function targetOf(
  context: ChatCompletionsContext,
  req: IncomingMessage,
  request: ChatTurnRequest,
  tenant: Tenant,
): Target {
  const { sessionKeySources, clientHistorySources } = context.options.chatCompletions;
  const found = findSessionKey(req, request.fields, sessionKeySources);
  const asked = historyOverride(req);
  if (!found) {
    // Without a key the request is the whole conversation, as a stateless completion is.
    const key = `once-${randomUUID()}`;
    const namespaced = namespacedKey(tenant, key);
    return { key, namespaced, once: true, mode: 'client', source: 'none' };
  }
  assertNoTenantPrefix(found.key, context.tenantIds);
  const namespaced = namespacedKey(tenant, found.key);
  const mode = asked ?? (clientHistorySources.includes(found.source) ? 'client' : 'server');
  return { key: found.key, namespaced, once: false, mode, source: found.source };
}

function historyOverride(req: IncomingMessage): HistoryMode | undefined {
  const value = req.headers[HISTORY_HEADER];
  if (value === undefined) return undefined;
  const mode = typeof value === 'string' ? value.trim().toLowerCase() : '';
  if (mode === 'server' || mode === 'client') return mode;
  throw new MessageInvalidError(`the ${HISTORY_HEADER} header takes "server" or "client"`);
}

async function runTurn(
  context: ChatCompletionsContext,
  res: ServerResponse,
  session: Session,
  request: ChatTurnRequest,
  submit: SendOptions,
  report: Pick<CompletionStreamOptions, 'onReply' | 'onFailure' | 'toPublic'>,
): Promise<void> {
  const { options } = context;
  // Unix seconds, as OpenAI stamps a completion: when the request was taken.
  const created = Math.floor(Date.now() / 1000);
  if (request.stream) {
    await streamCompletion(res, {
      session,
      events: session.stream(request.message, submit),
      model: request.model,
      created,
      includeUsage: request.includeUsage,
      interruptOnDisconnect: options.interruptOnDisconnect,
      heartbeatMs: options.heartbeatMs,
      ...report,
    });
    return;
  }
  const reply = await session.send(request.message, submit);
  report.onReply(reply.turnId, reply.usage);
  const ids = { id: completionId(reply.turnId), created, model: request.model };
  sendJson(res, 200, completion(ids, reply.text, reply.usage));
}
