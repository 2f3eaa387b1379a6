import { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';
import type { Agent } from '../agent/agent.js';
import type { Blueprint } from '../agent/blueprint.js';
import { streamEvents } from '../agent/event-stream.js';
import type { JournalRecord } from '../agent/journal.js';
import type { TurnEvent } from '../agent/turn-events.js';
import { ClusterUnavailableError, OptionsInvalidError, SupervisorClosedError } from '../errors.js';
import { errorFields, log } from '../log.js';
import type { ApprovalAnswer, PendingApprovalView } from '../runtime/approval-desk.js';
import type { RegisterOptions } from '../runtime/options.js';
import { assertSessionKey } from '../runtime/session-key.js';
import type { Reply } from '../runtime/session-types.js';
import { RedisStore } from '../runtime/stores/redis.js';
import { Supervisor } from '../runtime/supervisor.js';
import { APPROVAL_CONTROL, ApprovalRoutes } from './approval-routes.js';
import { FencedJournal } from './fenced-journal.js';
import { ShardInbox } from './inbox.js';
import { InboxConsumer } from './inbox-consumer.js';
import { ClusterKeys } from './keys.js';
import { ShardLeases } from './leases.js';
import { logClusterLifecycle } from './lifecycle-log.js';
import { Membership } from './membership.js';
import { MessageSender, redisAddress } from './message-sender.js';
import {
  type ClusterNodeEvents,
  type ClusterNodeOptions,
  type ClusterNodeStats,
  type ClusterNodeStatus,
  type ClusterSendOptions,
  parseNodeOptions,
  type ResolvedNodeOptions,
  type SubmitResult,
} from './node-options.js';
import { AwaitedReplies } from './replies.js';
import { ShardOwnership, type ShardOwnershipOptions } from './shard-ownership.js';
import { shardOf } from './shards.js';

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
  readonly #connections: readonly Redis[];
  readonly #replies: AwaitedReplies;
  readonly #store: RedisStore;
  readonly #membership: Membership;
  readonly #leases: ShardLeases;
  readonly #inbox: ShardInbox;
  readonly #ownership: ShardOwnership;
  readonly #consumer: InboxConsumer;
  readonly #sender: MessageSender;
  readonly #approvals: ApprovalRoutes;
  #status: ClusterNodeStatus = 'new';
  #stopped = false;
  /** Connected and a member: what leaving must undo. */
  #joined = false;
  #loops: Promise<void>[] = [];
  #closing: Promise<void> | undefined;

  /** Throws `AGENTCELL_OPTIONS_INVALID` for bad options; connects lazily, on `start()`. */
  constructor(options: ClusterNodeOptions) {
    super();
    const resolved = parseNodeOptions(options);
    const { nodeId } = resolved;
    this.nodeId = nodeId;
    logClusterLifecycle(this, nodeId);
    this.shards = resolved.shards;
    this.#options = resolved;
    this.#keys = new ClusterKeys(resolved.prefix);
    // ioredis reconnects by itself; the failures still reach the operations, reported there.
    const connect = () => new Redis(resolved.redis, { lazyConnect: true }).on('error', () => {});
    this.#client = connect();
    this.#inboxConnection = connect();
    this.#replyConnection = connect();
    this.#connections = [this.#client, this.#inboxConnection, this.#replyConnection];
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
    const emit = this.emit.bind(this) as ShardOwnershipOptions['emit'];
    const report = (error: unknown, during: string, sessionKey?: string) =>
      this.#report(error, during, sessionKey);
    const journal = new FencedJournal(this.#store, {
      shardOf: (key) => this.shardOf(key),
      fenceOf: (key) => {
        const held = this.#ownership.runs(this.shardOf(key));
        return held && { shard: held.shard, epoch: held.epoch };
      },
      requestOf: (key) => this.#consumer.requestOf(key),
    });
    this.supervisor = new Supervisor({ ...options.supervisor, store: journal });
    // What the parts below share: the options, the keys, the Redis client and its leases.
    const base = {
      ...resolved,
      keys: this.#keys,
      client: this.#client,
      replies: this.#replies,
      report,
    };
    this.#ownership = new ShardOwnership({
      ...resolved,
      membership: this.#membership,
      leases: this.#leases,
      inbox: this.#inbox,
      supervisor: this.supervisor,
      onClaimed: (holding, message) => this.#consumer.dispatch(holding, message, true),
      onMalformed: (holding, entryId) => void this.#consumer.discard(holding, entryId),
      emit,
      report,
    });
    this.#sender = new MessageSender({
      ...base,
      inbox: this.#inbox,
      leases: this.#leases,
      agentNames: () => this.supervisor.agentNames(),
    });
    this.#approvals = new ApprovalRoutes({
      ...base,
      leases: this.#leases,
      supervisor: this.supervisor,
      journal: (key) => this.#store.read(key),
      runs: (shard) => this.#ownership.runs(shard) !== undefined,
    });
    this.#consumer = new InboxConsumer({
      ...base,
      blocking: this.#inboxConnection,
      inbox: this.#inbox,
      store: this.#store,
      ownership: this.#ownership,
      supervisor: this.supervisor,
      stopped: () => this.#stopped,
      emit,
    });
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
      await Promise.all(this.#connections.map((connection) => connection.connect()));
      await this.#membership.heartbeat('active');
      this.#joined = true;
    } catch (error) {
      // Nothing was taken yet: stop the clients' reconnecting and leave the node closed.
      for (const connection of this.#connections) connection.disconnect();
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
      this.#consumer.run(),
    ];
    await this.#ownership.start();
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
    if (this.#ownership.runs(this.shardOf(key))) {
      return (await this.supervisor.peek(key)?.interrupt(reason)) ?? false;
    }
    return this.#sender.interruptElsewhere(key, reason);
  }

  /**
   * Closes a session on the node that runs it and deletes its journal, in the session's order
   * (after the messages accepted before it): the next message starts a new conversation.
   */
  async deleteSession(key: string): Promise<void> {
    this.#assertRunning();
    await (await this.#sender.accept(key, '', { agent: '', command: 'delete' })).reply;
  }

  /**
   * Answers a tool call a session's paused turn waits on, where the session runs (the turn goes
   * on there; its caller gets the reply). Rejects as a single host does, or with
   * `AGENTCELL_CLUSTER_UNAVAILABLE` while the session's shard changes owner.
   *
   * @example
   * await node.approve('acme:user-7', approvalId, { approved: false, reason: 'too much' }, 'payer');
   */
  async approve(key: string, id: string, answer: ApprovalAnswer, agent: string): Promise<void> {
    this.#assertRunning();
    await this.#approvals.approve(key, agent, id, answer);
  }

  /**
   * The tool calls a session's paused turn waits on, as the node that runs it lists them.
   *
   * @example
   * for (const { approvalId, tool } of await node.approvals('acme:user-7', 'payer')) console.log(tool);
   */
  async approvals(key: string, agent: string): Promise<PendingApprovalView[]> {
    this.#assertRunning();
    return this.#approvals.list(key, agent);
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
  async submit(key: string, message: string, options: ClusterSendOptions): Promise<SubmitResult> {
    this.#sender.assertMessage(message);
    this.#assertRunning();
    return this.#sender.accept(key, message, options);
  }

  #assertRunning(): void {
    if (this.#status !== 'running') {
      throw new SupervisorClosedError(`the cluster node is ${this.#status}`);
    }
  }

  stats(): ClusterNodeStats {
    return {
      nodeId: this.nodeId,
      status: this.#status,
      shards: this.#ownership
        .held()
        .map(({ shard, epoch, state }) => ({ shard, epoch, state }))
        .sort((a, b) => a.shard - b.shard),
      inFlight: this.#consumer.inFlight,
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
        const left = this.#ownership.leave();
        await this.#membership.heartbeat('leaving').catch((error: unknown) => {
          this.#report(error, 'announcing the leave');
        });
        await left; // a tick under way may still be taking shards: drain those too
        await this.#ownership.drainAll();
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
      await this.#ownership.dropAll(reason);
      await this.#shutDown(new SupervisorClosedError(`cluster node ${this.nodeId} was destroyed`));
    })();
    return this.#closing;
  }

  async #shutDown(error: Error): Promise<void> {
    this.#stopped = true;
    await this.#ownership.stop();
    this.#replies.failAll(error);
    // Blocked reads end when their connection does.
    this.#inboxConnection.disconnect();
    this.#replyConnection.disconnect();
    await Promise.allSettled(this.#loops);
    // A node that never joined has no membership to end, nor a connection to say goodbye on.
    if (this.#joined) {
      await this.#membership.leave().catch((cause: unknown) => this.#report(cause, 'leaving'));
    }
    await this.supervisor.close();
    await this.#store.close();
    if (this.#joined) {
      await this.#client.quit().catch((error: unknown) => {
        log('cluster').debug(errorFields(error), 'a broken Redis connection was cut, not quit');
        this.#client.disconnect();
      });
    } else this.#client.disconnect();
    this.#status = 'closed';
  }

  /** Redis failed an operation: the node retries it, or leaves the work to the next owner. */
  #report(error: unknown, during: string, sessionKey?: string): void {
    log('cluster').warn(
      { ...errorFields(error), nodeId: this.nodeId, during, sessionKey },
      'Redis failed',
    );
    this.emit('redis:error', { error, during });
  }

  /** An operation another node asked of a session this node runs. */
  #control(fields: Map<string, string>): void {
    const key = fields.get('k');
    if (fields.get('c') === APPROVAL_CONTROL) this.#approvals.handle(fields);
    else if (fields.get('c') === 'interrupt' && key && this.#ownership.runs(this.shardOf(key))) {
      this.#consumer.interruptHere(key, fields.get('x') ?? 'interrupted');
    }
  }
}
