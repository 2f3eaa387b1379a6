/**
 * The approvals of one session: a turn paused for a person is journaled, waits (without a
 * worker or a mailbox slot) for every call to be answered, times out, or is cancelled; the
 * journal is its only state, so a session opened again after a restart finds it where it was.
 *
 * Guarantee: the rest of a paused turn starts at most once. Its start is journaled before it
 * runs; a host that dies while it runs leaves a turn that is closed, on the next open, with
 * `AGENTCELL_SESSION_CRASHED` rather than run again (its approved tools may have run once).
 */
import {
  type ApprovalDecision,
  type ApprovalMark,
  markRecordId,
  type PendingApproval,
  type TurnCheckpoint,
  type TurnPause,
} from '../agent/approval.js';
import type { AgentSpec } from '../agent/config.js';
import type { IdempotencyStamp, JournalRecord } from '../agent/journal.js';
import { ZERO_USAGE } from '../agent/messages.js';
import { redactArguments } from '../agent/redact.js';
import type { Clock, ClockTimer } from '../clock.js';
import {
  type AgentcellError,
  ApprovalAnsweredError,
  ApprovalExpiredError,
  ApprovalNotFoundError,
  ApprovalTimeoutError,
  SessionCrashedError,
} from '../errors.js';
import { errorFields, log } from '../log.js';
import type { Caller } from './session-turn.js';
import type { JournalStore } from './stores/store.js';

/** A tool call waiting for a person, as callers, listings and front doors show it. */
export interface PendingApprovalView {
  readonly approvalId: string;
  readonly turnId: string;
  readonly callId: string;
  readonly tool: string;
  /** The call's arguments, with the paths of `approval.redact` hidden. */
  readonly arguments: unknown;
  readonly requestedAt: number;
  readonly expiresAt?: number | undefined;
}

/** A person's answer to an approval. */
export interface ApprovalAnswer {
  readonly approved: boolean;
  /** Told to the model with a denial; at most 1,000 characters. */
  readonly reason?: string | undefined;
}

/** The paused turn of a session (a session has at most one: messages wait behind it). */
export interface PausedTurn {
  readonly turnId: string;
  readonly checkpoint: TurnCheckpoint;
  readonly approvals: readonly PendingApproval[];
  readonly answers: Map<string, ApprovalDecision>;
  /** Whoever waits for the reply in this process (none after a restart: observers hear it). */
  readonly callers: Caller[];
  readonly stamps: readonly IdempotencyStamp[];
  timer?: ClockTimer | undefined;
}

export interface DeskContext {
  readonly key: string;
  readonly agent: string;
  readonly store: JournalStore;
  readonly clock: Clock;
  readonly config: AgentSpec['approval'];
  /** Every call of `turn` is decided: run the rest of it. */
  readonly onDecided: (turn: PausedTurn) => void;
  /** `turn` ends without a reply: tell its callers and observers. */
  readonly onClosed: (turn: PausedTurn, error: AgentcellError) => void;
}

export class ApprovalDesk {
  readonly #context: DeskContext;
  #paused: PausedTurn | undefined;
  /** Approvals no longer open: answered, or expired (a late answer is told which). */
  readonly #settled = new Map<string, 'answered' | 'expired' | 'closed'>();
  #loading: Promise<PausedTurn | undefined> | undefined;
  #stopped = false;

  constructor(context: DeskContext) {
    this.#context = context;
  }

  /** The paused turn, until its rest ends (also while it runs). */
  get paused(): PausedTurn | undefined {
    return this.#paused;
  }

  /** The paused turn while it still waits for an answer. */
  get waiting(): PausedTurn | undefined {
    const turn = this.#paused;
    return turn && !this.#decided(turn) ? turn : undefined;
  }

  /**
   * Reads the journal once: the turn left paused, if any, with its answers and timer. A turn
   * whose rest had started when the host stopped is closed; one fully answered is decided.
   */
  load(): Promise<PausedTurn | undefined> {
    this.#loading ??= this.#load();
    return this.#loading;
  }

  async #load(): Promise<PausedTurn | undefined> {
    const records = await this.#context.store.read(this.#context.key);
    const done = new Set(records.filter((r) => r.approval === undefined).map((r) => r.turnId));
    let open: Extract<ApprovalMark, { kind: 'pending' }> | undefined;
    const answers = new Map<string, ApprovalDecision>();
    let resumed = false;
    for (const { approval: mark } of records) {
      if (!mark) continue;
      if (mark.kind === 'answer') {
        this.#settled.set(mark.approvalId, mark.expired ? 'expired' : 'answered');
        if (mark.turnId === open?.turnId) {
          answers.set(mark.approvalId, { approved: mark.approved, reason: mark.reason });
        }
      } else if (mark.kind === 'pending') {
        open = mark;
        answers.clear();
        resumed = false;
      } else if (mark.turnId === open?.turnId) {
        if (mark.kind === 'resumed') resumed = true;
        else {
          const left = mark.code === 'AGENTCELL_APPROVAL_TIMEOUT' ? 'expired' : 'closed';
          for (const { approvalId } of open.approvals) {
            if (!answers.has(approvalId)) this.#settled.set(approvalId, left);
          }
          open = undefined;
        }
      }
    }
    if (!open || done.has(open.turnId)) return undefined;
    const turn = this.#register(open.turnId, open.checkpoint, open.approvals, [], open.idempotency);
    for (const [id, decision] of answers) turn.answers.set(id, decision);
    if (resumed) {
      await this.close(
        turn,
        new SessionCrashedError(
          `the host stopped while turn ${turn.turnId} ran after its approval; it was not run again`,
        ),
      );
      return undefined;
    }
    if (this.#decided(turn)) this.#context.onDecided(turn);
    else this.#arm(turn);
    return turn;
  }

  /** Journals a pause and waits for answers; returns the approvals as callers are told. */
  async open(
    pause: TurnPause,
    callers: Caller[],
    stamps: readonly IdempotencyStamp[],
  ): Promise<PendingApprovalView[]> {
    const now = this.#context.clock.now();
    const timeoutMs = this.#context.config?.timeoutMs;
    const approvals = pause.approvals.map((asked) => ({
      ...asked,
      requestedAt: now,
      ...(timeoutMs !== undefined && { expiresAt: now + timeoutMs }),
    }));
    // The rest of the turn numbers its events after the approval-required ones.
    const checkpoint = { ...pause.checkpoint, seq: pause.checkpoint.seq + approvals.length };
    await this.#journal({
      kind: 'pending',
      turnId: pause.turnId,
      checkpoint,
      approvals,
      ...(stamps.length > 0 && { idempotency: stamps }),
    });
    const turn = this.#register(pause.turnId, checkpoint, approvals, callers, stamps);
    this.#arm(turn);
    return this.list();
  }

  /** Journals a person's answer; the last one missing lets the turn go on. */
  async answer(approvalId: string, answer: ApprovalAnswer): Promise<void> {
    await this.load();
    const turn = this.#paused;
    const settled = this.#settled.get(approvalId);
    if (settled === 'expired') {
      throw new ApprovalExpiredError(`approval ${approvalId} timed out before this answer`);
    }
    if (settled === 'answered' || turn?.answers.has(approvalId)) {
      throw new ApprovalAnsweredError(`approval ${approvalId} was answered already`);
    }
    if (settled === 'closed') {
      throw new ApprovalAnsweredError(
        `approval ${approvalId} can no longer be answered: its turn ended without it (interrupted, or the host stopped while it ran)`,
      );
    }
    if (!turn?.approvals.some((approval) => approval.approvalId === approvalId)) {
      throw new ApprovalNotFoundError(
        `no approval ${approvalId} waits in session ${JSON.stringify(this.#context.key)}`,
      );
    }
    const decision = { approved: answer.approved, reason: answer.reason };
    // Taken before the write: a second answer arriving meanwhile is a conflict, not a repeat.
    turn.answers.set(approvalId, decision);
    try {
      await this.#journal({ kind: 'answer', turnId: turn.turnId, approvalId, ...decision });
    } catch (error) {
      turn.answers.delete(approvalId);
      throw error;
    }
    this.#settled.set(approvalId, 'answered');
    if (this.#decided(turn) && this.#paused === turn) {
      this.#disarm(turn);
      this.#context.onDecided(turn);
    }
  }

  /** The approvals waiting now, their arguments redacted. */
  list(): PendingApprovalView[] {
    const turn = this.#paused;
    if (!turn) return [];
    return turn.approvals
      .filter((approval) => !turn.answers.has(approval.approvalId))
      .map((approval) => ({
        approvalId: approval.approvalId,
        turnId: turn.turnId,
        callId: approval.callId,
        tool: approval.tool,
        arguments: redactArguments(approval.arguments, this.#context.config?.redact),
        requestedAt: approval.requestedAt,
        ...(approval.expiresAt !== undefined && { expiresAt: approval.expiresAt }),
      }));
  }

  /** The rest of `turn` with every decision in, journaled as started (it never runs twice). */
  async resume(turn: PausedTurn): Promise<TurnCheckpoint> {
    await this.#journal({ kind: 'resumed', turnId: turn.turnId });
    const decisions: Record<string, ApprovalDecision> = { ...turn.checkpoint.decisions };
    for (const approval of turn.approvals) {
      const answer = turn.answers.get(approval.approvalId);
      decisions[approval.callId] = answer ?? { approved: false };
    }
    return { ...turn.checkpoint, decisions };
  }

  /** The rest of `turn` ended (its reply journaled, or its failure recorded by {@link close}). */
  ended(turn: PausedTurn): void {
    this.#disarm(turn);
    if (this.#paused === turn) this.#paused = undefined;
  }

  /** The rest of `turn` failed: recorded, so a restart does not take it for a crash. */
  async failed(turn: PausedTurn, error: AgentcellError): Promise<void> {
    this.ended(turn);
    await this.#journalOrLog({ kind: 'closed', turnId: turn.turnId, code: error.code });
  }

  /** Ends `turn` without a reply: journaled, its approvals settled, its callers told. */
  async close(turn: PausedTurn, error: AgentcellError): Promise<void> {
    this.ended(turn);
    for (const approval of turn.approvals) {
      if (!turn.answers.has(approval.approvalId)) {
        this.#settled.set(
          approval.approvalId,
          error.code === 'AGENTCELL_APPROVAL_TIMEOUT' ? 'expired' : 'closed',
        );
      }
    }
    try {
      await this.#journal({ kind: 'closed', turnId: turn.turnId, code: error.code });
    } finally {
      this.#context.onClosed(turn, error);
    }
  }

  /** Stops the timers (the session closes; the pause stays in the journal). */
  stop(): void {
    this.#stopped = true;
    if (this.#paused) this.#disarm(this.#paused);
  }

  #register(
    turnId: string,
    checkpoint: TurnCheckpoint,
    approvals: readonly PendingApproval[],
    callers: Caller[],
    stamps: readonly IdempotencyStamp[] = [],
  ): PausedTurn {
    const turn: PausedTurn = { turnId, checkpoint, approvals, answers: new Map(), callers, stamps };
    this.#paused = turn;
    return turn;
  }

  #decided(turn: PausedTurn): boolean {
    return turn.approvals.every((approval) => turn.answers.has(approval.approvalId));
  }

  #arm(turn: PausedTurn): void {
    const deadlines = turn.approvals.flatMap((a) =>
      a.expiresAt === undefined ? [] : [a.expiresAt],
    );
    if (deadlines.length === 0 || this.#stopped) return;
    const delay = Math.max(0, Math.min(...deadlines) - this.#context.clock.now());
    turn.timer = this.#context.clock.setTimeout(() => void this.#expire(turn), delay);
  }

  #disarm(turn: PausedTurn): void {
    if (turn.timer !== undefined) this.#context.clock.clearTimeout(turn.timer);
    turn.timer = undefined;
  }

  /** Nobody answered in time: the open calls are denied, or the turn fails (`onTimeout`). */
  async #expire(turn: PausedTurn): Promise<void> {
    turn.timer = undefined;
    if (this.#paused !== turn || this.#decided(turn)) return;
    const timeoutMs = this.#context.config?.timeoutMs;
    if (this.#context.config?.onTimeout === 'fail') {
      await this.close(
        turn,
        new ApprovalTimeoutError(`turn ${turn.turnId} waited past ${timeoutMs} ms for approval`),
      ).catch((error: unknown) => this.#logUnjournaled(error, turn.turnId));
      return;
    }
    const reason = `nobody answered within ${timeoutMs} ms`;
    for (const approval of turn.approvals) {
      if (turn.answers.has(approval.approvalId)) continue;
      turn.answers.set(approval.approvalId, { approved: false, reason });
      this.#settled.set(approval.approvalId, 'expired');
      await this.#journalOrLog({
        kind: 'answer',
        turnId: turn.turnId,
        approvalId: approval.approvalId,
        approved: false,
        reason,
        expired: true,
      });
    }
    if (this.#paused === turn) this.#context.onDecided(turn);
  }

  /** Journals a mark nobody waits on: the turn goes on either way, so a failure is a line. */
  #journalOrLog(mark: ApprovalMark): Promise<void> {
    return this.#journal(mark).catch((error: unknown) => this.#logUnjournaled(error, mark.turnId));
  }

  #logUnjournaled(error: unknown, turnId: string): void {
    log('runtime').warn(
      { ...errorFields(error), sessionKey: this.#context.key, turnId },
      'an approval mark could not be journaled; after a restart the turn may wait for it again',
    );
  }

  #journal(mark: ApprovalMark): Promise<void> {
    const record: JournalRecord = {
      turnId: markRecordId(mark),
      messages: [],
      usage: ZERO_USAGE,
      at: this.#context.clock.now(),
      agent: this.#context.agent,
      approval: mark,
    };
    return this.#context.store.append(this.#context.key, record);
  }
}
