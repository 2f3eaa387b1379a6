/**
 * One node of a cluster: a local Supervisor plus what makes several of them, in several
 * processes or machines, act as one over Redis.
 *
 * - Any node accepts `send(key, message)` for any session: the message is appended to the
 *   durable inbox of the session's shard (a Redis stream) before the caller is told it was
 *   accepted, and the caller's promise settles with exactly one reply or typed error, routed
 *   back to this node through its reply stream.
 * - Each shard is owned by one node at a time, under a lease with a fencing epoch. The owner
 *   reads the shard's inbox through a consumer group, runs each message as a turn of its local
 *   Supervisor (one message per session at a time, in inbox order), journals the turn to the
 *   RedisStore tagged with the message's request id, and only then acks the message and hands
 *   the reply over, in one script. Every read, append and ack is checked against the epoch, so
 *   an owner that was paused or cut off can do nothing once another node took the shard.
 * - Shards are placed by rendezvous hashing over the live members. A shard that should move
 *   (a node joined or is leaving) is drained first: no new turn starts, the running ones end
 *   and are acked, its sessions are passivated, and only then is the lease released. A node
 *   that dies just stops heartbeating: its shards are taken over with a new epoch, and the new
 *   owner claims every message left pending, skipping (but still answering) those whose turn
 *   was already journaled. Exactly one outcome per accepted message therefore holds across a
 *   crash: a turn is retried only if it had not been journaled.
 *
 * @example
 * const node = new ClusterNode({ redis: 'redis://127.0.0.1:6379' });
 * node.register('support', new Agent({ name: 'support', llm: 'gpt-4o-mini' }));
 * await node.start();
 * const { text } = await node.send('tenant-7:user-3', 'hi', { agent: 'support' });
 * await node.close();
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { Agent } from '../agent/agent.js';
import type { Blueprint } from '../agent/blueprint.js';
import { streamEvents } from '../agent/event-stream.js';
import type { JournalRecord } from '../agent/journal.js';
import { ZERO_USAGE } from '../agent/messages.js';
import type { TurnEvent } from '../agent/turn-events.js';
import { encode } from '../codec.js';
import {
  AgentNotRegisteredError,
  ClusterUnavailableError,
  DeliveryLimitError,
  InternalError,
  isAgentcellError,
  MailboxFullError,
  MessageInvalidError,
  OptionsInvalidError,
  SessionBusyError,
  SupervisorClosedError,
  toWire,
} from '../errors.js';
import { parseBudget, type RegisterOptions } from '../runtime/options.js';
import { assertSessionKey } from '../runtime/session-key.js';
import type { Reply } from '../runtime/session-types.js';
import { isFencedError, RedisStore } from '../runtime/stores/redis.js';
import { Supervisor } from '../runtime/supervisor.js';
import { FencedJournal, REQUEST_KNOWN_REASON } from './fenced-journal.js';
import {
  CLUSTER_BUSY_POLICIES,
  type ClusterBusyPolicy,
  type InboxMessage,
  REPLIES_MAX_LENGTH,
  REPLY_TTL_MS,
  ShardInbox,
} from './inbox.js';
import { ClusterKeys } from './keys.js';
import { ShardLeases } from './leases.js';
import { Membership } from './membership.js';
import {
  type ClusterNodeEvents,
  type ClusterNodeOptions,
  type ClusterNodeStats,
  type ClusterNodeStatus,
  type ClusterSendOptions,
  type MessageEvent,
  parseNodeOptions,
  type ResolvedNodeOptions,
  type SubmitResult,
} from './node-options.js';
import { AwaitedReplies, type Outcome } from './replies.js';
import { ownerOf, shardOf } from './shards.js';
import { streamNames } from './stream-replies.js';

type ShardState = 'active' | 'draining' | 'released' | 'lost';

/** One holding of a shard by this node, at one epoch. */
interface HeldShard {
  readonly shard: number;
  readonly epoch: number;
  state: ShardState;
  /** Pending messages claimed and dispatched: new ones may be read now. */
  ready: boolean;
  /** Whether the inbox may have unread messages (new holding, a wake-up, a full batch). */
  due: boolean;
  /** Where a blocking XREAD waits from for this shard's inbox. */
  cursor: string;
  /** The last inbox entry this holding received (claimed or read). */
  received: string;
  /** Messages dispatched and not yet done. */
  readonly running: Set<Promise<void>>;
  /** Sessions this holding ran turns for (passivated when the shard goes). */
  readonly sessions: Set<string>;
}

/** An outcome ready to ack, and whether it came from the journal (a redelivery). */
interface Settled {
  readonly outcome: Outcome;
  readonly fromJournal: boolean;
}

/** Messages read (or claimed) from one shard at a time. */
const READ_COUNT = 64;

/**
 * A local Supervisor joined to a cluster on Redis; see the module comment for how it works.
 * Register the same agents on every node, then `start()`.
 */
export class ClusterNode extends EventEmitter<ClusterNodeEvents> {
  readonly nodeId: string;
  readonly shards: number;
  /**
   * The local Supervisor, for events and stats. Send through the node, never through it: a
   * session reached directly would run outside its shard's owner.
   */
  readonly supervisor: Supervisor;
  readonly #options: ResolvedNodeOptions;
  readonly #keys: ClusterKeys;
  /** Commands and scripts. */
  readonly #client: Redis;
  /** Blocking reads of the owned inboxes (a blocked connection can do nothing else). */
  readonly #inboxConnection: Redis;
  /** Blocking reads of this node's replies. */
  readonly #replyConnection: Redis;
  readonly #replies: AwaitedReplies;
  readonly #store: RedisStore;
  readonly #membership: Membership;
  readonly #leases: ShardLeases;
  readonly #inbox: ShardInbox;
  readonly #held = new Map<number, HeldShard>();
  readonly #acquiring = new Set<number>();
  /** The tail of each session's chain of messages: one at a time per session, in order. */
  readonly #chains = new Map<string, Promise<void>>();
  /** The request whose turn runs in each session now (what its journal record is tagged with). */
  readonly #requests = new Map<string, string>();
  #inFlight = 0;
  #status: ClusterNodeStatus = 'new';
  #leaving = false;
  #stopped = false;
  #tickTimer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;
  #loops: Promise<void>[] = [];
  #closing: Promise<void> | undefined;

  /** Throws `AGENTCELL_OPTIONS_INVALID` for bad options; connects lazily, on `start()`. */
  constructor(options: ClusterNodeOptions) {
    super();
    const resolved = parseNodeOptions(options);
    const nodeId = resolved.nodeId;
    this.nodeId = nodeId;
    this.shards = resolved.shards;
    this.#options = resolved;
    this.#keys = new ClusterKeys(resolved.prefix);
    this.#client = new Redis(resolved.redis, { lazyConnect: true });
    this.#inboxConnection = new Redis(resolved.redis, { lazyConnect: true });
    this.#replyConnection = new Redis(resolved.redis, { lazyConnect: true });
    for (const connection of [this.#client, this.#inboxConnection, this.#replyConnection]) {
      // ioredis reconnects by itself; the failures still reach the operations, reported there.
      connection.on('error', () => {});
    }
    this.#replies = new AwaitedReplies(
      this.#client,
      this.#replyConnection,
      this.#keys.replies(nodeId),
      resolved.replyTimeoutMs,
    );
    this.#store = new RedisStore({ redis: this.#client, prefix: resolved.prefix });
    const lease = { nodeId, ttlMs: resolved.leaseMs };
    this.#membership = new Membership(this.#client, this.#keys, lease);
    this.#leases = new ShardLeases(this.#client, this.#keys, lease);
    this.#inbox = new ShardInbox(this.#client, this.#keys);
    const journal = new FencedJournal(this.#store, {
      shardOf: (key) => this.shardOf(key),
      fenceOf: (key) => {
        const held = this.#held.get(this.shardOf(key));
        return held && (held.state === 'active' || held.state === 'draining')
          ? { shard: held.shard, epoch: held.epoch }
          : undefined;
      },
      requestOf: (key) => this.#requests.get(key),
    });
    this.supervisor = new Supervisor({ ...options.supervisor, store: journal });
  }

  get status(): ClusterNodeStatus {
    return this.#status;
  }

  /** The shard of a session key in this cluster. */
  shardOf(sessionKey: string): number {
    return shardOf(sessionKey, this.shards);
  }

  /** Registers an agent on the local Supervisor; every node must register the same ones. */
  register(name: string, agent: Agent | Blueprint, options: RegisterOptions = {}): this {
    this.supervisor.register(name, agent, options);
    return this;
  }

  /**
   * Joins the cluster: connects, heartbeats, takes the shards that fall to this node (as their
   * current owners hand them over) and starts reading their inboxes and this node's replies.
   */
  async start(): Promise<void> {
    if (this.#status !== 'new') throw new OptionsInvalidError(`the node is ${this.#status}`);
    this.#status = 'starting';
    try {
      await Promise.all([
        this.#client.connect(),
        this.#inboxConnection.connect(),
        this.#replyConnection.connect(),
      ]);
      await this.#membership.heartbeat('active');
    } catch (error) {
      // Nothing was taken yet: stop the clients' reconnecting and leave the node closed.
      for (const connection of [this.#client, this.#inboxConnection, this.#replyConnection]) {
        connection.disconnect();
      }
      await this.supervisor.close();
      this.#status = 'closed';
      throw new ClusterUnavailableError(
        `could not join the cluster on Redis at ${redisAddress(this.#options.redis)}: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
    this.#loops = [
      this.#replies.read(
        () => this.#stopped,
        (fields) => this.#control(fields),
        (error, during) => this.#report(error, during),
      ),
      this.#inboxLoop(),
    ];
    await this.#tick();
    this.#scheduleTick();
    this.#status = 'running';
  }

  /**
   * Sends a message to a session wherever it runs, and resolves with the reply of its turn.
   *
   * @example
   * const { text } = await node.send('slack:T01:C42', 'hi', { agent: 'support' });
   */
  async send(key: string, message: string, options: ClusterSendOptions): Promise<Reply> {
    return (await this.submit(key, message, options)).reply;
  }

  /**
   * Sends a message and yields the events of the turn that answers it, forwarded by whichever
   * node runs the session; the last is `final`, built from the journaled reply.
   *
   * @example
   * for await (const event of node.stream('tenant-7:user-3', 'hi', { agent: 'support' })) {
   *   if (event.type === 'text') process.stdout.write(event.delta);
   * }
   */
  stream(
    key: string,
    message: string,
    options: Omit<ClusterSendOptions, 'onEvent'>,
  ): AsyncIterable<TurnEvent> {
    return streamEvents((onEvent) => this.send(key, message, { ...options, onEvent }));
  }

  /**
   * Interrupts the running turn of a session, on whichever node runs it. Resolves with whether
   * the interrupt reached that node (the turn, if one runs, then ends `AGENTCELL_INTERRUPTED`).
   */
  async interrupt(key: string, reason = 'interrupted'): Promise<boolean> {
    assertSessionKey(key);
    this.#assertRunning();
    const shard = this.shardOf(key);
    const holding = this.#held.get(shard);
    if (holding?.state === 'active' || holding?.state === 'draining') {
      return (await this.supervisor.peek(key)?.interrupt(reason)) ?? false;
    }
    const owner = await this.#leases.ownerOf(shard);
    if (!owner || owner.node === this.nodeId) return false;
    // Through the owner's reply stream: it reads that at once, whatever its inboxes hold.
    const stream = this.#keys.replies(owner.node);
    await this.#client
      .multi()
      .xadd(stream, 'MAXLEN', '~', REPLIES_MAX_LENGTH, '*', 'c', 'interrupt', 'k', key, 'x', reason)
      .pexpire(stream, REPLY_TTL_MS)
      .exec();
    return true;
  }

  /**
   * Closes a session on the node that runs it and deletes its journal, in the session's order
   * (after the messages accepted before it): the next message starts a new conversation.
   */
  async deleteSession(key: string): Promise<void> {
    await (await this.#accept(key, '', { agent: '', command: 'delete' })).reply;
  }

  /** A session's journal, read from Redis (any node may read it). */
  journal(key: string): Promise<readonly JournalRecord[]> {
    assertSessionKey(key);
    return this.#store.read(key);
  }

  /** The keys of every session with a journal in the cluster (any node may list them). */
  journalKeys(): Promise<readonly string[]> {
    return this.#store.keys();
  }

  /**
   * Accepts a message: resolves once it is durably in its shard's inbox (from then on it ends
   * in exactly one reply or typed error, whatever node fails), with the promise of its reply.
   * Rejects, with nothing accepted, on a bad key or message, an unknown agent, a full inbox or
   * a closing node.
   */
  submit(key: string, message: string, options: ClusterSendOptions): Promise<SubmitResult> {
    if (typeof message !== 'string' || message.trim().length === 0) {
      return Promise.reject(new MessageInvalidError('expected a non-empty string message'));
    }
    const bytes = Buffer.byteLength(message, 'utf8');
    if (bytes > this.#options.maxMessageBytes) {
      return Promise.reject(
        new MessageInvalidError(
          `the message is ${bytes} bytes, over the limit of ${this.#options.maxMessageBytes} (maxMessageBytes)`,
        ),
      );
    }
    return this.#accept(key, message, options);
  }

  #assertRunning(): void {
    if (this.#status !== 'running') {
      throw new SupervisorClosedError(`the cluster node is ${this.#status}`);
    }
  }

  async #accept(
    key: string,
    message: string,
    options: ClusterSendOptions & { readonly command?: 'delete' },
  ): Promise<SubmitResult> {
    this.#assertRunning();
    assertSessionKey(key);
    const busyPolicy = options?.busyPolicy ?? 'enqueue';
    if (!(CLUSTER_BUSY_POLICIES as readonly string[]).includes(busyPolicy)) {
      throw new OptionsInvalidError(
        `busyPolicy ${JSON.stringify(busyPolicy)} does not hold across nodes: use ${CLUSTER_BUSY_POLICIES.join(', ')}`,
      );
    }
    const agent = options?.agent;
    if (
      options.command === undefined &&
      (typeof agent !== 'string' || !this.supervisor.agentNames().includes(agent))
    ) {
      throw new AgentNotRegisteredError(`no agent named ${JSON.stringify(agent)} on this node`);
    }
    const requestId = randomUUID();
    const shard = this.shardOf(key);
    const reply = this.#replies.expect(requestId, {
      sessionKey: key,
      shard,
      onEvent: options.onEvent,
    });
    let entryId: string | undefined;
    try {
      entryId = await this.#inbox.accept(
        shard,
        {
          requestId,
          sessionKey: key,
          agent,
          message,
          origin: this.nodeId,
          stream: options.onEvent !== undefined,
          busyPolicy: busyPolicy as ClusterBusyPolicy,
          budget: options.budget === undefined ? undefined : parseBudget(options.budget),
          command: options.command,
        },
        this.#options.maxInboxPerShard,
      );
    } catch (error) {
      this.#replies.forget(requestId);
      throw new ClusterUnavailableError(
        `Redis at ${redisAddress(this.#options.redis)} did not take the message: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
    if (entryId === undefined) {
      this.#replies.forget(requestId);
      throw new MailboxFullError(
        `the inbox of shard ${shard} holds ${this.#options.maxInboxPerShard} messages (maxInboxPerShard)`,
      );
    }
    return { requestId, shard, reply };
  }

  stats(): ClusterNodeStats {
    return {
      nodeId: this.nodeId,
      status: this.#status,
      shards: [...this.#held.values()]
        .map(({ shard, epoch, state }) => ({ shard, epoch, state }))
        .sort((a, b) => a.shard - b.shard),
      inFlight: this.#inFlight,
      awaitingReplies: this.#replies.size,
    };
  }

  /**
   * Leaves the cluster gracefully: accepts nothing more, hands every shard over (drained), waits
   * (up to drainTimeoutMs) for the replies its callers are still owed, then closes the local
   * Supervisor and the connections. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const wasRunning = this.#status === 'running' || this.#status === 'starting';
      this.#status = 'closing';
      if (wasRunning) {
        this.#leaving = true;
        await this.#membership.heartbeat('leaving').catch((error: unknown) => {
          this.#report(error, 'announcing the leave');
        });
        await this.#ticking; // a tick under way may still be taking shards: drain those too
        await Promise.all([...this.#held.values()].map((held) => this.#drain(held)));
        await this.#replies.drained(this.#options.drainTimeoutMs);
      }
      await this.#shutDown(
        new SupervisorClosedError(`cluster node ${this.nodeId} closed before the reply came`),
      );
    })();
    return this.#closing;
  }

  /**
   * Leaves at once: stops every turn (their messages stay pending and are retried by the next
   * owners), fails the callers still waiting, releases the leases. Idempotent.
   */
  destroy(reason = 'destroyed'): Promise<void> {
    this.#closing ??= (async () => {
      this.#status = 'closing';
      this.#leaving = true;
      const held = [...this.#held.values()];
      for (const each of held) this.#lose(each, reason);
      await Promise.all(
        held.map((each) => this.#leases.release(each.shard, each.epoch).catch(() => false)),
      );
      await this.#shutDown(new SupervisorClosedError(`cluster node ${this.nodeId} was destroyed`));
    })();
    return this.#closing;
  }

  async #shutDown(error: Error): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#tickTimer);
    await this.#ticking;
    this.#replies.failAll(error);
    // Blocked reads end when their connection does.
    this.#inboxConnection.disconnect();
    this.#replyConnection.disconnect();
    await Promise.allSettled(this.#loops);
    await this.#membership.leave().catch((cause: unknown) => this.#report(cause, 'leaving'));
    await this.supervisor.close();
    await this.#store.close();
    await this.#client.quit().catch(() => this.#client.disconnect());
    this.#status = 'closed';
  }

  #report(error: unknown, during: string): void {
    this.emit('redis:error', { error, during });
  }

  #scheduleTick(): void {
    if (this.#stopped) return;
    this.#tickTimer = setTimeout(() => {
      this.#ticking = this.#tick().finally(() => {
        this.#ticking = undefined;
        this.#scheduleTick();
      });
    }, this.#options.heartbeatMs);
  }

  /** Heartbeat, lease renewal, then placement: drain what should move, take what should come. */
  async #tick(): Promise<void> {
    try {
      await this.#membership.heartbeat(this.#leaving ? 'leaving' : 'active');
      const held = [...this.#held.values()];
      const renewed = await Promise.all(
        held.map((each) =>
          this.#leases.renew(each.shard, each.epoch).catch((error: unknown) => {
            this.#report(error, `renewing shard ${each.shard}`);
            return undefined; // unknown: keep going; the fence protects the data meanwhile
          }),
        ),
      );
      for (const [index, each] of held.entries()) {
        if (renewed[index] === false) this.#lose(each, 'its lease was taken or expired');
      }
      if (this.#leaving || this.#stopped) return;
      const members = (await this.#membership.members())
        .filter((member) => member.state === 'active')
        .map((member) => member.id);
      const wanted: number[] = [];
      for (let shard = 0; shard < this.shards; shard++) {
        const owner = ownerOf(shard, members);
        const holding = this.#held.get(shard);
        if (holding) {
          if (owner !== this.nodeId && holding.state === 'active') void this.#drain(holding);
        } else if (owner === this.nodeId && !this.#acquiring.has(shard)) {
          wanted.push(shard);
        }
      }
      await Promise.all(wanted.map((shard) => this.#acquire(shard)));
    } catch (error) {
      this.#report(error, 'the cluster tick');
    }
  }

  /** Takes a shard, then runs what its previous owner left pending before anything new. */
  async #acquire(shard: number): Promise<void> {
    this.#acquiring.add(shard);
    let holding: HeldShard | undefined;
    try {
      const result = await this.#leases.acquire(shard);
      if (!result.acquired || this.#leaving) {
        if (result.acquired) await this.#leases.release(shard, result.epoch);
        return;
      }
      holding = {
        shard,
        epoch: result.epoch,
        state: 'active',
        ready: false,
        due: true,
        cursor: '0-0',
        received: '0-0',
        running: new Set(),
        sessions: new Set(),
      };
      this.#held.set(shard, holding);
      await this.#inbox.ensureGroup(shard);
      let claimed = 0;
      let start = '0-0';
      do {
        const batch = await this.#inbox.claim(shard, holding.epoch, this.nodeId, start, READ_COUNT);
        if (batch.fenced) {
          this.#lose(holding, 'fenced while claiming');
          return;
        }
        holding.received = batch.lastEntryId ?? holding.received;
        for (const message of batch.messages) this.#dispatch(holding, message, true);
        for (const entryId of batch.malformed) void this.#discard(holding, entryId);
        claimed += batch.messages.length;
        start = batch.next;
      } while (start !== '0-0' && holding.state === 'active');
      if (holding.state !== 'active') return;
      holding.ready = true;
      this.emit('shard:acquire', { shard, epoch: holding.epoch, claimed });
    } catch (error) {
      this.#report(error, `taking shard ${shard}`);
      if (holding) {
        // Half taken: let go, and take it again (with a new epoch) on a later tick.
        this.#lose(holding, 'failed while taking it');
        await this.#leases.release(shard, holding.epoch).catch(() => false);
      }
    } finally {
      this.#acquiring.delete(shard);
    }
  }

  /**
   * Hands a shard over: no new turn starts, the running ones end (and are acked), its sessions
   * are passivated (the next owner rebuilds them from the journal), then the lease goes.
   */
  async #drain(holding: HeldShard): Promise<void> {
    if (holding.state !== 'active') return;
    holding.state = 'draining';
    const ended = await Promise.race([
      Promise.allSettled([...holding.running]).then(() => true),
      sleep(this.#options.drainTimeoutMs).then(() => false),
    ]);
    if (holding.state !== 'draining') return; // lost meanwhile
    // Released before the sessions stop: a turn still running past the timeout then ends
    // unacked and unjournaled (its message stays pending for the next owner), never with an
    // error its caller would take for the outcome.
    holding.state = 'released';
    if (this.#held.get(holding.shard) === holding) this.#held.delete(holding.shard);
    const stuck = new InternalError(`shard ${holding.shard} was handed over`, {
      details: { reason: 'shard-moved', shard: holding.shard, epoch: holding.epoch },
    });
    await Promise.all(
      [...holding.sessions].map((key) => {
        const session = this.supervisor.peek(key);
        return ended ? session?.close() : session?.destroy(stuck);
      }),
    );
    await this.#leases.release(holding.shard, holding.epoch).catch((error: unknown) => {
      this.#report(error, `releasing shard ${holding.shard}`); // it runs out by itself
    });
    this.emit('shard:release', { shard: holding.shard, epoch: holding.epoch });
  }

  /** The shard is someone else's now: stop everything of it here, at once. */
  #lose(holding: HeldShard, reason: string): void {
    if (holding.state === 'lost' || holding.state === 'released') return;
    holding.state = 'lost';
    if (this.#held.get(holding.shard) === holding) this.#held.delete(holding.shard);
    this.emit('shard:lose', { shard: holding.shard, epoch: holding.epoch, reason });
    // Their workers hold conversation state the new owner may already have moved past.
    const error = new InternalError(`shard ${holding.shard} moved to another node`, {
      details: { reason: 'shard-lost', shard: holding.shard, epoch: holding.epoch },
    });
    for (const key of holding.sessions) void this.supervisor.peek(key)?.destroy(error);
  }

  /**
   * Reads new messages of the owned shards. Between reads it waits on one blocking XREAD over
   * all of them (from each one's cursor), which returns as soon as any gets a new entry and
   * says which: only those are read next, so a wake-up costs one script per busy shard, not
   * one per owned shard.
   */
  async #inboxLoop(): Promise<void> {
    const blockMs = Math.max(10, Math.min(this.#options.heartbeatMs, 250));
    while (!this.#stopped) {
      const active = [...this.#held.values()].filter(
        (holding) => holding.state === 'active' && holding.ready,
      );
      if (active.length === 0 || this.#inFlight >= this.#options.maxInFlight) {
        await sleep(active.length === 0 ? blockMs : 10);
        continue;
      }
      const due = active.filter((holding) => holding.due);
      try {
        const reads = await Promise.all(
          due.map((holding) => {
            holding.due = false;
            return this.#inbox.read(
              holding.shard,
              holding.epoch,
              this.nodeId,
              READ_COUNT,
              holding.received,
            );
          }),
        );
        for (const [index, holding] of due.entries()) {
          const read = reads[index];
          if (!read) continue;
          if (read.fenced) {
            this.#lose(holding, 'fenced while reading');
            continue;
          }
          holding.cursor = read.cursor;
          holding.received = read.lastEntryId ?? holding.received;
          for (const message of read.messages) this.#dispatch(holding, message);
          for (const entryId of read.malformed) void this.#discard(holding, entryId);
          // A full batch: there may be more behind it, read again without waiting.
          if (read.messages.length + read.malformed.length >= READ_COUNT) holding.due = true;
        }
        if (this.#stopped) return;
        if (active.some((holding) => holding.due)) {
          // Busy: read every shard next time, so one flooded shard does not starve the others
          // (they are only seen by the XREAD this skips).
          for (const holding of active) holding.due = true;
          continue;
        }
        const waiting = active.filter((holding) => holding.state === 'active');
        if (waiting.length === 0) continue;
        const woken = await this.#inboxConnection.call(
          'XREAD',
          'BLOCK',
          blockMs,
          'STREAMS',
          ...waiting.map((holding) => this.#keys.inbox(holding.shard)),
          ...waiting.map((holding) => holding.cursor),
        );
        const streams = new Set(streamNames(woken));
        for (const holding of waiting) {
          if (streams.has(this.#keys.inbox(holding.shard))) holding.due = true;
        }
      } catch (error) {
        for (const holding of due) holding.due = true; // read them again
        if (this.#stopped) return;
        this.#report(error, 'reading the inboxes');
        await sleep(blockMs);
      }
    }
  }

  /** An operation another node asked of a session this node runs. */
  #control(fields: Map<string, string>): void {
    const key = fields.get('k');
    if (fields.get('c') !== 'interrupt' || key === undefined) return;
    const holding = this.#held.get(this.shardOf(key));
    if (holding?.state !== 'active' && holding?.state !== 'draining') return;
    void this.supervisor
      .peek(key)
      ?.interrupt(fields.get('x') ?? 'interrupted')
      .catch(() => false);
  }

  /**
   * Queues a message behind the earlier ones of its session, after its busy policy: a session
   * is busy while a message of it is queued or running here (the owner sees them all, in order).
   */
  #dispatch(holding: HeldShard, message: InboxMessage, claimed = false): void {
    const key = message.sessionKey;
    const busy = this.#chains.has(key);
    if (busy && message.busyPolicy === 'reject' && message.command === undefined) {
      this.#inFlight++;
      const run = this.#settle(holding, message, messageEvent(holding, message), {
        outcome: {
          ok: false,
          error: toWire(new SessionBusyError(`session ${JSON.stringify(key)} is in a turn`)),
        },
        fromJournal: false,
      });
      holding.running.add(run);
      void run.finally(() => {
        this.#inFlight--;
        holding.running.delete(run);
      });
      return;
    }
    if (busy && message.busyPolicy === 'interrupt') {
      void this.supervisor
        .peek(key)
        ?.interrupt('a newer message arrived')
        .catch(() => false);
    }
    this.#inFlight++;
    holding.sessions.add(message.sessionKey);
    const run = (this.#chains.get(key) ?? Promise.resolve()).then(() =>
      this.#handle(holding, message, claimed),
    );
    this.#chains.set(key, run);
    holding.running.add(run);
    void run.finally(() => {
      this.#inFlight--;
      holding.running.delete(run);
      if (this.#chains.get(key) === run) this.#chains.delete(key);
    });
  }

  /**
   * One message: answered from the journal if its turn was journaled already (by a previous
   * owner that died before acking), else run as a turn; then acked with its outcome. Never
   * rejects: what is not settled stays pending for whoever owns the shard next.
   */
  async #handle(holding: HeldShard, message: InboxMessage, claimed: boolean): Promise<void> {
    if (holding.state !== 'active') return;
    const event = messageEvent(holding, message);
    this.emit('message:start', event);
    const known = await this.#retry(holding, 'checking the journal', () =>
      this.#store.recordOfRequest(message.sessionKey, message.requestId),
    );
    if (known === null) return;
    let settled: Settled | undefined;
    if (known !== undefined) {
      settled = { outcome: { ok: true, reply: replyOf(known) }, fromJournal: true };
    } else {
      if (holding.state !== 'active') return;
      const over = claimed ? await this.#overDeliveryLimit(holding, message, event) : false;
      if (over === undefined) return;
      if (over) {
        const error = new DeliveryLimitError(
          `message ${message.requestId} to session ${JSON.stringify(message.sessionKey)} was started ${this.#options.maxDeliveries} times by nodes that stopped before answering it (maxDeliveries)`,
          { details: { requestId: message.requestId, shard: holding.shard } },
        );
        settled = { outcome: { ok: false, error: toWire(error) }, fromJournal: false };
      } else if (message.command === 'delete') {
        settled = await this.#deleteHere(holding, message, event);
      } else {
        settled = await this.#runTurn(holding, message, event);
      }
    }
    if (settled) await this.#settle(holding, message, event, settled);
  }

  /**
   * Counts a take-over of a message that was left unsettled. Read fresh, a message is on its
   * first delivery and costs no count; claimed, it may be the one that stopped its last owner.
   * Undefined when the shard is not this node's any more.
   */
  async #overDeliveryLimit(
    holding: HeldShard,
    message: InboxMessage,
    event: MessageEvent,
  ): Promise<boolean | undefined> {
    const takeovers = await this.#retry(holding, 'counting the deliveries', () =>
      this.#inbox.attempt(holding.shard, holding.epoch, message.requestId),
    );
    if (takeovers === null) return undefined;
    if (takeovers === 'fenced') {
      this.emit('message:fenced', event);
      this.#lose(holding, 'fenced while counting deliveries');
      return undefined;
    }
    return takeovers + 1 > this.#options.maxDeliveries;
  }

  /** Acks a message with its outcome, which goes to the accepting node in the same script. */
  async #settle(
    holding: HeldShard,
    message: InboxMessage,
    event: MessageEvent,
    settled: Settled,
  ): Promise<void> {
    const payload = encode(settled.outcome);
    const acked = await this.#retry(holding, 'acking', () =>
      this.#inbox.ack(holding.shard, holding.epoch, message.entryId, {
        origin: message.origin,
        requestId: message.requestId,
        payload,
      }),
    );
    if (acked === 'fenced') {
      this.emit('message:fenced', event);
      this.#lose(holding, 'fenced while acking');
    } else if (acked !== null) {
      this.emit('message:settle', {
        ...event,
        outcome: settled.outcome.ok ? 'ok' : settled.outcome.error.code,
        fromJournal: settled.fromJournal,
      });
    }
  }

  /** A delete, run here in the session's order: close the session, drop its journal. */
  async #deleteHere(
    holding: HeldShard,
    message: InboxMessage,
    event: MessageEvent,
  ): Promise<Settled | undefined> {
    try {
      await this.supervisor.deleteSession(message.sessionKey);
      const reply: Reply = { text: '', turnId: '', usage: ZERO_USAGE };
      return { outcome: { ok: true, reply }, fromJournal: false };
    } catch (error) {
      if (this.#abandoned(holding, event, error, 'deleting')) return undefined;
      return { outcome: { ok: false, error: toWire(error) }, fromJournal: false };
    }
  }

  /**
   * Whether a failed step leaves the message to the next owner: refused by the fence (the
   * shard is lost here), or its shard went while it ran. Its caller must not be answered.
   */
  #abandoned(holding: HeldShard, event: MessageEvent, error: unknown, during: string): boolean {
    if (isFencedError(error)) {
      this.emit('message:fenced', event);
      this.#lose(holding, `fenced while ${during}`);
      return true;
    }
    return holding.state === 'lost' || holding.state === 'released';
  }

  /** Runs the message as a turn of the local session; undefined when it is not ours to settle. */
  async #runTurn(
    holding: HeldShard,
    message: InboxMessage,
    event: MessageEvent,
  ): Promise<Settled | undefined> {
    const key = message.sessionKey;
    this.#requests.set(key, message.requestId);
    try {
      const onEvent = message.stream ? this.#eventForwarder(message) : undefined;
      const session = this.supervisor.session(key, { agent: message.agent });
      // Each turn runs under the budget of the session it was sent through.
      if (message.budget !== undefined) session.setBudget(message.budget);
      const reply = await session.send(message.message, { onEvent });
      return { outcome: { ok: true, reply }, fromJournal: false };
    } catch (error) {
      // Its session was stopped because the shard went, or the node is closing: the message
      // stays pending, and the next owner runs it.
      if (this.#abandoned(holding, event, error, 'journaling')) return undefined;
      if (
        this.#stopped &&
        (isAgentcellError(error, 'AGENTCELL_SUPERVISOR_CLOSED') ||
          isAgentcellError(error, 'AGENTCELL_SUPERVISOR_DESTROYED'))
      ) {
        return undefined;
      }
      if (isAgentcellError(error) && error.details?.['reason'] === REQUEST_KNOWN_REASON) {
        const record = await this.#store
          .recordOfRequest(key, message.requestId)
          .catch(() => undefined);
        if (record) return { outcome: { ok: true, reply: replyOf(record) }, fromJournal: true };
      }
      return { outcome: { ok: false, error: toWire(error) }, fromJournal: false };
    } finally {
      if (this.#requests.get(key) === message.requestId) this.#requests.delete(key);
    }
  }

  /**
   * Forwards a streaming caller's events to its node, on the connection the ack will use, so
   * they arrive before the reply. Best effort: the reply, not the events, is the outcome.
   */
  #eventForwarder(message: InboxMessage): (event: TurnEvent) => void {
    const replies = this.#keys.replies(message.origin);
    return (event) => {
      if (event.type === 'final') return; // the accepting node builds it from the reply
      this.#client
        .xadd(
          replies,
          'MAXLEN',
          '~',
          REPLIES_MAX_LENGTH,
          '*',
          'r',
          message.requestId,
          'e',
          encode(event),
        )
        .catch((error: unknown) => this.#report(error, 'forwarding an event'));
    };
  }

  /** Acks away an inbox entry that is not a message (nobody to answer). */
  async #discard(holding: HeldShard, entryId: string): Promise<void> {
    try {
      const result = await this.#inbox.ack(holding.shard, holding.epoch, entryId, undefined);
      if (result === 'fenced') this.#lose(holding, 'fenced while discarding');
    } catch (error) {
      this.#report(error, 'discarding a malformed inbox entry');
    }
  }

  /**
   * Retries a Redis operation with backoff while the shard is still this node's: giving up
   * would let the session's next message overtake this one. Null when it gave up.
   */
  async #retry<T>(
    holding: HeldShard,
    during: string,
    operation: () => Promise<T>,
  ): Promise<T | null> {
    for (let attempt = 0; ; attempt++) {
      if (holding.state === 'lost' || holding.state === 'released' || this.#stopped) return null;
      try {
        return await operation();
      } catch (error) {
        this.#report(error, during);
        await sleep(Math.min(1_000, 50 * 2 ** attempt));
      }
    }
  }
}

function messageEvent(holding: HeldShard, message: InboxMessage): MessageEvent {
  return {
    requestId: message.requestId,
    key: message.sessionKey,
    shard: holding.shard,
    epoch: holding.epoch,
  };
}

/** Host and port of a Redis URL, never its credentials (errors reach callers and logs). */
function redisAddress(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '6379'}`;
  } catch {
    return 'the configured URL';
  }
}

/** The reply a journaled turn gave: its last assistant message. */
function replyOf(record: JournalRecord): Reply {
  const last = record.messages.findLast((message) => message.role === 'assistant');
  return {
    text: last?.content ?? '',
    turnId: record.turnId,
    usage: record.usage,
    ...(record.output !== undefined && { output: record.output }),
  };
}
