/**
 * The conformance suite every JournalStore passes: what the runtime relies on, whatever keeps
 * the journals.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JournalRecord } from '../../../src/agent/journal.js';
import type { JournalStore } from '../../../src/runtime/stores/store.js';

/** One backing storage (a directory, a database, a memory) that stores can be opened on. */
export interface StoreFixture {
  /**
   * A store instance over the fixture's storage. A second call stands for a restart: for
   * durable stores it is a new instance over the same storage; an in-memory store may return
   * the same instance, as its storage is the instance.
   */
  open(): JournalStore;
  /** Closes what was opened and removes the storage. */
  dispose(): Promise<void>;
}

/** A record with a bit of everything the codec has to carry across. */
export function sampleRecord(turnId: string, text = `reply to ${turnId}`): JournalRecord {
  return {
    turnId,
    messages: [
      { role: 'user', content: `question ${turnId}\nsecond line\u2028 "quoted" \\ 🦀` },
      {
        role: 'assistant',
        content: '',
        toolCalls: [{ id: `call-${turnId}`, name: 'lookup', arguments: '{"q":"x\\ny"}' }],
      },
      { role: 'tool', toolCallId: `call-${turnId}`, name: 'lookup', content: '{"found":true}' },
      { role: 'assistant', content: text },
    ],
    usage: { inputTokens: 12, outputTokens: 7, totalTokens: 19, costUsd: 0.000123, llmCalls: 2 },
    at: 1_700_000_000_000,
  };
}

const AWKWARD_KEYS = [
  'slack:T01:C42',
  'tenant/../etc\\passwd',
  'ünïcödé · 会话 · 🦀',
  'k'.repeat(256),
  ' leading and trailing spaces ',
];

function turnIds(records: readonly JournalRecord[]): string[] {
  return records.map((record) => record.turnId);
}

export function journalStoreSuite(name: string, makeStore: () => Promise<StoreFixture>): void {
  describe(`${name} (JournalStore conformance)`, () => {
    let fixture: StoreFixture;
    let store: JournalStore;

    beforeEach(async () => {
      fixture = await makeStore();
      store = fixture.open();
    });

    afterEach(async () => {
      await fixture.dispose();
    });

    it('reads an unknown session as empty', async () => {
      expect(await store.read('never-seen')).toEqual([]);
      expect(await store.keys()).toEqual([]);
    });

    it('reads back what was appended, oldest first and unchanged', async () => {
      const records = ['t1', 't2', 't3', 't4'].map((id) => sampleRecord(id));
      for (const record of records) await store.append('s', record);
      expect(await store.read('s')).toEqual(records);
    });

    it('refuses to append what it could not read back as a record, and stores nothing', async () => {
      const broken = [
        { ...sampleRecord('t1'), usage: null },
        { ...sampleRecord('t2'), messages: 'hello' },
        { ...sampleRecord('t3'), turnId: 3 },
      ] as unknown as JournalRecord[];
      for (const record of broken) {
        await expect(store.append('s', record)).rejects.toMatchObject({
          code: 'AGENTCELL_INTERNAL',
          message: expect.stringMatching(/not a journal record/),
        });
      }
      expect(await store.read('s')).toEqual([]);
    });

    it('is idempotent by turnId: a second append of a turn changes nothing', async () => {
      await store.append('s', sampleRecord('t1'));
      await store.append('s', sampleRecord('t2'));
      await store.append('s', sampleRecord('t1', 'a different reply'));
      expect(await store.read('s')).toEqual([sampleRecord('t1'), sampleRecord('t2')]);
    });

    it('is idempotent by turnId across a restart (a new store over the same storage)', async () => {
      await store.append('s', sampleRecord('t1'));
      await store.append('s', sampleRecord('t2'));
      await store.close();
      const reopened = fixture.open();
      expect(turnIds(await reopened.read('s'))).toEqual(['t1', 't2']);
      await reopened.append('s', sampleRecord('t2', 'again'));
      await reopened.append('s', sampleRecord('t3'));
      expect(await reopened.read('s')).toEqual([
        sampleRecord('t1'),
        sampleRecord('t2'),
        sampleRecord('t3'),
      ]);
    });

    it('keeps sessions apart; the same turnId in two sessions is two records', async () => {
      await store.append('a', sampleRecord('t1', 'for a'));
      await store.append('b', sampleRecord('t1', 'for b'));
      expect(await store.read('a')).toEqual([sampleRecord('t1', 'for a')]);
      expect(await store.read('b')).toEqual([sampleRecord('t1', 'for b')]);
    });

    it('hands out copies: changing an appended or a read record changes nothing stored', async () => {
      const appended = structuredClone(sampleRecord('t1')) as {
        -readonly [K in keyof JournalRecord]: JournalRecord[K];
      };
      await store.append('s', appended);
      appended.turnId = 'changed';
      (appended.messages as unknown[]).length = 0;

      const read = (await store.read('s')) as JournalRecord[];
      const first = read[0] as unknown as { turnId: string; messages: unknown[] };
      first.turnId = 'changed too';
      first.messages.push({ role: 'user', content: 'injected' });
      read.push(sampleRecord('t9'));

      expect(await store.read('s')).toEqual([sampleRecord('t1')]);
    });

    it('forgets a deleted session, including its turnIds', async () => {
      await store.append('s', sampleRecord('t1'));
      await store.append('other', sampleRecord('t1'));
      await store.delete('s');
      expect(await store.read('s')).toEqual([]);
      expect(await store.keys()).toEqual(['other']);
      await store.delete('s'); // deleting twice is fine
      await store.delete('never-seen');

      await store.append('s', sampleRecord('t1', 'new life'));
      expect(await store.read('s')).toEqual([sampleRecord('t1', 'new life')]);
      expect(await store.read('other')).toEqual([sampleRecord('t1')]);
    });

    it('lists the keys of every session with a journal, whatever characters they hold', async () => {
      for (const key of AWKWARD_KEYS) await store.append(key, sampleRecord(`t-${key.length}`));
      expect([...(await store.keys())].sort()).toEqual([...AWKWARD_KEYS].sort());
      for (const key of AWKWARD_KEYS) {
        expect(turnIds(await store.read(key))).toEqual([`t-${key.length}`]);
      }
      await store.close();
      expect([...(await fixture.open().keys())].sort()).toEqual([...AWKWARD_KEYS].sort());
    });

    it('keeps the order of calls for concurrent appends to one session', async () => {
      const ids = Array.from({ length: 60 }, (_, index) => `t${index}`);
      await Promise.all(ids.map((id) => store.append('s', sampleRecord(id))));
      expect(turnIds(await store.read('s'))).toEqual(ids);
    });

    it('records a turn once when it is appended concurrently twice', async () => {
      await Promise.all([
        store.append('s', sampleRecord('t1')),
        store.append('s', sampleRecord('t1', 'duplicate')),
        store.append('s', sampleRecord('t2')),
        store.append('s', sampleRecord('t1', 'duplicate again')),
      ]);
      expect(await store.read('s')).toEqual([sampleRecord('t1'), sampleRecord('t2')]);
    });

    it('appends to many sessions at once', async () => {
      const keys = Array.from({ length: 12 }, (_, index) => `session:${index}`);
      await Promise.all(
        keys.flatMap((key) =>
          [1, 2, 3].map((n) => store.append(key, sampleRecord(`${key}/t${n}`))),
        ),
      );
      for (const key of keys) {
        expect(turnIds(await store.read(key))).toEqual([1, 2, 3].map((n) => `${key}/t${n}`));
      }
      expect([...(await store.keys())].sort()).toEqual([...keys].sort());
    });

    it('close waits for appends already made', async () => {
      const pending = [1, 2, 3].map((n) => store.append('s', sampleRecord(`t${n}`)));
      await store.close();
      await Promise.all(pending);
      expect(turnIds(await fixture.open().read('s'))).toEqual(['t1', 't2', 't3']);
    });
  });
}
