/**
 * Which session a Chat Completions request belongs to. The protocol has no session, so each
 * client smuggles one through a header or a body field of its own; the gateway tries the
 * places it is configured with, in order, and the first one present names the session.
 * `POST /v1/responses` falls back on the same places when neither `conversation` nor
 * `previous_response_id` names it.
 */
import type { IncomingMessage } from 'node:http';

/** Response header: the session key the request ran in (absent for a one-turn session). */
export const SESSION_HEADER = 'x-agentcell-session';
/** Response header: where the key came from (`header:<name>`, `body:<field>`, or `none`). */
export const SOURCE_HEADER = 'x-agentcell-session-source';

/** A place a session key may come from: `header:<lowercase name>` or `body:<field>`. */
export type SessionSource = `header:${string}` | `body:${BodyField}`;

/** Body fields that may carry a session key. */
export const BODY_FIELDS = ['session_id', 'prompt_cache_key', 'user'] as const;
export type BodyField = (typeof BODY_FIELDS)[number];

/** How a source is written in the options. */
export const SESSION_SOURCE =
  /^(?:header:[a-z0-9][a-z0-9-]{0,63}|body:(?:session_id|prompt_cache_key|user))$/;

/**
 * The default order: our own header; the generic session headers and field; the headers Open
 * WebUI (`ENABLE_FORWARD_USER_INFO_HEADERS`) and LibreChat (a `headers:` template) send; then
 * the OpenAI fields that identify a conversation less precisely (`prompt_cache_key`) or only a
 * user (`user`).
 */
export const DEFAULT_SESSION_SOURCES: readonly SessionSource[] = [
  'header:x-agentcell-session',
  'header:x-session-id',
  'body:session_id',
  'header:x-openwebui-chat-id',
  'header:x-conversation-id',
  'body:prompt_cache_key',
  'body:user',
];

/**
 * Sources whose key names a user rather than a conversation: one user's chats share it, so the
 * client's transcript, not the journal, says which conversation a request continues.
 */
export const DEFAULT_CLIENT_HISTORY_SOURCES: readonly SessionSource[] = ['body:user'];

export interface FoundKey {
  readonly key: string;
  readonly source: SessionSource;
}

/** The body fields a source may read, as the request schema parsed them. */
export type SourceFields = Readonly<Partial<Record<BodyField, string | null | undefined>>>;

/**
 * The session key of the first source present (a header or field that is missing, empty or
 * only blanks is absent), or undefined when none is.
 */
export function findSessionKey(
  req: IncomingMessage,
  body: SourceFields,
  sources: readonly SessionSource[],
): FoundKey | undefined {
  for (const source of sources) {
    const raw = source.startsWith('header:')
      ? headerValue(req, source.slice('header:'.length))
      : body[source.slice('body:'.length) as BodyField];
    const key = typeof raw === 'string' ? raw.trim() : '';
    if (key !== '') return { key, source };
  }
  return undefined;
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' ? value : undefined;
}

/** The key as a header value: as sent when it is printable ASCII, percent-encoded otherwise. */
export function asHeaderValue(key: string): string {
  return /^[\x20-\x7e]*$/.test(key) ? key : encodeURIComponent(key);
}
