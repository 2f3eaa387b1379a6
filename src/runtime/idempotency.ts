/**
 * Idempotent submission: a message sent with an idempotency key is answered once. A repeat
 * with the same key to the same session within the window gets the first submission's outcome
 * (waiting for it while its turn runs) and never starts a second turn; the same key with a
 * different message is a conflict. Keys are scoped by session, so two sessions (or tenants)
 * never see each other's.
 *
 * The ledger is per session object, in memory; a completed turn also carries its keys in its
 * journal record, so a session opened again (after passivation or a restart) answers a repeat
 * of a completed turn from its journal.
 */
import { createHash } from 'node:crypto';
import type { JournalRecord } from '../agent/journal.js';
import type { ChatMessage } from '../agent/messages.js';
import type { Clock } from '../clock.js';
import {
  type AgentcellErrorCode,
  IdempotencyConflictError,
  IdempotencyKeyInvalidError,
  isAgentcellError,
} from '../errors.js';
import type { Reply } from './session-types.js';

/** The longest key taken; Stripe's limit, and ample for a UUID or a hash. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/**
 * Failures that happen before any turn ran (the message was refused, or never reached the
 * node that runs the session): the key is forgotten, so a retry with it may succeed. A turn
 * that ran and failed keeps its error for the window instead: its tools may have acted, and a
 * retry loop must not run them again. A failed turn journals nothing, so after a restart its
 * key is free again.
 */
const NOTHING_RAN: ReadonlySet<AgentcellErrorCode> = new Set<AgentcellErrorCode>([
  'AGENTCELL_MESSAGE_INVALID',
  'AGENTCELL_OPTIONS_INVALID',
  'AGENTCELL_AGENT_NOT_REGISTERED',
  'AGENTCELL_SESSION_KEY_INVALID',
  'AGENTCELL_SESSION_BUSY',
  'AGENTCELL_SESSION_REENTRANT',
  'AGENTCELL_SESSION_CLOSED',
  'AGENTCELL_SESSION_FAILED',
  'AGENTCELL_MAILBOX_FULL',
  'AGENTCELL_MESSAGE_DROPPED',
  'AGENTCELL_CAPACITY_EXCEEDED',
  'AGENTCELL_BUDGET_EXCEEDED',
  'AGENTCELL_SUPERVISOR_CLOSED',
  'AGENTCELL_SUPERVISOR_DESTROYED',
  'AGENTCELL_TENANT_LIMIT',
  // Refused by a server while it worked out the message's history (see LazyHistory).
  'AGENTCELL_HISTORY_CONFLICT',
  'AGENTCELL_NOT_FOUND',
  // The message may not have reached Redis, or its owner still holds it: the owner keeps the
  // key, so a retry through any node is answered once either way.
  'AGENTCELL_CLUSTER_UNAVAILABLE',
  'AGENTCELL_REPLY_TIMEOUT',
]);

/** Whether a submission that failed with `error` may be retried under the same key. */
export function isRetryable(error: unknown): boolean {
  return isAgentcellError(error) && NOTHING_RAN.has(error.code);
}

/** Throws `AGENTCELL_IDEMPOTENCY_KEY_INVALID` unless `key` is 1–255 printable ASCII characters. */
export function assertIdempotencyKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new IdempotencyKeyInvalidError(
      `idempotency key: expected a non-empty string, got ${typeof key === 'string' ? 'an empty one' : typeof key}`,
    );
  }
  if (key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    throw new IdempotencyKeyInvalidError(
      `idempotency key: ${key.length} characters, over the limit of ${MAX_IDEMPOTENCY_KEY_LENGTH}`,
    );
  }
  if (!/^[\x21-\x7e]+$/.test(key)) {
    throw new IdempotencyKeyInvalidError('idempotency key: only printable ASCII, no spaces');
  }
}

/** What identifies a submission's content: its message and the history it replaces, if any. */
export function fingerprintOf(
  message: string,
  history: readonly ChatMessage[] | undefined,
): string {
  return createHash('sha256')
    .update(JSON.stringify([message, history ?? null]))
    .digest('base64url');
}

/** The reply a journaled turn gave: its last assistant message. */
export function journaledReply(record: JournalRecord): Reply {
  const last = record.messages.findLast((message) => message.role === 'assistant');
  return {
    text: last?.content ?? '',
    turnId: record.turnId,
    usage: record.usage,
    ...(record.output !== undefined && { output: record.output }),
  };
}

interface Entry {
  readonly fingerprint: string;
  readonly at: number;
  readonly outcome: Promise<Reply>;
  settled: boolean;
}

/** One session's keys within the window, with the outcome each one got. */
export class IdempotencyLedger {
  readonly #clock: Clock;
  readonly #windowMs: number;
  readonly #sessionKey: string;
  /** In insertion order, which is the order of `at`: expired entries are at the front. */
  readonly #entries = new Map<string, Entry>();

  constructor(options: { clock: Clock; windowMs: number; sessionKey: string }) {
    this.#clock = options.clock;
    this.#windowMs = options.windowMs;
    this.#sessionKey = options.sessionKey;
  }

  /**
   * The outcome of the submission under `key`: the first one's if it is within the window
   * (throws `AGENTCELL_IDEMPOTENCY_CONFLICT` if its fingerprint differs), else what `run`
   * gives, remembered unless it fails before any turn ran.
   */
  submit(key: string, fingerprint: string, run: () => Promise<Reply>): Promise<Reply> {
    this.#prune();
    const known = this.#entries.get(key);
    if (known && this.#clock.now() - known.at < this.#windowMs) {
      if (known.fingerprint !== fingerprint) {
        throw new IdempotencyConflictError(
          `idempotency key ${JSON.stringify(key)} of session ${JSON.stringify(this.#sessionKey)} was first used with another message`,
        );
      }
      return known.outcome;
    }
    this.#entries.delete(key);
    const outcome = run();
    const entry: Entry = { fingerprint, at: this.#clock.now(), outcome, settled: false };
    this.#entries.set(key, entry);
    outcome.then(
      () => {
        entry.settled = true;
      },
      (error: unknown) => {
        entry.settled = true;
        if (isRetryable(error) && this.#entries.get(key) === entry) this.#entries.delete(key);
      },
    );
    return outcome;
  }

  /** Takes in the keys of journaled turns still within the window (a session opened again). */
  remember(records: readonly JournalRecord[]): void {
    const now = this.#clock.now();
    for (const record of records) {
      if (!record.idempotency || now - record.at >= this.#windowMs) continue;
      const outcome = Promise.resolve(journaledReply(record));
      for (const stamp of record.idempotency) {
        if (this.#entries.has(stamp.key)) continue;
        this.#entries.set(stamp.key, {
          fingerprint: stamp.fingerprint,
          at: record.at,
          outcome,
          settled: true,
        });
      }
    }
  }

  /** Drops settled entries past the window; one still running is kept until it settles. */
  #prune(): void {
    const now = this.#clock.now();
    for (const [key, entry] of this.#entries) {
      if (now - entry.at < this.#windowMs) break;
      if (entry.settled) this.#entries.delete(key);
    }
  }
}
