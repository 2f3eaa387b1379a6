/**
 * The journal: what each completed turn of a session appended (its delta), the source of
 * truth for restoring the session. Records travel between threads through the shared codec.
 */
import { decodeUntrusted, encode } from '../codec.js';
import { StoreCorruptError } from '../errors.js';
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
  /** A marker: the conversation starts afresh here (reset policy); it has no messages. */
  readonly reset?: true | undefined;
}

/** Largest journal accepted when decoding: 256 MiB. */
const MAX_JOURNAL_BYTES = 256 * 1024 * 1024;

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
  return decoded.value as JournalRecord[];
}

/** The conversation and cumulative usage a journal restores. */
export function replayJournal(records: readonly JournalRecord[]): {
  history: ChatMessage[];
  usage: Usage;
} {
  const current = currentConversation(records);
  return {
    history: current.flatMap((record) => record.messages),
    usage: current.reduce((sum, record) => addUsage(sum, record.usage), ZERO_USAGE),
  };
}

/** The records since the last reset marker: the conversation a session is in now. */
export function currentConversation(records: readonly JournalRecord[]): readonly JournalRecord[] {
  const lastReset = records.findLastIndex((record) => record.reset === true);
  return lastReset < 0 ? records : records.slice(lastReset + 1);
}
