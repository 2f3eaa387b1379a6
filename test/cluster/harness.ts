/**
 * Drives cluster nodes running in child processes (test/fixtures/cluster-node.ts): sends
 * messages through a chosen node, records what each node reports, kills, pauses and resumes
 * them, and reads what Redis holds.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Redis } from 'ioredis';
import { ClusterKeys } from '../../src/cluster/keys.js';
import { type LeaseOwner, ShardLeases } from '../../src/cluster/leases.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CHILD = join(ROOT, 'test/fixtures/cluster-node.ts');

export interface NodeConfig {
  readonly redis: string;
  readonly prefix: string;
  readonly nodeId: string;
  readonly shards: number;
  readonly heartbeatMs: number;
  readonly leaseMs: number;
  readonly mockUrl: string;
  /** The node's drainTimeoutMs (10 s unless given). */
  readonly drainTimeoutMs?: number;
}

/** One line a node printed, with when the parent read it. */
export interface NodeEvent {
  readonly ev: string;
  readonly at: number;
  readonly [field: string]: unknown;
}

/** How a message sent through a node ended, as its caller saw it. */
export type Outcome =
  | { readonly kind: 'reply'; readonly text: string; readonly turnId: string }
  | { readonly kind: 'error'; readonly code: string }
  | { readonly kind: 'refused'; readonly code: string }
  /** The node died before it said. */
  | { readonly kind: 'lost' };

export interface Sent {
  readonly node: string;
  readonly key: string;
  readonly message: string;
  /** The request id once the node said it was accepted; undefined if it was not (or died first). */
  readonly accepted: Promise<string | undefined>;
  readonly outcome: Promise<Outcome>;
}

interface Pending {
  accept(requestId: string | undefined): void;
  settle(outcome: Outcome): void;
}

export class NodeProcess {
  readonly id: string;
  readonly events: NodeEvent[] = [];
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #pending = new Map<number, Pending>();
  readonly #exited: Promise<void>;
  #nextId = 0;
  #stderr = '';
  #listeners = new Set<() => void>();

  private constructor(config: NodeConfig, wrap: (command: string[]) => string[]) {
    this.id = config.nodeId;
    // tsx through its API rather than `--import tsx`: worker threads inherit the parent's
    // execArgv, and every session worker would then load tsx too (about 3× slower to start),
    // although worker entries are compiled JavaScript (dist/workers) that need no loader.
    const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(pathToFileURL(CHILD).href)}); })`;
    const [command = '', ...args] = wrap([process.execPath, '-e', boot, JSON.stringify(config)]);
    this.#child = spawn(command, args, {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.#child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stderr += chunk;
    });
    let buffered = '';
    this.#child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (buffered + chunk).split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) this.#onLine(line);
    });
    this.#exited = once(this.#child, 'close').then(() => {
      for (const pending of this.#pending.values()) {
        pending.accept(undefined);
        pending.settle({ kind: 'lost' });
      }
      this.#pending.clear();
      this.#notify();
    });
  }

  /**
   * Starts a node and waits until it has joined the cluster. `wrap` may put the command line
   * inside another (`ip netns exec <namespace> …`), as long as that one execs it: signals go to
   * the process started.
   */
  static async start(
    config: NodeConfig,
    wrap: (command: string[]) => string[] = (command) => command,
  ): Promise<NodeProcess> {
    const node = new NodeProcess(config, wrap);
    await node.waitFor((event) => event.ev === 'ready', 20_000, 'the node to start');
    return node;
  }

  get pid(): number {
    return this.#child.pid ?? -1;
  }

  get stderr(): string {
    return this.#stderr;
  }

  get alive(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  send(key: string, message: string, agent = 'cell'): Sent {
    const id = this.#nextId++;
    let accept: (requestId: string | undefined) => void = () => {};
    let settle: (outcome: Outcome) => void = () => {};
    const accepted = new Promise<string | undefined>((resolve) => {
      accept = resolve;
    });
    const outcome = new Promise<Outcome>((resolve) => {
      settle = resolve;
    });
    if (!this.alive) {
      accept(undefined);
      settle({ kind: 'lost' });
    } else {
      this.#pending.set(id, { accept, settle });
      this.#child.stdin.write(`${JSON.stringify({ op: 'send', id, key, message, agent })}\n`);
    }
    return { node: this.id, key, message, accepted, outcome };
  }

  /**
   * Lists, or answers, the approvals of session `key` (agent `payer`) through this node:
   * resolves with its `answered` line (`approvals`, or the `code` of a typed error).
   */
  approval(
    key: string,
    answer?: { readonly approvalId: string; readonly approved: boolean },
  ): Promise<NodeEvent> {
    const id = this.#nextId++;
    const op = answer ? 'approve' : 'approvals';
    this.#child.stdin.write(`${JSON.stringify({ op, id, key, ...answer })}\n`);
    return this.waitFor((e) => e.ev === 'answered' && e['id'] === id, 20_000, `the ${op} answer`);
  }

  /** Resolves with the first event (already seen or to come) matching, or throws after `ms`. */
  waitFor(match: (event: NodeEvent) => boolean, ms: number, what: string): Promise<NodeEvent> {
    const found = this.events.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const check = () => {
        const event = this.events.find(match);
        if (event) {
          done();
          resolve(event);
        } else if (!this.alive) {
          done();
          reject(new Error(`node ${this.id} exited while waiting for ${what}: ${this.#stderr}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`node ${this.id}: no ${what} within ${ms} ms: ${this.#stderr}`));
      }, ms);
      const done = () => {
        clearTimeout(timer);
        this.#listeners.delete(check);
      };
      this.#listeners.add(check);
    });
  }

  signal(signal: NodeJS.Signals): void {
    this.#child.kill(signal);
  }

  async kill(): Promise<void> {
    this.#child.kill('SIGKILL');
    await this.#exited;
  }

  /** Closes the node gracefully (it hands its shards over), killing it if it takes too long. */
  async close(ms = 20_000): Promise<void> {
    if (!this.alive) return;
    this.#child.stdin.write(`${JSON.stringify({ op: 'close' })}\n`);
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), ms);
    await this.#exited;
    clearTimeout(timer);
  }

  #onLine(line: string): void {
    if (line.trim() === '') return;
    let event: NodeEvent;
    try {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      event = { ...parsed, ev: String(parsed['ev']), at: Date.now() };
    } catch {
      this.#stderr += `unparsed stdout: ${line}\n`;
      return;
    }
    this.events.push(event);
    const id = typeof event['id'] === 'number' ? event['id'] : undefined;
    const pending = id === undefined ? undefined : this.#pending.get(id);
    if (pending && id !== undefined) {
      if (event.ev === 'accepted') pending.accept(String(event['requestId']));
      if (event.ev === 'refused') {
        pending.accept(undefined);
        pending.settle({ kind: 'refused', code: String(event['code']) });
        this.#pending.delete(id);
      }
      if (event.ev === 'reply') {
        pending.settle({
          kind: 'reply',
          text: String(event['text']),
          turnId: String(event['turnId']),
        });
        this.#pending.delete(id);
      }
      if (event.ev === 'error') {
        pending.settle({ kind: 'error', code: String(event['code']) });
        this.#pending.delete(id);
      }
    }
    this.#notify();
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }
}

/**
 * Waits for what each sent message promises (`accepted` or `outcome`), or throws after `ms`
 * naming the messages still waiting: a lost message fails the test with its name, not a
 * test timeout.
 */
export async function allWithin<T>(
  sent: readonly Sent[],
  pick: (one: Sent) => Promise<T>,
  ms: number,
  what: string,
): Promise<T[]> {
  const done = new Set<Sent>();
  const all = Promise.all(
    sent.map((one) =>
      pick(one).then((value) => {
        done.add(one);
        return value;
      }),
    ),
  );
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const waiting = sent.filter((one) => !done.has(one));
      const names = waiting.slice(0, 20).map((one) => `${one.message} (via ${one.node})`);
      reject(
        new Error(`${waiting.length} messages without ${what} after ${ms} ms: ${names.join(', ')}`),
      );
    }, ms);
  });
  try {
    return await Promise.race([all, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls until `check` returns a value other than undefined, or throws after `ms`. */
export async function until<T>(
  check: () => Promise<T | undefined>,
  ms: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The owner of every shard with a lease. */
export function leaseOwners(
  client: Redis,
  prefix: string,
  shards: number,
): Promise<Map<number, LeaseOwner>> {
  return new ShardLeases(client, new ClusterKeys(prefix), { nodeId: 'observer', ttlMs: 1 }).owners(
    shards,
  );
}

/** Messages still in the shards' inboxes (unread or pending). */
export async function inboxBacklog(client: Redis, prefix: string, shards: number): Promise<number> {
  const keys = new ClusterKeys(prefix);
  let total = 0;
  for (let shard = 0; shard < shards; shard++) total += await client.xlen(keys.inbox(shard));
  return total;
}
