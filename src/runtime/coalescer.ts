/**
 * The `coalesce` busy policy: messages that arrive during a turn wait as one batch in the
 * mailbox and become one next turn, answered to each of their callers. The batch is bounded
 * like the mailbox.
 */
import { MailboxFullError } from '../errors.js';
import type { Mailbox } from './mailbox.js';
import type { Caller } from './session-turn.js';
import type { Reply } from './session-types.js';

export class Coalescer {
  readonly #name: string;
  readonly #mailbox: Mailbox;
  readonly #capacity: number;
  readonly #run: (message: string, callers: Caller[], waitedMs: number) => Promise<void>;
  #batch: { parts: string[]; callers: Caller[] } | undefined;

  constructor(options: {
    name: string;
    mailbox: Mailbox;
    capacity: number;
    run: (message: string, callers: Caller[], waitedMs: number) => Promise<void>;
  }) {
    this.#name = options.name;
    this.#mailbox = options.mailbox;
    this.#capacity = options.capacity;
    this.#run = options.run;
  }

  /** Whether a batch waits. */
  get waiting(): boolean {
    return this.#batch !== undefined;
  }

  /** Adds the message to the waiting batch, or starts one; resolves with the batch's reply. */
  add(message: string, caller: Caller): Promise<Reply> {
    const pending = this.#batch;
    if (pending) {
      if (pending.parts.length >= Math.max(1, this.#capacity)) {
        return Promise.reject(
          new MailboxFullError(
            `session ${JSON.stringify(this.#name)} has ${pending.parts.length} coalesced messages`,
          ),
        );
      }
      pending.parts.push(message);
      pending.callers.push(caller);
      return caller.reply.promise;
    }
    const batch = { parts: [message], callers: [caller] };
    this.#batch = batch;
    this.#mailbox
      .add((waitedMs) => {
        if (this.#batch === batch) this.#batch = undefined;
        return this.#run(batch.parts.join('\n\n'), batch.callers, waitedMs);
      })
      .catch((error: unknown) => {
        if (this.#batch === batch) this.#batch = undefined;
        for (const each of batch.callers) each.reply.reject(error);
      });
    return caller.reply.promise;
  }

  /** Settles every caller of the waiting batch with `error`. */
  reject(error: unknown): void {
    for (const caller of this.#batch?.callers ?? []) caller.reply.reject(error);
    this.#batch = undefined;
  }
}
