/**
 * Approvals in a cluster. A turn that waits for a person is not carried across nodes yet: its
 * message would stay unacknowledged in its shard's inbox for as long as nobody answers, and a
 * failover would run it again. So on a cluster node a tool call the approver leaves to a
 * person (or every one, without an approver) is denied, and the model is told so.
 */
import type { Approver } from '../agent/extensions.js';
import { log } from '../log.js';

/** The node's approver: the user's answer when it gives one, otherwise a denial. */
export function denyWhatWaitsForAPerson(approver: Approver | undefined): Approver {
  let warned = false;
  return async (request) => {
    const answer = await approver?.(request);
    if (typeof answer === 'boolean') return answer;
    if (!warned) {
      warned = true;
      log('cluster').warn(
        { tool: request.tool, sessionKey: request.sessionKey },
        'a tool call that waits for a person is denied in a cluster; answer it with the approver',
      );
    }
    return false;
  };
}
