/**
 * Every lifecycle event of a session is logged once, with its session key (and the turn id
 * where there is one), through the one logger: start, passivate, crash, failed turn, restart,
 * fail.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, setLogger } from '../../src/log.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { fixtureRegistry, logEvents, mockAgent, rejectionOf, shutdown } from './helpers.js';

interface Line {
  readonly msg: string;
  readonly area: string;
  readonly sessionKey?: string;
  readonly turnId?: string;
  readonly [field: string]: unknown;
}

const lines: Line[] = [];
let mock: MockLlm;
let supervisor: Supervisor;

beforeAll(async () => {
  setLogger(
    createLogger({
      level: 'info',
      destination: { write: (line: string) => lines.push(JSON.parse(line) as Line) },
    }),
  );
  mock = await startMockLlm({
    rules: [
      { match: /^crash/, steps: [{ toolCalls: [{ name: 'crash', arguments: { how: 'exit' } }] }] },
    ],
  });
  const { registry, tools } = await fixtureRegistry(['crash']);
  supervisor = new Supervisor({
    tools: registry,
    warmPoolSize: 0,
    restart: { maxRestarts: 1, windowMs: 60_000, backoffMs: 0 },
  });
  supervisor.register('cell', mockAgent(mock, { tools }));
});

afterAll(async () => {
  setLogger(createLogger());
  if (supervisor) await shutdown(supervisor);
  await mock?.close();
});

describe('the lifecycle log', () => {
  it('logs each event of a session once, with its key and turn id', async () => {
    const events = logEvents(supervisor);
    const key = 'tenant-1:logged';
    const session = supervisor.session(key, { agent: 'cell' });
    await session.send('hello');
    await session.passivate('requested');
    const crashed = await rejectionOf(session.send('crash now'));
    expect(crashed.code).toBe('AGENTCELL_SESSION_CRASHED');
    const failedTurnId = crashed.details?.['turnId'];
    expect(failedTurnId).toEqual(expect.any(String));
    await session.send('hello again');
    const failed = events.next('session:fail');
    await rejectionOf(session.send('crash again'));
    await failed;

    const of = (msg: string) => lines.filter((line) => line.msg === msg && line.sessionKey === key);
    expect(of('session started').map((line) => line['afterPassivation'])).toEqual([
      false,
      true,
      false,
    ]);
    expect(of('session passivated')).toMatchObject([{ reason: 'requested', area: 'runtime' }]);
    const crashes = of('session worker crashed');
    expect(crashes).toHaveLength(2);
    expect(crashes[0]).toMatchObject({
      turnId: failedTurnId,
      inFlightTools: ['crash'],
      err: { code: 'AGENTCELL_SESSION_CRASHED' },
    });
    expect(of('turn failed')[0]).toMatchObject({
      turnId: failedTurnId,
      code: 'AGENTCELL_SESSION_CRASHED',
      agent: 'cell',
    });
    expect(of('session restarting from its journal')).toMatchObject([{ restarts: 1 }]);
    expect(
      of('session failed: it crashed more often than the restart policy allows'),
    ).toMatchObject([{ err: { code: 'AGENTCELL_SESSION_FAILED' } }]);
  });
});
