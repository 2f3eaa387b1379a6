/**
 * Where journals live. Small on purpose, so that a file, Redis or PostgreSQL store can
 * implement it without touching the runtime.
 */
import { type JournalRecord, journalRecordProblem } from '../../agent/journal.js';
import { InternalError } from '../../errors.js';

export interface JournalStore {
  /**
   * Appends a completed turn to a session's journal. Idempotent by `record.turnId`: appending a
   * turn already present changes nothing. Resolves once the record is safe.
   */
  append(sessionKey: string, record: JournalRecord): Promise<void>;
  /** Every record of a session, oldest first (empty for a session never seen). */
  read(sessionKey: string): Promise<readonly JournalRecord[]>;
  /** Forgets a session's journal. */
  delete(sessionKey: string): Promise<void>;
  /** The keys of every session with a journal, in no particular order. */
  keys(): Promise<readonly string[]>;
  /** Releases what the store holds (files, connections). */
  close(): Promise<void>;
}

/**
 * Refuses to append what a store could not read back as a journal record (it would be skipped
 * as corrupt, and the turn lost): such a record is a bug of the caller.
 */
export function assertAppendable(sessionKey: string, record: JournalRecord): void {
  const problem = journalRecordProblem(record);
  if (problem !== undefined) {
    throw new InternalError(
      `cannot append to the journal of session ${JSON.stringify(sessionKey)}: ${problem}`,
    );
  }
}
