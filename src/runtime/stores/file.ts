/**
 * The embedded default store: journals as files in one directory, no server.
 *
 * On disk, each session has up to two files named by the SHA-256 of its key (keys may hold any
 * character, file names may not): `<hash>.journal`, an append-only log, and `<hash>.snapshot`,
 * what compaction folded out of it. Both are in the line format of `journal-lines.ts`.
 *
 * Invariants that make a crash at any point harmless:
 * - an append is one write of one line to a file opened for appending, then fdatasync; only a
 *   record in flight can be torn, and a torn or failing last line is dropped on read and cut
 *   off before the next append;
 * - the journal decides whether a session exists: a snapshot without a journal is what an
 *   interrupted delete leaves, and is ignored (and removed before a new journal is created);
 * - compaction writes the new snapshot atomically first and only then replaces the journal
 *   (again atomically), and read skips journal records the snapshot already holds.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { JournalRecord } from '../../agent/journal.js';
import { InternalError, StoreCorruptError } from '../../errors.js';
import { errorFields, log } from '../../log.js';
import {
  readHead,
  readIfPresent,
  removeFile,
  syncDir,
  temporaryPath,
  writeAll,
  writeFileAtomically,
} from './atomic-file.js';
import { type CorruptionObserver, logCorruption, reportCorruption } from './corruption.js';
import {
  type BadLine,
  type FileKind,
  frame,
  headerKey,
  journalHeader,
  type Line,
  MAX_RECORD_BYTES,
  payloadBytes,
  readLines,
  snapshotHeader,
  splitLines,
  withoutTornTail,
} from './journal-lines.js';
import { RecentMap } from './recent-map.js';
import { SerialQueues } from './serial-queues.js';
import { assertAppendable, type JournalStore } from './store.js';
import { type FileStoreOptions, parseFileStoreOptions } from './store-options.js';

export type { FileStoreOptions } from './store-options.js';

/** Largest header line `keys()` reads: a key is at most a few KiB however it is spelled. */
const MAX_HEADER_BYTES = 64 * 1024;
/** Sessions whose turn ids stay in memory; others are read again on their next append. */
const MAX_CACHED_SESSIONS = 1024;
/** How many header files `keys()` reads at once. */
const KEYS_CONCURRENCY = 16;

const JOURNAL_NAME = /^([0-9a-f]{64})\.journal$/;

/** What the store remembers of a session between calls (all of it can be read again). */
interface SessionState {
  /** Turn ids in snapshot and journal: appends are idempotent by them. */
  readonly turnIds: Set<string>;
  /** Whether the journal has a durable first line; if not, the next append creates the file. */
  exists: boolean;
  /** The journal's size when last seen: another size means it changed behind the store's back. */
  size: number;
  /** Where the journal's torn tail starts (its size when there is none). */
  validEnd: number;
  /** Records in the journal (not yet compacted), duplicates of the snapshot included. */
  journalRecords: number;
}

/**
 * Journals in files under one directory: durable, crash-safe appends and bounded growth,
 * with nothing to run besides the process.
 *
 * @example
 * const store = new FileStore({ dir: './data/journals' });
 * const supervisor = new Supervisor({ store });
 * // ...
 * await supervisor.close(); // or store.close() if the store is shared
 */
export class FileStore implements JournalStore {
  readonly #dir: string;
  readonly #compactAfter: number;
  readonly #fsync: boolean;
  readonly #onCorrupt: CorruptionObserver;
  /** One operation at a time per session, in order. */
  readonly #queues = new SerialQueues();
  readonly #states = new RecentMap<string, SessionState>(MAX_CACHED_SESSIONS);
  /** Sessions with a compaction queued, so a burst of appends queues just one. */
  readonly #compactionQueued = new Set<string>();
  #dirReady: Promise<void> | undefined;

  constructor(given: FileStoreOptions) {
    const options = parseFileStoreOptions(given);
    this.#dir = options.dir;
    this.#compactAfter = options.compactAfter;
    this.#fsync = options.fsync;
    this.#onCorrupt = options.onCorrupt ?? logCorruption;
  }

  async append(sessionKey: string, record: JournalRecord): Promise<void> {
    assertAppendable(sessionKey, record);
    return this.#serialize(sessionKey, () => this.#append(sessionKey, record));
  }

  read(sessionKey: string): Promise<readonly JournalRecord[]> {
    return this.#serialize(sessionKey, async () => {
      const { records, state } = await this.#scan(sessionKey);
      this.#states.set(sessionKey, state);
      // Freshly decoded from disk: the caller's copy shares nothing with the store.
      return records;
    });
  }

  delete(sessionKey: string): Promise<void> {
    return this.#serialize(sessionKey, async () => {
      this.#states.delete(sessionKey);
      const paths = this.#paths(sessionKey);
      // The journal goes first: without it a leftover snapshot is ignored, so a crash halfway
      // through still reads as deleted.
      if ((await removeFile(paths.journal)) && this.#fsync) await syncDir(this.#dir);
      await removeFile(paths.snapshot);
      await removeFile(temporaryPath(paths.snapshot));
      await removeFile(temporaryPath(paths.journal));
    });
  }

  async keys(): Promise<readonly string[]> {
    await this.#ensureDir();
    const names = (await readdir(this.#dir)).filter((name) => JOURNAL_NAME.test(name)).sort();
    const keys: string[] = [];
    for (let start = 0; start < names.length; start += KEYS_CONCURRENCY) {
      const batch = names.slice(start, start + KEYS_CONCURRENCY);
      for (const key of await Promise.all(batch.map((name) => this.#keyOf(name)))) {
        if (key !== undefined) keys.push(key);
      }
    }
    return keys;
  }

  /**
   * Waits for every queued operation (background compactions included). No file stays open
   * between calls, so that is all there is to release; the store still works afterwards.
   */
  async close(): Promise<void> {
    await this.#queues.drain();
    this.#states.clear();
  }

  async #append(key: string, record: JournalRecord): Promise<void> {
    let state = await this.#stateOf(key);
    if (state.turnIds.has(record.turnId)) return;
    const line = frame(record);
    if (payloadBytes(line) > MAX_RECORD_BYTES) {
      throw new InternalError(
        `turn ${JSON.stringify(record.turnId)} of session ${JSON.stringify(key)} encodes to ${line.length} bytes, over the file store's limit of ${MAX_RECORD_BYTES} bytes per record`,
      );
    }
    try {
      if (!(await this.#write(key, state, line))) {
        // The journal changed behind the store's back (edited by hand, or a second writer):
        // look at it again rather than append to a tail of unknown shape.
        this.#states.delete(key);
        state = await this.#stateOf(key);
        if (state.turnIds.has(record.turnId)) return;
        if (!(await this.#write(key, state, line))) {
          throw new InternalError(
            `the journal of session ${JSON.stringify(key)} keeps changing under ${this.#dir}; is a second process writing to it?`,
          );
        }
      }
    } catch (error) {
      // A failed write may have left a torn tail: the next call reads the file again and cuts it.
      this.#states.delete(key);
      throw error;
    }
    state.turnIds.add(record.turnId);
    state.journalRecords++;
    if (state.journalRecords >= this.#compactAfter) this.#queueCompaction(key);
  }

  /** Appends one framed record; false if the journal is not the size the store last saw. */
  async #write(key: string, state: SessionState, line: Buffer): Promise<boolean> {
    const paths = this.#paths(key);
    if (!state.exists) {
      // A snapshot without a journal is what an interrupted delete leaves: it must not come
      // back to life under the new journal, so it goes (durably) before the journal appears.
      if ((await removeFile(paths.snapshot)) && this.#fsync) await syncDir(this.#dir);
      const content = Buffer.concat([frame(journalHeader(key)), line]);
      // 'w': whatever is there is a torn first append, never an acknowledged record.
      const handle = await open(paths.journal, 'w');
      try {
        await writeAll(handle, content);
        if (this.#fsync) await handle.datasync();
      } finally {
        await handle.close();
      }
      if (this.#fsync) await syncDir(this.#dir);
      state.exists = true;
      state.size = state.validEnd = content.length;
      return true;
    }
    const handle = await open(paths.journal, 'a');
    try {
      const { size } = await handle.stat();
      if (size !== state.size) return false;
      // Cut the torn tail of a crash away so the record starts on a line of its own.
      if (state.validEnd < size) await handle.truncate(state.validEnd);
      await writeAll(handle, line);
      if (this.#fsync) await handle.datasync();
    } finally {
      await handle.close();
    }
    state.size = state.validEnd = state.validEnd + line.length;
    return true;
  }

  #queueCompaction(key: string): void {
    if (this.#compactionQueued.has(key)) return;
    this.#compactionQueued.add(key);
    // Queued behind the append rather than inside it: the append is already safe, and its
    // caller should not wait for (or fail with) a rewrite of the whole session.
    this.#serialize(key, async () => {
      this.#compactionQueued.delete(key);
      await this.#compact(key);
    }).catch((error: unknown) => {
      // The journal is intact (every step is atomic); read it again and let the next append
      // retry the compaction.
      this.#states.delete(key);
      log('store').warn(
        { ...errorFields(error), sessionKey: key },
        'a journal compaction failed; the journal is intact and the next append retries it',
      );
    });
  }

  async #compact(key: string): Promise<void> {
    const { records, state } = await this.#scan(key);
    if (!state.exists || state.journalRecords < this.#compactAfter) {
      this.#states.set(key, state);
      return;
    }
    const paths = this.#paths(key);
    const fsync = { fsync: this.#fsync };
    await writeFileAtomically(
      paths.snapshot,
      [frame(snapshotHeader(key, records.length)), ...records.map((record) => frame(record))],
      fsync,
    );
    // Only now may the journal go. A crash before the rename below leaves the old journal next
    // to the new snapshot, and reads skip the journal records the snapshot already has.
    const header = frame(journalHeader(key));
    await writeFileAtomically(paths.journal, [header], fsync);
    state.size = state.validEnd = header.length;
    state.journalRecords = 0;
    this.#states.set(key, state);
  }

  async #stateOf(key: string): Promise<SessionState> {
    const cached = this.#states.get(key);
    if (cached) return cached;
    const { state } = await this.#scan(key);
    this.#states.set(key, state);
    return state;
  }

  /** Reads a session from disk: its records (snapshot, then the journal's newer ones) and state. */
  async #scan(key: string): Promise<{ records: JournalRecord[]; state: SessionState }> {
    const paths = this.#paths(key);
    const journal = await readIfPresent(paths.journal);
    const state: SessionState = {
      turnIds: new Set(),
      exists: false,
      size: journal?.length ?? 0,
      validEnd: 0,
      journalRecords: 0,
    };
    if (!journal) return { records: [], state };

    const { lines: journalLines, validEnd } = withoutTornTail(splitLines(journal), journal.length);
    state.validEnd = validEnd;
    // Nothing but a torn first append: the session has no acknowledged turn yet.
    if (journalLines.length === 0) return { records: [], state };
    state.exists = true;

    const records: JournalRecord[] = [];
    const snapshot = await readIfPresent(paths.snapshot);
    if (snapshot) {
      const found = this.#readFile(key, paths.snapshot, 'snapshot', splitLines(snapshot));
      for (const record of found.records) keep(record, records, state.turnIds);
      if (found.header?.records !== undefined && found.header.records !== found.records.length) {
        this.#report(
          key,
          paths.snapshot,
          undefined,
          `the snapshot header announces ${found.header.records} records but ${found.records.length} were read`,
        );
      }
    }
    const found = this.#readFile(key, paths.journal, 'journal', journalLines);
    state.journalRecords = found.records.length;
    for (const record of found.records) keep(record, records, state.turnIds);
    return { records, state };
  }

  #readFile(key: string, path: string, kind: FileKind, lines: readonly Line[]) {
    return readLines(key, kind, lines, (bad) => this.#report(key, path, bad, bad.reason));
  }

  /** The session key in a journal's header, or undefined for a journal torn at its creation. */
  async #keyOf(name: string): Promise<string | undefined> {
    const path = join(this.#dir, name);
    const head = await readHead(path, MAX_HEADER_BYTES);
    if (!head) return undefined; // deleted meanwhile
    const found = headerKey(head, MAX_HEADER_BYTES);
    if ('torn' in found) return undefined;
    const firstLine = { line: 1, offset: 0 };
    if ('reason' in found) {
      this.#report(undefined, path, firstLine, found.reason);
      return undefined;
    }
    if (`${hashKey(found.key)}.journal` !== name) {
      this.#report(
        undefined,
        path,
        firstLine,
        `the header names session ${JSON.stringify(found.key)}, whose journal has another name`,
      );
      return undefined;
    }
    return found.key;
  }

  #report(
    sessionKey: string | undefined,
    path: string,
    at: Omit<BadLine, 'reason'> | undefined,
    reason: string,
  ): void {
    const where = at === undefined ? path : `${path}, line ${at.line} (byte ${at.offset})`;
    const whose = sessionKey === undefined ? '' : ` of session ${JSON.stringify(sessionKey)}`;
    const error = new StoreCorruptError(
      `a stored record${whose} is unreadable at ${where}: ${reason}`,
      {
        details: { sessionKey, file: path, line: at?.line, offset: at?.offset, reason },
      },
    );
    reportCorruption(this.#onCorrupt, error);
  }

  #paths(key: string): { journal: string; snapshot: string } {
    const stem = join(this.#dir, hashKey(key));
    return { journal: `${stem}.journal`, snapshot: `${stem}.snapshot` };
  }

  #ensureDir(): Promise<void> {
    this.#dirReady ??= mkdir(this.#dir, { recursive: true }).then(
      () => undefined,
      (error: unknown) => {
        this.#dirReady = undefined; // let a later call try again
        throw error;
      },
    );
    return this.#dirReady;
  }

  /** Runs `task` after every earlier operation on the session; other sessions run alongside. */
  #serialize<T>(key: string, task: () => Promise<T>): Promise<T> {
    return this.#queues.run(key, async () => {
      await this.#ensureDir();
      return task();
    });
  }
}

/** Adds `record` unless a record of its turn is in already: the trace of a compaction cut short. */
function keep(record: JournalRecord, records: JournalRecord[], turnIds: Set<string>): void {
  if (turnIds.has(record.turnId)) return;
  turnIds.add(record.turnId);
  records.push(record);
}

function hashKey(key: string): string {
  // UTF-16 code units, not UTF-8: two keys that differ only in lone surrogates (which UTF-8
  // turns into the same replacement character) must not share a file.
  return createHash('sha256').update(key, 'utf16le').digest('hex');
}
