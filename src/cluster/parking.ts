/**
 * A turn that waits for a person must not hold up the hand-over of its shard (a deploy would
 * wait `drainTimeoutMs` for a person). Its pause is journaled, so once the shard drains its
 * message is left pending: the next owner claims it and waits for the same approval there.
 */
import { errorFields, log } from '../log.js';
import type { Supervisor } from '../runtime/supervisor.js';
import type { HeldShard } from './shard-ownership.js';

export interface Parking {
  /** Resolves once the shard drains while the session's turn waits for a person. */
  readonly parked: Promise<void>;
  /** Stops watching (the message settled). */
  stop(): void;
}

/** The messages of a node that may be parked: one per session at a time. */
export class ParkingLot {
  readonly #supervisor: Supervisor;
  /** What parks the message of each session whose shard drains, when its turn pauses. */
  readonly #onPause = new Map<string, () => void>();

  constructor(supervisor: Supervisor) {
    this.#supervisor = supervisor;
    supervisor.on('turn:pause', ({ key }) => this.#onPause.get(key)?.());
  }

  /** Watches the message of session `key` now running on `holding`. */
  watch(holding: HeldShard, key: string): Parking {
    let stopped = false;
    let park: (() => void) | undefined;
    const parked = new Promise<void>((resolve) => {
      void holding.drainStarted.promise.then(async () => {
        if (stopped) return;
        // Listening before looking: a pause between the two is heard, not missed.
        park = resolve;
        this.#onPause.set(key, resolve);
        const waiting = await this.#supervisor
          .peek(key)
          ?.approvals()
          .catch((error: unknown) => {
            // Not parked early, then: the message waits for its turn as any other.
            log('cluster').warn(
              { ...errorFields(error), sessionKey: key },
              'the approvals of a session could not be read while its shard drains',
            );
            return [];
          });
        if (waiting && waiting.length > 0) resolve();
      });
    });
    return {
      parked,
      stop: () => {
        stopped = true;
        if (park && this.#onPause.get(key) === park) this.#onPause.delete(key);
      },
    };
  }
}
