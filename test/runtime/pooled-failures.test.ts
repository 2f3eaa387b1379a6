/**
 * How the installed piscina fails, and what pooled placement makes of it (`pool-failure.ts`,
 * `thread-exits.ts`). piscina gives these failures no code and no class but `AbortError`, so
 * the mapping rests on when they happen; these tests pin it to the version it was read from.
 * On an upgrade: read piscina's `errors.js`, `abort.js`, `ThreadPool.runTask`, `_onError` and
 * `destroy` again, fix the mapping if they changed, then move PISCINA_VERSION.
 */
import { readFileSync } from 'node:fs';
import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { afterEach, describe, expect, it } from 'vitest';
import { runPoolTask } from '../../src/runtime/placement/pool-failure.js';
import { ThreadExits } from '../../src/runtime/placement/thread-exits.js';

const PISCINA_VERSION = '5.3.2';
const TASK = new URL('../fixtures/pool-task.js', import.meta.url).href;

const pools: Piscina[] = [];

afterEach(async () => {
  await Promise.all(pools.splice(0).map((pool) => pool.destroy()));
});

function onePool(options: { readonly maxQueue?: number } = {}): Piscina {
  const pool = new Piscina({
    filename: TASK,
    minThreads: 1,
    maxThreads: 1,
    concurrentTasksPerWorker: 1,
    atomics: 'disabled',
    ...options,
  });
  pools.push(pool);
  return pool;
}

/** A task that holds the pool's thread until released. */
async function hold(pool: Piscina, isClosing: () => boolean = () => false) {
  const channel = new MessageChannel();
  const started = new Promise<void>((resolve) => channel.port1.once('message', () => resolve()));
  const done = runPoolTask(
    () => pool.run({ action: 'hold', port: channel.port2 }, { transferList: [channel.port2] }),
    isClosing,
  );
  done.catch(() => {});
  await started;
  return {
    done,
    release: () => {
      channel.port1.postMessage('go');
      channel.port1.close();
    },
  };
}

function run(pool: Piscina, task: Record<string, unknown>, isClosing: () => boolean = () => false) {
  return runPoolTask(() => pool.run(task), isClosing);
}

describe('the installed piscina', () => {
  it('is the version the failure mapping was read from', () => {
    const manifest = new URL('../../node_modules/piscina/package.json', import.meta.url);
    const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string };
    expect(version).toBe(PISCINA_VERSION);
  });
});

describe('pool task failures, mapped to typed errors', () => {
  it('a task the full queue refuses: AGENTCELL_CAPACITY_EXCEEDED, and the queued ones still run', async () => {
    const pool = onePool({ maxQueue: 1 });
    const held = await hold(pool);
    const queued = run(pool, { action: 'quick' });
    const refused = await run(pool, { action: 'quick' }).catch((error: unknown) => error);
    expect(refused).toMatchObject({
      code: 'AGENTCELL_CAPACITY_EXCEEDED',
      details: { reason: 'queue-full' },
      cause: expect.any(Error),
    });
    held.release();
    expect(await held.done).toBe('released');
    expect(await queued).toBe('done');
  });

  it('running and queued tasks of a destroyed pool: AGENTCELL_SESSION_CRASHED, pool-closed', async () => {
    const pool = onePool();
    let destroyed = false;
    const held = await hold(pool, () => destroyed);
    const queued = run(pool, { action: 'quick' }, () => destroyed);
    const settled = Promise.allSettled([held.done, queued]);
    destroyed = true;
    await pool.destroy();
    for (const outcome of await settled) {
      expect(outcome).toMatchObject({
        status: 'rejected',
        reason: { code: 'AGENTCELL_SESSION_CRASHED', details: { reason: 'pool-closed' } },
      });
    }
  });

  it('a task given to a closing pool (piscina aborts it): AGENTCELL_SESSION_CRASHED, pool-closed', async () => {
    const pool = onePool();
    const held = await hold(pool);
    const closed = pool.close();
    await expect(run(pool, { action: 'quick' })).rejects.toMatchObject({
      code: 'AGENTCELL_SESSION_CRASHED',
      details: { reason: 'pool-closed' },
      cause: expect.objectContaining({ name: 'AbortError' }),
    });
    held.release();
    await closed;
    expect(await held.done).toBe('released');
  });

  it('a task whose thread exits: thread-died, with the exit code seen by the thread watcher', async () => {
    const pool = onePool();
    const exits = new ThreadExits(pool);
    const [threadId] = pool.threads.map((thread) => thread.threadId);
    const error = await run(pool, { action: 'exit', code: 3 }).catch((thrown: unknown) => {
      // Read as a runner does: in the failure's handler, with nothing awaited in between.
      return { thrown, exitCode: threadId === undefined ? undefined : exits.codeOf(threadId) };
    });
    expect(error).toMatchObject({
      thrown: { code: 'AGENTCELL_SESSION_CRASHED', details: { reason: 'thread-died' } },
      exitCode: 3,
    });
  });

  it('a task whose thread is terminated: thread-died, exit code 1', async () => {
    const pool = onePool();
    const exits = new ThreadExits(pool);
    const held = await hold(pool);
    const [thread] = pool.threads;
    const threadId = thread?.threadId ?? -1;
    await thread?.terminate();
    await expect(held.done).rejects.toMatchObject({
      code: 'AGENTCELL_SESSION_CRASHED',
      details: { reason: 'thread-died' },
    });
    expect(exits.codeOf(threadId)).toBe(1);
  });

  it("a task whose thread throws: thread-died, carrying the thread's error", async () => {
    const pool = onePool();
    const error = await run(pool, { action: 'throw' }).catch((thrown: unknown) => thrown);
    expect(error).toMatchObject({
      code: 'AGENTCELL_SESSION_CRASHED',
      message: expect.stringContaining('the task threw from a timer'),
      details: { reason: 'thread-died' },
    });
  });
});
