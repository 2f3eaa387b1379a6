/**
 * The rest of a turn paused for approval, for the UI message stream: the client answered the
 * `tool-approval-request` chunks (`addToolApprovalResponse`) and sent its transcript again.
 * The answers go to the session; the rest of the turn is read from the session's observers
 * (its original caller, the request that paused, has ended its stream).
 */
import { streamEvents } from '../../agent/event-stream.js';
import type { TurnEvent } from '../../agent/turn-events.js';
import { SessionClosedError } from '../../errors.js';
import type { Session } from '../../runtime/session.js';
import type { UiApprovalResponse } from './request.js';

/**
 * Answers `answers` and returns the paused turn's events from then on; rejects with the typed
 * error of the first answer the session refuses (unknown, answered, expired) before any event.
 */
export async function answerAndFollow(
  session: Session,
  answers: readonly UiApprovalResponse[],
): Promise<AsyncIterable<TurnEvent>> {
  const pending = await session.approvals();
  const turnId = pending.find((each) =>
    answers.some((a) => a.approvalId === each.approvalId),
  )?.turnId;
  let stop = () => {};
  // Watching from before the first answer: the rest of the turn may start at the last one.
  const events = streamEvents<TurnEvent>(
    (onEvent) =>
      new Promise<void>((resolve, reject) => {
        stop = session.observe({
          onEvent: (event) => {
            if (event.turnId !== turnId) return;
            if (event.type === 'turn-failed') {
              stop();
              reject(event.error);
              return;
            }
            onEvent(event);
            if (event.type === 'final') {
              stop();
              resolve();
            }
          },
          onClose: () => reject(new SessionClosedError('the session closed during the turn')),
        });
      }),
  );
  try {
    for (const { approvalId, approved, reason } of answers) {
      await session.approve(approvalId, { approved, reason });
    }
  } catch (error) {
    stop();
    throw error;
  }
  return events;
}
