/**
 * The route table, shared by the `node:http` handler and the Fastify plugin so both serve
 * exactly the same routes. Paths here are relative to the gateway's base path.
 */
import { NotFoundError, SessionKeyInvalidError } from '../errors.js';

export type Route =
  | { readonly name: 'healthz' }
  | { readonly name: 'metrics' }
  | { readonly name: 'dashboard' }
  | { readonly name: 'dashboardEvents' }
  | { readonly name: 'listSessions' }
  | { readonly name: 'getSession'; readonly rawKey: string }
  | { readonly name: 'deleteSession'; readonly rawKey: string }
  | { readonly name: 'postMessage'; readonly rawKey: string }
  | { readonly name: 'interrupt'; readonly rawKey: string }
  | { readonly name: 'answerApproval'; readonly rawKey: string; readonly rawId: string }
  | { readonly name: 'observeSession'; readonly rawKey: string }
  | { readonly name: 'models' }
  | { readonly name: 'chatCompletions' }
  | { readonly name: 'createResponse' }
  | { readonly name: 'getResponse'; readonly id: string }
  | { readonly name: 'uiChat' }
  | { readonly name: 'uiChatStream'; readonly rawId: string };

export type RouteName = Route['name'];

const SESSIONS = '/v1/sessions';
const RESPONSES = '/v1/responses';
const UI_CHAT = '/v1/ui/chat';

/** A bounded label per route, for metrics and logs. */
export const ROUTE_LABELS: Readonly<Record<RouteName, string>> = {
  healthz: 'GET /healthz',
  metrics: 'GET /metrics',
  dashboard: 'GET /dashboard',
  dashboardEvents: 'GET /v1/dashboard/events',
  listSessions: 'GET /v1/sessions',
  getSession: 'GET /v1/sessions/:key',
  deleteSession: 'DELETE /v1/sessions/:key',
  postMessage: 'POST /v1/sessions/:key/messages',
  interrupt: 'POST /v1/sessions/:key/interrupt',
  answerApproval: 'POST /v1/sessions/:key/approvals/:approvalId',
  observeSession: 'GET /v1/sessions/:key/events',
  models: 'GET /v1/models',
  chatCompletions: 'POST /v1/chat/completions',
  createResponse: 'POST /v1/responses',
  getResponse: 'GET /v1/responses/:id',
  uiChat: 'POST /v1/ui/chat',
  uiChatStream: 'GET /v1/ui/chat/:id/stream',
};

/**
 * Whether `path` is one of the routes that speak OpenAI's API, errors included
 * (`{ error: { message, type, code } }`). By path, not by route: a wrong method there is
 * answered in the shape the client reads too.
 */
export function speaksOpenAi(path: string): boolean {
  return (
    path === '/v1/models' ||
    path === '/v1/chat/completions' ||
    path === RESPONSES ||
    path.startsWith(`${RESPONSES}/`)
  );
}

/** Relative paths the Fastify plugin registers (the handler does its own matching). */
export const ROUTE_PATTERNS = [
  '/',
  '/dashboard',
  '/healthz',
  '/metrics',
  '/v1/dashboard/events',
  '/v1/sessions',
  '/v1/sessions/*',
  '/v1/models',
  '/v1/chat/completions',
  '/v1/responses',
  '/v1/responses/*',
  '/v1/ui/chat',
  '/v1/ui/chat/*',
] as const;

/** Methods the routes use. */
export const ROUTE_METHODS = ['GET', 'POST', 'DELETE'] as const;

/**
 * The route of `method` + `path` (without query string), or undefined when no route has that
 * path. A known path with another method is `AGENTCELL_NOT_FOUND` too (with the methods it
 * allows). The session key stays as sent: see {@link decodeKey}.
 */
export function matchRoute(method: string, path: string): Route | undefined {
  const routes = routesOf(path);
  if (!routes) return undefined;
  const route = routes[method];
  if (!route) {
    throw new NotFoundError(
      `${method} is not served on this path; it takes ${Object.keys(routes).join(', ')}`,
    );
  }
  return route;
}

function routesOf(path: string): Readonly<Record<string, Route>> | undefined {
  if (path === '/healthz') return { GET: { name: 'healthz' } };
  if (path === '/metrics') return { GET: { name: 'metrics' } };
  // The dashboard page; '' is the base path itself (`/agents` when mounted under it).
  if (path === '' || path === '/' || path === '/dashboard') return { GET: { name: 'dashboard' } };
  if (path === '/v1/dashboard/events') return { GET: { name: 'dashboardEvents' } };
  if (path === SESSIONS) return { GET: { name: 'listSessions' } };
  if (path === '/v1/models') return { GET: { name: 'models' } };
  if (path === '/v1/chat/completions') return { POST: { name: 'chatCompletions' } };
  if (path === RESPONSES) return { POST: { name: 'createResponse' } };
  if (path.startsWith(`${RESPONSES}/`)) {
    const id = path.slice(RESPONSES.length + 1);
    return id === '' || id.includes('/') ? undefined : { GET: { name: 'getResponse', id } };
  }
  if (path === UI_CHAT) return { POST: { name: 'uiChat' } };
  if (path.startsWith(`${UI_CHAT}/`)) {
    // `DefaultChatTransport` resumes at `${api}/${encodeURIComponent(chatId)}/stream`.
    const [rawId, action, ...extra] = path.slice(UI_CHAT.length + 1).split('/');
    if (!rawId || action !== 'stream' || extra.length > 0) return undefined;
    return { GET: { name: 'uiChatStream', rawId } };
  }
  if (!path.startsWith(`${SESSIONS}/`)) return undefined;
  const rest = path.slice(SESSIONS.length + 1).split('/');
  const [rawKey, action, ...extra] = rest;
  if (action === 'approvals' && rawKey && extra.length === 1 && extra[0]) {
    return { POST: { name: 'answerApproval', rawKey, rawId: extra[0] } };
  }
  if (rawKey === undefined || rawKey === '' || extra.length > 0) return undefined;
  if (action === undefined) {
    return { GET: { name: 'getSession', rawKey }, DELETE: { name: 'deleteSession', rawKey } };
  }
  if (action === 'messages') return { POST: { name: 'postMessage', rawKey } };
  if (action === 'interrupt') return { POST: { name: 'interrupt', rawKey } };
  if (action === 'events') return { GET: { name: 'observeSession', rawKey } };
  return undefined;
}

/** The session key of a path segment (URL-decoded); decoded only once the caller is known. */
export function decodeKey(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new SessionKeyInvalidError('the session key in the path is not valid percent-encoding');
  }
}
