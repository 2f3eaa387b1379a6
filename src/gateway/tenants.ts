/**
 * Tenancy: who a bearer token speaks for, which supervisor keys are that tenant's, and the
 * tenant's limits. A tenant's session `key` is the supervisor's `${tenantId}:${key}`, so one
 * tenant can never name another's session: addressing it finds nothing (404), it never
 * reveals that the session exists.
 */
import { createHash } from 'node:crypto';
import {
  AgentNotRegisteredError,
  SessionKeyInvalidError,
  TenantLimitError,
  UnauthorizedError,
} from '../errors.js';
import { assertSessionKey } from '../runtime/session-key.js';
import type { ResolvedGatewayOptions } from './options.js';

/** Longest supervisor session key (see assertSessionKey). */
const MAX_KEY_LENGTH = 256;

export interface Tenant {
  readonly id: string;
  /** Agents it may use; undefined: every registered agent. */
  readonly agents: ReadonlySet<string> | undefined;
  readonly maxConcurrentTurns: number | undefined;
  readonly maxSessions: number | undefined;
  /** Its message requests in progress now. */
  turnsInFlight: number;
}

/** SHA-256 of a token: tenants are looked up by digest, so lookups do not leak token bytes by timing. */
function digest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export class Tenants {
  readonly #byDigest = new Map<string, Tenant>();
  readonly #byId = new Map<string, Tenant>();

  constructor(tenants: ResolvedGatewayOptions['tenants']) {
    for (const [token, options] of Object.entries(tenants)) {
      // Tokens naming one tenant share its state (and, as validated, its settings).
      const tenant = this.#byId.get(options.id) ?? {
        id: options.id,
        agents: options.agents ? new Set(options.agents) : undefined,
        maxConcurrentTurns: options.maxConcurrentTurns,
        maxSessions: options.maxSessions,
        turnsInFlight: 0,
      };
      this.#byId.set(tenant.id, tenant);
      this.#byDigest.set(digest(token), tenant);
    }
  }

  /** The tenant of a bearer token; `AGENTCELL_UNAUTHORIZED` when there is none. */
  authenticate(token: string | undefined): Tenant {
    const tenant = token === undefined ? undefined : this.#byDigest.get(digest(token));
    if (!tenant) {
      throw new UnauthorizedError(
        token === undefined ? 'no bearer token' : 'the bearer token is not valid',
      );
    }
    return tenant;
  }

  all(): Tenant[] {
    return [...this.#byId.values()];
  }
}

/** Whether two tokens are equal, in time independent of where they differ. */
export function sameToken(given: string | undefined, expected: string): boolean {
  return given !== undefined && digest(given) === digest(expected);
}

function prefixOf(tenant: Tenant): string {
  return `${tenant.id}:`;
}

/**
 * The supervisor key of a tenant's session `key`; `AGENTCELL_SESSION_KEY_INVALID` when `key`
 * is not a valid key or leaves no room for the tenant prefix.
 */
export function namespacedKey(tenant: Tenant, key: string): string {
  assertSessionKey(key);
  const room = MAX_KEY_LENGTH - prefixOf(tenant).length;
  if (key.length > room) {
    throw new SessionKeyInvalidError(
      `a session key of ${key.length} characters, over the ${room} this gateway allows`,
    );
  }
  const namespaced = `${prefixOf(tenant)}${key}`;
  assertSessionKey(namespaced);
  return namespaced;
}

/**
 * A key spelled like another tenant's supervisor key (`globex:chat-1`) is refused rather than
 * quietly namespaced again: a client sending one expects a session it cannot have.
 */
export function assertNoTenantPrefix(key: string, tenantIds: ReadonlySet<string>): void {
  const colon = key.indexOf(':');
  if (colon > 0 && tenantIds.has(key.slice(0, colon))) {
    throw new SessionKeyInvalidError(
      `the session key starts with a tenant's namespace (${JSON.stringify(key.slice(0, colon + 1))}); send the key as your tenant names it, without that prefix`,
    );
  }
}

/** The tenant's own session keys (as it named them) among the supervisor's keys. */
export function ownKeys(tenant: Tenant, supervisorKeys: readonly string[]): string[] {
  const prefix = prefixOf(tenant);
  return supervisorKeys
    .filter((key) => key.startsWith(prefix))
    .map((key) => key.slice(prefix.length));
}

/**
 * Checks that the tenant may use `agent`. An agent it may not use is answered like one that
 * does not exist, so a tenant cannot learn other tenants' agents.
 */
export function assertAgentAllowed(tenant: Tenant, agent: string): void {
  if (tenant.agents && !tenant.agents.has(agent)) {
    throw new AgentNotRegisteredError(`no agent named ${JSON.stringify(agent)}`);
  }
}

/**
 * A tenant limit was reached: 429 with `Retry-After`. There is no code of its own yet; the
 * session-busy code has the right status and retry semantics, and the message (set whole, so
 * the busy-policy hint does not mislead) names the limit.
 */
export function tenantLimitError(
  tenant: Tenant,
  limit: 'maxConcurrentTurns' | 'maxSessions',
  value: number,
): TenantLimitError {
  return new TenantLimitError(
    limit === 'maxConcurrentTurns'
      ? `this tenant already has ${value} messages in progress (maxConcurrentTurns)`
      : `this tenant already has ${value} open sessions (maxSessions)`,
    { details: { tenant: tenant.id, limit, value } },
  );
}
