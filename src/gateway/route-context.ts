/**
 * What a route module that runs turns needs from the gateway serving it (Chat Completions,
 * the UI message stream): the gateway's admission, metrics and error mapping, without
 * importing the gateway's core.
 */
import type { IncomingMessage } from 'node:http';
import type { Usage } from '../agent/messages.js';
import type { Supervisor } from '../runtime/supervisor.js';
import type { PublicError } from './http.js';
import type { ResolvedGatewayOptions } from './options.js';
import type { Tenant } from './tenants.js';

export interface RouteContext {
  readonly supervisor: Supervisor;
  readonly options: ResolvedGatewayOptions;
  /** Ids of every tenant of the gateway. */
  readonly tenantIds: ReadonlySet<string>;
  /**
   * Runs `start` as a message turn of `tenant` once the gateway takes one: not closing, the
   * tenant under its limits; tracked, so close() waits for it. `start` is called at once after
   * those checks, and must open its session before its first await.
   */
  admit(tenant: Tenant, start: () => Promise<void>): Promise<void>;
  countReply(tenantId: string, agent: string, turnId: string, usage: Usage): void;
  /** A failure the response could not answer with its status (the stream's error event). */
  onFailure(error: unknown, req: IncomingMessage, scope: RouteScope): void;
  /** What the caller may see of `error`, in its own names (its key, not the namespaced one). */
  toPublic(error: unknown, scope: RouteScope): PublicError;
}

/** What the request established, for error messages (the caller's key, not the namespaced one). */
export interface RouteScope {
  key?: string;
  namespaced?: string;
}

/** Replaces the supervisor's name of a session with the caller's own key. */
export function rewriteFor(scope: RouteScope): (text: string) => string {
  const { key, namespaced } = scope;
  if (key === undefined || namespaced === undefined) return (text) => text;
  return (text) =>
    text.split(JSON.stringify(namespaced)).join(JSON.stringify(key)).split(namespaced).join(key);
}
