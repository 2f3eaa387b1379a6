/**
 * Journals in Redis, for runtimes spread over several processes or machines: the same
 * guarantees as the FileStore (an acknowledged append is stored once, in order, readable by any
 * later store over the same Redis), plus an optional fence for the cluster's shard owners.
 *
 * Keys, under a prefix (default `agentcell:`) so that several deployments or test runs can share
 * one Redis:
 * - `<prefix>j:records:<sessionKey>`: a list, one record per element, each one value encoded
 *   with the shared codec, oldest first;
 * - `<prefix>j:turns:<sessionKey>`: a hash, turn id → position in the list (1-based), which is
 *   what makes appends idempotent by turn id;
 * - `<prefix>j:requests:<sessionKey>`: a hash, request id → turn id, kept only for appends
 *   that name the request they answer (the cluster's durable inboxes), so a message redelivered
 *   after a failover is recognised as already journaled;
 * - `<prefix>j:sessions`: a set of every session key with a journal, for `keys()` (a SCAN over
 *   key names would have to unescape glob characters, and would see other deployments' keys).
 *
 * Every write is one Lua script, so each append checks the turn id, the request id and the
 * fence, pushes the record and updates the indexes atomically: there is no torn state to repair
 * as the FileStore has to, and two stores appending the same turn at once still store it once.
 *
 * The fence: a shard owner passes `{ shard, epoch }` and the script refuses the write unless
 * `<prefix>shard:<shard>:epoch` still holds that epoch. Epochs only grow (a new owner INCRs
 * them when it takes the lease), so an owner that was paused or cut off past its lease can never
 * write after its successor started: a TTL lock alone could not promise that.
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import type { JournalRecord } from '../../agent/journal.js';
import { decodeUntrusted, encode } from '../../codec.js';
import {
  FencedError,
  InternalError,
  isAgentcellError,
  OptionsInvalidError,
  StoreCorruptError,
} from '../../errors.js';
import type { JournalStore } from './store.js';

/** The shard a write belongs to and the epoch its owner holds. */
export interface Fence {
  readonly shard: number | string;
  readonly epoch: number;
}

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
   * skipped and the rest kept. @default emits a process warning
   */
  readonly onCorrupt?: (error: StoreCorruptError) => void;
}

/** What {@link RedisStore.appendWith} did. */
export type AppendOutcome =
  | { readonly status: 'appended' }
  /** The turn id was already in the journal: nothing changed. */
  | { readonly status: 'duplicate' }
  /** The request was already journaled, as `turnId`: nothing changed. */
  | { readonly status: 'request-known'; readonly turnId: string };

/** Whether `error` is the refusal of a write by a stale shard owner. */
export function isFencedError(error: unknown): error is FencedError {
  return isAgentcellError(error, 'AGENTCELL_FENCED');
}

/** The error a write refused by the fence is reported with. */
export function fencedError(
  what: string,
  fence: Fence,
  currentEpoch: number | undefined,
): FencedError {
  return new FencedError(
    `${what} was refused: shard ${fence.shard} is now at epoch ${currentEpoch ?? 'none'}, the writer holds epoch ${fence.epoch} (another node took the shard over)`,
    {
      details: {
        shard: fence.shard,
        epoch: fence.epoch,
        currentEpoch,
      },
    },
  );
}

/** The key holding a shard's fencing epoch; shared by the store and the cluster's leases. */
export function shardEpochKey(prefix: string, shard: number | string): string {
  return `${prefix}shard:${shard}:epoch`;
}

/**
 * A Lua script run by its SHA-1, loaded on first use. Falls back to sending the script when
 * Redis lost it (a restart or SCRIPT FLUSH), so callers never see NOSCRIPT.
 */
export class RedisScript {
  readonly lua: string;
  readonly sha: string;

  constructor(lua: string) {
    this.lua = lua;
    this.sha = createHash('sha1').update(lua, 'utf8').digest('hex');
  }

  async load(client: Redis): Promise<void> {
    await client.script('LOAD', this.lua);
  }

  async run(
    client: Redis,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return client.eval(this.lua, keys.length, ...keys, ...args);
    }
  }
}

/**
 * KEYS: records, turns, sessions, requests, epoch (the records key again when unfenced).
 * ARGV: session key, turn id, payload, fence epoch ('' when unfenced), request id ('' for none).
 */
const APPEND = new RedisScript(`
if ARGV[4] ~= '' then
  local current = redis.call('GET', KEYS[5])
  if current ~= ARGV[4] then return {'fenced', current or ''} end
end
if ARGV[5] ~= '' then
  local known = redis.call('HGET', KEYS[4], ARGV[5])
  -- The same turn again is this append replayed (its answer was lost), not a second run.
  if known == ARGV[2] then return {'duplicate', ''} end
  if known then return {'request-known', known} end
end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return {'duplicate', ''} end
local position = redis.call('RPUSH', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], position)
redis.call('SADD', KEYS[3], ARGV[1])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[4], ARGV[5], ARGV[2]) end
return {'appended', ''}
`);

/**
 * KEYS: records, turns, sessions, requests, epoch (the records key again when unfenced).
 * ARGV: session key, fence epoch ('' when unfenced).
 */
const DELETE = new RedisScript(`
if ARGV[2] ~= '' then
  local current = redis.call('GET', KEYS[5])
  if current ~= ARGV[2] then return {'fenced', current or ''} end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
redis.call('SREM', KEYS[3], ARGV[1])
return {'deleted', ''}
`);

/** KEYS: records, turns, requests. ARGV: request id. The record journaled for a request. */
const RECORD_OF_REQUEST = new RedisScript(`
local turn = redis.call('HGET', KEYS[3], ARGV[1])
if not turn then return false end
local position = redis.call('HGET', KEYS[2], turn)
if not position then return false end
return redis.call('LINDEX', KEYS[1], tonumber(position) - 1)
`);

const SCRIPTS = [APPEND, DELETE, RECORD_OF_REQUEST];

/** Largest record accepted, as in the file store (Redis itself allows 512 MB per value). */
const MAX_RECORD_BYTES = 256 * 1024 * 1024;
/** Records fetched per LRANGE: large journals are read in pages, not one huge reply. */
const READ_PAGE = 1000;
/** Members fetched per SSCAN step. */
const SCAN_COUNT = 1000;
const DEFAULT_PREFIX = 'agentcell:';

interface SessionKeys {
  readonly records: string;
  readonly turns: string;
  readonly requests: string;
}

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
  readonly #onCorrupt: (error: StoreCorruptError) => void;
  /** Operations not yet settled: `close()` waits for them. */
  readonly #pending = new Set<Promise<unknown>>();
  #scriptsLoaded: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: RedisStoreOptions) {
    const prefix = options.prefix ?? DEFAULT_PREFIX;
    if (typeof prefix !== 'string') throw new OptionsInvalidError('prefix: expected a string');
    if (typeof options.redis === 'string') {
      if (!/^rediss?:\/\//.test(options.redis)) {
        throw new OptionsInvalidError(
          `redis: expected a redis:// or rediss:// URL, got ${JSON.stringify(options.redis)}`,
        );
      }
      // Lazy: a store that is never used never connects.
      this.#client = new Redis(options.redis, { lazyConnect: true });
      // ioredis reconnects by itself; without a listener it would print every failed attempt.
      this.#client.on('error', () => {});
      this.#ownsClient = true;
    } else if (options.redis instanceof Redis) {
      this.#client = options.redis;
      this.#ownsClient = false;
    } else {
      throw new OptionsInvalidError('redis: expected a redis:// URL or an ioredis client');
    }
    const fence = options.fence;
    if (fence !== undefined && typeof fence !== 'function') assertFence(fence);
    this.#fence =
      fence === undefined ? undefined : typeof fence === 'function' ? fence : () => fence;
    this.#prefix = prefix;
    this.#onCorrupt = options.onCorrupt ?? ((error) => process.emitWarning(error));
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
      if (typeof record?.turnId !== 'string') {
        throw new InternalError('a journal record needs a string turnId');
      }
      const payload = encode(record);
      const bytes = Buffer.byteLength(payload, 'utf8');
      if (bytes > MAX_RECORD_BYTES) {
        throw new InternalError(
          `turn ${JSON.stringify(record.turnId)} of session ${JSON.stringify(sessionKey)} encodes to ${bytes} bytes, over the Redis store's limit of ${MAX_RECORD_BYTES} bytes per record`,
        );
      }
      const { fence, requestId } = options;
      const result = await this.#run(APPEND, this.#scriptKeys(sessionKey, fence), [
        sessionKey,
        record.turnId,
        payload,
        fence === undefined ? '' : String(fence.epoch),
        requestId ?? '',
      ]);
      const [status, value] = pair(result);
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
      const keys = this.#sessionKeys(sessionKey);
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
      const key = this.#sessionKeys(sessionKey).records;
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
      const result = await this.#run(DELETE, this.#scriptKeys(sessionKey, fence), [
        sessionKey,
        fence === undefined ? '' : String(fence.epoch),
      ]);
      const [status, value] = pair(result);
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
          `${this.#prefix}j:sessions`,
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
        else await this.#client.quit().catch(() => this.#client.disconnect());
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
    this.#scriptsLoaded ??= Promise.all(SCRIPTS.map((each) => each.load(this.#client))).then(
      () => undefined,
      (error: unknown) => {
        this.#scriptsLoaded = undefined; // let the next call try again
        throw error;
      },
    );
    await this.#scriptsLoaded;
    return script.run(this.#client, keys, args);
  }

  #sessionKeys(sessionKey: string): SessionKeys {
    return {
      records: `${this.#prefix}j:records:${sessionKey}`,
      turns: `${this.#prefix}j:turns:${sessionKey}`,
      requests: `${this.#prefix}j:requests:${sessionKey}`,
    };
  }

  /** The five KEYS of the append and delete scripts. */
  #scriptKeys(sessionKey: string, fence: Fence | undefined): string[] {
    const keys = this.#sessionKeys(sessionKey);
    return [
      keys.records,
      keys.turns,
      `${this.#prefix}j:sessions`,
      keys.requests,
      fence === undefined ? keys.records : shardEpochKey(this.#prefix, fence.shard),
    ];
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
      'problems' in decoded
        ? decoded.problems.join('; ')
        : isJournalRecord(decoded.value)
          ? undefined
          : 'not a journal record';
    if (reason === undefined && 'value' in decoded) return decoded.value as JournalRecord;
    const where = index === undefined ? redisKey : `${redisKey}[${index}]`;
    const error = new StoreCorruptError(
      `a stored record of session ${JSON.stringify(sessionKey)} is unreadable at ${where}: ${reason}`,
      { details: { sessionKey, key: redisKey, index, reason } },
    );
    try {
      this.#onCorrupt(error);
    } catch {
      // A failing observer must not make the rest of the journal unreadable.
    }
    return undefined;
  }
}

function assertFence(fence: Fence): void {
  const shardOk =
    (typeof fence?.shard === 'number' && Number.isSafeInteger(fence.shard)) ||
    (typeof fence?.shard === 'string' && fence.shard !== '');
  if (!shardOk || !Number.isSafeInteger(fence.epoch) || fence.epoch < 1) {
    throw new OptionsInvalidError(
      'fence: expected { shard: a whole number or a name, epoch: a whole number of at least 1 }',
    );
  }
}

/** A script's `{status, value}` reply. */
function pair(result: unknown): [string, string] {
  if (!Array.isArray(result)) return ['', ''];
  const [status, value] = result as unknown[];
  return [typeof status === 'string' ? status : '', typeof value === 'string' ? value : ''];
}

function epochOf(value: string): number | undefined {
  const epoch = Number(value);
  return value !== '' && Number.isSafeInteger(epoch) ? epoch : undefined;
}

function isJournalRecord(value: unknown): value is JournalRecord {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return (
    typeof record['turnId'] === 'string' &&
    Array.isArray(record['messages']) &&
    typeof record['usage'] === 'object' &&
    record['usage'] !== null &&
    typeof record['at'] === 'number'
  );
}
