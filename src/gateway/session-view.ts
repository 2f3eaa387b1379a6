/** What `GET /v1/sessions/:key` answers: a session's figures, and its history when asked. */
import { errorFields, log } from '../log.js';
import type { Session } from '../runtime/session.js';

/** The session under the caller's own `key` (never the namespaced one). */
export async function sessionView(
  session: Session,
  key: string,
  withHistory: boolean,
): Promise<object> {
  const stats = await session.stats();
  return {
    key,
    agent: stats.agent,
    status: stats.status,
    busy: stats.busy,
    queued: stats.queued,
    passivated: session.isPassivated,
    turns: stats.turns,
    failedTurns: stats.failedTurns,
    restarts: stats.restarts,
    usage: stats.usage,
    // Where the session runs on another node, its approvals are listed there; the view is
    // served without them when they cannot be read.
    approvals: await session.approvals().catch((error: unknown) => {
      log('gateway').warn(
        { ...errorFields(error), sessionKey: session.key },
        'the approvals of a session could not be read; its view leaves them out',
      );
      return undefined;
    }),
    ...(withHistory && { history: await session.history() }),
  };
}
