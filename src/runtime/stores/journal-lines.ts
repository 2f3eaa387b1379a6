/**
 * The file store's line format, as pure functions over buffers (the store does the I/O).
 *
 * A file is lines of `<checksum> <payload>\n`, where the payload is one value encoded with the
 * shared codec and the checksum is the first 16 hex digits of the payload's SHA-256. The first
 * line is a header naming the session key (so the key can be read back without a reverse
 * index); every other line is one {@link JournalRecord}.
 */
import { createHash } from 'node:crypto';
import { type JournalRecord, journalRecordProblem } from '../../agent/journal.js';
import { decodeUntrusted, encode } from '../../codec.js';

/** Hex digits of the SHA-256 kept per line: enough to catch torn and flipped bytes. */
export const CHECKSUM_LENGTH = 16;
/** Largest payload accepted on one line (a tampered file could hold anything). */
export const MAX_RECORD_BYTES = 256 * 1024 * 1024;
const FORMAT_VERSION = 1;
const NEWLINE = 0x0a;
const SPACE = 0x20;

export type FileKind = 'journal' | 'snapshot';

export interface Header {
  readonly agentcell: FileKind;
  readonly version: number;
  readonly key: string;
  /** Snapshots only: how many records follow, to notice a snapshot cut short. */
  readonly records?: number;
}

export type LineResult =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly reason: string };

export interface Line {
  /** 1-based line number in the file. */
  readonly line: number;
  /** Byte offset of the line's first byte. */
  readonly offset: number;
  readonly result: LineResult;
}

/** A line that is not what its place in the file calls for. */
export interface BadLine {
  readonly line: number;
  readonly offset: number;
  readonly reason: string;
}

/** The bytes one payload encodes to, as it would stand on its line. */
export function payloadBytes(line: Buffer): number {
  return line.length - CHECKSUM_LENGTH - 2;
}

/** One line: checksum, space, the value in the shared codec, newline (JSON never holds a raw one). */
export function frame(value: unknown): Buffer {
  const payload = Buffer.from(encode(value), 'utf8');
  return Buffer.concat([
    Buffer.from(`${checksum(payload)} `, 'latin1'),
    payload,
    Buffer.from('\n'),
  ]);
}

export function journalHeader(key: string): Header {
  return { agentcell: 'journal', version: FORMAT_VERSION, key };
}

export function snapshotHeader(key: string, records: number): Header {
  return { agentcell: 'snapshot', version: FORMAT_VERSION, key, records };
}

/** Every line of a file; a last line without its newline is a failed one. */
export function splitLines(buffer: Buffer): Line[] {
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

/**
 * A journal's lines without the one append that may have been in flight at a crash: a last
 * line that is torn or fails in any way was never acknowledged, so it is dropped, not reported.
 * `validEnd` is where the next append must start (the file's size when nothing was dropped).
 */
export function withoutTornTail(
  lines: readonly Line[],
  size: number,
): { lines: readonly Line[]; validEnd: number } {
  const last = lines.at(-1);
  if (!last || last.result.ok) return { lines, validEnd: size };
  return { lines: lines.slice(0, -1), validEnd: last.offset };
}

/** Checks and decodes the line in `buffer[start, end)` (its newline excluded). */
export function parseLine(buffer: Buffer, start: number, end: number): LineResult {
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

export function isHeader(value: unknown, kind: FileKind): value is Header {
  if (typeof value !== 'object' || value === null) return false;
  const header = value as Record<string, unknown>;
  return (
    header['agentcell'] === kind &&
    header['version'] === FORMAT_VERSION &&
    typeof header['key'] === 'string' &&
    (kind === 'journal' || Number.isSafeInteger(header['records']))
  );
}

/**
 * The header and valid records of the lines of a `kind` file of session `key`; every other
 * line goes to `bad` (the records around it are kept).
 */
export function readLines(
  key: string,
  kind: FileKind,
  lines: readonly Line[],
  bad: (line: BadLine) => void,
): { header: Header | undefined; records: JournalRecord[] } {
  let header: Header | undefined;
  const records: JournalRecord[] = [];
  for (const { line, offset, result } of lines) {
    if (!result.ok) {
      bad({ line, offset, reason: result.reason });
    } else if (line === 1) {
      if (isHeader(result.value, kind)) {
        header = result.value;
        if (header.key !== key) {
          bad({ line, offset, reason: `the header names session ${JSON.stringify(header.key)}` });
        }
      } else {
        bad({ line, offset, reason: `not a ${kind} header` });
      }
    } else {
      const problem = journalRecordProblem(result.value);
      if (problem === undefined) records.push(result.value as JournalRecord);
      else bad({ line, offset, reason: problem });
    }
  }
  return { header, records };
}

/**
 * The session key in a journal's header, read from the file's first `head` bytes (at most
 * `maxBytes` of them). `torn` is a journal whose first append a crash cut short: no session yet.
 */
export function headerKey(
  head: Buffer,
  maxBytes: number,
): { readonly key: string } | { readonly torn: true } | { readonly reason: string } {
  const end = head.indexOf(NEWLINE);
  if (end < 0) {
    // A file shorter than the limit without a newline is a first append torn by a crash.
    if (head.length < maxBytes) return { torn: true };
    return { reason: `no header line within ${maxBytes} bytes` };
  }
  const result = parseLine(head, 0, end);
  if (!result.ok) return { reason: result.reason };
  if (!isHeader(result.value, 'journal')) return { reason: 'not a journal header' };
  return { key: result.value.key };
}

function checksum(payload: Uint8Array): string {
  return createHash('sha256').update(payload).digest('hex').slice(0, CHECKSUM_LENGTH);
}
