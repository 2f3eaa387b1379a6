/**
 * The controller's side of a partition run, inside its own namespace: starts Redis and the mock
 * model in theirs, then for each scenario a fresh cluster of three nodes (n1, n2, n3, a
 * namespace each) under steady load, the fault, and the audit; prints the results table.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { RedisStore } from '../../src/runtime/stores/redis.js';
import { leaseOwners, NodeProcess, until } from '../../test/cluster/harness.js';
import type { NetworkLab } from './lab.js';
import { SCENARIOS, type Scenario } from './scenarios.js';
import { type Audit, audit, keysPerOwner, Traffic } from './traffic.js';

const SHARDS = 16;
const HEARTBEAT_MS = 250;
const LEASE_MS = 2_500;
/** Sessions per node, and the pause of each session between two messages. */
const SESSIONS_PER_NODE = 3;
const PAUSE_MS = 150;
const MOCK_MODULE = fileURLToPath(new URL('../../dist/src/testing/mock-llm.js', import.meta.url));

export interface ScenarioResult extends Audit {
  readonly name: string;
  readonly fault: string;
  readonly seconds: number;
  readonly facts: Record<string, string | number>;
}

/** A server in a namespace: resolves once it printed `ready` (or rejects with its output). */
async function startServer(lab: NetworkLab, member: string, command: string[], ready: RegExp) {
  const [file = '', ...args] = lab.exec(member, command);
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${member} did not start: ${output}`)), 20_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (ready.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', () => reject(new Error(`${member} exited: ${output}`)));
  });
  return child;
}

export async function runInside(lab: NetworkLab, quick: boolean): Promise<ScenarioResult[]> {
  const redisAddress = lab.member('redis').address;
  const llmAddress = lab.member('llm').address;
  const servers: ChildProcess[] = [];
  const redisUrl = `redis://${redisAddress}:6379`;
  const admin = new Redis(redisUrl, { lazyConnect: true });
  const results: ScenarioResult[] = [];
  try {
    servers.push(
      await startServer(
        lab,
        'redis',
        [
          'redis-server',
          '--bind',
          redisAddress,
          '--port',
          '6379',
          '--save',
          '',
          '--appendonly',
          'no',
          // Only the lab's namespaces can reach this address.
          '--protected-mode',
          'no',
        ],
        /Ready to accept connections/,
      ),
    );
    const mockBoot = `import(${JSON.stringify(MOCK_MODULE)}).then(async (m) => { await m.startMockLlm({ host: ${JSON.stringify(llmAddress)}, port: 8080, latency: { firstTokenMs: 250 } }); console.log('ready'); })`;
    servers.push(await startServer(lab, 'llm', [process.execPath, '-e', mockBoot], /ready/));
    await admin.connect();
    const selected = SCENARIOS.filter((scenario) => !quick || scenario.quick);
    for (const scenario of selected) {
      const result = await runScenario(lab, scenario, {
        admin,
        redisUrl,
        mockUrl: `http://${llmAddress}:8080/v1`,
      });
      results.push(result);
      console.log(
        `${result.name}: ${result.violations.length === 0 ? 'ok' : 'FAILED'} (${result.seconds} s)`,
      );
      for (const violation of result.violations.slice(0, 20)) console.log(`  - ${violation}`);
    }
    console.log(`\n${resultsTable(results)}`);
  } finally {
    admin.disconnect();
    for (const server of servers) server.kill('SIGKILL');
  }
  return results;
}

async function runScenario(
  lab: NetworkLab,
  scenario: Scenario,
  servers: { readonly admin: Redis; readonly redisUrl: string; readonly mockUrl: string },
): Promise<ScenarioResult> {
  const started = Date.now();
  const prefix = `partitions:${scenario.name}:${randomUUID().slice(0, 8)}:`;
  const { admin } = servers;
  const nodes = await Promise.all(
    ['n1', 'n2', 'n3'].map((nodeId) =>
      NodeProcess.start(
        {
          redis: servers.redisUrl,
          prefix,
          nodeId,
          shards: SHARDS,
          heartbeatMs: HEARTBEAT_MS,
          leaseMs: LEASE_MS,
          mockUrl: servers.mockUrl,
        },
        (command) => lab.exec(nodeId, command),
      ),
    ),
  );
  const store = new RedisStore({ redis: servers.redisUrl, prefix });
  try {
    // Every shard owned, by all three, before the load starts.
    const owners = await until(
      async () => {
        const now = await leaseOwners(admin, prefix, SHARDS);
        const spread = new Set([...now.values()].map((owner) => owner.node)).size;
        return now.size === SHARDS && spread === 3 ? now : undefined;
      },
      30_000,
      'the three nodes to share the shards',
    );
    const keysByNode = keysPerOwner(owners, SHARDS, SESSIONS_PER_NODE);
    const traffic = new Traffic([...keysByNode.values()].flat(), nodes, PAUSE_MS);
    await sleep(1_500);
    const report = await scenario.inflict({
      lab,
      nodes,
      admin,
      prefix,
      shards: SHARDS,
      leaseMs: LEASE_MS,
      owners,
      keysByNode,
      traffic,
    });
    await sleep(1_000);
    lab.healAll();
    await traffic.stop(90_000);
    const outcome = await audit({
      sent: traffic.sent,
      nodes,
      admin,
      store,
      prefix,
      shards: SHARDS,
      ms: 90_000,
    });
    return {
      name: scenario.name,
      fault: scenario.fault,
      ...outcome,
      facts: report.facts,
      violations: [...report.violations, ...outcome.violations],
      seconds: Math.round((Date.now() - started) / 1000),
    };
  } catch (error) {
    return {
      name: scenario.name,
      fault: scenario.fault,
      sent: 0,
      accepted: 0,
      refused: {},
      replies: 0,
      errors: {},
      facts: {},
      violations: [String(error instanceof Error ? error.message : error)],
      seconds: Math.round((Date.now() - started) / 1000),
    };
  } finally {
    lab.healAll();
    await Promise.all(nodes.map((node) => node.kill()));
    await store.close();
  }
}

function codes(counts: Readonly<Record<string, number>>): string {
  const entries = Object.entries(counts);
  return entries.length === 0 ? '0' : entries.map(([code, n]) => `${n} ${code}`).join(', ');
}

/** The markdown table of a run: the promises kept per scenario, then what each measured. */
export function resultsTable(results: readonly ScenarioResult[]): string {
  const rows = results.map((result) =>
    [
      result.name,
      result.fault,
      result.sent,
      result.accepted,
      codes(result.refused),
      result.replies,
      codes(result.errors),
      result.violations.length === 0 ? 'none' : `**${result.violations.length}**`,
      Object.entries(result.facts)
        .map(([fact, value]) => `${fact}: ${value}`)
        .join('; '),
    ].join(' | '),
  );
  return [
    '| scenario | fault | sent | accepted | refused | replies | typed errors | broken promises | measured |',
    '|---|---|---:|---:|---|---:|---|---|---|',
    ...rows.map((row) => `| ${row} |`),
  ].join('\n');
}
