/**
 * A failure the runtime absorbs (it goes on without what failed) is logged once, with the
 * session key and, where a turn is known, its turn id: an approval mark the journal refused, a
 * model call that failed and was retried, a passivation whose thread would not report stopped,
 * a stats call the session's worker did not answer.
 * One supervisor serves every case (sessions are isolated by key; nothing here tests isolation).
 */
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { JournalRecord } from '../../src/agent/journal.js';
import { MemoryStore } from '../../src/runtime/stores/memory.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { defineTool } from '../../src/tools/define-tool.js';
import { type CapturedLog, captureLog } from '../fixtures/log-capture.js';
import {
  fixtureRegistry,
  mockAgent,
  SHARED_KEYS,
  sharedCells,
  track,
  waitForCell,
} from './helpers.js';

/** Refuses the next answer to an approval it is asked to append, once armed. */
class FlakyStore extends MemoryStore {
  refuseNextAnswer = false;

  override async append(key: string, record: JournalRecord): Promise<void> {
    if (this.refuseNextAnswer && record.approval?.kind === 'answer') {
      this.refuseNextAnswer = false;
      throw new Error('the disk is full');
    }
    return super.append(key, record);
  }
}

const pay = defineTool({
  name: 'pay',
  description: 'Pays an amount',
  parameters: { type: 'object', properties: { amount: { type: 'number' } } },
  host: true,
  run: () => 'paid',
});

/** How many spinning tool calls began, in any thread. */
const spinning = sharedCells(SHARED_KEYS.spin, 1);
const store = new FlakyStore();
let captured: CapturedLog;
let mock: MockLlm;
let supervisor: Supervisor;

beforeAll(async () => {
  captured = captureLog();
  mock = await startMockLlm({
    rules: [
      {
        match: /^pay/,
        steps: [{ toolCalls: [{ name: 'pay', arguments: { amount: 5 } }] }, { reply: 'done' }],
      },
      { match: /^flaky/, steps: [{ fault: { kind: '500', times: 1 } }, { reply: 'steady' }] },
      { match: /^spin/, steps: [{ toolCalls: [{ name: 'spin', arguments: {} }] }] },
    ],
  });
  const { registry, tools } = await fixtureRegistry(['spin'], [pay]);
  supervisor = new Supervisor({ tools: registry, store, warmPoolSize: 0, rpcTimeoutMs: 1_500 });
  // Nobody answers: the short deadline denies the call, and the turn goes on.
  supervisor.register(
    'payer',
    mockAgent(mock, { tools, approval: { tools: ['pay'], timeoutMs: 50 } }),
  );
  supervisor.register('cell', mockAgent(mock, { tools }));
});

afterAll(async () => {
  captured?.restore();
  // The spinning thread ignores every signal: only terminating it ends that turn.
  await supervisor?.destroy('the tests are over');
  await mock?.close();
});

function linesSaying(msg: string): Record<string, unknown>[] {
  return captured.lines.filter((line) => line['msg'] === msg);
}

describe('failures the runtime absorbs', () => {
  it('logs an approval mark the journal refused once, with its session and turn', async () => {
    const key = 'absorbed:journal';
    store.refuseNextAnswer = true;
    const reply = await supervisor.session(key, { agent: 'payer' }).send('pay please');

    expect(reply.text).toBe('done');
    const lines = linesSaying(
      'an approval mark could not be journaled; after a restart the turn may wait for it again',
    );
    expect(lines).toEqual([
      expect.objectContaining({
        level: 40,
        area: 'runtime',
        sessionKey: key,
        turnId: reply.turnId,
        // Name and message only: no stack, no serializer's type.
        err: { name: 'Error', message: 'the disk is full' },
      }),
    ]);
  });

  it('logs a model call that failed and was retried once, with its session and turn', async () => {
    const key = 'absorbed:retry';
    const reply = await supervisor.session(key, { agent: 'cell' }).send('flaky model');

    expect(reply.text).toBe('steady');
    const lines = linesSaying('a model call failed and is retried');
    expect(lines).toEqual([
      expect.objectContaining({
        level: 40,
        sessionKey: key,
        turnId: reply.turnId,
        attempt: 1,
        err: expect.objectContaining({ code: 'AGENTCELL_LLM_REQUEST_FAILED' }),
      }),
    ]);
    expect(JSON.stringify(lines)).not.toContain('sk-test');
  });

  it('logs a passivation that failed once, and the next message starts a worker again', async () => {
    const key = 'absorbed:passivation';
    const session = supervisor.session(key, { agent: 'cell' });
    await session.send('hello');
    // The thread stops, but the call that stopped it reports a failure.
    const terminate = Worker.prototype.terminate;
    const spy = vi.spyOn(Worker.prototype, 'terminate').mockImplementationOnce(async function (
      this: Worker,
    ) {
      await terminate.call(this);
      throw new Error('the thread would not say it stopped');
    });
    try {
      expect(await session.passivate('requested')).toBe(false);
    } finally {
      spy.mockRestore();
    }

    expect(session.isPassivated).toBe(false);
    const lines = linesSaying(
      'the session could not be passivated; the next message starts its worker again',
    );
    expect(lines).toEqual([
      expect.objectContaining({
        level: 40,
        sessionKey: key,
        reason: 'requested',
        err: expect.objectContaining({ message: 'the thread would not say it stopped' }),
      }),
    ]);
    expect(await session.send('hello again')).toMatchObject({ text: expect.any(String) });
    expect((await session.history()).filter((m) => m.role === 'user')).toHaveLength(2);
  });

  it('logs a stats call its worker did not answer once, and leaves the heap out', async () => {
    const key = 'absorbed:stats';
    const session = supervisor.session(key, { agent: 'cell' });
    const turn = track(session.send('spin forever'));
    await waitForCell(spinning, 0, 1);

    const stats = await session.stats();

    expect(stats.busy).toBe(true);
    expect(stats.heapUsedBytes).toBeUndefined();
    const lines = linesSaying(
      'the session worker did not answer a stats call; its heap is left out',
    );
    expect(lines).toEqual([
      expect.objectContaining({
        level: 40,
        sessionKey: key,
        err: expect.objectContaining({ code: expect.any(String) }),
      }),
    ]);
    expect(turn.settled).toBe(false);
  });
});
