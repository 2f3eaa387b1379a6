/**
 * The JournalStore a cluster node gives its local Supervisor: the node's RedisStore, with every
 * append fenced by the epoch this node holds for the session's shard and tagged with the id of
 * the request the turn answers. The Supervisor knows nothing of shards or requests; this is
 * where the cluster's guarantees reach the journal.
 */
import type { JournalRecord } from '../agent/journal.js';
import { InternalError } from '../errors.js';
import { type Fence, fencedError, type RedisStore } from '../runtime/stores/redis.js';
import type { JournalStore } from '../runtime/stores/store.js';

/** The `details.reason` of the error an append of an already journaled request fails with. */
export const REQUEST_KNOWN_REASON = 'request-known';

/**
 * The tag a pause of a request's turn is journaled under: not the request's own, which its
 * reply takes once the turn is answered; a redelivery finds the pause under this one.
 */
export function pausedRequestTag(requestId: string): string {
  return `${requestId}:paused`;
}

/**
 * The request tag of a record. A reset marker answers no request, nor do the answers, the
 * resume and the close of a paused turn: only its pause (under {@link pausedRequestTag}) and
 * its reply (under the request's own id) are tagged, so that each is found once.
 */
function requestTag(record: JournalRecord, requestId: string | undefined): string | undefined {
  if (requestId === undefined || record.reset === true) return undefined;
  if (record.approval === undefined) return requestId;
  return record.approval.kind === 'pending' ? pausedRequestTag(requestId) : undefined;
}

export interface FencedJournalHooks {
  /** The fence of the session's shard, if this node owns it now. */
  fenceOf(sessionKey: string): Fence | undefined;
  /** The shard of the session, for the error when this node does not own it. */
  shardOf(sessionKey: string): number;
  /** The request whose turn is running in the session (one at a time per session). */
  requestOf(sessionKey: string): string | undefined;
}

export class FencedJournal implements JournalStore {
  readonly #store: RedisStore;
  readonly #hooks: FencedJournalHooks;

  constructor(store: RedisStore, hooks: FencedJournalHooks) {
    this.#store = store;
    this.#hooks = hooks;
  }

  async append(sessionKey: string, record: JournalRecord): Promise<void> {
    const fence = this.#hooks.fenceOf(sessionKey);
    if (!fence) {
      // Not owned here (any more): the same refusal the script would give a stale epoch.
      throw fencedError(
        `the append of turn ${JSON.stringify(record.turnId)} to session ${JSON.stringify(sessionKey)}`,
        { shard: this.#hooks.shardOf(sessionKey), epoch: 0 },
        undefined,
      );
    }
    const requestId = requestTag(record, this.#hooks.requestOf(sessionKey));
    const outcome = await this.#store.appendWith(sessionKey, record, { fence, requestId });
    if (outcome.status === 'request-known') {
      // The node checks the journal before it runs a request, so this means one request ran
      // twice; the turn journaled first is the answer, and this one must not be delivered.
      throw new InternalError(
        `request ${requestId} of session ${JSON.stringify(sessionKey)} was already journaled as turn ${outcome.turnId}`,
        { details: { reason: REQUEST_KNOWN_REASON, requestId, turnId: outcome.turnId } },
      );
    }
  }

  read(sessionKey: string): Promise<readonly JournalRecord[]> {
    return this.#store.read(sessionKey);
  }

  /** Deleting is a write like any other: only the shard's owner may. */
  async delete(sessionKey: string): Promise<void> {
    const fence = this.#hooks.fenceOf(sessionKey);
    if (!fence) {
      throw fencedError(
        `the delete of session ${JSON.stringify(sessionKey)}`,
        { shard: this.#hooks.shardOf(sessionKey), epoch: 0 },
        undefined,
      );
    }
    await this.#store.deleteWith(sessionKey, { fence });
  }

  keys(): Promise<readonly string[]> {
    return this.#store.keys();
  }

  /** The node closes the RedisStore itself, after the Supervisor. */
  async close(): Promise<void> {}
}
