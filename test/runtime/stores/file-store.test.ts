import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { appendFile, mkdtemp, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { JournalRecord } from '../../../src/agent/journal.js';
import { encode } from '../../../src/codec.js';
import { type AgentcellError, isAgentcellError } from '../../../src/errors.js';
import { FileStore, type FileStoreOptions } from '../../../src/runtime/stores/file.js';
import { captureLog } from '../../fixtures/log-capture.js';
import { journalStoreSuite, type StoreFixture, sampleRecord } from './store-suite.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const CHILD = join(ROOT, 'test/fixtures/file-store-child.ts');

const dirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'agentcell-file-store-'));
  dirs.push(dir);
  return dir;
}

afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

function fileFixture(options: Omit<FileStoreOptions, 'dir'> = {}): () => Promise<StoreFixture> {
  return async () => {
    const dir = await tempDir();
    const opened: FileStore[] = [];
    return {
      open: () => {
        const store = new FileStore({ dir, ...options });
        opened.push(store);
        return store;
      },
      dispose: async () => {
        await Promise.all(opened.map((store) => store.close()));
      },
    };
  };
}

journalStoreSuite('FileStore', fileFixture());
journalStoreSuite('FileStore compacting every 3 records', fileFixture({ compactAfter: 3 }));
journalStoreSuite('FileStore without fsync', fileFixture({ fsync: false }));

/** The on-disk format, written independently of the store to craft files by hand. */
function hashOf(key: string): string {
  return createHash('sha256').update(key, 'utf16le').digest('hex');
}

function journalPath(dir: string, key: string): string {
  return join(dir, `${hashOf(key)}.journal`);
}

function snapshotPath(dir: string, key: string): string {
  return join(dir, `${hashOf(key)}.snapshot`);
}

function line(payload: string): string {
  const sum = createHash('sha256').update(payload).digest('hex').slice(0, 16);
  return `${sum} ${payload}\n`;
}

async function journalLines(dir: string, key: string): Promise<string[]> {
  const text = await readFile(journalPath(dir, key), 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text.slice(0, -1).split('\n');
}

/** Rewrites line `index` (0 is the header) of a session's journal. */
async function replaceLine(
  dir: string,
  key: string,
  index: number,
  replace: (text: string) => string,
) {
  const lines = await journalLines(dir, key);
  lines[index] = replace(lines[index] ?? '');
  await writeFile(journalPath(dir, key), `${lines.join('\n')}\n`);
}

function ids(records: readonly JournalRecord[]): string[] {
  return records.map((record) => record.turnId);
}

function range(from: number, to: number, prefix = 't'): string[] {
  return Array.from({ length: to - from }, (_, index) => `${prefix}${from + index}`);
}

async function storeWith(dir: string, key: string, turnIds: readonly string[]): Promise<void> {
  const store = new FileStore({ dir });
  for (const turnId of turnIds) await store.append(key, sampleRecord(turnId));
  await store.close();
}

function corruptSpy() {
  return vi.fn<(error: AgentcellError) => void>();
}

describe('FileStore on disk', () => {
  it('names files by the hash of the key and keeps the key in the header', async () => {
    const dir = await tempDir();
    await storeWith(dir, 'slack:T01:C42', ['t1']);
    expect(await readdir(dir)).toEqual([`${hashOf('slack:T01:C42')}.journal`]);
    const [header, record] = await journalLines(dir, 'slack:T01:C42');
    expect(header).toContain('"key":"slack:T01:C42"');
    expect(record).toMatch(/^[0-9a-f]{16} \{"json":/);
  });

  it('rejects invalid options', () => {
    const invalid = [
      { dir: '' },
      { dir: '/tmp/x', compactAfter: 0 },
      { dir: '/tmp/x', compactAfter: 1.5 },
    ];
    for (const options of invalid) {
      expect(() => new FileStore(options)).toThrow(
        expect.objectContaining({ code: 'AGENTCELL_OPTIONS_INVALID' }),
      );
    }
  });
});

describe('FileStore after a torn append', () => {
  const tails: [string, (full: string) => string][] = [
    ['half a record, no newline', (full) => full.slice(0, Math.floor(full.length / 2))],
    ['a whole record but its newline', (full) => full.slice(0, -1)],
    ['a complete line with a bad checksum', (full) => `0000000000000000${full.slice(16)}`],
    ['zero bytes (allocated, never written)', () => '\0'.repeat(300)],
    ['a lone newline fragment', () => 'ab\n'],
  ];

  it.each(tails)('drops %s and appends the next record cleanly', async (_name, tail) => {
    const dir = await tempDir();
    await storeWith(dir, 's', ['t1', 't2', 't3']);
    await appendFile(journalPath(dir, 's'), tail(line(encode(sampleRecord('t4')))));

    const onCorrupt = corruptSpy();
    const store = new FileStore({ dir, onCorrupt });
    expect(ids(await store.read('s'))).toEqual(['t1', 't2', 't3']);
    // The torn turn was never acknowledged, so it may be appended again (a retry).
    await store.append('s', sampleRecord('t4'));
    await store.append('s', sampleRecord('t5'));
    expect(await store.read('s')).toEqual(
      ['t1', 't2', 't3', 't4', 't5'].map((id) => sampleRecord(id)),
    );
    await store.close();

    const reopened = new FileStore({ dir, onCorrupt });
    expect(ids(await reopened.read('s'))).toEqual(['t1', 't2', 't3', 't4', 't5']);
    expect(await journalLines(dir, 's')).toHaveLength(6); // the header and five records
    expect(onCorrupt).not.toHaveBeenCalled();
  });

  it('notices a tail added behind the back of a store that has the session in memory', async () => {
    const dir = await tempDir();
    const store = new FileStore({ dir });
    await store.append('s', sampleRecord('t1'));
    await appendFile(journalPath(dir, 's'), '{"partial');
    await store.append('s', sampleRecord('t2'));
    expect(ids(await new FileStore({ dir }).read('s'))).toEqual(['t1', 't2']);
  });

  it('treats a journal torn at its first append as no session', async () => {
    const dir = await tempDir();
    await writeFile(journalPath(dir, 's'), line(encode({ agentcell: 'journal' })).slice(0, 20));
    const onCorrupt = corruptSpy();
    const store = new FileStore({ dir, onCorrupt });
    expect(await store.keys()).toEqual([]);
    expect(await store.read('s')).toEqual([]);
    await store.append('s', sampleRecord('t1'));
    expect(await store.keys()).toEqual(['s']);
    expect(ids(await new FileStore({ dir }).read('s'))).toEqual(['t1']);
    expect(onCorrupt).not.toHaveBeenCalled();
  });
});

describe('FileStore with corrupted records', () => {
  /** Rewrites line `index` (0 is the header) of a session's journal. */

  const corruptions: [string, (text: string) => string, RegExp][] = [
    [
      'flipped bytes',
      (text) => `${text.slice(0, 40)}${text[40] === 'A' ? 'B' : 'A'}${text.slice(41)}`,
      /checksum/,
    ],
    [
      'a right checksum over something not JSON',
      () => line('{"json": oops').slice(0, -1),
      /not JSON/,
    ],
    [
      'a right checksum over something not a record',
      () => line(encode({ turnId: 7 })).slice(0, -1),
      /not a journal record/,
    ],
    ['a line without checksum', () => 'hello', /checksum/],
  ];

  it.each(corruptions)(
    'skips a middle record with %s, reports it and keeps the rest',
    async (_name, replace, reason) => {
      const dir = await tempDir();
      await storeWith(dir, 's', ['t1', 't2', 't3', 't4', 't5']);
      await replaceLine(dir, 's', 3, replace);

      const onCorrupt = corruptSpy();
      const store = new FileStore({ dir, onCorrupt });
      expect(ids(await store.read('s'))).toEqual(['t1', 't2', 't4', 't5']);
      expect(onCorrupt).toHaveBeenCalledTimes(1);
      const error = onCorrupt.mock.calls[0]?.[0];
      expect(isAgentcellError(error, 'AGENTCELL_STORE_CORRUPT')).toBe(true);
      expect(error?.details).toMatchObject({
        sessionKey: 's',
        file: journalPath(dir, 's'),
        line: 4,
        reason: expect.stringMatching(reason),
      });
      expect(error?.details?.['offset']).toBeGreaterThan(0);
      expect(error?.message).toContain('line 4');

      // Appends go on after the damage.
      await store.append('s', sampleRecord('t6'));
      expect(ids(await store.read('s'))).toEqual(['t1', 't2', 't4', 't5', 't6']);
    },
  );

  const pollutions: [string, string][] = [
    ['__proto__', '"__proto__":{"polluted":"yes"}'],
    ['constructor.prototype', '"constructor":{"prototype":{"polluted":"yes"}}'],
  ];

  it.each(pollutions)(
    'rejects a record with %s keys as corrupt and leaves Object.prototype clean',
    async (key, json) => {
      const dir = await tempDir();
      await storeWith(dir, 's', ['t1', 't2']);
      const usage = '{"inputTokens":0,"outputTokens":0,"totalTokens":0,"costUsd":0,"llmCalls":0}';
      const evil = line(
        `{"json":{"turnId":"evil","messages":[{"role":"user","content":"x",${json}}],"usage":${usage},"at":1,${json}}}`,
      );
      await replaceLine(dir, 's', 1, (text) => `${evil}${text}`); // between the header and t1

      const onCorrupt = corruptSpy();
      const store = new FileStore({ dir, onCorrupt });
      expect(ids(await store.read('s'))).toEqual(['t1', 't2']);
      expect(onCorrupt).toHaveBeenCalledTimes(1);
      const error = onCorrupt.mock.calls[0]?.[0];
      expect(error?.code).toBe('AGENTCELL_STORE_CORRUPT');
      expect(String(error?.details?.['reason'])).toContain(key.split('.')[0]);
      expect(Object.hasOwn(Object.prototype, 'polluted')).toBe(false);
      expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
      // Not a known turn either: a turn of that id is appended.
      await store.append('s', sampleRecord('evil'));
      expect(ids(await store.read('s'))).toEqual(['t1', 't2', 'evil']);
    },
  );

  it('reports a damaged header and still reads the records', async () => {
    const dir = await tempDir();
    await storeWith(dir, 's', ['t1', 't2']);
    await replaceLine(dir, 's', 0, (text) => text.replace('"s"', '"x"'));
    const onCorrupt = corruptSpy();
    const store = new FileStore({ dir, onCorrupt });
    expect(ids(await store.read('s'))).toEqual(['t1', 't2']);
    expect(await store.keys()).toEqual([]);
    expect(onCorrupt).toHaveBeenCalledTimes(2); // once reading, once listing
    expect(onCorrupt.mock.calls.every(([error]) => error.code === 'AGENTCELL_STORE_CORRUPT')).toBe(
      true,
    );
  });
});

describe('FileStore reporting', () => {
  it('logs a skipped record on the store logger when no onCorrupt is given', async () => {
    const dir = await tempDir();
    await storeWith(dir, 's', ['t1', 't2', 't3']);
    await replaceLine(dir, 's', 2, () => 'hello');
    const log = captureLog();
    try {
      expect(ids(await new FileStore({ dir }).read('s'))).toEqual(['t1', 't3']);
    } finally {
      log.restore();
    }
    expect(log.lines).toEqual([
      expect.objectContaining({
        level: 40,
        area: 'store',
        sessionKey: 's',
        line: 3,
        err: expect.objectContaining({ code: 'AGENTCELL_STORE_CORRUPT' }),
      }),
    ]);
  });

  it('keeps reading when onCorrupt throws, and logs the throw', async () => {
    const dir = await tempDir();
    await storeWith(dir, 's', ['t1', 't2', 't3']);
    await replaceLine(dir, 's', 2, () => 'hello');
    const log = captureLog();
    const onCorrupt = vi.fn(() => {
      throw new Error('observer broke');
    });
    try {
      expect(ids(await new FileStore({ dir, onCorrupt }).read('s'))).toEqual(['t1', 't3']);
    } finally {
      log.restore();
    }
    expect(onCorrupt).toHaveBeenCalledTimes(1);
    expect(log.lines).toEqual([
      expect.objectContaining({
        area: 'store',
        err: expect.objectContaining({ message: 'observer broke' }),
      }),
    ]);
  });
});

describe('FileStore compaction', () => {
  it('folds the journal into a snapshot every compactAfter records', async () => {
    const dir = await tempDir();
    const store = new FileStore({ dir, compactAfter: 5 });
    for (const turnId of range(1, 13)) await store.append('s', sampleRecord(turnId));
    expect(await store.read('s')).toEqual(range(1, 13).map((id) => sampleRecord(id)));
    expect((await readdir(dir)).sort()).toEqual([
      `${hashOf('s')}.journal`,
      `${hashOf('s')}.snapshot`,
    ]);
    // Compacted after t5 and t10: the journal holds its header, t11 and t12.
    expect(await journalLines(dir, 's')).toHaveLength(3);
    const snapshot = (await readFile(snapshotPath(dir, 's'), 'utf8')).trimEnd().split('\n');
    expect(snapshot).toHaveLength(11);

    await store.append('s', sampleRecord('t3', 'again'));
    await store.append('s', sampleRecord('t11', 'again'));
    expect(ids(await store.read('s'))).toEqual(range(1, 13));
    await store.close();

    const reopened = new FileStore({ dir, compactAfter: 5 });
    await reopened.append('s', sampleRecord('t1', 'again'));
    await reopened.append('s', sampleRecord('t13'));
    expect(await reopened.read('s')).toEqual(range(1, 14).map((id) => sampleRecord(id)));
    expect(await reopened.keys()).toEqual(['s']);
    await reopened.delete('s');
    expect(await readdir(dir)).toEqual([]);
  });

  it('reads consistently after a crash between writing the snapshot and replacing the journal', async () => {
    const dir = await tempDir();
    await storeWith(dir, 's', range(1, 8));
    const journalBefore = await readFile(journalPath(dir, 's'));

    const compacting = new FileStore({ dir, compactAfter: 2 });
    await compacting.append('s', sampleRecord('t8'));
    await compacting.close();
    expect(await journalLines(dir, 's')).toHaveLength(1); // compacted
    // The crash: the new snapshot is in place, the old journal is still there, and so are the
    // temporary files of a compaction that never finished.
    await writeFile(journalPath(dir, 's'), journalBefore);
    await writeFile(`${snapshotPath(dir, 's')}.tmp`, 'half a snap');
    await writeFile(`${journalPath(dir, 's')}.tmp`, 'half a jour');

    const onCorrupt = corruptSpy();
    const store = new FileStore({ dir, onCorrupt, compactAfter: 100 });
    expect(await store.read('s')).toEqual(range(1, 9).map((id) => sampleRecord(id)));
    expect(await store.keys()).toEqual(['s']);
    await store.append('s', sampleRecord('t3'));
    await store.append('s', sampleRecord('t9'));
    expect(ids(await store.read('s'))).toEqual(range(1, 10));
    expect(onCorrupt).not.toHaveBeenCalled();
  });

  it('ignores a snapshot left by an interrupted delete, and does not resurrect it', async () => {
    const dir = await tempDir();
    const first = new FileStore({ dir, compactAfter: 2 });
    for (const turnId of range(1, 4)) await first.append('s', sampleRecord(turnId));
    await first.close();
    await unlink(journalPath(dir, 's')); // delete removes the journal first

    const store = new FileStore({ dir });
    expect(await store.read('s')).toEqual([]);
    expect(await store.keys()).toEqual([]);
    await store.append('s', sampleRecord('t2'));
    expect(ids(await store.read('s'))).toEqual(['t2']);
    expect(ids(await new FileStore({ dir }).read('s'))).toEqual(['t2']);
  });

  it('keeps the order of concurrent appends across compactions', async () => {
    const dir = await tempDir();
    const store = new FileStore({ dir, compactAfter: 4 });
    const turnIds = range(0, 50);
    await Promise.all(turnIds.map((id) => store.append('s', sampleRecord(id))));
    expect(ids(await store.read('s'))).toEqual(turnIds);
    await store.close();
    expect(ids(await new FileStore({ dir }).read('s'))).toEqual(turnIds);
  });
});

describe('FileStore across a SIGKILL', () => {
  const keys = ['slack:T01:C42', 'tenant/../x:"y"'];

  /** Runs the child until it has acknowledged `killAfter` appends, then kills it hard. */
  async function runUntilKilled(dir: string, killAfter: number): Promise<number[][]> {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, '7', ...keys], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const acks = keys.map((): number[] => []);
    let total = 0;
    let pending = '';
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (pending + chunk).split('\n');
      pending = lines.pop() ?? '';
      for (const text of lines) {
        const match = /^ack (\d+) (\d+)$/.exec(text);
        if (!match) throw new Error(`unexpected output from the child: ${text}`);
        acks[Number(match[1])]?.push(Number(match[2]));
        total++;
      }
      if (total >= killAfter && child.exitCode === null) child.kill('SIGKILL');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 12_000);
    const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
    clearTimeout(timer);
    if (signal !== 'SIGKILL' || total < killAfter) {
      throw new Error(`the child ended with ${signal ?? code} after ${total} acks: ${stderr}`);
    }
    return acks;
  }

  it('keeps every acknowledged turn, in order, once, through repeated kills', {
    timeout: 30_000,
  }, async () => {
    const dir = await tempDir();
    const held = keys.map(() => 0);
    for (const killAfter of [60, 120, 90]) {
      const acks = await runUntilKilled(dir, killAfter);
      const onCorrupt = corruptSpy();
      const store = new FileStore({ dir, onCorrupt });
      for (const [index, key] of keys.entries()) {
        const acked = acks[index] ?? [];
        const stored = ids(await store.read(key));
        // t-0, t-1, ... with no gap and no duplicate: every record readable, in order.
        expect(stored).toEqual(range(0, stored.length, 't-'));
        // Each run goes on from what the store held (an unacknowledged extra record included).
        const before = held[index] ?? 0;
        expect(acked).toEqual(acked.map((_, n) => before + n));
        const lastAcked = acked.at(-1) ?? before - 1;
        expect(stored.length - 1).toBeGreaterThanOrEqual(lastAcked);
        expect(stored.length - 1).toBeLessThanOrEqual(lastAcked + 1);
        held[index] = stored.length;
      }
      expect([...(await store.keys())].sort()).toEqual([...keys].sort());
      expect(onCorrupt).not.toHaveBeenCalled();
      await store.close();
    }
    expect(held.every((count) => count >= 50)).toBe(true);
  });
});

describe('FileStore options', () => {
  it('refuses an unknown key, such as a misspelled fsync, and bad values, each by path', () => {
    for (const options of [
      { dir: '/tmp/x', fsynk: false },
      { dir: '' },
      { dir: '/tmp/x', compactAfter: 0 },
      { dir: '/tmp/x', fsync: 'yes' },
    ]) {
      expect(() => new FileStore(options as never)).toThrow(
        expect.objectContaining({ code: 'AGENTCELL_OPTIONS_INVALID' }),
      );
    }
  });
});
