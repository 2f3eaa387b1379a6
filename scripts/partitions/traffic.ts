/**
 * The load a partition run puts on a cluster, and the audit of what came of it: every session
 * gets messages one after the other (each accepted before the next, so its journal's order is
 * the order sent), through the nodes in turn, as a load balancer would spread its callers. At
 * the end, every message sent is matched with what its caller saw and with what Redis holds.
 */
import type { Redis } from 'ioredis';
import type { JournalRecord } from '../../src/agent/journal.js';
import type { LeaseOwner } from '../../src/cluster/leases.js';
import { shardOf } from '../../src/cluster/shards.js';
import type { RedisStore } from '../../src/runtime/stores/redis.js';
import {
  allWithin,
  inboxBacklog,
  type NodeProcess,
  type Outcome,
  type Sent,
  until,
} from '../../test/cluster/harness.js';

export interface SentAt extends Sent {
  /** When it was handed to its node (ms since the epoch). */
  readonly at: number;
}

/** Session keys, `perNode` of them owned by each node in `owners`. */
export function keysPerOwner(
  owners: Map<number, LeaseOwner>,
  shards: number,
  perNode: number,
): Map<string, string[]> {
  const byNode = new Map<string, string[]>();
  for (const owner of owners.values()) byNode.set(owner.node, []);
  for (let index = 0; [...byNode.values()].some((keys) => keys.length < perNode); index++) {
    const key = `s${index}`;
    const keys = byNode.get(owners.get(shardOf(key, shards))?.node ?? '');
    if (keys && keys.length < perNode) keys.push(key);
  }
  return byNode;
}

/** Sends until stopped: one loop per session, each message accepted before the next. */
export class Traffic {
  readonly sent: SentAt[] = [];
  readonly #loops: Promise<void>[];
  /** Nodes a load balancer's health check would have taken out of rotation. */
  readonly #avoided = new Set<string>();
  #stopped = false;

  constructor(keys: readonly string[], nodes: readonly NodeProcess[], pauseMs: number) {
    this.#loops = keys.map(async (key, session) => {
      for (let index = 0; !this.#stopped; index++) {
        const healthy = nodes.filter((node) => !this.#avoided.has(node.id));
        const node = healthy[(session + index) % healthy.length];
        if (!node) return;
        await this.send(node, key, `${key} m${index}`).accepted;
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
      }
    });
  }

  /**
   * Sends no new message through `node` until {@link restore}, as a load balancer does with a
   * node that fails its health check (what is already waiting on it stays there).
   */
  avoid(node: string): void {
    this.#avoided.add(node);
  }

  restore(): void {
    this.#avoided.clear();
  }

  /** Sends one message through `node`, recorded for the audit. */
  send(node: NodeProcess, key: string, message: string): SentAt {
    const one = { ...node.send(key, message), at: Date.now() };
    this.sent.push(one);
    return one;
  }

  /** Stops sending; resolves once every session's last message was accepted or refused. */
  async stop(ms: number): Promise<void> {
    this.#stopped = true;
    await allWithin(this.sent, (one) => one.accepted, ms, 'an answer to whether it was accepted');
    await Promise.all(this.#loops);
  }
}

/** What came of a run's messages; `violations` lists every broken promise, by message. */
export interface Audit {
  readonly sent: number;
  readonly accepted: number;
  readonly refused: Readonly<Record<string, number>>;
  readonly replies: number;
  readonly errors: Readonly<Record<string, number>>;
  readonly violations: readonly string[];
}

function count(into: Record<string, number>, code: string): void {
  into[code] = (into[code] ?? 0) + 1;
}

function userMessages(records: readonly JournalRecord[]): string[] {
  return records.flatMap((record) =>
    record.messages.filter((message) => message.role === 'user').map((message) => message.content),
  );
}

/**
 * Waits (up to `ms`) for every accepted message's outcome and for the inboxes to empty, then
 * checks: each accepted message ended in exactly one reply or typed error; each reply is the
 * turn journaled for that message; no message is journaled twice or out of its session's order;
 * nothing acknowledged and answered is missing from its journal; no request was settled twice.
 */
export async function audit(options: {
  readonly sent: readonly SentAt[];
  readonly nodes: readonly NodeProcess[];
  readonly admin: Redis;
  readonly store: RedisStore;
  readonly prefix: string;
  readonly shards: number;
  readonly ms: number;
}): Promise<Audit> {
  const { sent, nodes } = options;
  const violations: string[] = [];
  const outcomes = await allWithin(sent, (one) => one.outcome, options.ms, 'an outcome').catch(
    (error: unknown) => {
      violations.push(String(error instanceof Error ? error.message : error));
      return undefined;
    },
  );
  await until(
    async () =>
      (await inboxBacklog(options.admin, options.prefix, options.shards)) === 0 ? true : undefined,
    options.ms,
    'every inbox to be empty',
  ).catch((error: unknown) => violations.push(String(error)));
  const refused: Record<string, number> = {};
  const errors: Record<string, number> = {};
  let accepted = 0;
  let replies = 0;
  const replied = new Map<string, string>();
  for (const [index, one] of sent.entries()) {
    const requestId = await one.accepted;
    const outcome: Outcome | undefined = outcomes?.[index];
    if (requestId !== undefined) accepted++;
    if (!outcome) continue;
    if (outcome.kind === 'refused') count(refused, outcome.code);
    else if (outcome.kind === 'lost') violations.push(`${one.message}: its node died unanswered`);
    else if (requestId === undefined) {
      violations.push(`${one.message}: an outcome without an acceptance`);
    } else if (outcome.kind === 'reply') {
      replies++;
      replied.set(one.message, outcome.turnId);
      if (outcome.text !== `echo: ${one.message}`) {
        violations.push(`${one.message}: answered with ${JSON.stringify(outcome.text)}`);
      }
    } else {
      count(errors, outcome.code);
      if (outcome.code === 'untyped') violations.push(`${one.message}: an untyped error`);
    }
  }
  const settled = nodes.flatMap((node) =>
    node.events.filter((event) => event.ev === 'settle').map((event) => event['requestId']),
  );
  if (new Set(settled).size !== settled.length) {
    violations.push(`${settled.length - new Set(settled).size} requests settled twice`);
  }
  for (const key of new Set(sent.map((one) => one.key))) {
    const records = await options.store.read(key);
    const journaled = userMessages(records);
    if (new Set(journaled).size !== journaled.length) {
      violations.push(`${key}: a message journaled twice`);
    }
    const inOrder = sent
      .filter((one) => one.key === key && journaled.includes(one.message))
      .map((one) => one.message);
    if (JSON.stringify(inOrder) !== JSON.stringify(journaled)) {
      violations.push(`${key}: journal out of order or with strangers`);
    }
    const turnOf = new Map<string, string>();
    for (const record of records) {
      for (const text of userMessages([record])) turnOf.set(text, record.turnId);
    }
    for (const [message, turnId] of replied) {
      if (!message.startsWith(`${key} `)) continue;
      if (turnOf.get(message) !== turnId) {
        violations.push(`${message}: replied with turn ${turnId}, not the one journaled for it`);
      }
    }
  }
  return { sent: sent.length, accepted, refused, replies, errors, violations };
}
