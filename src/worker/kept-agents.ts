/**
 * The agents a pool thread keeps between the turns of the sessions that have affinity to it,
 * so a factory tool's instance (and the agent's caches) last across a session's turns as they
 * do on a dedicated worker. The host names each stay of a session on a thread with a token
 * (see `runtime/placement/turn-dispatch.ts`): a new token (the session moved to this thread,
 * its runner was restarted, it was passivated and came back) starts a fresh agent, so a
 * thread never serves a session state it kept from an earlier stay.
 *
 * The conversation itself is not kept: every turn restores it from the journal it carries.
 */
import type { AgentCore } from '../agent/agent-core.js';

/** Sessions kept per thread, least recently used dropped first. */
export const KEPT_AGENTS_MAX = 1_024;

interface Kept {
  readonly token: string;
  /** What the agent was built from (blueprint, tools, handoffs). */
  readonly template: string;
  readonly agent: AgentCore;
}

const kept = new Map<string, Kept>();

/**
 * The agent kept for `sessionKey` under `token` and `template`, else a new one from `build()`,
 * kept from now on.
 */
export function keptAgent(
  sessionKey: string,
  token: string,
  template: string,
  build: () => AgentCore,
): AgentCore {
  const found = kept.get(sessionKey);
  kept.delete(sessionKey);
  if (found && found.token === token && found.template === template) {
    kept.set(sessionKey, found);
    return found.agent;
  }
  const agent = build();
  kept.set(sessionKey, { token, template, agent });
  while (kept.size > KEPT_AGENTS_MAX) {
    const oldest = kept.keys().next();
    if (oldest.done) break;
    kept.delete(oldest.value);
  }
  return agent;
}

/** Lets go of the conversation a kept agent holds until its next turn restores it again. */
export function releaseHistory(agent: AgentCore): void {
  agent.restore([], agent.usage);
}

/** How many sessions this thread keeps (for tests and diagnostics). */
export function keptAgentCount(): number {
  return kept.size;
}
