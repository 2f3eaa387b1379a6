/**
 * A session's mailbox: p-queue with concurrency 1, bounded. p-queue has no size cap and its
 * `clear()` leaves promises unsettled, so the bound and the settling live here: every message
 * that enters either runs or is settled with a typed error, exactly once.
 */
import PQueue from 'p-queue';
import { MailboxFullError, MessageDroppedError } from '../errors.js';
import { type Deferred, deferred } from './deferred.js';

export type OverflowPolicy = 'rejectNewest' | 'dropOldest';

export interface MailboxOptions {
  /** Messages that may wait (not counting the one running). */
  readonly capacity: number;
  readonly overflow: OverflowPolicy;
  /** Names the session in error messages. */
  readonly name: string;
}

interface Waiting {
  readonly settle: Deferred<unknown>;
  cancelled: boolean;
  readonly enqueuedAt: number;
}

export class Mailbox {
  readonly #queue = new PQueue({ concurrency: 1 });
  readonly #waiting: Waiting[] = [];
  readonly #options: MailboxOptions;
  #running = false;

  constructor(options: MailboxOptions) {
    this.#options = options;
  }

  /**
   * Queues `task` behind the messages already here and resolves with its result. When the
   * mailbox is full, rejects with `AGENTCELL_MAILBOX_FULL` (rejectNewest) or settles the oldest
   * waiting message with `AGENTCELL_MESSAGE_DROPPED` to make room (dropOldest). `first` puts
   * the task ahead of every waiting one (a steered message the turn did not take).
   */
  add<T>(task: (waitedMs: number) => Promise<T>, options: { first?: boolean } = {}): Promise<T> {
    const runsNow = !this.#running && this.#waiting.length === 0;
    if (!runsNow && this.#waiting.length >= this.#options.capacity && !options.first) {
      if (this.#options.overflow === 'rejectNewest' || this.#options.capacity === 0) {
        return Promise.reject(
          new MailboxFullError(
            `session ${JSON.stringify(this.#options.name)} already has ${this.#waiting.length} waiting messages (maxQueuedPerSession)`,
          ),
        );
      }
      this.#drop(
        this.#waiting[0]!,
        new MessageDroppedError(
          `session ${JSON.stringify(this.#options.name)} dropped its oldest waiting message`,
        ),
      );
    }
    const entry: Waiting = {
      settle: deferred<unknown>(),
      cancelled: false,
      enqueuedAt: performance.now(),
    };
    if (options.first) this.#waiting.unshift(entry);
    else this.#waiting.push(entry);
    void this.#queue.add(
      async () => {
        if (entry.cancelled) return;
        this.#remove(entry);
        this.#running = true;
        try {
          entry.settle.resolve(await task(performance.now() - entry.enqueuedAt));
        } catch (error) {
          entry.settle.reject(error);
        } finally {
          this.#running = false;
        }
      },
      { priority: options.first ? 1 : 0 },
    );
    return entry.settle.promise as Promise<T>;
  }

  /** Messages waiting (not counting the one running). */
  get size(): number {
    return this.#waiting.length;
  }

  /** Whether a task is running now. */
  get isBusy(): boolean {
    return this.#running;
  }

  /**
   * Keeps waiting messages waiting (the running one finishes): a turn paused for a person
   * holds the messages behind it until its rest runs. Idempotent.
   */
  hold(): void {
    this.#queue.pause();
  }

  /** Lets waiting messages run again after {@link hold}. Idempotent. */
  release(): void {
    this.#queue.start();
  }

  /** Resolves when nothing runs and nothing waits. */
  onIdle(): Promise<void> {
    return this.#queue.onIdle();
  }

  /** Settles every waiting message with `error`; the running one is left to finish. */
  clear(error: Error): void {
    for (const entry of [...this.#waiting]) this.#drop(entry, error);
  }

  #drop(entry: Waiting, error: Error): void {
    entry.cancelled = true;
    this.#remove(entry);
    entry.settle.reject(error);
  }

  #remove(entry: Waiting): void {
    const index = this.#waiting.indexOf(entry);
    if (index >= 0) this.#waiting.splice(index, 1);
  }
}
