/**
 * The journal: what each completed turn of a session appended (its delta), the source of
 * truth for restoring the session. Records travel between threads through the shared codec.
 */
import { decodeUntrusted, encode } from '../codec.js';
import { StoreCorruptError } from '../errors.js';
import type { ApprovalMark } from './approval.js';
import { addUsage, type ChatMessage, type Usage, ZERO_USAGE } from './messages.js';

export interface JournalRecord {
  /** Appends are idempotent by turn id: a restart never records a turn twice. */
  readonly turnId: string;
  readonly messages: readonly ChatMessage[];
  readonly usage: Usage;
  /** The turn's structured output, when the agent has an output schema: a reply rebuilt from
   * the journal (after a failover) carries it too. */
  readonly output?: unknown;
  /** When the turn completed (clock milliseconds). */
  readonly at: number;
  /**
   * The agent the session ran: a process that did not open the session (after a restart, or
   * another node of a cluster) reopens it with the same agent.
   */
  readonly agent?: string | undefined;
  /**
   * A marker: the conversation starts afresh here (reset policy, or a caller that replaced the
   * history). Its messages, often none, are the history the new conversation starts from.
   */
  readonly reset?: true | undefined;
  /**
   * The idempotency keys of the messages the turn answered (several when messages were
   * coalesced or steered into it): a session opened again answers a repeat from here.
   */
  readonly idempotency?: readonly IdempotencyStamp[] | undefined;
  /**
   * A turn paused for a person, and what became of it (its messages are empty: the turn's
   * messages are journaled once, with its reply).
   */
  readonly approval?: ApprovalMark | undefined;
}

/** A message's idempotency key and the fingerprint of what was sent with it. */
export interface IdempotencyStamp {
  readonly key: string;
  readonly fingerprint: string;
}

/** Largest journal accepted when decoding: 256 MiB. */
const MAX_JOURNAL_BYTES = 256 * 1024 * 1024;

/**
 * What is wrong with `value` as a journal record, or undefined if nothing is: the one shape
 * check of every store and of the journal a thread decodes. Plain checks, no validator library:
 * session threads import this module.
 */
export function journalRecordProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return 'not a journal record: expected an object';
  }
  const record = value as Record<string, unknown>;
  if (typeof record['turnId'] !== 'string') return 'not a journal record: turnId is not a string';
  if (!Array.isArray(record['messages'])) {
    return 'not a journal record: messages is not an array';
  }
  if (typeof record['usage'] !== 'object' || record['usage'] === null) {
    return 'not a journal record: usage is not an object';
  }
  if (typeof record['at'] !== 'number') return 'not a journal record: at is not a number';
  if (record['agent'] !== undefined && typeof record['agent'] !== 'string') {
    return 'not a journal record: agent is not a string';
  }
  if (record['reset'] !== undefined && record['reset'] !== true) {
    return 'not a journal record: reset is not true';
  }
  if (record['idempotency'] !== undefined && !isStampList(record['idempotency'])) {
    return 'not a journal record: idempotency is not a list of { key, fingerprint } strings';
  }
  const approval = record['approval'] as { kind?: unknown; turnId?: unknown } | undefined;
  if (
    approval !== undefined &&
    (typeof approval !== 'object' ||
      approval === null ||
      typeof approval.kind !== 'string' ||
      typeof approval.turnId !== 'string')
  ) {
    return 'not a journal record: approval is not a { kind, turnId } mark';
  }
  return undefined;
}

function isStampList(value: unknown): boolean {
  return (
    Array.isArray(value) &&
    value.every(
      (stamp: unknown) =>
        typeof stamp === 'object' &&
        stamp !== null &&
        typeof (stamp as Record<string, unknown>)['key'] === 'string' &&
        typeof (stamp as Record<string, unknown>)['fingerprint'] === 'string',
    )
  );
}

export function isJournalRecord(value: unknown): value is JournalRecord {
  return journalRecordProblem(value) === undefined;
}

export function encodeJournal(records: readonly JournalRecord[]): string {
  return encode(records);
}

export function decodeJournal(text: string): JournalRecord[] {
  const decoded = decodeUntrusted(text, { maxBytes: MAX_JOURNAL_BYTES });
  if ('problems' in decoded || !Array.isArray(decoded.value)) {
    throw new StoreCorruptError(
      `the journal does not decode: ${'problems' in decoded ? decoded.problems.join('; ') : 'not an array'}`,
    );
  }
  const records: unknown[] = decoded.value;
  for (const [index, record] of records.entries()) {
    const problem = journalRecordProblem(record);
    if (problem !== undefined) {
      throw new StoreCorruptError(`the journal does not decode: record ${index} is ${problem}`);
    }
  }
  return records as JournalRecord[];
}

/** The conversation and cumulative usage a journal restores. */
export function replayJournal(records: readonly JournalRecord[]): {
  history: ChatMessage[];
  usage: Usage;
} {
  const current = currentConversation(records);
  return {
    history: conversationMessages(records),
    usage: current.reduce((sum, record) => addUsage(sum, record.usage), ZERO_USAGE),
  };
}

/**
 * The messages of the conversation a session is in now: those its last reset marker started
 * from, then those of every turn since.
 */
export function conversationMessages(records: readonly JournalRecord[]): ChatMessage[] {
  const seed = records.findLast((record) => record.reset === true)?.messages ?? [];
  return [...seed, ...currentConversation(records).flatMap((record) => record.messages)];
}

/** The records since the last reset marker: the conversation a session is in now. */
export function currentConversation(records: readonly JournalRecord[]): readonly JournalRecord[] {
  const lastReset = records.findLastIndex((record) => record.reset === true);
  return lastReset < 0 ? records : records.slice(lastReset + 1);
}
