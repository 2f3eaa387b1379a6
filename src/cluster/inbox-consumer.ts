/**
 * The reading side of a node: the inboxes of the shards it holds, read through their consumer
 * groups, each message dispatched behind the earlier ones of its session (after its busy
 * policy: a session is busy while a message of it is queued or running here), then handled to
 * its settlement by the {@link MessageHandler}, one message per session at a time, in order.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { SessionBusyError, toWire } from '../errors.js';
import { errorFields, log } from '../log.js';
import type { InboxMessage } from './inbox-message.js';
import { MessageHandler, type MessageHandlerOptions, messageEvent } from './message-handler.js';
import { type HeldShard, READ_COUNT } from './shard-ownership.js';
import { streamNames } from './stream-replies.js';

export interface InboxConsumerOptions extends MessageHandlerOptions {
  readonly nodeId: string;
  readonly heartbeatMs: number;
  readonly maxInFlight: number;
  /** Blocking reads of the held inboxes (a blocked connection can do nothing else). */
  readonly blocking: Redis;
}

export class InboxConsumer {
  readonly #options: InboxConsumerOptions;
  /** The tail of each session's chain of messages: one at a time per session, in order. */
  readonly #chains = new Map<string, Promise<void>>();
  #inFlight = 0;
  readonly #handler: MessageHandler;

  constructor(options: InboxConsumerOptions) {
    this.#options = options;
    this.#handler = new MessageHandler(options);
  }

  /** Messages read from held shards and not yet settled. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** The request whose turn runs in session `key` now, if one does. */
  requestOf(key: string): string | undefined {
    return this.#handler.requestOf(key);
  }

  /**
   * Reads new messages of the held shards until the node stops. Between reads it waits on one
   * blocking XREAD over all of them (from each one's cursor), which returns as soon as any gets
   * a new entry and says which: only those are read next, so a wake-up costs one script per
   * busy shard, not one per held shard.
   */
  async run(): Promise<void> {
    const { inbox, keys, nodeId, ownership, stopped } = this.#options;
    const blockMs = Math.max(10, Math.min(this.#options.heartbeatMs, 250));
    while (!stopped()) {
      const active = ownership
        .held()
        .filter((holding) => holding.state === 'active' && holding.ready);
      if (active.length === 0 || this.#inFlight >= this.#options.maxInFlight) {
        await sleep(active.length === 0 ? blockMs : 10);
        continue;
      }
      const due = active.filter((holding) => holding.due);
      try {
        const reads = await Promise.all(
          due.map((holding) => {
            holding.due = false;
            return inbox.read(holding.shard, holding.epoch, nodeId, READ_COUNT, holding.received);
          }),
        );
        for (const [index, holding] of due.entries()) {
          const read = reads[index];
          if (!read) continue;
          if (read.fenced) {
            ownership.lose(holding, 'fenced while reading');
            continue;
          }
          holding.cursor = read.cursor;
          holding.received = read.lastEntryId ?? holding.received;
          for (const message of read.messages) this.dispatch(holding, message);
          for (const entryId of read.malformed) void this.discard(holding, entryId);
          // A full batch: there may be more behind it, read again without waiting.
          if (read.messages.length + read.malformed.length >= READ_COUNT) holding.due = true;
        }
        if (stopped()) return;
        if (active.some((holding) => holding.due)) {
          // Busy: read every shard next time, so one flooded shard does not starve the others
          // (they are only seen by the XREAD this skips).
          for (const holding of active) holding.due = true;
          continue;
        }
        const waiting = active.filter((holding) => holding.state === 'active');
        if (waiting.length === 0) continue;
        const woken = await this.#options.blocking.call(
          'XREAD',
          'BLOCK',
          blockMs,
          'STREAMS',
          ...waiting.map((holding) => keys.inbox(holding.shard)),
          ...waiting.map((holding) => holding.cursor),
        );
        const streams = new Set(streamNames(woken));
        for (const holding of waiting) {
          if (streams.has(keys.inbox(holding.shard))) holding.due = true;
        }
      } catch (error) {
        for (const holding of due) holding.due = true; // read them again
        if (stopped()) return;
        this.#options.report(error, 'reading the inboxes');
        await sleep(blockMs);
      }
    }
  }

  /** Interrupts the running turn of session `key`, if this node runs it. */
  interruptHere(key: string, reason: string): void {
    void this.#options.supervisor
      .peek(key)
      ?.interrupt(reason)
      .catch((error: unknown) => {
        log('cluster').warn(
          { ...errorFields(error), sessionKey: key },
          'the interrupt did not reach the session',
        );
        return false;
      });
  }

  /**
   * Queues a message behind the earlier ones of its session, after its busy policy: a session
   * is busy while a message of it is queued or running here (the owner sees them all, in order).
   */
  dispatch(holding: HeldShard, message: InboxMessage, claimed = false): void {
    const key = message.sessionKey;
    const busy = this.#chains.has(key);
    if (busy && message.busyPolicy === 'reject' && message.command === undefined) {
      const error = new SessionBusyError(`session ${JSON.stringify(key)} is in a turn`);
      this.#track(
        holding,
        this.#handler.settle(holding, message, messageEvent(holding, message), {
          outcome: { ok: false, error: toWire(error) },
          fromJournal: false,
        }),
      );
      return;
    }
    if (busy && message.busyPolicy === 'interrupt')
      this.interruptHere(key, 'a newer message arrived');
    holding.sessions.add(message.sessionKey);
    const run = (this.#chains.get(key) ?? Promise.resolve()).then(() =>
      this.#handler.handle(holding, message, claimed),
    );
    this.#chains.set(key, run);
    this.#track(holding, run, () => {
      if (this.#chains.get(key) === run) this.#chains.delete(key);
    });
  }

  /** Counts `run` in flight on `holding` until it is done. */
  #track(holding: HeldShard, run: Promise<void>, done?: () => void): void {
    this.#inFlight++;
    holding.running.add(run);
    void run.finally(() => {
      this.#inFlight--;
      holding.running.delete(run);
      done?.();
    });
  }

  /** Acks away an inbox entry that is not a message (nobody to answer). */
  async discard(holding: HeldShard, entryId: string): Promise<void> {
    try {
      const result = await this.#options.inbox.ack(
        holding.shard,
        holding.epoch,
        entryId,
        undefined,
      );
      if (result === 'fenced') this.#options.ownership.lose(holding, 'fenced while discarding');
    } catch (error) {
      this.#options.report(error, 'discarding a malformed inbox entry');
    }
  }
}
