/**
 * The cluster across real network hops (the bounded run of scripts/partitions.ts): Redis, the
 * model and three nodes in network namespaces of their own; n1's link to Redis is cut both ways,
 * then one way (Redis's answers lost), each past the lease, under steady load. n1's shards must
 * move and its sessions be answered elsewhere, n1 must drop them once the link is back, and
 * every accepted message must end in exactly one outcome, journaled once and in order.
 *
 * Needs root, iproute2 and redis-server: without them the script fails saying what to install,
 * and so does this test.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { ScenarioResult } from '../../scripts/partitions/run.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const dir = await mkdtemp(join(tmpdir(), 'agentcell-partitions-'));

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the cluster across network partitions', () => {
  it('fences a node cut off from Redis, resumes its sessions elsewhere, and loses nothing', {
    // Two scenarios; on a loaded machine a cut lasts longer, and so does TCP's recovery from it.
    timeout: 400_000,
  }, async () => {
    const json = join(dir, 'results.json');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'scripts/partitions.ts', '--quick', '--json', json],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code, output).toBe(0);
    const results = JSON.parse(await readFile(json, 'utf8')) as ScenarioResult[];
    expect(results.map((result) => result.name)).toEqual(['redis-cut', 'one-way-in']);
    for (const result of results) {
      expect(result.violations, result.name).toEqual([]);
      expect(result.accepted, result.name).toBeGreaterThan(50);
      // Every accepted message was answered: nothing here makes a turn fail.
      expect(result.replies, result.name).toBe(result.accepted);
      expect(typeof result.facts['taken over after (ms)'], output).toBe('number');
      expect(result.facts["n1's sessions answered elsewhere"], output).toBeGreaterThan(0);
      expect(typeof result.facts['n1 dropped them after heal (ms)'], output).toBe('number');
    }
  });
});
