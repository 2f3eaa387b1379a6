/**
 * The faults of a partition run, one scenario each, all on node n1's links unless said: what is
 * done to the network, and what is measured while it lasts. Whatever the fault, the audit
 * afterwards (traffic.ts) holds every scenario to the same promises.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { LeaseOwner } from '../../src/cluster/leases.js';
import { shardOf } from '../../src/cluster/shards.js';
import { leaseOwners, type NodeProcess, until } from '../../test/cluster/harness.js';
import type { NetworkLab } from './lab.js';
import type { Traffic } from './traffic.js';

export interface ScenarioContext {
  readonly lab: NetworkLab;
  readonly nodes: readonly NodeProcess[];
  readonly admin: Redis;
  readonly prefix: string;
  readonly shards: number;
  readonly leaseMs: number;
  /** Lease owners when the traffic started. */
  readonly owners: Map<number, LeaseOwner>;
  /** Sessions by the node that owned them when the traffic started. */
  readonly keysByNode: Map<string, string[]>;
  /** The run's load; what a scenario sends itself goes through it, to be audited too. */
  readonly traffic: Traffic;
}

/** What a scenario measured (shown in the results table), and what it found wrong. */
export interface ScenarioReport {
  readonly facts: Record<string, string | number>;
  readonly violations: string[];
}

export interface Scenario {
  readonly name: string;
  /** The fault, in words, for the results table. */
  readonly fault: string;
  /** Part of the bounded run of `npm test`. */
  readonly quick: boolean;
  inflict(context: ScenarioContext): Promise<ScenarioReport>;
}

function shardsOf(owners: Map<number, LeaseOwner>, node: string): number[] {
  return [...owners].filter(([, owner]) => owner.node === node).map(([shard]) => shard);
}

function eventsSince(node: NodeProcess | undefined, ev: string, since: number) {
  return (node?.events ?? []).filter((event) => event.ev === ev && event.at >= since);
}

/**
 * n1 loses Redis for longer than its lease, then gets it back. Its shards must go to the other
 * nodes (whose turns answer n1's sessions meanwhile), and once the link is back, n1 must learn
 * it was fenced and drop every shard it held.
 */
async function cutPastTheLease(
  context: ScenarioContext,
  cut: () => void,
  mend: () => void,
): Promise<ScenarioReport> {
  const { nodes, owners, admin, prefix, shards } = context;
  const n1 = nodes[0];
  const violations: string[] = [];
  const held = shardsOf(owners, 'n1');
  const started = Date.now();
  context.traffic.avoid('n1');
  cut();
  let takeoverMs: number | string = 'none';
  try {
    await until(
      async () => {
        const now = await leaseOwners(admin, prefix, shards);
        return held.every((shard) => (now.get(shard)?.node ?? 'n1') !== 'n1') ? true : undefined;
      },
      context.leaseMs * 6,
      `the shards of n1 to be taken over`,
    );
    takeoverMs = Date.now() - started;
  } catch (error) {
    violations.push(String(error));
  }
  const answeredElsewhere = () =>
    nodes
      .slice(1)
      .flatMap((node) => eventsSince(node, 'settle', started))
      .filter((event) => context.keysByNode.get('n1')?.includes(String(event['key']))).length;
  // n1 stays away until the new owners have answered some of its sessions.
  await until(
    async () => (answeredElsewhere() > 0 ? true : undefined),
    30_000,
    'a session of n1 to be answered by another node while n1 is away',
  ).catch((error: unknown) => violations.push(String(error)));
  const answered = answeredElsewhere();
  const mended = Date.now();
  mend();
  context.traffic.restore();
  let fencedMs: number | string = 'none';
  try {
    await until(
      async () => {
        const lost = new Set(eventsSince(n1, 'lose', started).map((event) => event['shard']));
        return held.every((shard) => lost.has(shard)) ? true : undefined;
      },
      // n1 hears again only when TCP retransmits what the cut swallowed; its retransmission
      // timer doubles while the link is down, so the wait grows with the cut (up to Linux's
      // 120 s cap): a cut stretched by a loaded machine is not a node that never learns.
      Math.min(Math.max(30_000, 2 * (mended - started)), 130_000),
      'n1 to learn it lost every shard it held',
    );
    fencedMs = Date.now() - mended;
  } catch (error) {
    violations.push(String(error));
  }
  return {
    facts: {
      'n1 shards': held.length,
      'taken over after (ms)': takeoverMs,
      "n1's sessions answered elsewhere": answered,
      'n1 dropped them after heal (ms)': fencedMs,
      'writes refused by the fence': eventsSince(n1, 'fenced', started).length,
    },
    violations,
  };
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'redis-cut',
    fault: 'n1 ⇹ Redis, both ways, past the lease',
    quick: true,
    inflict: (context) =>
      cutPastTheLease(
        context,
        () => context.lab.isolate('n1', 'redis'),
        () => context.lab.healAll(),
      ),
  },
  {
    name: 'one-way-out',
    fault: "n1 → Redis dropped (n1's packets lost), past the lease",
    quick: false,
    inflict: (context) =>
      cutPastTheLease(
        context,
        () => context.lab.cut('n1', 'redis'),
        () => context.lab.healAll(),
      ),
  },
  {
    name: 'one-way-in',
    fault: "Redis → n1 dropped (n1's commands run, their answers lost), past the lease",
    quick: true,
    inflict: (context) =>
      cutPastTheLease(
        context,
        () => context.lab.cut('redis', 'n1'),
        () => context.lab.healAll(),
      ),
  },
  {
    name: 'callers-cut',
    fault: "n1 ⇹ Redis for 40% of the lease while its callers' turns run on n2 and n3",
    quick: false,
    async inflict({ lab, nodes, owners, shards, leaseMs, traffic }) {
      const n1 = nodes[0];
      if (!n1) throw new Error('no node n1');
      const violations: string[] = [];
      // Sessions of their own, run by n2 and n3, each sent one message through n1: their
      // replies are written to n1's stream while n1 cannot read it.
      const keys: string[] = [];
      for (let index = 0; keys.length < 12; index++) {
        const key = `owed${index}`;
        if (owners.get(shardOf(key, shards))?.node !== 'n1') keys.push(key);
      }
      const owed = keys.map((key) => traffic.send(n1, key, `${key} m0`));
      await Promise.all(owed.map((one) => one.accepted));
      lab.isolate('n1', 'redis');
      await sleep(leaseMs * 0.4);
      lab.healAll();
      const outcomes = await Promise.all(owed.map((one) => one.outcome));
      const delivered = outcomes.filter((outcome) => outcome.kind === 'reply').length;
      if (delivered !== owed.length) {
        violations.push(`${owed.length - delivered} of n1's callers got no reply`);
      }
      return {
        facts: { 'replies owed to n1': owed.length, 'delivered after heal': delivered },
        violations,
      };
    },
  },
  {
    name: 'flapping',
    fault: 'n1 ⇹ Redis cut 300 ms, back 500 ms, ten times',
    quick: false,
    async inflict({ lab, nodes }) {
      const started = Date.now();
      for (let flap = 0; flap < 10; flap++) {
        lab.isolate('n1', 'redis');
        await sleep(300);
        lab.healAll();
        await sleep(500);
      }
      return {
        facts: {
          'shards n1 lost': eventsSince(nodes[0], 'lose', started).length,
          'shards taken (all nodes)': nodes.flatMap((node) => eventsSince(node, 'acquire', started))
            .length,
        },
        violations: [],
      };
    },
  },
  {
    name: 'slow-link',
    fault: "n2's link throttled to 64 kbit/s (tbf: queues 200 ms, then drops) for 6 s",
    quick: false,
    async inflict({ lab, nodes }) {
      const started = Date.now();
      lab.throttle('n2', 64_000);
      await sleep(6_000);
      lab.healAll();
      return {
        facts: {
          'shards n2 lost': eventsSince(nodes[1], 'lose', started).length,
          'shards taken (all nodes)': nodes.flatMap((node) => eventsSince(node, 'acquire', started))
            .length,
        },
        violations: [],
      };
    },
  },
];
