/**
 * A session whose turns run on another node of a cluster: it keeps no mailbox or worker here.
 * Its messages go to the node that owns it, which keeps their order and the busy policy; its
 * history and figures are read from the cluster's journal.
 */
import { conversationMessages } from '../agent/journal.js';
import { addUsage, type ChatMessage, ZERO_USAGE } from '../agent/messages.js';
import { OptionsInvalidError } from '../errors.js';
import type { ApprovalAnswer, PendingApprovalView } from './approval-desk.js';
import type { BusyPolicy, SessionBudget } from './options.js';
import type { RemoteNode } from './remote-placement.js';
import { Session, type Submission } from './session.js';
import type { SessionGate } from './session-host.js';
import type { SessionObserver } from './session-observers.js';
import type { Reply, SessionStats } from './session-types.js';

export class RoutedSession extends Session {
  readonly #gate: SessionGate;
  readonly #node: RemoteNode;
  readonly #policy: BusyPolicy;
  /** Messages sent and not yet answered (close waits for them). */
  readonly #sent = new Set<Promise<unknown>>();
  #failedTurns = 0;
  #closing: Promise<void> | undefined;

  /** Throws `AGENTCELL_OPTIONS_INVALID` for a busy policy that does not hold across nodes. */
  constructor(
    key: string,
    agent: string,
    gate: SessionGate,
    node: RemoteNode,
    options: { busyPolicy: BusyPolicy; budget?: SessionBudget | undefined },
  ) {
    if (options.busyPolicy === 'steer' || options.busyPolicy === 'coalesce') {
      throw new OptionsInvalidError(
        `busyPolicy ${JSON.stringify(options.busyPolicy)} needs the running turn in this process and does not hold across nodes: use enqueue, reject or interrupt in a cluster`,
      );
    }
    super(key, agent, gate, options.budget);
    this.#gate = gate;
    this.#node = node;
    this.#policy = options.busyPolicy;
  }

  protected override submit(message: string, submission: Submission): Promise<Reply> {
    this.assertAccepting();
    this.assertMessage(message);
    if (submission.history !== undefined) {
      // The node that owns the session would have to journal the replacement in the order of
      // its inbox; the cluster's message protocol does not carry one yet.
      throw new OptionsInvalidError(
        'history: replacing a session’s history is not supported in a cluster yet; send the message without it',
      );
    }
    const { onEvent } = submission;
    const reply = this.#node
      .send(this.key, message, {
        agent: this.agent,
        busyPolicy: this.#policy,
        budget: this.budget,
        onEvent,
        idempotencyKey: submission.idempotency?.key,
      })
      .catch((error: unknown) => {
        this.#failedTurns++;
        throw error;
      });
    // Only for close to wait on: the caller gets the outcome through `reply`.
    const settled = reply.catch(() => {});
    this.#sent.add(settled);
    void settled.finally(() => this.#sent.delete(settled));
    return reply;
  }

  /** Answered where the session runs; checked here first, so a bad answer never travels. */
  override async approve(approvalId: string, answer: ApprovalAnswer): Promise<void> {
    this.assertAnswer(approvalId, answer);
    const { approved, reason } = answer;
    const clean = { approved, ...(reason !== undefined && { reason }) };
    await this.#node.approve(this.key, this.agent, approvalId, clean);
  }

  override approvals(): Promise<PendingApprovalView[]> {
    return this.#node.approvals(this.key, this.agent);
  }

  /** Its turns run on the node that owns it, and their events reach only their own callers. */
  override observe(_observer: SessionObserver): () => void {
    throw new OptionsInvalidError(
      'observing a session is not supported in a cluster yet: its turns run on the node that owns it; watch the turns you send through their own streams',
    );
  }

  override interrupt(reason = 'interrupted'): Promise<boolean> {
    return this.#node.interrupt(this.key, reason);
  }

  override async history(): Promise<ChatMessage[]> {
    const records = await this.#node.journal(this.key);
    return conversationMessages(records);
  }

  /** Its turns are journaled where they run: the figures are read afresh each time. */
  override async stats(): Promise<SessionStats> {
    const records = await this.#node.journal(this.key);
    return {
      key: this.key,
      agent: this.agent,
      status: this.state,
      threadId: undefined,
      busy: false,
      queued: 0,
      turns: records.length,
      failedTurns: this.#failedTurns,
      restarts: 0,
      usage: records.reduce((sum, record) => addUsage(sum, record.usage), ZERO_USAGE),
      heapUsedBytes: undefined,
      eventLoopUtilization: undefined,
      lastTurnCpuMs: undefined,
      lastMailboxWaitMs: undefined,
    };
  }

  override get threadId(): undefined {
    return undefined;
  }

  override get queued(): number {
    return 0;
  }

  override get busy(): boolean {
    return false;
  }

  override close(): Promise<void> {
    this.#closing ??= (async () => {
      this.state = 'closing';
      await Promise.allSettled(this.#sent);
      this.state = 'closed';
      this.#gate.emit('session:close', { key: this.key });
    })();
    return this.#closing;
  }

  /** Stops taking messages; those already sent are answered by the node that runs them. */
  override async destroy(error: Error): Promise<void> {
    if (this.state === 'closed' && !this.#closing) return;
    this.destroyedWith ??= error;
    this.state = 'closed';
  }

  override canPassivate(): boolean {
    return false;
  }

  override async passivate(): Promise<boolean> {
    return false;
  }

  override get isPassivated(): boolean {
    return false;
  }
}
