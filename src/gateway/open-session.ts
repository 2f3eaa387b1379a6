/**
 * Which session a message goes to: the conversation already under its key (it goes on with
 * its own agent), or a new one opened on its first message, within the tenant's agents and
 * limits.
 */
import { AgentNotRegisteredError, MessageInvalidError, OptionsInvalidError } from '../errors.js';
import type { Session } from '../runtime/session.js';
import type { Supervisor } from '../runtime/supervisor.js';
import { assertAgentAllowed, ownKeys, type Tenant, tenantLimitError } from './tenants.js';

export interface MessageTarget {
  readonly tenant: Tenant;
  /** The session key as the tenant named it. */
  readonly key: string;
  readonly namespaced: string;
  /** The agent the body asked for, if any. */
  readonly requested: string | undefined;
  /** What `supervisor.find` gave for the key (open here or journaled). */
  readonly existing: Session | undefined;
}

/** The session that runs the message to `target`; throws the typed refusal when none may. */
export function openSession(
  supervisor: Supervisor,
  defaultAgent: string | undefined,
  target: MessageTarget,
): Session {
  const { tenant, key, requested, existing } = target;
  if (existing) {
    if (requested !== undefined) {
      assertSameAgent(
        tenant,
        key,
        existing,
        requested,
        'leave "agent" out or use another session key',
      );
    }
    assertAgentAllowed(tenant, existing.agent);
    return existing;
  }
  const agent = requested ?? defaultAgent ?? onlyAgent(supervisor, tenant);
  assertAgentAllowed(tenant, agent);
  if (!supervisor.agentNames().includes(agent)) {
    throw new AgentNotRegisteredError(`no agent named ${JSON.stringify(agent)}`);
  }
  const max = tenant.maxSessions;
  if (max !== undefined && ownKeys(tenant, supervisor.sessionKeys()).length >= max) {
    throw tenantLimitError(tenant, 'maxSessions', max);
  }
  return supervisor.session(target.namespaced, { agent });
}

/**
 * A session goes on with the agent it started with: asking for another is refused, after
 * checking the tenant may use the one asked for (so the refusal tells nothing of others'
 * agents). `remedy` says what the caller of this route should send instead.
 */
export function assertSameAgent(
  tenant: Tenant,
  key: string,
  existing: Session,
  requested: string,
  remedy: string,
): void {
  if (requested === existing.agent) return;
  assertAgentAllowed(tenant, requested);
  // The remedy is the whole advice: the code's generic hint ("fix the listed options") is not.
  const error = new OptionsInvalidError();
  error.message = `session ${JSON.stringify(key)} runs agent ${existing.agent}, not ${requested}; ${remedy}`;
  throw error;
}

/** Without a default agent, the tenant's one agent; with several, the body must name one. */
function onlyAgent(supervisor: Supervisor, tenant: Tenant): string {
  const candidates = tenant.agents ? [...tenant.agents] : supervisor.agentNames();
  const [only, ...others] = candidates;
  if (only !== undefined && others.length === 0) return only;
  throw new MessageInvalidError(
    'name the agent in the body ("agent"): this gateway has no defaultAgent and several agents',
  );
}
