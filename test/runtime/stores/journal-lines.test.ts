/** The file store's line format, without a file: framing, parsing, torn tails and headers. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encode } from '../../../src/codec.js';
import {
  type BadLine,
  frame,
  headerKey,
  journalHeader,
  type Line,
  parseLine,
  readLines,
  snapshotHeader,
  splitLines,
  withoutTornTail,
} from '../../../src/runtime/stores/journal-lines.js';
import { sampleRecord } from './store-suite.js';

/** A line built independently of the module: the first 16 hex digits of the payload's SHA-256. */
function handLine(payload: string): Buffer {
  const sum = createHash('sha256').update(payload).digest('hex').slice(0, 16);
  return Buffer.from(`${sum} ${payload}\n`);
}

function values(lines: readonly Line[]): unknown[] {
  return lines.map((line) => (line.result.ok ? line.result.value : line.result.reason));
}

describe('frame and parseLine', () => {
  it('frames a value as "<checksum> <payload>\\n" in the shared codec', () => {
    const record = sampleRecord('t1');
    const line = frame(record);
    expect(line.equals(handLine(encode(record)))).toBe(true);
    expect(parseLine(line, 0, line.length - 1)).toEqual({ ok: true, value: record });
  });

  it('refuses a flipped byte, a missing checksum and a payload that is not the codec', () => {
    const line = Buffer.from(frame({ turnId: 't1' }));
    line[20] = line[20] === 0x41 ? 0x42 : 0x41;
    expect(parseLine(line, 0, line.length - 1)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/checksum/),
    });
    const bare = Buffer.from('hello\n');
    expect(parseLine(bare, 0, bare.length - 1)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/checksum/),
    });
    const notJson = handLine('{"json": oops');
    expect(parseLine(notJson, 0, notJson.length - 1)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/not JSON/),
    });
  });
});

describe('splitLines and withoutTornTail', () => {
  it('numbers lines from 1 with the byte offset of each', () => {
    const first = frame(journalHeader('s'));
    const second = frame(sampleRecord('t1'));
    const lines = splitLines(Buffer.concat([first, second]));
    expect(lines.map(({ line, offset }) => ({ line, offset }))).toEqual([
      { line: 1, offset: 0 },
      { line: 2, offset: first.length },
    ]);
    expect(values(lines)).toEqual([journalHeader('s'), sampleRecord('t1')]);
  });

  it('drops a torn last line and says where the next append starts', () => {
    const whole = Buffer.concat([frame(journalHeader('s')), frame(sampleRecord('t1'))]);
    const torn = frame(sampleRecord('t2')).subarray(0, 30);
    const file = Buffer.concat([whole, torn]);
    const lines = splitLines(file);
    expect(lines.at(-1)?.result).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/no newline/),
    });
    const kept = withoutTornTail(lines, file.length);
    expect(kept.lines).toHaveLength(2);
    expect(kept.validEnd).toBe(whole.length);
  });

  it('keeps every line of a file that ends cleanly', () => {
    const file = Buffer.concat([frame(journalHeader('s')), frame(sampleRecord('t1'))]);
    const kept = withoutTornTail(splitLines(file), file.length);
    expect(kept.lines).toHaveLength(2);
    expect(kept.validEnd).toBe(file.length);
  });
});

describe('readLines', () => {
  it('returns the header and records, and reports every other line by number', () => {
    const file = Buffer.concat([
      frame(journalHeader('s')),
      frame(sampleRecord('t1')),
      frame({ turnId: 7 }),
      Buffer.from('garbage\n'),
      frame(sampleRecord('t2')),
    ]);
    const bad: BadLine[] = [];
    const found = readLines('s', 'journal', splitLines(file), (line) => bad.push(line));
    expect(found.header).toEqual(journalHeader('s'));
    expect(found.records.map((record) => record.turnId)).toEqual(['t1', 't2']);
    expect(bad.map(({ line, reason }) => ({ line, reason }))).toEqual([
      { line: 3, reason: expect.stringMatching(/^not a journal record: turnId/) },
      { line: 4, reason: expect.stringMatching(/checksum/) },
    ]);
  });

  it('reports a header of another session or of the other kind', () => {
    const bad: BadLine[] = [];
    readLines('s', 'journal', splitLines(frame(journalHeader('x'))), (line) => bad.push(line));
    readLines('s', 'snapshot', splitLines(frame(journalHeader('s'))), (line) => bad.push(line));
    expect(bad.map((line) => line.reason)).toEqual([
      'the header names session "x"',
      'not a snapshot header',
    ]);
  });

  it('reads the record count of a snapshot header', () => {
    const found = readLines('s', 'snapshot', splitLines(frame(snapshotHeader('s', 4))), () => {});
    expect(found.header?.records).toBe(4);
  });
});

describe('headerKey', () => {
  it('reads the session key of a journal header', () => {
    const head = Buffer.concat([frame(journalHeader('slack:T01')), frame(sampleRecord('t1'))]);
    expect(headerKey(head, 1024)).toEqual({ key: 'slack:T01' });
  });

  it('tells a first append torn by a crash from a header too long to be one', () => {
    const partial = frame(journalHeader('s')).subarray(0, 20);
    expect(headerKey(partial, 1024)).toEqual({ torn: true });
    expect(headerKey(Buffer.alloc(64, 0x61), 64)).toEqual({
      reason: 'no header line within 64 bytes',
    });
  });

  it('refuses a first line that is not a journal header', () => {
    expect(headerKey(frame(snapshotHeader('s', 1)), 1024)).toEqual({
      reason: 'not a journal header',
    });
    expect(headerKey(Buffer.from('hello\n'), 1024)).toMatchObject({
      reason: expect.stringMatching(/checksum/),
    });
  });
});
