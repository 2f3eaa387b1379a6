/**
 * A message whose turn paused for a person on an owner that then stopped. The next owner does
 * not run it again: it opens the session, whose journal holds the pause (so the turn waits
 * there again, or its rest runs at once when every call was answered already), and settles
 * the message with how that turn ends: its reply, or the typed error it was closed with.
 */
import type { JournalRecord } from '../agent/journal.js';
import { type AgentcellErrorCode, errorClasses, toWire } from '../errors.js';
import { journaledReply } from '../runtime/idempotency.js';
import type { RedisStore } from '../runtime/stores/redis.js';
import type { Supervisor } from '../runtime/supervisor.js';
import type { InboxMessage } from './inbox-message.js';
import type { Outcome } from './replies.js';

/**
 * Waits for paused turn `turnId` of the message's session to end here. Undefined when the
 * session closes first (the shard went, or the node stops): the message is the next owner's.
 */
export function awaitPausedTurn(
  supervisor: Supervisor,
  store: RedisStore,
  message: InboxMessage,
  turnId: string,
): Promise<Outcome | undefined> {
  const key = message.sessionKey;
  return new Promise((resolve, reject) => {
    let done = false;
    let stop: () => void = () => {};
    const finish = (outcome: Outcome | undefined) => {
      if (done) return;
      done = true;
      stop();
      resolve(outcome);
    };
    try {
      const session = supervisor.peek(key) ?? supervisor.session(key, { agent: message.agent });
      // Added before the journal is read: an end after the read is heard, one before is read.
      stop = session.observe({
        onEvent: (event) => {
          if (event.turnId !== turnId) return;
          if (event.type === 'final') {
            const reply = {
              text: event.reply,
              turnId,
              usage: event.usage,
              ...(event.output !== undefined && { output: event.output }),
            };
            finish({ ok: true, reply });
          } else if (event.type === 'turn-failed') {
            finish({ ok: false, error: toWire(event.error) });
          }
        },
        onClose: () => finish(undefined),
      });
    } catch (error) {
      reject(error);
      return;
    }
    store.read(key).then(
      (records) => {
        const ended = endOf(records, turnId);
        if (ended) finish(ended);
      },
      (error: unknown) => {
        if (done) return;
        done = true;
        stop();
        reject(error);
      },
    );
  });
}

/** How turn `turnId` ended, if the journal says: its reply, or the code it was closed with. */
function endOf(records: readonly JournalRecord[], turnId: string): Outcome | undefined {
  for (const record of records) {
    if (record.approval === undefined && record.turnId === turnId) {
      return { ok: true, reply: journaledReply(record) };
    }
    const mark = record.approval;
    if (mark?.kind === 'closed' && mark.turnId === turnId) {
      const code = (
        mark.code in errorClasses ? mark.code : 'AGENTCELL_INTERNAL'
      ) as AgentcellErrorCode;
      const ErrorOfCode = errorClasses[code];
      const error = new ErrorOfCode(
        `turn ${turnId} ended without a reply after it waited for approval (${mark.code})`,
      );
      return { ok: false, error: toWire(error) };
    }
  }
  return undefined;
}
