/**
 * A session actor's side of its approvals: a paused turn holds the messages behind it in the
 * mailbox (the busy policy decides what a new message does), its callers and observers hear
 * `approval-required`, and once every call is decided the rest of the turn runs ahead of the
 * held messages. The journaled state lives in {@link ApprovalDesk}.
 */
import type { TurnCheckpoint } from '../agent/approval.js';
import type { AgentSpec } from '../agent/config.js';
import { type AgentcellError, InterruptedError } from '../errors.js';
import { errorFields, log } from '../log.js';
import { type ApprovalAnswer, ApprovalDesk, type PausedTurn } from './approval-desk.js';
import type { Mailbox } from './mailbox.js';
import type { SessionHost } from './session-host.js';
import type { SessionObservers } from './session-observers.js';
import type { SessionTally } from './session-tally.js';
import { type CurrentTurn, hear, type PausedOutcome } from './session-turn.js';

/** What the approvals need from their session actor. */
export interface PausingSession {
  readonly key: string;
  readonly agent: string;
  readonly mailbox: Mailbox;
  readonly observers: SessionObservers;
  /** Runs the rest of `turn` from `checkpoint` as a turn of the session (admitted, watched). */
  runRest(turn: PausedTurn, checkpoint: TurnCheckpoint, waitedMs: number): Promise<void>;
  /** Counts a paused turn that ended without a reply as a failed turn. */
  readonly tally: SessionTally;
}

export class SessionApprovals {
  readonly desk: ApprovalDesk;
  readonly #session: PausingSession;

  constructor(session: PausingSession, host: SessionHost, config: AgentSpec['approval']) {
    this.#session = session;
    this.desk = new ApprovalDesk({
      key: session.key,
      agent: session.agent,
      store: host.store,
      clock: host.clock,
      config,
      onDecided: (turn) => this.#runRest(turn),
      onClosed: (turn, error) => this.#closed(turn, error),
    });
    // A turn left paused (before a restart, or a passivation) holds the messages behind it.
    if (config?.tools) {
      void session.mailbox
        .add(async () => {
          await this.desk.load();
          if (this.desk.waiting) session.mailbox.hold();
        })
        .catch((error: unknown) =>
          log('runtime').warn(
            { ...errorFields(error), sessionKey: session.key },
            'the approvals of the session could not be read',
          ),
        );
    }
  }

  /** The turn stopped for a person: journaled, its callers told, the messages behind it held. */
  async pause(current: CurrentTurn, outcome: PausedOutcome): Promise<void> {
    this.#session.mailbox.hold();
    const approvals = await this.desk.open(outcome.paused, current.callers, outcome.stamps);
    const seq = outcome.paused.checkpoint.seq;
    for (const [index, approval] of approvals.entries()) {
      hear(current, {
        type: 'approval-required',
        approvalId: approval.approvalId,
        callId: approval.callId,
        name: approval.tool,
        arguments: approval.arguments,
        expiresAt: approval.expiresAt,
        approvals: approvals.length,
        sessionKey: this.#session.key,
        turnId: current.turnId,
        seq: seq + index,
      });
    }
  }

  answer(approvalId: string, answer: ApprovalAnswer): Promise<void> {
    return this.desk.answer(approvalId, answer);
  }

  /** Cancels the turn waiting for a person, if any (and if it is `turnId`, when given). */
  async interrupt(reason: string, turnId: string | undefined): Promise<boolean> {
    const waiting = this.desk.waiting;
    if (!waiting || (turnId !== undefined && turnId !== waiting.turnId)) return false;
    await this.desk.close(waiting, new InterruptedError(`turn ${waiting.turnId}: ${reason}`));
    return true;
  }

  /** A turn of the session ended: the held messages go on unless one still waits. */
  turnEnded(): void {
    if (!this.desk.waiting) this.#session.mailbox.release();
  }

  /** Closing while a turn waits for a person: it stays journaled; nobody here waits for it. */
  leave(error: Error): void {
    this.desk.stop();
    const waiting = this.desk.waiting;
    if (!waiting) return;
    this.#session.mailbox.clear(error);
    for (const caller of waiting.callers.splice(0)) caller.reply.reject(error);
    this.#session.mailbox.release();
  }

  /** Every call of a paused turn is decided: its rest runs before any message behind it. */
  #runRest(turn: PausedTurn): void {
    const { mailbox } = this.#session;
    mailbox
      .add(
        async (waitedMs) => {
          if (this.desk.paused !== turn) return;
          const checkpoint = await this.desk.resume(turn);
          await this.#session.runRest(turn, checkpoint, waitedMs);
        },
        { first: true },
      )
      .catch((error: unknown) => {
        for (const caller of turn.callers) caller.reply.reject(error);
      });
    mailbox.release();
  }

  /** A paused turn ended without a reply (interrupted, timed out, crashed before). */
  #closed(turn: PausedTurn, error: AgentcellError): void {
    this.#session.tally.failedTurns++;
    this.#session.observers.failed(turn.turnId, error);
    for (const caller of turn.callers) caller.reply.reject(error);
    this.turnEnded();
  }
}
