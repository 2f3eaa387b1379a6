/**
 * Durable per-shard inboxes: one Redis stream per shard, read by its owner through one consumer
 * group. A message is in the stream before its sender is told it was accepted, stays pending
 * (in the group's PEL) while its turn runs, and is acked only after the turn is journaled, in
 * the same script that hands the reply to the accepting node. A new owner claims whatever the
 * old one left pending.
 *
 * Reads, claims and acks are Lua scripts checked against the shard's epoch: a paused old owner
 * can neither ack (which would drop a message its successor must run) nor read (which would pull
 * new messages into its own PEL, out of its successor's order).
 */
import type { Redis } from 'ioredis';
import type { SessionBudget } from '../runtime/options.js';
import { RedisScript } from '../runtime/stores/redis.js';
import { type ClusterBusyPolicy, type InboxMessage, parseEntries } from './inbox-message.js';
import { type ClusterKeys, INBOX_GROUP } from './keys.js';

export type InboxRead =
  | { readonly fenced: true }
  | {
      readonly fenced: false;
      readonly messages: readonly InboxMessage[];
      /** Entries that are not messages (written by something else); ack them away. */
      readonly malformed: readonly string[];
      /** The id after which new entries land: where a blocking XREAD waits from. */
      readonly cursor: string;
      /** The id of the last entry this read received, if any: the next read's `after`. */
      readonly lastEntryId: string | undefined;
    };

export type InboxClaim =
  | { readonly fenced: true }
  | {
      readonly fenced: false;
      readonly messages: readonly InboxMessage[];
      readonly malformed: readonly string[];
      /** Where the next claim starts; '0-0' when the whole PEL was scanned. */
      readonly next: string;
      /** The id of the last entry this claim took, if any. */
      readonly lastEntryId: string | undefined;
    };

export type AckResult = 'acked' | 'fenced' | 'gone';

/**
 * KEYS: inbox, accepted marker of the request. ARGV: max length (0 = none), marker TTL ms,
 * then field/value pairs.
 * A client replays a command whose answer a dropped connection lost (ioredis resends them on
 * reconnect): the marker makes a replayed accept answer the entry the first one added.
 */
const ACCEPT = new RedisScript(`
local known = redis.call('GET', KEYS[2])
if known then return known end
local max = tonumber(ARGV[1])
if max > 0 and redis.call('XLEN', KEYS[1]) >= max then return false end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
redis.call('SET', KEYS[2], id, 'PX', ARGV[2])
return id
`);

/**
 * KEYS: inbox, epoch. ARGV: epoch, group, consumer, count, the last entry id the owner received.
 * First the owner's own pending entries after that id: entries a read moved into its pending
 * list whose answer never reached it (the connection dropped, or a replayed read overtook
 * it). They come before anything new, so a session's messages still run in order.
 */
const READ = new RedisScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {'fenced'} end
local entries = {}
local unseen = redis.call('XREADGROUP', 'GROUP', ARGV[2], ARGV[3], 'COUNT', ARGV[4], 'STREAMS', KEYS[1], ARGV[5])
if unseen and unseen[1] then entries = unseen[1][2] end
if #entries == 0 then
  local read = redis.call('XREADGROUP', 'GROUP', ARGV[2], ARGV[3], 'COUNT', ARGV[4], 'STREAMS', KEYS[1], '>')
  if read then entries = read[1][2] end
end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local cursor = '0-0'
if last[1] then cursor = last[1][1] end
return {'ok', cursor, entries}
`);

/** KEYS: inbox, epoch. ARGV: epoch, group, consumer, start, count. */
const CLAIM = new RedisScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {'fenced'} end
local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[2], ARGV[3], 0, ARGV[4], 'COUNT', ARGV[5])
return {'ok', claimed[1], claimed[2]}
`);

/**
 * KEYS: inbox, epoch, replies of the origin (the inbox again when there is no reply), attempts.
 * ARGV: epoch, group, entry id, request id, reply payload ('' for none), reply TTL ms,
 * replies max length.
 * The ack and the reply are one step: a message is either pending with no reply sent, or done
 * with exactly one. The entry is deleted too: once acked nobody reads it again.
 */
const ACK = new RedisScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 'fenced' end
if redis.call('XACK', KEYS[1], ARGV[2], ARGV[3]) == 0 then return 'gone' end
redis.call('XDEL', KEYS[1], ARGV[3])
if ARGV[4] ~= '' then redis.call('HDEL', KEYS[4], ARGV[4], ARGV[4] .. '|epoch') end
if ARGV[5] ~= '' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*', 'r', ARGV[4], 'p', ARGV[5])
  redis.call('PEXPIRE', KEYS[3], ARGV[6])
end
return 'acked'
`);

/**
 * KEYS: attempts (of the shard), epoch. ARGV: epoch, request id, TTL ms.
 * Counted under the fence, so a stale owner's start does not use up a message's deliveries,
 * and once per epoch (the field `<request id>|epoch` says which counted last), so a replayed
 * count does not either.
 */
const ATTEMPT = new RedisScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
local counted = ARGV[2] .. '|epoch'
if redis.call('HGET', KEYS[1], counted) == ARGV[1] then
  return tonumber(redis.call('HGET', KEYS[1], ARGV[2]) or '0')
end
local count = redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
redis.call('HSET', KEYS[1], counted, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return count
`);

/** How long a shard's attempt counts outlive its last start: a day. */
const ATTEMPTS_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * How long a request's accepted marker is kept: longer than a client goes on replaying a
 * command (ioredis gives up after 20 reconnection attempts, about 10 s).
 */
export const ACCEPTED_MARKER_TTL_MS = 2 * 60 * 1000;

/** How long replies nobody reads are kept (the accepting node died): an hour. */
export const REPLY_TTL_MS = 60 * 60 * 1000;
/** Replies kept per node at most (its reader deletes what it read; this bounds a dead one's). */
export const REPLIES_MAX_LENGTH = 100_000;

export interface NewMessage {
  readonly requestId: string;
  readonly sessionKey: string;
  readonly agent: string;
  readonly message: string;
  readonly origin: string;
  /** @default false */
  readonly stream?: boolean | undefined;
  /** @default 'enqueue' */
  readonly busyPolicy?: ClusterBusyPolicy | undefined;
  readonly budget?: SessionBudget | undefined;
  readonly command?: 'delete' | undefined;
  readonly idempotencyKey?: string | undefined;
}

export class ShardInbox {
  readonly #client: Redis;
  readonly #keys: ClusterKeys;

  constructor(client: Redis, keys: ClusterKeys) {
    this.#client = client;
    this.#keys = keys;
  }

  /**
   * Appends a message to its shard's inbox; resolves with its entry id once Redis has it, or
   * undefined when the inbox already holds `maxLength` messages (0: no limit).
   */
  async accept(shard: number, message: NewMessage, maxLength: number): Promise<string | undefined> {
    const id = await ACCEPT.run(
      this.#client,
      [this.#keys.inbox(shard), this.#keys.accepted(message.requestId)],
      [
        maxLength,
        ACCEPTED_MARKER_TTL_MS,
        'r',
        message.requestId,
        'k',
        message.sessionKey,
        'a',
        message.agent,
        'm',
        message.message,
        'o',
        message.origin,
        't',
        Date.now(),
        's',
        message.stream ? 1 : 0,
        'p',
        message.busyPolicy ?? 'enqueue',
        ...(message.budget ? ['g', JSON.stringify(message.budget)] : []),
        ...(message.command ? ['c', message.command] : []),
        ...(message.idempotencyKey ? ['i', message.idempotencyKey] : []),
      ],
    );
    return typeof id === 'string' ? id : undefined;
  }

  /** Creates the shard's stream and consumer group if missing (from the start of the stream). */
  async ensureGroup(shard: number): Promise<void> {
    try {
      await this.#client.xgroup('CREATE', this.#keys.inbox(shard), INBOX_GROUP, '0', 'MKSTREAM');
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('BUSYGROUP')) throw error;
    }
  }

  /**
   * New messages for the owner at `epoch` (moved into its pending list), oldest first. `after`
   * is the last entry id the owner received (from a read or its claim): pending entries of its
   * own past it were delivered by a read whose answer was lost, and come first.
   */
  async read(
    shard: number,
    epoch: number,
    consumer: string,
    count: number,
    after: string,
  ): Promise<InboxRead> {
    const result = await this.#withGroup(shard, () =>
      READ.run(
        this.#client,
        [this.#keys.inbox(shard), this.#keys.epoch(shard)],
        [epoch, INBOX_GROUP, consumer, count, after],
      ),
    );
    const [status, cursor, entries] = Array.isArray(result) ? (result as unknown[]) : [];
    if (status !== 'ok') return { fenced: true };
    return {
      fenced: false,
      cursor: typeof cursor === 'string' ? cursor : '0-0',
      ...parseEntries(entries),
    };
  }

  /**
   * Takes over every pending message of the shard, whoever read it, oldest first, from
   * `start`. A new owner calls it until `next` is '0-0', before reading new messages.
   */
  async claim(
    shard: number,
    epoch: number,
    consumer: string,
    start: string,
    count: number,
  ): Promise<InboxClaim> {
    const result = await this.#withGroup(shard, () =>
      CLAIM.run(
        this.#client,
        [this.#keys.inbox(shard), this.#keys.epoch(shard)],
        [epoch, INBOX_GROUP, consumer, start, count],
      ),
    );
    const [status, next, entries] = Array.isArray(result) ? (result as unknown[]) : [];
    if (status !== 'ok') return { fenced: true };
    return {
      fenced: false,
      next: typeof next === 'string' ? next : '0-0',
      ...parseEntries(entries),
    };
  }

  /**
   * Acks a message and hands its reply to the accepting node, if the caller still owns the
   * shard at `epoch`. 'gone' means it was acked before (its reply already sent).
   */
  async ack(
    shard: number,
    epoch: number,
    entryId: string,
    reply:
      | { readonly origin: string; readonly requestId: string; readonly payload: string }
      | undefined,
  ): Promise<AckResult> {
    const inbox = this.#keys.inbox(shard);
    const result = await ACK.run(
      this.#client,
      [
        inbox,
        this.#keys.epoch(shard),
        reply ? this.#keys.replies(reply.origin) : inbox,
        this.#keys.attempts(shard),
      ],
      [
        epoch,
        INBOX_GROUP,
        entryId,
        reply?.requestId ?? '',
        reply?.payload ?? '',
        REPLY_TTL_MS,
        REPLIES_MAX_LENGTH,
      ],
    );
    return result === 'acked' || result === 'fenced' ? result : 'gone';
  }

  /**
   * Counts one more start of a message's turn: 1 the first time, more when owners stopped
   * before they settled it. `'fenced'` when the caller no longer owns the shard at `epoch`.
   */
  async attempt(shard: number, epoch: number, requestId: string): Promise<number | 'fenced'> {
    const count = await ATTEMPT.run(
      this.#client,
      [this.#keys.attempts(shard), this.#keys.epoch(shard)],
      [epoch, requestId, ATTEMPTS_TTL_MS],
    );
    return typeof count === 'number' && count >= 0 ? count : 'fenced';
  }

  /** Messages waiting in a shard's inbox (unread or pending), for operators and tests. */
  length(shard: number): Promise<number> {
    return this.#client.xlen(this.#keys.inbox(shard));
  }

  /** Runs a script on the shard's group, creating the group first if Redis lost it. */
  async #withGroup(shard: number, run: () => Promise<unknown>): Promise<unknown> {
    try {
      return await run();
    } catch (error) {
      if (!(error instanceof Error) || !error.message.includes('NOGROUP')) throw error;
      await this.ensureGroup(shard);
      return run();
    }
  }
}
