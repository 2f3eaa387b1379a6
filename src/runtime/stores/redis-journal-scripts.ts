/**
 * The Redis layout of journals and the Lua scripts that write them. Keys, under a prefix
 * (default `agentcell:`) so that several deployments or test runs can share one Redis:
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
 * Every write is one script, so each append checks the turn id, the request id and the fence,
 * pushes the record and updates the indexes atomically.
 */
import { type Fence, shardEpochKey } from './fence.js';
import { RedisScript } from './redis-script.js';

/** The keys of one session's journal. */
export interface JournalKeys {
  readonly records: string;
  readonly turns: string;
  readonly requests: string;
}

export function journalKeys(prefix: string, sessionKey: string): JournalKeys {
  return {
    records: `${prefix}j:records:${sessionKey}`,
    turns: `${prefix}j:turns:${sessionKey}`,
    requests: `${prefix}j:requests:${sessionKey}`,
  };
}

/** The set of every session key with a journal. */
export function sessionsKey(prefix: string): string {
  return `${prefix}j:sessions`;
}

/** The five KEYS of {@link APPEND} and {@link DELETE}. */
export function writeKeys(prefix: string, sessionKey: string, fence: Fence | undefined): string[] {
  const keys = journalKeys(prefix, sessionKey);
  return [
    keys.records,
    keys.turns,
    sessionsKey(prefix),
    keys.requests,
    fence === undefined ? keys.records : shardEpochKey(prefix, fence.shard),
  ];
}

/**
 * KEYS: records, turns, sessions, requests, epoch (the records key again when unfenced).
 * ARGV: session key, turn id, payload, fence epoch ('' when unfenced), request id ('' for none).
 */
export const APPEND = new RedisScript(`
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
export const DELETE = new RedisScript(`
if ARGV[2] ~= '' then
  local current = redis.call('GET', KEYS[5])
  if current ~= ARGV[2] then return {'fenced', current or ''} end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
redis.call('SREM', KEYS[3], ARGV[1])
return {'deleted', ''}
`);

/** KEYS: records, turns, requests. ARGV: request id. The record journaled for a request. */
export const RECORD_OF_REQUEST = new RedisScript(`
local turn = redis.call('HGET', KEYS[3], ARGV[1])
if not turn then return false end
local position = redis.call('HGET', KEYS[2], turn)
if not position then return false end
return redis.call('LINDEX', KEYS[1], tonumber(position) - 1)
`);

export const JOURNAL_SCRIPTS: readonly RedisScript[] = [APPEND, DELETE, RECORD_OF_REQUEST];

/** A script's `{status, value}` reply. */
export function scriptReply(result: unknown): [status: string, value: string] {
  if (!Array.isArray(result)) return ['', ''];
  const [status, value] = result as unknown[];
  return [typeof status === 'string' ? status : '', typeof value === 'string' ? value : ''];
}
