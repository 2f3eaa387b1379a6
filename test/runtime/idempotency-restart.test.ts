/**
 * Idempotent submission across a restart: the journal keeps a completed turn's idempotency
 * key, so a new Supervisor on the same FileStore directory (or Redis prefix) answers a repeat
 * from it (no model call, no second turn), refuses the key for another message, and lets the
 * key go once the window has passed.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileStore } from '../../src/runtime/stores/file.js';
import { RedisStore } from '../../src/runtime/stores/redis.js';
import type { JournalStore } from '../../src/runtime/stores/store.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { SimulatedClock } from '../../src/testing/simulated-clock.js';
import { deleteKeys } from '../fixtures/redis-keys.js';
import { rejectionOf, useTempDir } from '../support/harness.js';
import { sharedRedisUrl } from '../support/redis.js';
import { mockAgent, shutdown } from './helpers.js';

const WINDOW_MS = 60_000;
const REDIS_URL = await sharedRedisUrl();
const PREFIX = `agentcell-test:${randomUUID()}:`;

describe.each([
  ['the FileStore', (dir: string): JournalStore => new FileStore({ dir })],
  ['the RedisStore', (): JournalStore => new RedisStore({ redis: REDIS_URL, prefix: PREFIX })],
])('idempotent submission after a restart on %s', (_store, open) => {
  const dir = useTempDir('agentcell-idempotency-');
  let mock: MockLlm;

  beforeAll(async () => {
    mock = await startMockLlm();
  });

  const stores: JournalStore[] = [];
  afterAll(async () => {
    for (const store of stores) await store.close();
    await mock.close();
    const admin = new Redis(REDIS_URL);
    await deleteKeys(admin, PREFIX);
    await admin.quit();
  });

  /** A Supervisor on the same journals, as a restarted process would build it. */
  function host(clock: SimulatedClock): Supervisor {
    const store = open(dir);
    stores.push(store);
    const supervisor = new Supervisor({
      store,
      clock,
      idempotencyWindowMs: WINDOW_MS,
      warmPoolSize: 0,
    });
    supervisor.register('echo', mockAgent(mock));
    return supervisor;
  }

  it('a new Supervisor answers a repeat of a completed turn from the journal', async () => {
    const clock = new SimulatedClock(5_000_000);
    const first = host(clock);
    const reply = await first.session('restart:a', { agent: 'echo' }).send('remember me', {
      idempotencyKey: 'order-1',
    });
    await shutdown(first);

    const second = host(clock);
    try {
      const session = second.session('restart:a', { agent: 'echo' });
      const before = mock.requests.length;
      const repeat = await session.send('remember me', { idempotencyKey: 'order-1' });
      expect(repeat).toEqual(reply);
      const conflict = await rejectionOf(
        session.send('something else', { idempotencyKey: 'order-1' }),
      );
      expect(conflict.code).toBe('AGENTCELL_IDEMPOTENCY_CONFLICT');
      expect(mock.requests.length).toBe(before);
      expect(await session.history()).toHaveLength(2);

      // Past the window, counted from when the turn was journaled, the key is free again.
      clock.increment(WINDOW_MS);
      const later = await session.send('remember me', { idempotencyKey: 'order-1' });
      expect(later.turnId).not.toBe(reply.turnId);
      expect(mock.requests.length).toBe(before + 1);
    } finally {
      await shutdown(second);
    }
  });
});
