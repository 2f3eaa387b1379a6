/** The one shape check of a journal record, and the journal a session thread decodes. */
import { describe, expect, it } from 'vitest';
import {
  decodeJournal,
  encodeJournal,
  isJournalRecord,
  type JournalRecord,
  journalRecordProblem,
} from '../../src/agent/journal.js';
import { encode } from '../../src/codec.js';

const usage = { inputTokens: 1, outputTokens: 2, totalTokens: 3, costUsd: 0, llmCalls: 1 };
const record: JournalRecord = {
  turnId: 't1',
  messages: [{ role: 'user', content: 'hi' }],
  usage,
  at: 5,
};

describe('journalRecordProblem', () => {
  it('accepts a record, with or without its optional fields', () => {
    expect(journalRecordProblem(record)).toBeUndefined();
    expect(journalRecordProblem({ ...record, agent: 'cell', output: { any: 1 } })).toBeUndefined();
    expect(journalRecordProblem({ ...record, messages: [], reset: true })).toBeUndefined();
    const idempotency = [{ key: 'order-1', fingerprint: 'f' }];
    expect(journalRecordProblem({ ...record, idempotency })).toBeUndefined();
    expect(isJournalRecord(record)).toBe(true);
  });

  it.each([
    ['null', null, /expected an object/],
    ['an array', [record], /expected an object/],
    ['a string', 'record', /expected an object/],
    ['a number turnId', { ...record, turnId: 7 }, /turnId/],
    ['no messages', { ...record, messages: undefined }, /messages/],
    ['messages as an object', { ...record, messages: {} }, /messages/],
    ['a null usage', { ...record, usage: null }, /usage/],
    ['no at', { ...record, at: undefined }, /\bat\b/],
    ['at as a string', { ...record, at: '5' }, /\bat\b/],
    ['a number agent', { ...record, agent: 3 }, /agent/],
    ['reset false', { ...record, reset: false }, /reset/],
    ['idempotency as a string', { ...record, idempotency: 'order-1' }, /idempotency/],
    [
      'an idempotency stamp without a key',
      { ...record, idempotency: [{ fingerprint: 'f' }] },
      /idempotency/,
    ],
  ])('names what is wrong with %s', (_name, value, reason) => {
    const problem = journalRecordProblem(value);
    expect(problem).toMatch(/^not a journal record: /);
    expect(problem).toMatch(reason);
    expect(isJournalRecord(value)).toBe(false);
  });
});

describe('decodeJournal', () => {
  it('round-trips records through the codec', () => {
    const records = [record, { ...record, turnId: 't2', agent: 'cell' }];
    expect(decodeJournal(encodeJournal(records))).toEqual(records);
  });

  it('refuses a journal holding something that is not a record, naming its index', () => {
    const text = encode([record, { turnId: 't2' }]);
    expect(() => decodeJournal(text)).toThrow(
      expect.objectContaining({
        code: 'AGENTCELL_STORE_CORRUPT',
        message: expect.stringMatching(/record 1 is not a journal record: messages/),
      }),
    );
  });

  it('refuses what is not an array or not the codec at all', () => {
    for (const text of [encode({ records: [] }), 'not a journal']) {
      expect(() => decodeJournal(text)).toThrow(
        expect.objectContaining({ code: 'AGENTCELL_STORE_CORRUPT' }),
      );
    }
  });
});
