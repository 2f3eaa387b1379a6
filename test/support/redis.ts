/**
 * The Redis that the store and cluster tests share: AGENTCELL_TEST_REDIS, else
 * 127.0.0.1:6379. A test file checks it once before use, so that a missing Redis fails at once
 * with the command that starts it, rather than as timeouts of a client that keeps retrying.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';

/** How .ci/run starts the shared Redis (in memory only). */
export const START_REDIS =
  'mkdir -p /var/lib/redis /var/log/redis && redis-server --daemonize yes --bind 127.0.0.1 -::1 ' +
  '--port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log';

const INSTALL_REDIS = 'apt-get update && apt-get install -y --no-install-recommends redis-server';

const url = process.env['AGENTCELL_TEST_REDIS'] ?? 'redis://127.0.0.1:6379';
let reachable: Promise<string> | undefined;

async function ping(): Promise<string> {
  const probe = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 3_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  // Reported below with what to do about it; the first error names the cause (ECONNREFUSED).
  let cause: Error | undefined;
  probe.on('error', (error: Error) => {
    cause ??= error;
  });
  try {
    await probe.connect();
    await probe.ping();
    return url;
  } catch (error) {
    throw new Error(
      `Redis is not reachable at ${url} (${(cause ?? (error as Error)).message}), and these tests need ` +
        `Redis 7 there. Start it as .ci/run does:\n  ${START_REDIS}\n` +
        `(install it first if needed: ${INSTALL_REDIS}), or point AGENTCELL_TEST_REDIS at another Redis.`,
      { cause: cause ?? error },
    );
  } finally {
    probe.disconnect();
  }
}

/** The shared Redis's URL, once it has answered a PING; else an error saying how to start it. */
export function sharedRedisUrl(): Promise<string> {
  reachable ??= ping();
  return reachable;
}

/** Resolves when `redis-server` can be run (for tests that start a Redis of their own). */
export async function requireRedisServer(): Promise<void> {
  try {
    await promisify(execFile)('redis-server', ['--version'], { timeout: 10_000 });
  } catch (error) {
    throw new Error(
      `redis-server could not be run (${(error as Error).message}); this test starts Redis ` +
        `servers of its own. Install it as .ci/run does: ${INSTALL_REDIS}`,
      { cause: error },
    );
  }
}
