/**
 * A turn paused for approval survives a SIGKILL of its host: a child process runs a Supervisor
 * on a FileStore and is killed once the pause is journaled; a new Supervisor on the same
 * directory lists the approval, takes the answer, and the turn completes once (the tool runs
 * once, the reply is journaled once). Killed while the approved tool runs, the turn is closed
 * on the next open instead of run again: the rest of a paused turn runs at most once.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ObservedEvent } from '../../src/runtime/session-observers.js';
import { FileStore } from '../../src/runtime/stores/file.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { defineTool } from '../../src/tools/define-tool.js';
import { ToolRegistry } from '../../src/tools/registry.js';
import { mockAgent, rejectionOf, shutdown } from './helpers.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CHILD = join(ROOT, 'test/fixtures/approval-kill-child.ts');

let mock: MockLlm;
let dir: string;

beforeAll(async () => {
  mock = await startMockLlm({
    rules: [
      {
        match: 'pay the invoice',
        steps: [{ toolCalls: [{ name: 'pay', arguments: { amount: 42 } }] }, { reply: 'paid it' }],
      },
    ],
  });
  dir = await mkdtemp(join(tmpdir(), 'agentcell-approval-kill-'));
});

afterAll(async () => {
  await mock.close();
  await rm(dir, { recursive: true, force: true });
});

/** Runs the child in `mode` and kills it once it printed `killOn`; returns the approval id. */
async function runUntil(mode: 'wait' | 'run', killOn: string): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, mock.url, mode], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    if (out.split('\n').some((line) => line.startsWith(killOn))) child.kill('SIGKILL');
  });
  const safety = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const [, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  clearTimeout(safety);
  const approvalId = /^asked \S+ (\S+)$/m.exec(out)?.[1];
  if (signal !== 'SIGKILL' || approvalId === undefined || !out.includes(killOn)) {
    throw new Error(`the child ended with ${signal} before "${killOn}": ${out} ${stderr}`);
  }
  return approvalId;
}

function paidRuns(): number {
  const log = join(dir, 'paid.log');
  return existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).length : 0;
}

/** A new host on the directory, its `pay` tool counted in the same log. */
function newHost(store: FileStore): Supervisor {
  const pay = defineTool({
    name: 'pay',
    description: 'Pays an amount',
    parameters: { type: 'object', properties: { amount: { type: 'number' } } },
    host: true,
    run: (args) => {
      appendFileSync(join(dir, 'paid.log'), `${JSON.stringify(args)}\n`);
      return 'paid';
    },
  });
  const tools = new ToolRegistry();
  tools.register(pay);
  const supervisor = new Supervisor({ tools, store, warmPoolSize: 0 });
  supervisor.register(
    'payer',
    mockAgent(mock, { name: 'payer', tools: [pay], approval: { tools: ['pay'] } }),
  );
  return supervisor;
}

describe('a paused turn and a SIGKILL of its host', () => {
  it('is still pending after a restart, and completes once when answered', {
    timeout: 60_000,
  }, async () => {
    const approvalId = await runUntil('wait', 'asked');
    const store = new FileStore({ dir });
    const supervisor = newHost(store);
    try {
      const session = supervisor.session('kill:wait', { agent: 'payer' });
      const pending = await session.approvals();
      expect(pending).toEqual([
        expect.objectContaining({ approvalId, tool: 'pay', arguments: { amount: 42 } }),
      ]);
      const events: ObservedEvent[] = [];
      const final = new Promise<ObservedEvent>((resolveFinal) => {
        session.observe({
          onEvent: (event) => {
            events.push(event);
            if (event.type === 'final' || event.type === 'turn-failed') resolveFinal(event);
          },
        });
      });

      await session.approve(approvalId, { approved: true });

      expect(await final).toMatchObject({ type: 'final', reply: 'paid it' });
      expect(paidRuns()).toBe(1);
      const records = await store.read('kill:wait');
      const turnId = pending[0]?.turnId;
      expect(records.filter((record) => record.turnId === turnId)).toHaveLength(1);
      expect((await session.history()).map((m) => m.role)).toEqual([
        'user',
        'assistant',
        'tool',
        'assistant',
      ]);
      expect(await rejectionOf(session.approve(approvalId, { approved: true }))).toMatchObject({
        code: 'AGENTCELL_APPROVAL_ANSWERED',
      });
    } finally {
      await shutdown(supervisor);
      await store.close();
    }
  });

  it('killed while the approved tool runs: closed on the next open, never run twice', {
    timeout: 60_000,
  }, async () => {
    const before = paidRuns();
    const approvalId = await runUntil('run', 'running');
    expect(paidRuns()).toBe(before + 1);
    const store = new FileStore({ dir });
    const supervisor = newHost(store);
    try {
      const session = supervisor.session('kill:run', { agent: 'payer' });

      expect(await session.approvals()).toEqual([]);
      expect(await rejectionOf(session.approve(approvalId, { approved: true }))).toMatchObject({
        code: 'AGENTCELL_APPROVAL_ANSWERED',
      });
      const records = await store.read('kill:run');
      expect(records.at(-1)?.approval).toMatchObject({
        kind: 'closed',
        code: 'AGENTCELL_SESSION_CRASHED',
      });
      expect(paidRuns()).toBe(before + 1);
      // The session goes on: the next message is a turn of its own.
      expect(await session.send('hello')).toMatchObject({ text: 'echo: hello' });
      expect((await session.history()).map((m) => m.role)).toEqual(['user', 'assistant']);
    } finally {
      await shutdown(supervisor);
      await store.close();
    }
  });
});
