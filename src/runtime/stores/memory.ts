import type { JournalRecord } from '../../agent/journal.js';
import { assertAppendable, type JournalStore } from './store.js';

/**
 * Journals in memory: for tests and for sessions that need not survive the process.
 *
 * @example
 * const supervisor = new Supervisor({ store: new MemoryStore() });
 */
export class MemoryStore implements JournalStore {
  readonly #journals = new Map<string, { records: JournalRecord[]; turnIds: Set<string> }>();

  async append(sessionKey: string, record: JournalRecord): Promise<void> {
    assertAppendable(sessionKey, record);
    let journal = this.#journals.get(sessionKey);
    if (!journal) {
      journal = { records: [], turnIds: new Set() };
      this.#journals.set(sessionKey, journal);
    }
    if (journal.turnIds.has(record.turnId)) return;
    journal.turnIds.add(record.turnId);
    // A copy: callers keep no handle on what the store holds.
    journal.records.push(structuredClone(record));
  }

  async read(sessionKey: string): Promise<readonly JournalRecord[]> {
    return structuredClone(this.#journals.get(sessionKey)?.records ?? []);
  }

  async delete(sessionKey: string): Promise<void> {
    this.#journals.delete(sessionKey);
  }

  async keys(): Promise<readonly string[]> {
    return [...this.#journals.keys()];
  }

  async close(): Promise<void> {}
}
