/**
 * The host process killed (SIGKILL) in the middle of a burst of turns: a child process runs a
 * Supervisor on a FileStore and acknowledges each reply on stdout; after the kill, a new
 * Supervisor on the same directory finds every journal consistent, every acknowledged turn
 * in it, and the sessions go on with their history.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { JournalRecord } from '../../src/agent/journal.js';
import { FileStore } from '../../src/runtime/stores/file.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { contentText } from '../../src/testing/mock-llm-script.js';
import { mockAgent, shutdown } from './helpers.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CHILD = join(ROOT, 'test/fixtures/host-kill-child.ts');
const KILL_AFTER = 30;

let mock: MockLlm;
let dir: string;

beforeAll(async () => {
  mock = await startMockLlm();
  dir = await mkdtemp(join(tmpdir(), 'agentcell-host-kill-'));
});

afterAll(async () => {
  await mock.close();
  await rm(dir, { recursive: true, force: true });
});

/**
 * Runs the child until it has acknowledged `killAfter` replies, at least one from each of its
 * sessions (it names them on its first line), then kills it hard.
 */
async function runUntilKilled(
  killAfter: number,
): Promise<{ keys: string[]; acks: Map<string, string[]> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, mock.url], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const acks = new Map<string, string[]>();
  let keys: string[] = [];
  let total = 0;
  let pending = '';
  let stderr = '';
  const unexpected: string[] = [];
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (line.startsWith('sessions ') && keys.length === 0) {
        keys = line.split(' ').slice(1);
        continue;
      }
      const match = /^ack (\S+) (\S+)$/.exec(line);
      if (!match?.[1] || !match[2]) {
        unexpected.push(line);
        continue;
      }
      acks.set(match[1], [...(acks.get(match[1]) ?? []), match[2]]);
      total++;
    }
    const everySession = keys.length > 0 && keys.every((key) => acks.has(key));
    if (total >= killAfter && everySession && child.exitCode === null) child.kill('SIGKILL');
  });
  const safety = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  clearTimeout(safety);
  if (signal !== 'SIGKILL' || total < killAfter || keys.length < 2 || unexpected.length > 0) {
    throw new Error(
      `the child ended with ${signal ?? code} after ${total} acks (unexpected output: ${JSON.stringify(unexpected)}): ${stderr}`,
    );
  }
  return { keys, acks };
}

/** What a record must look like: a completed turn of one user message and its echo. */
function expectWellFormed(key: string, record: JournalRecord): void {
  expect(record).toEqual({
    turnId: expect.any(String),
    agent: 'cell',
    messages: [
      { role: 'user', content: expect.stringMatching(new RegExp(`^${key} r\\d+ m\\d+$`)) },
      { role: 'assistant', content: expect.stringMatching(/^echo: /) },
    ],
    usage: expect.objectContaining({
      inputTokens: expect.any(Number),
      outputTokens: expect.any(Number),
      totalTokens: expect.any(Number),
      llmCalls: 1,
    }),
    at: expect.any(Number),
  });
  expect(record.turnId.length).toBeGreaterThan(0);
  const [user, assistant] = record.messages;
  expect(assistant?.content).toBe(`echo: ${user?.content}`);
}

describe('the host killed in the middle of a burst', () => {
  it('keeps every acknowledged turn, once, and the sessions go on with their history', {
    timeout: 60_000,
  }, async () => {
    const { keys, acks } = await runUntilKilled(KILL_AFTER);
    expect([...acks.keys()].sort()).toEqual([...keys].sort());

    const onCorrupt = vi.fn();
    const store = new FileStore({ dir, onCorrupt });
    const stored = [...(await store.keys())].sort();
    expect(stored).toEqual([...keys].sort());

    const journals = new Map<string, readonly JournalRecord[]>();
    for (const key of stored) {
      const records = await store.read(key);
      journals.set(key, records);
      const turnIds = records.map((record) => record.turnId);
      expect(new Set(turnIds).size, `duplicate turn ids in ${key}`).toBe(turnIds.length);
      for (const record of records) expectWellFormed(key, record);
      // Sent in order, answered in order: the journal is a prefix of what was sent, no gap.
      const sent = records.map((record) => contentText(record.messages[0]?.content ?? null));
      expect(sent).toEqual(sent.map((_, n) => `${key} r${Math.floor(n / 3)} m${n % 3}`));
      // Every acknowledged turn is there (one or more in flight may be there unacknowledged).
      const acked = acks.get(key) ?? [];
      for (const turnId of acked) expect(turnIds).toContain(turnId);
      expect(records.length).toBeGreaterThanOrEqual(acked.length);
    }
    expect(onCorrupt).not.toHaveBeenCalled();

    // A new host on the same directory: each session answers, and the model is sent its past.
    const supervisor = new Supervisor({ store, warmPoolSize: 0 });
    try {
      supervisor.register('cell', mockAgent(mock));
      for (const [key, records] of journals) {
        const session = supervisor.session(key, { agent: 'cell' });
        mock.reset();
        expect((await session.send('after the kill')).text).toBe('echo: after the kill');
        const history = records.flatMap((record) => record.messages);
        const prompt = (mock.requests[0]?.body?.messages ?? []).filter((m) => m.role !== 'system');
        expect(prompt.map((m) => `${m.role}: ${contentText(m.content)}`)).toEqual([
          ...history.map((m) => `${m.role}: ${contentText(m.content)}`),
          'user: after the kill',
        ]);
        expect(await session.history()).toEqual([
          ...history,
          { role: 'user', content: 'after the kill' },
          { role: 'assistant', content: 'echo: after the kill' },
        ]);
      }
    } finally {
      await shutdown(supervisor);
      await store.close();
    }
  });
});
