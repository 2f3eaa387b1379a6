/**
 * The embedded default store: journals as files in one directory, no server.
 *
 * On disk, each session has up to two files named by the SHA-256 of its key (keys may hold any
 * character, file names may not): `<hash>.journal`, an append-only log, and `<hash>.snapshot`,
 * what compaction folded out of it. Both are lines of `<checksum> <payload>\n`, where the
 * payload is one value encoded with the shared codec and the checksum is the first 16 hex
 * digits of the payload's SHA-256. The first line of each file is a header naming the session
 * key (so `keys()` can list sessions without a reverse index); every other line is one
 * {@link JournalRecord}.
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
import { type FileHandle, mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { JournalRecord } from '../../agent/journal.js';
import { decodeUntrusted, encode } from '../../codec.js';
import { InternalError, OptionsInvalidError, StoreCorruptError } from '../../errors.js';
import type { JournalStore } from './store.js';

export interface FileStoreOptions {
  /**
   * The directory of the journals, created if missing. One FileStore per directory at a time:
   * the store assumes it is the only writer.
   */
  readonly dir: string;
  /** Records a session's journal may hold before it is compacted into its snapshot. @default 1000 */
  readonly compactAfter?: number;
  /**
   * Whether every append (and every file and directory change) is flushed to the disk before it
   * resolves. Turn off only for scratch data: a power loss can then lose acknowledged turns.
   * @default true
   */
  readonly fsync?: boolean;
  /**
   * Told of every stored record that fails its checksum or does not decode; the record is
   * skipped and the rest kept. A torn last record (a crash mid-append) is not corruption and is
   * dropped silently. @default emits a process warning
   */
  readonly onCorrupt?: (error: StoreCorruptError) => void;
}

/** Hex digits of the SHA-256 kept per line: enough to catch torn and flipped bytes. */
const CHECKSUM_LENGTH = 16;
/** Largest payload accepted on one line (a tampered file could hold anything). */
const MAX_RECORD_BYTES = 256 * 1024 * 1024;
/** Largest header line `keys()` reads: a key is at most a few KiB however it is spelled. */
const MAX_HEADER_BYTES = 64 * 1024;
/** Sessions whose turn ids stay in memory; others are read again on their next append. */
const MAX_CACHED_SESSIONS = 1024;
/** How many header files `keys()` reads at once. */
const KEYS_CONCURRENCY = 16;
/** Bytes gathered per write when a whole file is written. */
const WRITE_BATCH_BYTES = 1024 * 1024;
const FORMAT_VERSION = 1;
const NEWLINE = 0x0a;
const SPACE = 0x20;
const DEFAULT_COMPACT_AFTER = 1000;

const JOURNAL_NAME = /^([0-9a-f]{64})\.journal$/;

type FileKind = 'journal' | 'snapshot';

interface Header {
  readonly agentcell: FileKind;
  readonly version: number;
  readonly key: string;
  /** Snapshots only: how many records follow, to notice a snapshot cut short. */
  readonly records?: number;
}

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

type LineResult =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly reason: string };

interface Line {
  /** 1-based line number in the file. */
  readonly line: number;
  /** Byte offset of the line's first byte. */
  readonly offset: number;
  readonly result: LineResult;
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
  readonly #onCorrupt: (error: StoreCorruptError) => void;
  /** The tail of each session's queue of operations: one at a time per session, in order. */
  readonly #queues = new Map<string, Promise<void>>();
  /** Least recently used first (a Map keeps insertion order). */
  readonly #states = new Map<string, SessionState>();
  /** Sessions with a compaction queued, so a burst of appends queues just one. */
  readonly #compactionQueued = new Set<string>();
  #dirReady: Promise<void> | undefined;

  constructor(options: FileStoreOptions) {
    if (typeof options.dir !== 'string' || options.dir === '') {
      throw new OptionsInvalidError('dir: expected the path of a directory');
    }
    const compactAfter = options.compactAfter ?? DEFAULT_COMPACT_AFTER;
    if (!Number.isSafeInteger(compactAfter) || compactAfter < 1) {
      throw new OptionsInvalidError(
        `compactAfter: expected a whole number of records of at least 1, got ${compactAfter}`,
      );
    }
    this.#dir = options.dir;
    this.#compactAfter = compactAfter;
    this.#fsync = options.fsync ?? true;
    this.#onCorrupt = options.onCorrupt ?? ((error) => process.emitWarning(error));
  }

  append(sessionKey: string, record: JournalRecord): Promise<void> {
    return this.#serialize(sessionKey, () => this.#append(sessionKey, record));
  }

  read(sessionKey: string): Promise<readonly JournalRecord[]> {
    return this.#serialize(sessionKey, async () => {
      const { records, state } = await this.#scan(sessionKey);
      this.#remember(sessionKey, state);
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
      await removeFile(temporary(paths.snapshot));
      await removeFile(temporary(paths.journal));
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
    while (this.#queues.size > 0) await Promise.all(this.#queues.values());
    this.#states.clear();
  }

  async #append(key: string, record: JournalRecord): Promise<void> {
    let state = await this.#stateOf(key);
    if (state.turnIds.has(record.turnId)) return;
    const line = frame(record);
    if (line.length - CHECKSUM_LENGTH - 2 > MAX_RECORD_BYTES) {
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
    }).catch(() => {
      // The journal is intact (every step is atomic); read it again and let the next append
      // retry the compaction.
      this.#states.delete(key);
    });
  }

  async #compact(key: string): Promise<void> {
    const { records, state } = await this.#scan(key);
    if (!state.exists || state.journalRecords < this.#compactAfter) {
      this.#remember(key, state);
      return;
    }
    const paths = this.#paths(key);
    await this.#writeAtomically(paths.snapshot, [
      frame(snapshotHeader(key, records.length)),
      ...records.map((record) => frame(record)),
    ]);
    // Only now may the journal go. A crash before the rename below leaves the old journal next
    // to the new snapshot, and reads skip the journal records the snapshot already has.
    const header = frame(journalHeader(key));
    await this.#writeAtomically(paths.journal, [header]);
    state.size = state.validEnd = header.length;
    state.journalRecords = 0;
    this.#remember(key, state);
  }

  /** Writes a whole file so that it is either all there or not at all. */
  async #writeAtomically(path: string, chunks: readonly Buffer[]): Promise<void> {
    const temp = temporary(path);
    const handle = await open(temp, 'w');
    try {
      let batch: Buffer[] = [];
      let batchBytes = 0;
      for (const chunk of chunks) {
        batch.push(chunk);
        batchBytes += chunk.length;
        if (batchBytes >= WRITE_BATCH_BYTES) {
          await writeAll(handle, Buffer.concat(batch));
          batch = [];
          batchBytes = 0;
        }
      }
      if (batch.length > 0) await writeAll(handle, Buffer.concat(batch));
      if (this.#fsync) await handle.datasync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    if (this.#fsync) await syncDir(this.#dir);
  }

  async #stateOf(key: string): Promise<SessionState> {
    const cached = this.#states.get(key);
    if (cached) {
      this.#remember(key, cached);
      return cached;
    }
    const { state } = await this.#scan(key);
    this.#remember(key, state);
    return state;
  }

  #remember(key: string, state: SessionState): void {
    this.#states.delete(key);
    this.#states.set(key, state);
    if (this.#states.size > MAX_CACHED_SESSIONS) {
      const oldest = this.#states.keys().next();
      if (!oldest.done) this.#states.delete(oldest.value);
    }
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

    const journalLines = splitLines(journal);
    // The last line is the one append that may have been in flight at a crash: if it is torn
    // or fails in any way it was never acknowledged, so it is dropped, not reported.
    const last = journalLines.at(-1);
    if (last && !last.result.ok) journalLines.pop();
    state.validEnd = last && !last.result.ok ? last.offset : journal.length;
    // Nothing but a torn first append: the session has no acknowledged turn yet.
    if (journalLines.length === 0) return { records: [], state };
    state.exists = true;

    const records: JournalRecord[] = [];
    const snapshot = await readIfPresent(paths.snapshot);
    if (snapshot) {
      const lines = splitLines(snapshot);
      const found = this.#records(key, paths.snapshot, 'snapshot', lines);
      for (const record of found.records) this.#keep(record, records, state.turnIds);
      if (found.header?.records !== undefined && found.header.records !== found.records.length) {
        this.#report(
          key,
          paths.snapshot,
          undefined,
          undefined,
          `the snapshot header announces ${found.header.records} records but ${found.records.length} were read`,
        );
      }
    }
    const found = this.#records(key, paths.journal, 'journal', journalLines);
    state.journalRecords = found.records.length;
    for (const record of found.records) this.#keep(record, records, state.turnIds);
    return { records, state };
  }

  #keep(record: JournalRecord, records: JournalRecord[], turnIds: Set<string>): void {
    // A journal record the snapshot already holds is the trace of a compaction cut short.
    if (turnIds.has(record.turnId)) return;
    turnIds.add(record.turnId);
    records.push(record);
  }

  /** The header and valid records of a file's lines; every other line is reported. */
  #records(
    key: string,
    path: string,
    kind: FileKind,
    lines: readonly Line[],
  ): { header: Header | undefined; records: JournalRecord[] } {
    let header: Header | undefined;
    const records: JournalRecord[] = [];
    for (const { line, offset, result } of lines) {
      if (!result.ok) {
        this.#report(key, path, line, offset, result.reason);
      } else if (line === 1) {
        if (isHeader(result.value, kind)) {
          header = result.value;
          if (header.key !== key) {
            this.#report(
              key,
              path,
              line,
              offset,
              `the header names session ${JSON.stringify(header.key)}`,
            );
          }
        } else {
          this.#report(key, path, line, offset, `not a ${kind} header`);
        }
      } else if (isJournalRecord(result.value)) {
        records.push(result.value);
      } else {
        this.#report(key, path, line, offset, 'not a journal record');
      }
    }
    return { header, records };
  }

  /** The session key in a journal's header, or undefined for a journal torn at its creation. */
  async #keyOf(name: string): Promise<string | undefined> {
    const path = join(this.#dir, name);
    let head: Buffer;
    try {
      const handle = await open(path, 'r');
      try {
        const buffer = Buffer.alloc(MAX_HEADER_BYTES);
        const { bytesRead } = await handle.read(buffer, 0, MAX_HEADER_BYTES, 0);
        head = buffer.subarray(0, bytesRead);
      } finally {
        await handle.close();
      }
    } catch (error) {
      if (isMissing(error)) return undefined; // deleted meanwhile
      throw error;
    }
    const end = head.indexOf(NEWLINE);
    if (end < 0) {
      // A file shorter than the limit without a newline is a first append torn by a crash.
      if (head.length < MAX_HEADER_BYTES) return undefined;
      this.#report(undefined, path, 1, 0, `no header line within ${MAX_HEADER_BYTES} bytes`);
      return undefined;
    }
    const result = parseLine(head, 0, end);
    if (!result.ok) {
      this.#report(undefined, path, 1, 0, result.reason);
      return undefined;
    }
    if (!isHeader(result.value, 'journal')) {
      this.#report(undefined, path, 1, 0, 'not a journal header');
      return undefined;
    }
    const key = result.value.key;
    if (`${hashKey(key)}.journal` !== name) {
      this.#report(
        undefined,
        path,
        1,
        0,
        `the header names session ${JSON.stringify(key)}, whose journal has another name`,
      );
      return undefined;
    }
    return key;
  }

  #report(
    sessionKey: string | undefined,
    path: string,
    line: number | undefined,
    offset: number | undefined,
    reason: string,
  ): void {
    const where = line === undefined ? path : `${path}, line ${line} (byte ${offset})`;
    const whose = sessionKey === undefined ? '' : ` of session ${JSON.stringify(sessionKey)}`;
    const error = new StoreCorruptError(
      `a stored record${whose} is unreadable at ${where}: ${reason}`,
      {
        details: { sessionKey, file: path, line, offset, reason },
      },
    );
    try {
      this.#onCorrupt(error);
    } catch {
      // A failing observer must not make the rest of the journal unreadable.
    }
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
    const result = (this.#queues.get(key) ?? Promise.resolve()).then(async () => {
      await this.#ensureDir();
      return task();
    });
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.#queues.set(key, tail);
    void tail.then(() => {
      if (this.#queues.get(key) === tail) this.#queues.delete(key);
    });
    return result;
  }
}

function hashKey(key: string): string {
  // UTF-16 code units, not UTF-8: two keys that differ only in lone surrogates (which UTF-8
  // turns into the same replacement character) must not share a file.
  return createHash('sha256').update(key, 'utf16le').digest('hex');
}

function checksum(payload: Uint8Array): string {
  return createHash('sha256').update(payload).digest('hex').slice(0, CHECKSUM_LENGTH);
}

/** One line: checksum, space, the value in the shared codec, newline (JSON never holds a raw one). */
function frame(value: unknown): Buffer {
  const payload = Buffer.from(encode(value), 'utf8');
  return Buffer.concat([
    Buffer.from(`${checksum(payload)} `, 'latin1'),
    payload,
    Buffer.from('\n'),
  ]);
}

function journalHeader(key: string): Header {
  return { agentcell: 'journal', version: FORMAT_VERSION, key };
}

function snapshotHeader(key: string, records: number): Header {
  return { agentcell: 'snapshot', version: FORMAT_VERSION, key, records };
}

/** Every line of a file; a last line without its newline is a failed one. */
function splitLines(buffer: Buffer): Line[] {
  const lines: Line[] = [];
  let offset = 0;
  while (offset < buffer.length) {
    const end = buffer.indexOf(NEWLINE, offset);
    const line = lines.length + 1;
    if (end < 0) {
      lines.push({
        line,
        offset,
        result: { ok: false, reason: 'the line has no newline (torn write)' },
      });
      break;
    }
    lines.push({ line, offset, result: parseLine(buffer, offset, end) });
    offset = end + 1;
  }
  return lines;
}

/** Checks and decodes the line in `buffer[start, end)` (its newline excluded). */
function parseLine(buffer: Buffer, start: number, end: number): LineResult {
  const payloadStart = start + CHECKSUM_LENGTH + 1;
  if (end < payloadStart || buffer[start + CHECKSUM_LENGTH] !== SPACE) {
    return { ok: false, reason: 'not a "<checksum> <payload>" line' };
  }
  if (end - payloadStart > MAX_RECORD_BYTES) {
    return {
      ok: false,
      reason: `${end - payloadStart} bytes is over the limit of ${MAX_RECORD_BYTES} bytes`,
    };
  }
  const payload = buffer.subarray(payloadStart, end);
  if (buffer.toString('latin1', start, start + CHECKSUM_LENGTH) !== checksum(payload)) {
    return { ok: false, reason: 'checksum mismatch' };
  }
  // Checksums catch accidents, not tampering: the payload still goes through the guarded decoder.
  const decoded = decodeUntrusted(payload.toString('utf8'), { maxBytes: MAX_RECORD_BYTES });
  if ('problems' in decoded) return { ok: false, reason: decoded.problems.join('; ') };
  return { ok: true, value: decoded.value };
}

function isHeader(value: unknown, kind: FileKind): value is Header {
  if (typeof value !== 'object' || value === null) return false;
  const header = value as Record<string, unknown>;
  return (
    header['agentcell'] === kind &&
    header['version'] === FORMAT_VERSION &&
    typeof header['key'] === 'string' &&
    (kind === 'journal' || Number.isSafeInteger(header['records']))
  );
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

function temporary(path: string): string {
  return `${path}.tmp`;
}

async function writeAll(handle: FileHandle, buffer: Buffer): Promise<void> {
  // One write call in practice; the loop only matters for a short write (a nearly full disk).
  let written = 0;
  while (written < buffer.length) {
    const { bytesWritten } = await handle.write(buffer, written, buffer.length - written);
    written += bytesWritten;
  }
}

async function readIfPresent(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

/** Removes a file; false if it was not there. */
async function removeFile(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (error) {
    if (isMissing(error)) return false;
    throw error;
  }
}

/** Makes created, renamed and removed names in `dir` durable. */
async function syncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (error) {
    // Some platforms (Windows) and file systems cannot open or sync a directory; there the
    // rename itself is as durable as it gets.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EBADF') {
      throw error;
    }
  } finally {
    await handle?.close();
  }
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}
