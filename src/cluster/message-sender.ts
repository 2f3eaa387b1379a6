/**
 * The accepting side of a node: a message for any session is checked, appended to the durable
 * inbox of the session's shard, and its reply awaited on this node's reply stream; an interrupt
 * for a session another node runs is sent to that node's reply stream, which it reads at once.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  AgentNotRegisteredError,
  ClusterUnavailableError,
  MailboxFullError,
  MessageInvalidError,
  OptionsInvalidError,
} from '../errors.js';
import { assertIdempotencyKey } from '../runtime/idempotency.js';
import { parseBudget } from '../runtime/options.js';
import { assertSessionKey } from '../runtime/session-key.js';
import { REPLIES_MAX_LENGTH, REPLY_TTL_MS, type ShardInbox } from './inbox.js';
import { CLUSTER_BUSY_POLICIES, type ClusterBusyPolicy } from './inbox-message.js';
import type { ClusterKeys } from './keys.js';
import type { ShardLeases } from './leases.js';
import type { ClusterSendOptions, SubmitResult } from './node-options.js';
import type { AwaitedReplies } from './replies.js';
import { shardOf } from './shards.js';

export interface MessageSenderOptions {
  readonly nodeId: string;
  readonly shards: number;
  readonly redis: string;
  readonly maxMessageBytes: number;
  readonly maxInboxPerShard: number;
  readonly keys: ClusterKeys;
  readonly client: Redis;
  readonly inbox: ShardInbox;
  readonly leases: ShardLeases;
  readonly replies: AwaitedReplies;
  /** The agents registered on this node (a message for another is refused here). */
  readonly agentNames: () => readonly string[];
}

export class MessageSender {
  readonly #options: MessageSenderOptions;

  constructor(options: MessageSenderOptions) {
    this.#options = options;
  }

  /** Throws `AGENTCELL_MESSAGE_INVALID` for an empty or oversized message. */
  assertMessage(message: unknown): void {
    if (typeof message !== 'string' || message.trim().length === 0) {
      throw new MessageInvalidError('expected a non-empty string message');
    }
    const bytes = Buffer.byteLength(message, 'utf8');
    if (bytes > this.#options.maxMessageBytes) {
      throw new MessageInvalidError(
        `the message is ${bytes} bytes, over the limit of ${this.#options.maxMessageBytes} (maxMessageBytes)`,
      );
    }
  }

  /** Puts a message (or a command) in its shard's inbox; see `ClusterNode.submit`. */
  async accept(
    key: string,
    message: string,
    options: ClusterSendOptions & { readonly command?: 'delete' },
  ): Promise<SubmitResult> {
    assertSessionKey(key);
    const { replies, maxInboxPerShard } = this.#options;
    const busyPolicy = options?.busyPolicy ?? 'enqueue';
    if (!(CLUSTER_BUSY_POLICIES as readonly string[]).includes(busyPolicy)) {
      throw new OptionsInvalidError(
        `busyPolicy ${JSON.stringify(busyPolicy)} does not hold across nodes: use ${CLUSTER_BUSY_POLICIES.join(', ')}`,
      );
    }
    const agent = options?.agent;
    if (
      options.command === undefined &&
      (typeof agent !== 'string' || !this.#options.agentNames().includes(agent))
    ) {
      throw new AgentNotRegisteredError(`no agent named ${JSON.stringify(agent)} on this node`);
    }
    if (options.idempotencyKey !== undefined) assertIdempotencyKey(options.idempotencyKey);
    // The request id stays one per delivery (the reply is routed by it); the idempotency key
    // rides along, and the owner's session answers a repeat of it from its ledger or journal.
    const requestId = randomUUID();
    const shard = shardOf(key, this.#options.shards);
    const reply = replies.expect(requestId, { sessionKey: key, shard, onEvent: options.onEvent });
    let entryId: string | undefined;
    try {
      entryId = await this.#options.inbox.accept(
        shard,
        {
          requestId,
          sessionKey: key,
          agent,
          message,
          origin: this.#options.nodeId,
          stream: options.onEvent !== undefined,
          busyPolicy: busyPolicy as ClusterBusyPolicy,
          budget: options.budget === undefined ? undefined : parseBudget(options.budget),
          command: options.command,
          idempotencyKey: options.idempotencyKey,
        },
        maxInboxPerShard,
      );
    } catch (error) {
      replies.forget(requestId);
      throw new ClusterUnavailableError(
        `Redis at ${redisAddress(this.#options.redis)} did not take the message: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
    if (entryId === undefined) {
      replies.forget(requestId);
      throw new MailboxFullError(
        `the inbox of shard ${shard} holds ${maxInboxPerShard} messages (maxInboxPerShard)`,
      );
    }
    return { requestId, shard, reply };
  }

  /** Asks the node that owns session `key` to interrupt its turn; false if none but this one does. */
  async interruptElsewhere(key: string, reason: string): Promise<boolean> {
    const { keys, client } = this.#options;
    const owner = await this.#options.leases.ownerOf(shardOf(key, this.#options.shards));
    if (!owner || owner.node === this.#options.nodeId) return false;
    // Through the owner's reply stream: it reads that at once, whatever its inboxes hold.
    const stream = keys.replies(owner.node);
    await client
      .multi()
      .xadd(stream, 'MAXLEN', '~', REPLIES_MAX_LENGTH, '*', 'c', 'interrupt', 'k', key, 'x', reason)
      .pexpire(stream, REPLY_TTL_MS)
      .exec();
    return true;
  }
}

/** Host and port of a Redis URL, never its credentials (errors reach callers and logs). */
export function redisAddress(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '6379'}`;
  } catch {
    return 'the configured URL';
  }
}
