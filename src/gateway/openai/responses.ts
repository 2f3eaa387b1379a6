/**
 * `POST /v1/responses` and `GET /v1/responses/:id` (Open Responses) on live sessions. `model`
 * names the agent; the session is, in this order: the one of `previous_response_id`, the
 * `conversation` id as a session key, a key from the Chat Completions route's sources, or a new
 * session keyed by the response's own id (so `previous_response_id` can continue it). Only a
 * request with none of these and `store: false` runs as a one-turn session that is not kept:
 * nothing could ever continue it. The journal is the history; `input` items before the last
 * user message are added to it ahead of the turn.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ChatMessage } from '../../agent/messages.js';
import { HistoryConflictError, NotFoundError } from '../../errors.js';
import type { Session } from '../../runtime/session.js';
import type { SendOptions } from '../../runtime/session-types.js';
import { readJson, sendJson } from '../http.js';
import { idempotencyOf } from '../idempotency.js';
import { assertSameAgent, openSession } from '../open-session.js';
import { assertNoTenantPrefix, namespacedKey, type Tenant } from '../tenants.js';
import { traceContextOf } from '../trace-context.js';
import type { ChatCompletionsContext, ChatScope } from './chat-completions.js';
import { type ResponseStreamOptions, streamResponse } from './response-events.js';
import { newMessageId, newResponseId, outputMessage, responseObject } from './response-object.js';
import { type ResponseTurnRequest, readResponseRequest } from './response-request.js';
import type { ResponseStore } from './response-store.js';
import { asHeaderValue, findSessionKey, SESSION_HEADER, SOURCE_HEADER } from './session-source.js';

export interface ResponsesContext extends ChatCompletionsContext {
  readonly responses: ResponseStore;
}

/** The session a response runs in. */
interface Target {
  readonly key: string;
  readonly namespaced: string;
  /** A one-turn session, deleted after its turn. */
  readonly once: boolean;
  /** Where the key came from, for the response header. */
  readonly source: string;
  readonly conversation: string | undefined;
}

export async function serveResponse(
  context: ResponsesContext,
  req: IncomingMessage,
  res: ServerResponse,
  tenant: Tenant,
  scope: ChatScope,
): Promise<void> {
  const { supervisor, options, responses } = context;
  const body = await readJson(req, options.maxBodyBytes);
  const request = readResponseRequest(body);
  const idempotency = idempotencyOf(req, body);
  const id = newResponseId();
  // Unix seconds, as OpenAI stamps a response: when the request was taken.
  const createdAt = Math.floor(Date.now() / 1000);
  const target = targetOf(context, req, request, tenant, id);
  scope.key = target.key;
  scope.namespaced = target.namespaced;
  // Set now, so that error answers carry them too.
  res.setHeader(SOURCE_HEADER, target.source);
  if (!target.once) res.setHeader(SESSION_HEADER, asHeaderValue(target.key));
  const existing = target.once ? undefined : await supervisor.find(target.namespaced);
  const previous = request.previousResponseId;
  if (previous !== undefined && !existing) {
    throw told(
      new HistoryConflictError(),
      `the conversation of response ${JSON.stringify(previous)} is gone (its session was deleted); start a new one without previous_response_id`,
    );
  }
  if (existing) {
    assertSameAgent(
      tenant,
      target.key,
      existing,
      request.model,
      `send model ${JSON.stringify(existing.agent)}`,
    );
  }
  if (previous !== undefined && !responses.isLatest(target.namespaced, previous)) {
    throw told(
      new HistoryConflictError(),
      `response ${JSON.stringify(previous)} is not the latest of its conversation, which has gone on since; continue from its latest response`,
    );
  }
  // Checked and marked with no await between: two answers to one response, at once or one
  // after the other, would fork a conversation that has one history.
  const undo = target.once ? () => {} : responses.begin(target.namespaced, id);
  let completed = false;
  try {
    await context.admit(tenant, async () => {
      const session = openSession(supervisor, undefined, {
        tenant,
        key: target.key,
        namespaced: target.namespaced,
        requested: request.model,
        existing,
      });
      try {
        await runTurn(context, req, res, scope, {
          session,
          request,
          // Worked out only for a new submission: a repeat is answered as it was.
          submit: {
            history: () => historyOf(session, request, target),
            ...(target.once ? {} : idempotency),
            ...traceContextOf(req),
          },
          response: {
            id,
            createdAt,
            model: request.model,
            previousResponseId: previous,
            conversation: target.conversation,
            store: request.store,
          },
          onComplete: (body, turnId, usage) => {
            completed = true;
            context.countReply(tenant.id, session.agent, turnId, usage);
            if (!request.store) return;
            const { key, namespaced, conversation } = target;
            responses.put({ tenantId: tenant.id, key, namespaced, conversation, body });
          },
        });
      } finally {
        // Not kept: nothing of it stays (a failure to delete is the server log's business).
        if (target.once) {
          await supervisor
            .deleteSession(target.namespaced)
            .catch((error: unknown) => context.onFailure(error, req, scope));
        }
      }
    });
  } finally {
    if (!completed) undo();
  }
}

function targetOf(
  context: ResponsesContext,
  req: IncomingMessage,
  request: ResponseTurnRequest,
  tenant: Tenant,
  id: string,
): Target {
  const kept = (key: string, source: string, conversation?: string): Target => {
    assertNoTenantPrefix(key, context.tenantIds);
    return { key, namespaced: namespacedKey(tenant, key), once: false, source, conversation };
  };
  const previous = request.previousResponseId;
  if (previous !== undefined) {
    // Another tenant's response is as unknown as a missing one: its existence is not told.
    const stored = context.responses.get(tenant.id, previous);
    if (!stored) throw unknownResponse(previous);
    return kept(stored.key, 'body:previous_response_id', stored.conversation);
  }
  if (request.conversation !== undefined) {
    return kept(request.conversation, 'body:conversation', request.conversation);
  }
  const { sessionKeySources } = context.options.chatCompletions;
  const found = findSessionKey(req, request.fields, sessionKeySources);
  if (found) return kept(found.key, found.source);
  if (request.store) return kept(id, 'response');
  const key = `once-${randomUUID()}`;
  const namespaced = namespacedKey(tenant, key);
  return { key, namespaced, once: true, source: 'none', conversation: undefined };
}

/**
 * Input items before the turn's message are new to the conversation: they follow the journal.
 * Without any, the journal goes on as it is (no replacement, nothing copied).
 */
async function historyOf(
  session: Session,
  request: ResponseTurnRequest,
  target: Target,
): Promise<ChatMessage[] | undefined> {
  if (request.earlier.length === 0) return undefined;
  const journal = target.once ? [] : await session.history();
  return [...journal, ...request.earlier];
}

/** One turn of a response, ready to run. */
interface Turn {
  readonly session: Session;
  readonly request: ResponseTurnRequest;
  readonly submit: SendOptions;
  readonly response: ResponseStreamOptions['response'];
  readonly onComplete: ResponseStreamOptions['onComplete'];
}

async function runTurn(
  context: ResponsesContext,
  req: IncomingMessage,
  res: ServerResponse,
  scope: ChatScope,
  turn: Turn,
): Promise<void> {
  const { session, request, submit, response, onComplete } = turn;
  const { options } = context;
  if (request.stream) {
    await streamResponse(res, {
      session,
      events: session.stream(request.message, submit),
      response,
      interruptOnDisconnect: options.interruptOnDisconnect,
      heartbeatMs: options.heartbeatMs,
      toPublic: (error) => context.toPublic(error, scope),
      onComplete,
      onFailure: (error) => context.onFailure(error, req, scope),
    });
    return;
  }
  const reply = await session.send(request.message, submit);
  const output = [outputMessage(newMessageId(), reply.text)];
  const body = responseObject({ ...response, status: 'completed', output, usage: reply.usage });
  onComplete(body, reply.turnId, reply.usage);
  sendJson(res, 200, body);
}

/** `GET /v1/responses/:id`: a stored response of the caller's tenant; any other id is a 404. */
export function sendStoredResponse(
  context: ResponsesContext,
  res: ServerResponse,
  tenant: Tenant,
  id: string,
): void {
  const stored = context.responses.get(tenant.id, id);
  if (!stored) throw unknownResponse(id);
  sendJson(res, 200, stored.body);
}

/**
 * `error` with `message` alone: the code's general hint speaks of session keys and history
 * headers, which would mislead a client that sent a response id.
 */
function told<E extends Error>(error: E, message: string): E {
  error.message = message;
  return error;
}

function unknownResponse(id: string): NotFoundError {
  return told(
    new NotFoundError(),
    `no response ${JSON.stringify(id.slice(0, 200))}: responses are kept in memory for their own tenant, and a restart forgets them`,
  );
}
