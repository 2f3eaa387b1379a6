/**
 * The accepting side of a cluster node: the callers waiting for the outcome of a message they
 * sent through this node, and the reading of this node's reply stream, where owners post each
 * outcome (in the script that acks the message) and the events of streaming callers' turns.
 * Entries that are operations for this node as an owner (an interrupt) are handed on.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { TurnEvent } from '../agent/turn-events.js';
import { decodeUntrusted } from '../codec.js';
import {
  type ErrorWire,
  fromWire,
  InternalError,
  isErrorWire,
  ReplyTimeoutError,
} from '../errors.js';
import type { Reply } from '../runtime/session-types.js';
import { streamEntries } from './stream-replies.js';

/** What an owner posts as a message's outcome, encoded with the shared codec. */
export type Outcome =
  | { readonly ok: true; readonly reply: Reply }
  | { readonly ok: false; readonly error: ErrorWire };

/** A caller of this node waiting for one message's outcome. */
export interface Waiter {
  readonly sessionKey: string;
  readonly shard: number;
  /** The caller streams: events forwarded by the owner, then a final event built from the reply. */
  readonly onEvent?: ((event: TurnEvent) => void) | undefined;
  /** How long to wait, if less than the node's `replyTimeoutMs`. */
  readonly timeoutMs?: number | undefined;
}

interface Waiting extends Waiter {
  resolve(reply: Reply): void;
  reject(error: unknown): void;
  readonly timer: NodeJS.Timeout;
  /** The last event seq seen per turn id (a failover may show a second, abandoned attempt). */
  readonly seqs: Map<string, number>;
}

/** Replies read at a time. */
const REPLY_COUNT = 256;
/** How long one blocking read of the reply stream waits before it reads again. */
const BLOCK_MS = 5_000;
/** Largest reply or event accepted from the reply stream. */
const MAX_REPLY_BYTES = 64 * 1024 * 1024;

export class AwaitedReplies {
  readonly #client: Redis;
  /** Blocking reads of the reply stream (a blocked connection can do nothing else). */
  readonly #connection: Redis;
  readonly #stream: string;
  readonly #timeoutMs: number;
  readonly #waiting = new Map<string, Waiting>();

  /**
   * @param client trims what was read from the stream
   * @param connection does the blocking reads; disconnect it to end {@link read}
   * @param stream this node's reply stream
   */
  constructor(client: Redis, connection: Redis, stream: string, timeoutMs: number) {
    this.#client = client;
    this.#connection = connection;
    this.#stream = stream;
    this.#timeoutMs = timeoutMs;
  }

  /** Callers still waiting. */
  get size(): number {
    return this.#waiting.size;
  }

  /**
   * Waits for the outcome of `requestId`, from before its message exists (its reply may be read
   * before the accepting write's answer comes back). Rejects with REPLY_TIMEOUT after the
   * node's `replyTimeoutMs`.
   */
  expect(requestId: string, waiter: Waiter): Promise<Reply> {
    const timeoutMs = Math.min(waiter.timeoutMs ?? this.#timeoutMs, this.#timeoutMs);
    const reply = new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(requestId);
        reject(
          new ReplyTimeoutError(
            `no reply to request ${requestId} for session ${JSON.stringify(waiter.sessionKey)} within ${timeoutMs} ms`,
            { details: { requestId, shard: waiter.shard } },
          ),
        );
      }, timeoutMs);
      this.#waiting.set(requestId, { ...waiter, resolve, reject, timer, seqs: new Map() });
    });
    // A caller may submit and never look at the reply (fire and forget): its rejection at a
    // timeout or a close must not become an unhandled rejection. Awaiting it still throws.
    reply.catch(() => {});
    return reply;
  }

  /** Stops waiting for `requestId` (its message was not accepted after all). */
  forget(requestId: string): void {
    const waiting = this.#waiting.get(requestId);
    if (waiting) clearTimeout(waiting.timer);
    this.#waiting.delete(requestId);
  }

  /** Fails every caller still waiting with `error`. */
  failAll(error: Error): void {
    for (const requestId of [...this.#waiting.keys()]) {
      const waiting = this.#waiting.get(requestId);
      this.forget(requestId);
      waiting?.reject(error);
    }
  }

  /** Resolves once no caller waits, or after `timeoutMs`. */
  async drained(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.#waiting.size > 0 && Date.now() < deadline) await sleep(20);
  }

  /**
   * Reads the reply stream until `stopped()`: settles callers, forwards events, and hands
   * operations for this node's own sessions to `onControl`. Entries read are deleted (the
   * stream's TTL and MAXLEN bound what a dead node leaves).
   */
  async read(
    stopped: () => boolean,
    onControl: (fields: Map<string, string>) => void,
    onError: (error: unknown, during: string) => void,
  ): Promise<void> {
    let cursor = '0-0';
    while (!stopped()) {
      let result: unknown;
      try {
        result = await this.#connection.call(
          'XREAD',
          'COUNT',
          REPLY_COUNT,
          'BLOCK',
          BLOCK_MS,
          'STREAMS',
          this.#stream,
          cursor,
        );
      } catch (error) {
        if (stopped()) return;
        onError(error, 'reading replies');
        await sleep(100);
        continue;
      }
      const ids: string[] = [];
      for (const [id, fields] of streamEntries(result)) {
        ids.push(id);
        cursor = id;
        if (fields.has('c')) onControl(fields);
        else if (fields.has('e')) this.#forwardEvent(fields.get('r'), fields.get('e'));
        else this.#deliver(fields.get('r'), fields.get('p'));
      }
      if (ids.length > 0) {
        this.#client.xdel(this.#stream, ...ids).catch((error: unknown) => {
          onError(error, 'trimming replies');
        });
      }
    }
  }

  #deliver(requestId: string | undefined, payload: string | undefined): void {
    if (requestId === undefined) return;
    const waiting = this.#waiting.get(requestId);
    if (!waiting) return; // timed out meanwhile, or a reply for a previous life of this node id
    this.forget(requestId);
    const outcome = parseOutcome(payload);
    if (!outcome) {
      waiting.reject(new InternalError(`the reply to request ${requestId} does not decode`));
    } else if (outcome.ok) {
      const { reply } = outcome;
      // Built here, not forwarded: the journaled reply is the one the caller must see last.
      waiting.onEvent?.({
        type: 'final',
        reply: reply.text,
        ...(reply.output !== undefined && { output: reply.output }),
        usage: reply.usage,
        sessionKey: waiting.sessionKey,
        turnId: reply.turnId,
        seq: (waiting.seqs.get(reply.turnId) ?? -1) + 1,
      });
      waiting.resolve(reply);
    } else {
      waiting.reject(fromWire(outcome.error));
    }
  }

  /** A turn event the owner forwarded for one of this node's streaming callers. */
  #forwardEvent(requestId: string | undefined, payload: string | undefined): void {
    const waiting = requestId === undefined ? undefined : this.#waiting.get(requestId);
    if (!waiting?.onEvent) return;
    const decoded = decodeUntrusted(payload, { maxBytes: MAX_REPLY_BYTES, root: 'event' });
    if ('problems' in decoded) return; // events are advisory; the reply still comes
    const event = decoded.value as TurnEvent;
    if (typeof event?.type !== 'string' || event.type === 'final') return;
    if (typeof event.turnId === 'string' && typeof event.seq === 'number') {
      // Seen already: an event the owner's connection sent again after a reconnect.
      if (event.seq <= (waiting.seqs.get(event.turnId) ?? -1)) return;
      waiting.seqs.set(event.turnId, event.seq);
    }
    waiting.onEvent(event);
  }
}

function parseOutcome(payload: string | undefined): Outcome | undefined {
  const decoded = decodeUntrusted(payload, { maxBytes: MAX_REPLY_BYTES, root: 'reply' });
  if ('problems' in decoded || typeof decoded.value !== 'object' || decoded.value === null) {
    return undefined;
  }
  const value = decoded.value as Record<string, unknown>;
  if (value['ok'] === false && isErrorWire(value['error'])) {
    return { ok: false, error: value['error'] };
  }
  const reply = value['reply'] as Record<string, unknown> | undefined;
  if (
    value['ok'] === true &&
    typeof reply === 'object' &&
    reply !== null &&
    typeof reply['text'] === 'string' &&
    typeof reply['turnId'] === 'string'
  ) {
    return { ok: true, reply: reply as unknown as Reply };
  }
  return undefined;
}
