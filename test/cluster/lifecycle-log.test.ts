/**
 * A cluster node logs its shard hand-overs once each, with its node id, through the one
 * logger: the shards it takes over when it joins, the ones it drains and hands back when it
 * leaves.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterNode } from '../../src/cluster/node.js';
import { createLogger, setLogger } from '../../src/log.js';
import { deleteKeys } from '../fixtures/redis-keys.js';
import { sharedRedisUrl } from '../support/redis.js';

const REDIS_URL = await sharedRedisUrl();
const PREFIX = `agentcell-test:${randomUUID()}:`;
const SHARDS = 4;

const lines: { msg: string; nodeId?: string; shard?: number; area?: string }[] = [];
let admin: Redis;

beforeAll(() => {
  admin = new Redis(REDIS_URL);
  setLogger(
    createLogger({
      level: 'info',
      destination: { write: (line: string) => lines.push(JSON.parse(line)) },
    }),
  );
});

afterAll(async () => {
  setLogger(createLogger());
  await deleteKeys(admin, PREFIX);
  await admin.quit();
});

describe('the cluster lifecycle log', () => {
  it('logs each shard taken over on join and handed over on leave', async () => {
    const node = new ClusterNode({
      redis: REDIS_URL,
      prefix: PREFIX,
      nodeId: 'logged-node',
      shards: SHARDS,
      heartbeatMs: 100,
      leaseMs: 600,
      supervisor: { warmPoolSize: 0 },
    });
    try {
      await node.start();
      const shardsOf = (msg: string) =>
        lines
          .filter((line) => line.msg === msg && line.nodeId === 'logged-node')
          .map((line) => line.shard)
          .sort();
      expect(shardsOf('shard taken over')).toEqual([0, 1, 2, 3]);
      await node.close();
      expect(shardsOf('shard drained and handed over')).toEqual([0, 1, 2, 3]);
      expect(lines.every((line) => line.area === 'cluster' || line.area === 'runtime')).toBe(true);
    } finally {
      await node.destroy();
    }
  });
});
