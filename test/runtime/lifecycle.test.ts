/**
 * close() drains what was accepted; destroy() fails everything pending at once. Both are
 * idempotent, refuse new work with a typed error, and leave no worker thread or port behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import {
  createGate,
  type Gate,
  logEvents,
  mockAgent,
  rejectionOf,
  settledWorkerResources,
  shutdown,
  thrownBy,
  workerResources,
} from './helpers.js';

let mock: MockLlm;
let gate: Gate;
const supervisors: Supervisor[] = [];

beforeAll(async () => {
  mock = await startMockLlm({
    rules: [{ match: /^hold/, steps: [{ toolCalls: [{ name: 'gate', arguments: {} }] }] }],
  });
  gate = createGate('gate');
});

afterAll(async () => {
  gate.releaseAll();
  await Promise.all(supervisors.map((supervisor) => shutdown(supervisor)));
  await mock.close();
});

function newSupervisor(): Supervisor {
  const supervisor = new Supervisor();
  supervisor.register('cell', mockAgent(mock, { tools: [gate.tool] }));
  supervisors.push(supervisor);
  return supervisor;
}

describe('what a live session worker holds', () => {
  it('shows up in process.getActiveResourcesInfo() as MessagePorts, gone after close', async () => {
    const before = await settledWorkerResources(0);
    const supervisor = newSupervisor();
    await supervisor.session('life:probe', { agent: 'cell' }).send('hi');
    // The worker's own port plus the event and host-callback channels of the runner.
    expect(workerResources()).toBeGreaterThan(before);
    expect(supervisor.stats().liveWorkers).toBe(1);
    await supervisor.close();
    expect(await settledWorkerResources(before)).toBe(before);
  });
});

describe('close()', () => {
  it('answers every message queued before it, then refuses new work and stops the workers', async () => {
    const before = await settledWorkerResources(0);
    const supervisor = newSupervisor();
    const log = logEvents(supervisor);
    const session = supervisor.session('life:close', { agent: 'cell' });
    const other = supervisor.session('life:close-other', { agent: 'cell' });
    expect((await other.send('warm')).text).toBe('echo: warm');

    const held = session.send('hold on');
    const call = await gate.next();
    const queued = [session.send('q1'), session.send('q2')];
    const closing = supervisor.close();
    expect(supervisor.status).toBe('closing');

    // Nothing new is admitted while closing, on old or new session handles.
    expect((await rejectionOf(session.send('late'))).code).toBe('AGENTCELL_SUPERVISOR_CLOSED');
    expect((await rejectionOf(other.send('late'))).code).toBe('AGENTCELL_SUPERVISOR_CLOSED');
    expect(thrownBy(() => supervisor.session('life:new', { agent: 'cell' })).code).toBe(
      'AGENTCELL_SUPERVISOR_CLOSED',
    );

    call.release();
    const replies = await Promise.all([held, ...queued]);
    expect(replies.map((reply) => reply.text)).toEqual([
      'tool results: opened',
      'echo: q1',
      'echo: q2',
    ]);
    await closing;
    // Idempotent: the same settled shutdown.
    await supervisor.close();
    await expect(supervisor.close()).resolves.toBeUndefined();

    expect(supervisor.status).toBe('closed');
    expect((await rejectionOf(session.send('after'))).code).toBe('AGENTCELL_SUPERVISOR_CLOSED');
    expect(thrownBy(() => supervisor.session('life:close', { agent: 'cell' })).code).toBe(
      'AGENTCELL_SUPERVISOR_CLOSED',
    );
    expect(supervisor.stats()).toMatchObject({
      liveWorkers: 0,
      busySessions: 0,
      queuedMessages: 0,
    });
    expect(session.threadId).toBeUndefined();
    expect(await settledWorkerResources(before)).toBe(before);
    expect(
      log
        .of('session:close')
        .map((e) => e.key)
        .sort(),
    ).toEqual(['life:close', 'life:close-other']);
    // What was drained is journaled.
    expect((await session.history()).filter((m) => m.role === 'user')).toHaveLength(3);
  });
});

describe('destroy()', () => {
  it('fails every running and queued message with AGENTCELL_SUPERVISOR_DESTROYED and stops every worker', async () => {
    const before = await settledWorkerResources(0);
    const supervisor = newSupervisor();
    const session = supervisor.session('life:destroy', { agent: 'cell' });
    const stalled = supervisor.session('life:destroy-stalled', { agent: 'cell' });
    mock.reset();

    const held = session.send('hold on');
    await gate.next();
    const queued = [session.send('q1'), session.send('q2')];
    const stalledTurn = stalled.send('[[mock:stall]] never answered');
    await mock.waitForRequests(2);
    expect(supervisor.stats().liveWorkers).toBe(2);

    const destroying = supervisor.destroy('test over');
    const settled = await Promise.allSettled([held, ...queued, stalledTurn]);
    for (const outcome of settled) {
      expect(outcome.status).toBe('rejected');
      const reason = (outcome as PromiseRejectedResult).reason as { code?: unknown };
      expect(reason.code).toBe('AGENTCELL_SUPERVISOR_DESTROYED');
    }
    const error = await rejectionOf(held);
    expect(error.details?.['reason']).toBe('test over');
    await destroying;
    // Idempotent, and close() after destroy() is the same settled shutdown.
    await supervisor.destroy('again');
    await supervisor.close();

    expect(supervisor.status).toBe('destroyed');
    expect((await rejectionOf(session.send('after'))).code).toBe('AGENTCELL_SUPERVISOR_DESTROYED');
    expect(thrownBy(() => supervisor.session('life:other', { agent: 'cell' })).code).toBe(
      'AGENTCELL_SUPERVISOR_DESTROYED',
    );
    expect(supervisor.stats().liveWorkers).toBe(0);
    expect(await settledWorkerResources(before)).toBe(before);
  });

  it('stops a worker that was still starting when destroy() was called', async () => {
    const before = await settledWorkerResources(0);
    const supervisor = newSupervisor();
    const session = supervisor.session('life:starting', { agent: 'cell' });
    const first = session.send('hello');
    await new Promise<void>((resolve) => setImmediate(resolve));
    // Admitted, its worker on the way up (a start takes hundreds of milliseconds).
    expect(supervisor.stats().turnsInFlight).toBe(1);
    expect(session.threadId).toBeUndefined();

    const destroying = supervisor.destroy('early');
    expect((await rejectionOf(first)).code).toBe('AGENTCELL_SUPERVISOR_DESTROYED');
    await destroying;
    expect(supervisor.stats().liveWorkers).toBe(0);
    expect(await settledWorkerResources(before)).toBe(before);
  });
});
