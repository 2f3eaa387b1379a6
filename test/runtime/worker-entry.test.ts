import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentcellErrorCode, fromWire, isErrorWire } from '../../src/errors.js';
import { workerEntryUrl } from '../../src/runtime/worker-entry.js';

describe('worker entry files', () => {
  let worker: Worker;
  let workerThreadId: number;

  beforeAll(async () => {
    worker = new Worker(workerEntryUrl('probe'));
    const [ready] = (await once(worker, 'message')) as [{ type: string; threadId: number }];
    expect(ready.type).toBe('ready');
    workerThreadId = ready.threadId;
  });

  afterAll(async () => {
    await worker.terminate();
  });

  async function ask(request: unknown): Promise<Record<string, unknown>> {
    worker.postMessage(request);
    const [reply] = (await once(worker, 'message')) as [Record<string, unknown>];
    return reply;
  }

  it('starts a real worker thread from workers/ and talks to it', async () => {
    expect(workerThreadId).toBeGreaterThan(0);
    expect(await ask({ type: 'echo', value: { n: 1 } })).toEqual({ type: 'echo', value: { n: 1 } });
  });

  it.each<AgentcellErrorCode>([
    'AGENTCELL_MAILBOX_FULL',
    'AGENTCELL_SESSION_CRASHED',
    'AGENTCELL_BLUEPRINT_INVALID',
  ])('an error encoded in the worker comes back as its class (%s)', async (code) => {
    const reply = await ask({ type: 'throw', code, message: 'from the worker' });
    expect(isErrorWire(reply['error'])).toBe(true);
    const error = fromWire(reply['error'] as Parameters<typeof fromWire>[0]);
    expect(error.code).toBe(code);
    expect(error.constructor.name).toBe(error.name);
    expect(error.message).toMatch(/^from the worker\. /);
    expect(error.details).toEqual({ threadId: workerThreadId });
  });

  it('without the wire form a posted error loses its class and code', async () => {
    const { port1, port2 } = new MessageChannel();
    const received = once(port2, 'message');
    const error = Object.assign(new RangeError('x'), { code: 'AGENTCELL_MAILBOX_FULL' });
    port1.postMessage(error);
    const [arrived] = (await received) as [Error & { code?: string }];
    port1.close();
    expect(arrived.code).toBeUndefined();
  });
});
