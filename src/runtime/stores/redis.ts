/**
 * Journals in Redis, for runtimes spread over several processes or machines: the same
 * guarantees as the FileStore (an acknowledged append is stored once, in order, readable by any
 * later store over the same Redis), plus an optional fence for the cluster's shard owners.
 *
 * The key layout and the scripts are in `redis-journal-scripts.ts`; the fence in `fence.ts`.
 * Every write is one Lua script, so there is no torn state to repair as the FileStore has to,
 * and two stores appending the same turn at once still store it once.
 */
import { Redis } from 'ioredis';
import { type JournalRecord, journalRecordProblem } from '../../agent/journal.js';
import { decodeUntrusted, encode } from '../../codec.js';
import { InternalError, StoreCorruptError } from '../../errors.js';
import { errorFields, log } from '../../log.js';
import { type CorruptionObserver, logCorruption, reportCorruption } from './corruption.js';
import { assertFence, epochOf, type Fence, fencedError } from './fence.js';
import {
  APPEND,
  DELETE,
  JOURNAL_SCRIPTS,
  journalKeys,
  RECORD_OF_REQUEST,
  scriptReply,
  sessionsKey,
  writeKeys,
} from './redis-journal-scripts.js';
import type { RedisScript } from './redis-script.js';
import { assertAppendable, type JournalStore } from './store.js';
import { parseRedisStoreOptions } from './store-options.js';

// What the cluster layer imports from here.
export { type Fence, fencedError, isFencedError, shardEpochKey } from './fence.js';
export { RedisScript } from './redis-script.js';

export interface RedisStoreOptions {
  /**
   * A `redis://` URL, in which case the store opens its own connection and `close()` ends it,
   * or an ioredis client to share (the store never closes a client it was given).
   */
  readonly redis: string | Redis;
  /** Put before every key: one prefix per deployment (or test run). @default 'agentcell:' */
  readonly prefix?: string;
  /**
   * When given, every append and delete is refused unless the shard's epoch key still holds
   * `epoch` (a function picks the fence per session; undefined leaves that session unfenced).
   */
  readonly fence?: Fence | ((sessionKey: string) => Fence | undefined);
  /**
   * Told of every stored record that does not decode or is not a journal record; it is
   * skipped and the rest kept. @default a warning line of the `store` logger
   */
  readonly onCorrupt?: CorruptionObserver;
}

/** What {@link RedisStore.appendWith} did. */
export type AppendOutcome =
  | { readonly status: 'appended' }
  /** The turn id was already in the journal: nothing changed. */
  | { readonly status: 'duplicate' }
  /** The request was already journaled, as `turnId`: nothing changed. */
  | { readonly status: 'request-known'; readonly turnId: string };

/** Largest record accepted, as in the file store (Redis itself allows 512 MB per value). */
const MAX_RECORD_BYTES = 256 * 1024 * 1024;
/** Records fetched per LRANGE: large journals are read in pages, not one huge reply. */
const READ_PAGE = 1000;
/** Members fetched per SSCAN step. */
const SCAN_COUNT = 1000;

/**
 * Journals in Redis: durable as Redis is configured to be (AOF with `appendfsync everysec` or
 * `always` for acknowledged turns to survive a Redis crash), shared by every process that
 * opens a store with the same prefix.
 *
 * @example
 * const store = new RedisStore({ redis: 'redis://127.0.0.1:6379' });
 * const supervisor = new Supervisor({ store });
 * // ...
 * await supervisor.close(); await store.close();
 */
export class RedisStore implements JournalStore {
  readonly #client: Redis;
  readonly #ownsClient: boolean;
  readonly #prefix: string;
  readonly #fence: ((sessionKey: string) => Fence | undefined) | undefined;
  readonly #onCorrupt: CorruptionObserver;
  /** Operations not yet settled: `close()` waits for them. */
  readonly #pending = new Set<Promise<unknown>>();
  #scriptsLoaded: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(given: RedisStoreOptions) {
    const options = parseRedisStoreOptions(given, (value) => value instanceof Redis);
    const prefix = options.prefix;
    if (typeof options.redis === 'string') {
      // Lazy: a store that is never used never connects.
      this.#client = new Redis(options.redis, { lazyConnect: true });
      // ioredis reconnects by itself; without a listener it would print every failed attempt.
      this.#client.on('error', (error: unknown) =>
        log('store').debug(errorFields(error), 'the Redis connection failed; ioredis reconnects'),
      );
      this.#ownsClient = true;
    } else {
      this.#client = options.redis;
      this.#ownsClient = false;
    }
    const fence = given.fence;
    if (fence !== undefined && typeof fence !== 'function') assertFence(fence);
    this.#fence =
      fence === undefined ? undefined : typeof fence === 'function' ? fence : () => fence;
    this.#prefix = prefix;
    this.#onCorrupt = options.onCorrupt ?? logCorruption;
  }

  /** The prefix every key of this store starts with. */
  get prefix(): string {
    return this.#prefix;
  }

  append(sessionKey: string, record: JournalRecord): Promise<void> {
    return this.#track(async () => {
      await this.appendWith(sessionKey, record, { fence: this.#fence?.(sessionKey) });
    });
  }

  /**
   * Appends with what the cluster adds: an explicit fence (instead of the store's own) and the
   * id of the request the turn answers, recorded in the same script, so that a redelivered
   * request is known as journaled. A record whose request is already journaled is not
   * appended. Throws the fenced error (see {@link isFencedError}) when the fence refuses it.
   */
  appendWith(
    sessionKey: string,
    record: JournalRecord,
    options: { readonly fence?: Fence | undefined; readonly requestId?: string | undefined },
  ): Promise<AppendOutcome> {
    return this.#track(async () => {
      assertAppendable(sessionKey, record);
      const payload = encode(record);
      const bytes = Buffer.byteLength(payload, 'utf8');
      if (bytes > MAX_RECORD_BYTES) {
        throw new InternalError(
          `turn ${JSON.stringify(record.turnId)} of session ${JSON.stringify(sessionKey)} encodes to ${bytes} bytes, over the Redis store's limit of ${MAX_RECORD_BYTES} bytes per record`,
        );
      }
      const { fence, requestId } = options;
      const result = await this.#run(APPEND, writeKeys(this.#prefix, sessionKey, fence), [
        sessionKey,
        record.turnId,
        payload,
        fence === undefined ? '' : String(fence.epoch),
        requestId ?? '',
      ]);
      const [status, value] = scriptReply(result);
      if (status === 'fenced' && fence) {
        throw fencedError(
          `the append of turn ${JSON.stringify(record.turnId)} to session ${JSON.stringify(sessionKey)}`,
          fence,
          epochOf(value),
        );
      }
      if (status === 'appended' || status === 'duplicate') return { status };
      if (status === 'request-known') return { status, turnId: value };
      throw new InternalError(`the append script answered ${JSON.stringify(result)}`);
    });
  }

  /** The record journaled for `requestId` (by {@link appendWith}), if any. */
  recordOfRequest(sessionKey: string, requestId: string): Promise<JournalRecord | undefined> {
    return this.#track(async () => {
      const keys = journalKeys(this.#prefix, sessionKey);
      const payload = await this.#run(
        RECORD_OF_REQUEST,
        [keys.records, keys.turns, keys.requests],
        [requestId],
      );
      if (typeof payload !== 'string') return undefined;
      return this.#decode(sessionKey, keys.records, undefined, payload);
    });
  }

  read(sessionKey: string): Promise<readonly JournalRecord[]> {
    return this.#track(async () => {
      const key = journalKeys(this.#prefix, sessionKey).records;
      const records: JournalRecord[] = [];
      // Appends only add at the tail, so page by page reads what a single LRANGE would have
      // (plus, at most, turns appended meanwhile).
      for (let start = 0; ; start += READ_PAGE) {
        const page = await this.#client.lrange(key, start, start + READ_PAGE - 1);
        for (const [offset, payload] of page.entries()) {
          const record = this.#decode(sessionKey, key, start + offset, payload);
          if (record) records.push(record);
        }
        if (page.length < READ_PAGE) return records;
      }
    });
  }

  delete(sessionKey: string): Promise<void> {
    return this.deleteWith(sessionKey, { fence: this.#fence?.(sessionKey) });
  }

  /** Deletes with an explicit fence (instead of the store's own). */
  deleteWith(sessionKey: string, options: { readonly fence?: Fence | undefined }): Promise<void> {
    return this.#track(async () => {
      const { fence } = options;
      const result = await this.#run(DELETE, writeKeys(this.#prefix, sessionKey, fence), [
        sessionKey,
        fence === undefined ? '' : String(fence.epoch),
      ]);
      const [status, value] = scriptReply(result);
      if (status === 'fenced' && fence) {
        throw fencedError(
          `the delete of session ${JSON.stringify(sessionKey)}`,
          fence,
          epochOf(value),
        );
      }
    });
  }

  keys(): Promise<readonly string[]> {
    return this.#track(async () => {
      const keys = new Set<string>(); // SSCAN may return a member twice
      let cursor = '0';
      do {
        const [next, members] = await this.#client.sscan(
          sessionsKey(this.#prefix),
          cursor,
          'COUNT',
          SCAN_COUNT,
        );
        for (const member of members) keys.add(member);
        cursor = next;
      } while (cursor !== '0');
      return [...keys];
    });
  }

  /**
   * Waits for every operation already made, then ends the connection if the store opened it.
   * Idempotent; a store closed this way cannot be used again (open a new one).
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
      if (this.#ownsClient && this.#client.status !== 'end') {
        if (this.#client.status === 'wait') this.#client.disconnect();
        else {
          await this.#client.quit().catch((error: unknown) => {
            // A connection already broken cannot say goodbye: it is cut instead.
            log('store').debug(errorFields(error), 'the Redis store could not quit; disconnected');
            this.#client.disconnect();
          });
        }
      }
    })();
    return this.#closing;
  }

  #track<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#closing && this.#ownsClient) {
      return Promise.reject(new InternalError('the Redis store is closed; open a new one'));
    }
    const promise = operation();
    this.#pending.add(promise);
    const forget = () => this.#pending.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  /**
   * Runs a script once every script is loaded: commands on one connection run in the order
   * they are sent, and loading first keeps a NOSCRIPT retry from letting a later call overtake.
   */
  async #run(
    script: RedisScript,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown> {
    this.#scriptsLoaded ??= Promise.all(
      JOURNAL_SCRIPTS.map((each) => each.load(this.#client)),
    ).then(
      () => undefined,
      (error: unknown) => {
        this.#scriptsLoaded = undefined; // let the next call try again
        throw error;
      },
    );
    await this.#scriptsLoaded;
    return script.run(this.#client, keys, args);
  }

  #decode(
    sessionKey: string,
    redisKey: string,
    index: number | undefined,
    payload: string,
  ): JournalRecord | undefined {
    // What Redis holds came from outside this process: it goes through the guarded decoder.
    const decoded = decodeUntrusted(payload, { maxBytes: MAX_RECORD_BYTES });
    const reason =
      'problems' in decoded ? decoded.problems.join('; ') : journalRecordProblem(decoded.value);
    if (reason === undefined && 'value' in decoded) return decoded.value as JournalRecord;
    const where = index === undefined ? redisKey : `${redisKey}[${index}]`;
    const error = new StoreCorruptError(
      `a stored record of session ${JSON.stringify(sessionKey)} is unreadable at ${where}: ${reason}`,
      { details: { sessionKey, key: redisKey, index, reason } },
    );
    reportCorruption(this.#onCorrupt, error);
    return undefined;
  }
}
