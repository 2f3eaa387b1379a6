/**
 * A full mailbox (maxQueuedPerSession) rejects the newest message or drops the oldest waiting
 * one, and every caller is settled with a typed error or a reply.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Reply } from '../../src/runtime/session-types.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { mockAgent, rejectionOf, shutdown, userTexts } from './helpers.js';

let mock: MockLlm;
const supervisors: Supervisor[] = [];

beforeAll(async () => {
  mock = await startMockLlm();
});

afterAll(async () => {
  await Promise.all(supervisors.map((supervisor) => shutdown(supervisor)));
  await mock.close();
});

function supervisorWith(overflow: 'rejectNewest' | 'dropOldest'): Supervisor {
  const supervisor = new Supervisor({ maxQueuedPerSession: 2, overflow });
  supervisor.register('cell', mockAgent(mock));
  supervisors.push(supervisor);
  return supervisor;
}

/** Sends a message whose model call stalls, and resolves once the model has it. */
async function holdTurn(supervisor: Supervisor, key: string): Promise<{ held: Promise<Reply> }> {
  mock.reset();
  const session = supervisor.session(key, { agent: 'cell' });
  const held = session.send('[[mock:stall]] hold the turn');
  await mock.waitForRequests(1);
  return { held };
}

describe('a full mailbox', () => {
  it('with maxQueuedPerSession: 0 runs a message on an idle session and rejects one that would wait', async () => {
    const supervisor = new Supervisor({ maxQueuedPerSession: 0 });
    supervisors.push(supervisor);
    supervisor.register('cell', mockAgent(mock));
    const session = supervisor.session('full:zero', { agent: 'cell' });
    mock.reset();
    const first = session.send('[[mock:stall]] runs at once');
    const second = session.send('would wait');
    expect((await rejectionOf(second)).code).toBe('AGENTCELL_MAILBOX_FULL');
    const outcome = await Promise.race([
      mock.waitForRequests(1).then(() => 'reached the model'),
      first.then(
        () => 'answered',
        (error: { code?: unknown }) => `rejected with ${String(error.code)}`,
      ),
    ]);
    expect(outcome).toBe('reached the model');
    expect(await session.interrupt()).toBe(true);
    expect((await rejectionOf(first)).code).toBe('AGENTCELL_INTERRUPTED');
  });

  it('rejects the newest message with AGENTCELL_MAILBOX_FULL (rejectNewest)', async () => {
    const supervisor = supervisorWith('rejectNewest');
    const { held } = await holdTurn(supervisor, 'full:newest');
    const session = supervisor.session('full:newest', { agent: 'cell' });

    const second = session.send('second');
    const third = session.send('third');
    expect(session.queued).toBe(2);
    const fourth = session.send('fourth');
    const error = await rejectionOf(fourth);
    expect(error.code).toBe('AGENTCELL_MAILBOX_FULL');
    expect(session.queued).toBe(2);

    expect(await session.interrupt('release the held turn')).toBe(true);
    const settled = await Promise.allSettled([held, second, third, fourth]);
    expect(settled.map((s) => s.status)).toEqual([
      'rejected',
      'fulfilled',
      'fulfilled',
      'rejected',
    ]);
    expect((await rejectionOf(held)).code).toBe('AGENTCELL_INTERRUPTED');
    expect([(await second).text, (await third).text]).toEqual(['echo: second', 'echo: third']);
    expect(userTexts(mock.requests).slice(1)).toEqual(['second', 'third']);
    expect(session.queued).toBe(0);
  });

  it('drops the oldest waiting message with AGENTCELL_MESSAGE_DROPPED and accepts the newest (dropOldest)', async () => {
    const supervisor = supervisorWith('dropOldest');
    const { held } = await holdTurn(supervisor, 'full:oldest');
    const session = supervisor.session('full:oldest', { agent: 'cell' });

    const second = session.send('second');
    const third = session.send('third');
    const fourth = session.send('fourth');
    const dropped = await rejectionOf(second);
    expect(dropped.code).toBe('AGENTCELL_MESSAGE_DROPPED');
    expect(session.queued).toBe(2);
    const fifth = session.send('fifth');
    expect((await rejectionOf(third)).code).toBe('AGENTCELL_MESSAGE_DROPPED');

    expect(await session.interrupt('release the held turn')).toBe(true);
    const settled = await Promise.allSettled([held, second, third, fourth, fifth]);
    expect(settled.map((s) => s.status)).toEqual([
      'rejected',
      'rejected',
      'rejected',
      'fulfilled',
      'fulfilled',
    ]);
    expect((await rejectionOf(held)).code).toBe('AGENTCELL_INTERRUPTED');
    expect([(await fourth).text, (await fifth).text]).toEqual(['echo: fourth', 'echo: fifth']);
    // The dropped messages never reached the model.
    expect(userTexts(mock.requests).slice(1)).toEqual(['fourth', 'fifth']);
    expect((await session.history()).map((m) => m.content)).toEqual([
      'fourth',
      'echo: fourth',
      'fifth',
      'echo: fifth',
    ]);
  });
});
