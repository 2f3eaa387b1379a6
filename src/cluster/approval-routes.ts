/**
 * Approvals answered and listed through any node. The node that owns the session does it on
 * its own Supervisor. Another node asks the owner through the owner's reply stream, which the
 * owner reads at once whatever its inboxes hold: an answer must never wait behind the
 * messages a paused turn holds (they wait for that very answer). The outcome comes back on
 * the asking node's reply stream, like a message's reply, with the same typed errors
 * (`AGENTCELL_APPROVAL_NOT_FOUND`, `_ANSWERED`, `_EXPIRED`) as on a single host.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { JournalRecord } from '../agent/journal.js';
import { ZERO_USAGE } from '../agent/messages.js';
import { decodeUntrusted, encode } from '../codec.js';
import {
  ApprovalNotFoundError,
  ClusterUnavailableError,
  MessageInvalidError,
  toWire,
} from '../errors.js';
import type { ApprovalAnswer, PendingApprovalView } from '../runtime/approval-desk.js';
import type { Session } from '../runtime/session.js';
import { assertSessionKey } from '../runtime/session-key.js';
import type { Supervisor } from '../runtime/supervisor.js';
import { REPLIES_MAX_LENGTH, REPLY_TTL_MS } from './inbox.js';
import type { ClusterKeys } from './keys.js';
import type { ShardLeases } from './leases.js';
import type { AwaitedReplies, Outcome } from './replies.js';
import { shardOf } from './shards.js';

/** The control entry of an approval operation on the owner's reply stream. */
export const APPROVAL_CONTROL = 'approval';

/**
 * How long an asking node waits for the owner's outcome: the owner only journals an answer,
 * and a person at a button should hear soon that the owner went away (the answer may still
 * have been taken: listing the approvals again tells).
 */
const OWNER_ANSWER_TIMEOUT_MS = 30_000;

/** Largest answer read from a reply stream (a reason is at most 1,000 characters). */
const MAX_ANSWER_BYTES = 16 * 1024;

export interface ApprovalRoutesOptions {
  readonly nodeId: string;
  readonly shards: number;
  readonly keys: ClusterKeys;
  readonly client: Redis;
  readonly leases: ShardLeases;
  readonly replies: AwaitedReplies;
  readonly supervisor: Supervisor;
  /** The journal of a session (read before a session is opened to answer about it). */
  readonly journal: (key: string) => Promise<readonly JournalRecord[]>;
  /** Whether this node runs shard `shard` now. */
  readonly runs: (shard: number) => boolean;
  readonly report: (error: unknown, during: string, sessionKey?: string) => void;
}

/** An answer to give, or (undefined) a listing to make. */
type Operation = { readonly approvalId: string; readonly answer: ApprovalAnswer } | undefined;

export class ApprovalRoutes {
  readonly #options: ApprovalRoutesOptions;

  constructor(options: ApprovalRoutesOptions) {
    this.#options = options;
  }

  /** Answers approval `approvalId` of session `key` on the node that owns it. */
  async approve(
    key: string,
    agent: string,
    approvalId: string,
    answer: ApprovalAnswer,
  ): Promise<void> {
    await this.#route(key, agent, { approvalId, answer });
  }

  /** The approvals session `key` waits on, as the node that owns it lists them. */
  async list(key: string, agent: string): Promise<PendingApprovalView[]> {
    return (await this.#route(key, agent, undefined)) as PendingApprovalView[];
  }

  /** An approval operation another node asked of a session: done here, answered there. */
  handle(fields: Map<string, string>): void {
    const requestId = fields.get('r');
    const origin = fields.get('o');
    const key = fields.get('k');
    const agent = fields.get('a');
    if (!requestId || !origin || !key || agent === undefined) return; // nobody to answer
    void this.#here(key, agent, fields)
      .then(
        (value): Outcome => ({
          ok: true,
          reply: { text: '', turnId: '', usage: ZERO_USAGE, output: value },
        }),
        (error: unknown): Outcome => ({ ok: false, error: toWire(error) }),
      )
      .then((outcome) => this.#post(origin, ['r', requestId, 'p', encode(outcome)]))
      .catch((error: unknown) =>
        this.#options.report(error, 'answering an approval operation', key),
      );
  }

  async #route(key: string, agent: string, operation: Operation): Promise<unknown> {
    assertSessionKey(key);
    const { leases, nodeId, replies, shards, runs } = this.#options;
    const shard = shardOf(key, shards);
    if (runs(shard)) return this.#run(key, agent, operation);
    const owner = await leases.ownerOf(shard).catch((error: unknown) => {
      throw unavailable(key, `Redis did not answer: ${String(error)}`, error);
    });
    if (!owner || owner.node === nodeId) {
      throw unavailable(key, `its shard ${shard} is changing owner`);
    }
    const requestId = randomUUID();
    const reply = replies.expect(requestId, {
      sessionKey: key,
      shard,
      timeoutMs: OWNER_ANSWER_TIMEOUT_MS,
    });
    const fields = ['c', APPROVAL_CONTROL, 'r', requestId, 'o', nodeId, 'k', key, 'a', agent];
    if (operation) {
      fields.push('i', operation.approvalId, 'y', encode(operation.answer));
    }
    try {
      await this.#post(owner.node, fields);
    } catch (error) {
      replies.forget(requestId);
      throw unavailable(key, `Redis did not take the request: ${String(error)}`, error);
    }
    return (await reply).output;
  }

  async #here(key: string, agent: string, fields: Map<string, string>): Promise<unknown> {
    if (!this.#options.runs(shardOf(key, this.#options.shards))) {
      throw unavailable(key, 'its shard is changing owner');
    }
    const approvalId = fields.get('i');
    if (approvalId === undefined) return this.#run(key, agent, undefined);
    const decoded = decodeUntrusted(fields.get('y'), {
      maxBytes: MAX_ANSWER_BYTES,
      root: 'answer',
    });
    if ('problems' in decoded) throw new MessageInvalidError('the answer does not decode');
    const answer = decoded.value as ApprovalAnswer;
    return this.#run(key, agent, { approvalId, answer });
  }

  async #run(key: string, agent: string, operation: Operation): Promise<unknown> {
    const session = await this.#session(key, agent);
    if (!session) {
      if (!operation) return [];
      throw new ApprovalNotFoundError(
        `no approval ${operation.approvalId} waits in session ${JSON.stringify(key)}`,
      );
    }
    if (!operation) return session.approvals();
    await session.approve(operation.approvalId, operation.answer);
    return undefined;
  }

  /**
   * The session on this node's Supervisor, opened from its journal only if that ever paused:
   * a listing (every `GET /v1/sessions/:key` makes one) must not open every session it asks of.
   */
  async #session(key: string, agent: string): Promise<Session | undefined> {
    const { supervisor, journal } = this.#options;
    const open = supervisor.peek(key);
    if (open) return open;
    const records = await journal(key);
    if (!records.some((record) => record.approval?.kind === 'pending')) return undefined;
    return supervisor.peek(key) ?? supervisor.session(key, { agent });
  }

  async #post(node: string, fields: string[]): Promise<void> {
    const stream = this.#options.keys.replies(node);
    await this.#options.client
      .multi()
      .xadd(stream, 'MAXLEN', '~', REPLIES_MAX_LENGTH, '*', ...fields)
      .pexpire(stream, REPLY_TTL_MS)
      .exec();
  }
}

function unavailable(key: string, why: string, cause?: unknown): ClusterUnavailableError {
  return new ClusterUnavailableError(
    `the node that owns session ${JSON.stringify(key)} could not be reached (${why}); try again`,
    { cause },
  );
}
