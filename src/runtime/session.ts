/**
 * One session: a clone bound to a session key. This is its face to callers; where its turns
 * run is the placement's business: an actor with a mailbox and a worker in this process
 * ({@link ActorSession}), or the node of a cluster that owns it ({@link RoutedSession}).
 */
import { type Context, context as otelContext } from '@opentelemetry/api';
import { streamEvents } from '../agent/event-stream.js';
import type { IdempotencyStamp, JournalRecord } from '../agent/journal.js';
import type { ChatMessage, ToolCall } from '../agent/messages.js';
import type { TurnEvent } from '../agent/turn-events.js';
import {
  MessageInvalidError,
  SessionClosedError,
  SessionFailedError,
  SessionReentrantError,
} from '../errors.js';
import type { ApprovalAnswer, PendingApprovalView } from './approval-desk.js';
import { assertIdempotencyKey, fingerprintOf, IdempotencyLedger } from './idempotency.js';
import { parseBudget, type SessionBudget } from './options.js';
import type { SessionGate } from './session-host.js';
import { type SessionObserver, SessionObservers } from './session-observers.js';
import type {
  Reply,
  SendOptions,
  SessionStats,
  SessionStatus,
  StreamOptions,
} from './session-types.js';

/** What a session takes with a message besides its text. */
export interface Submission {
  readonly onEvent: TurnListener | undefined;
  /** See {@link StreamOptions.history}; checked by {@link Session.assertHistory}. */
  readonly history: readonly ChatMessage[] | undefined;
  /** The message's idempotency key, journaled with the turn that answers it. */
  readonly idempotency?: IdempotencyStamp | undefined;
  /** See {@link StreamOptions.traceContext}: the sender's context, taken when it sent. */
  readonly trace?: Context | undefined;
}

export type TurnListener = (event: TurnEvent) => void;

export abstract class Session {
  readonly key: string;
  readonly agent: string;
  readonly #gate: SessionGate;
  #budget: SessionBudget | undefined;
  protected state: SessionStatus = 'idle';
  /** The error a destroyed session answers every message with. */
  protected destroyedWith: Error | undefined;
  readonly #ledger: IdempotencyLedger;
  /** Until the journal's keys are in the ledger (read once, on the first keyed message). */
  #ledgerLoading: Promise<void> | undefined;
  #ledgerLoaded = false;
  /**
   * The journal a repeat of a completed turn is answered from; none where another node runs
   * the session and keeps the keys itself.
   */
  readonly #journal: (() => Promise<readonly JournalRecord[]>) | undefined;
  protected readonly observers: SessionObservers;

  constructor(
    key: string,
    agent: string,
    gate: SessionGate,
    budget: SessionBudget | undefined,
    journal?: () => Promise<readonly JournalRecord[]>,
  ) {
    this.key = key;
    this.agent = agent;
    this.#gate = gate;
    this.#budget = budget;
    this.#journal = journal;
    this.#ledger = new IdempotencyLedger({
      clock: gate.clock,
      windowMs: gate.idempotencyWindowMs,
      sessionKey: key,
    });
    this.observers = new SessionObservers(key);
  }

  get status(): SessionStatus {
    return this.state;
  }

  /** The budget its turns run under (tokens and cost in all, CPU per turn), if any. */
  get budget(): SessionBudget | undefined {
    return this.#budget;
  }

  /**
   * Replaces the session's budget for the turns that start from now on (undefined: none).
   * Throws `AGENTCELL_OPTIONS_INVALID` for a malformed budget, changing nothing.
   *
   * @example
   * session.setBudget({ maxTokens: 200_000 }); // this tenant upgraded its plan
   */
  setBudget(budget: SessionBudget | undefined): void {
    this.#budget = budget === undefined ? undefined : parseBudget(budget);
  }

  /**
   * Sends a message and resolves with the reply of the turn that answered it.
   *
   * @example
   * const { text } = await supervisor.session('slack:T01:C42', { agent: 'support' }).send('hi');
   */
  send(message: string, options: SendOptions = {}): Promise<Reply> {
    try {
      return this.#submitOnce(message, options, options.onEvent);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Sends a message and yields the events of the turn that answers it (text deltas, tool
   * calls, usage, final). Throws the turn's typed error if it fails.
   */
  stream(message: string, options: StreamOptions = {}): AsyncIterable<TurnEvent> {
    return streamEvents(async (onEvent) => this.#submitOnce(message, options, onEvent));
  }

  /**
   * Submits the message, or, when its idempotency key is known within the window, answers
   * with the outcome it got (a repeat hears only the final event). The first keyed message of
   * a session waits for its journal to be read, so it may be overtaken by an unkeyed one.
   */
  #submitOnce(
    message: string,
    options: StreamOptions,
    onEvent: TurnListener | undefined,
  ): Promise<Reply> {
    const { history, idempotencyKey: key } = options;
    // Taken now: by the time the turn runs, the sender's async context is long gone.
    const trace = options.traceContext ?? otelContext.active();
    const start = (idempotency?: IdempotencyStamp): Promise<Reply> => {
      if (typeof history !== 'function') {
        return this.submit(message, { onEvent, history, idempotency, trace });
      }
      return history().then((resolved) =>
        this.submit(message, { onEvent, history: resolved, idempotency, trace }),
      );
    };
    if (key === undefined) return start();
    assertIdempotencyKey(key);
    const fingerprint =
      options.idempotencyFingerprint ??
      fingerprintOf(message, typeof history === 'function' ? undefined : history);
    const answer = (): Promise<Reply> => {
      let ran = false;
      const outcome = this.#ledger.submit(key, fingerprint, () => {
        ran = true;
        return start({ key, fingerprint });
      });
      if (ran || !onEvent) return outcome;
      return outcome.then((reply) => {
        onEvent({
          type: 'final',
          reply: reply.text,
          ...(reply.output !== undefined && { output: reply.output }),
          usage: reply.usage,
          sessionKey: this.key,
          turnId: reply.turnId,
          seq: 0,
        });
        return reply;
      });
    };
    if (this.#ledgerLoaded) return answer();
    this.#ledgerLoading ??= this.#loadLedger();
    return this.#ledgerLoading.then(answer);
  }

  async #loadLedger(): Promise<void> {
    try {
      if (this.#journal) this.#ledger.remember(await this.#journal());
      this.#ledgerLoaded = true;
    } finally {
      this.#ledgerLoading = undefined;
    }
  }

  /**
   * Watches every turn of the session, whoever sent its message (any caller, route or channel):
   * `observer.onEvent` hears each turn event as the turn's callers do, and `turn-failed` when a
   * turn fails; `observer.onClose` is called once when the session closes. Returns the function
   * that stops watching. Throws `AGENTCELL_SESSION_CLOSED` on a closed session.
   *
   * @example
   * const stop = session.observe({ onEvent: (event) => console.log(event.turnId, event.type) });
   */
  observe(observer: SessionObserver): () => void {
    if (this.state === 'closed') {
      throw (
        this.destroyedWith ??
        new SessionClosedError(`session ${JSON.stringify(this.key)} is closed`)
      );
    }
    return this.observers.add(observer);
  }

  /**
   * Interrupts the running turn (only if it is `turnId`, when given); it ends with
   * `AGENTCELL_INTERRUPTED` and is not journaled. Returns whether a turn was interrupted.
   */
  abstract interrupt(reason?: string, turnId?: string): Promise<boolean>;

  /**
   * Answers a tool call the session's paused turn waits on (an `approval-required` event, or
   * {@link approvals}): once every call of that turn is answered, the turn goes on, and its
   * callers and observers hear the rest. Rejects with `AGENTCELL_APPROVAL_NOT_FOUND` for an id
   * that does not wait here, `AGENTCELL_APPROVAL_ANSWERED` for a second answer, and
   * `AGENTCELL_APPROVAL_EXPIRED` past `approval.timeoutMs`.
   *
   * @example
   * session.observe({
   *   onEvent: (e) => {
   *     if (e.type === 'approval-required') void session.approve(e.approvalId, { approved: true });
   *   },
   * });
   */
  abstract approve(approvalId: string, answer: ApprovalAnswer): Promise<void>;

  /**
   * The tool calls waiting for a person, their arguments redacted (`approval.redact`); read
   * from the journal, so they are listed after a restart too.
   *
   * @example
   * for (const pending of await session.approvals()) console.log(pending.tool, pending.arguments);
   */
  abstract approvals(): Promise<PendingApprovalView[]>;

  /** The conversation so far, from the journal. */
  abstract history(): Promise<ChatMessage[]>;

  abstract stats(): Promise<SessionStats>;

  /** Live worker thread id, if any. */
  abstract get threadId(): number | undefined;

  abstract get queued(): number;

  abstract get busy(): boolean;

  /** Graceful: stops taking messages, lets queued ones finish, stops the worker. Idempotent. */
  abstract close(): Promise<void>;

  /** Immediate: fails every queued and running message with `error`, terminates the worker. */
  abstract destroy(error: Error): Promise<void>;

  /** Whether the worker can be released now: live, idle, nothing queued or starting. */
  abstract canPassivate(): boolean;

  /**
   * Releases the worker of an idle session; its journal is already safe, and its next
   * message activates it again with its history. Returns false when it is not idle.
   */
  abstract passivate(reason?: 'idle' | 'capacity' | 'requested'): Promise<boolean>;

  /** Whether the session has no live worker after having had one. */
  abstract get isPassivated(): boolean;

  /** Takes a message in: checked here, then answered as the placement answers it. */
  protected abstract submit(message: string, submission: Submission): Promise<Reply>;

  /** Throws why the session takes no message now: closed, failed, or called from its own turn. */
  protected assertAccepting(): void {
    this.#gate.assertOpen();
    if (this.state === 'failed') {
      throw new SessionFailedError(`session ${JSON.stringify(this.key)} has failed`);
    }
    if (this.state === 'closing' || this.state === 'closed') {
      throw (
        this.destroyedWith ??
        new SessionClosedError(`session ${JSON.stringify(this.key)} is closed`)
      );
    }
    if (this.#gate.isInsideTurnOf(this.key)) {
      throw new SessionReentrantError(
        `a turn of session ${JSON.stringify(this.key)} sent a message to its own session`,
      );
    }
  }

  /**
   * A replacement history checked and copied as plain data (it is journaled): messages of
   * known roles with string content, within the message size limit in all (it goes to the
   * model like a message).
   */
  protected checkedHistory(history: unknown): ChatMessage[] | undefined {
    if (history === undefined) return undefined;
    if (!Array.isArray(history)) {
      throw new MessageInvalidError(
        `history: expected an array of messages, got ${typeof history}`,
      );
    }
    let bytes = 0;
    const copies = history.map((message: unknown, index) => {
      const copy = plainMessage(message);
      if (typeof copy === 'string') throw new MessageInvalidError(`history[${index}]: ${copy}`);
      bytes += Buffer.byteLength(copy.content, 'utf8');
      return copy;
    });
    if (bytes > this.#gate.maxMessageBytes) {
      throw new MessageInvalidError(
        `the history is ${bytes} bytes, over the limit of ${this.#gate.maxMessageBytes} (maxMessageBytes)`,
      );
    }
    return copies;
  }

  /**
   * Throws `AGENTCELL_MESSAGE_INVALID` for an answer that is not `{ approved, reason? }`, and
   * what {@link assertAccepting} throws.
   */
  protected assertAnswer(approvalId: unknown, answer: unknown): asserts answer is ApprovalAnswer {
    // A closed session runs nothing more: its answers wait for the session to be opened again.
    this.assertAccepting();
    if (typeof approvalId !== 'string' || approvalId.length === 0 || approvalId.length > 200) {
      throw new MessageInvalidError('approvalId: expected the id of an approval-required event');
    }
    const { approved, reason } = (answer ?? {}) as { approved?: unknown; reason?: unknown };
    if (typeof approved !== 'boolean') {
      throw new MessageInvalidError(`approved: expected true or false, got ${typeof approved}`);
    }
    if (reason !== undefined && (typeof reason !== 'string' || reason.length > 1000)) {
      throw new MessageInvalidError('reason: expected a string of at most 1,000 characters');
    }
  }

  protected assertMessage(message: unknown): asserts message is string {
    if (typeof message !== 'string' || message.trim().length === 0) {
      throw new MessageInvalidError(
        `expected a non-empty string, got ${typeof message === 'string' ? 'an empty one' : typeof message}`,
      );
    }
    const bytes = Buffer.byteLength(message, 'utf8');
    if (bytes > this.#gate.maxMessageBytes) {
      throw new MessageInvalidError(
        `the message is ${bytes} bytes, over the limit of ${this.#gate.maxMessageBytes} (maxMessageBytes)`,
      );
    }
  }
}

/** A copy of one message of a replacement history, or what is wrong with it. */
function plainMessage(value: unknown): ChatMessage | string {
  if (typeof value !== 'object' || value === null) return 'expected a message object';
  const { role, content } = value as { role?: unknown; content?: unknown };
  if (typeof content !== 'string') return 'expected string content';
  switch (role) {
    case 'system':
    case 'user':
      return { role, content };
    case 'assistant': {
      const { toolCalls } = value as { toolCalls?: unknown };
      if (toolCalls === undefined) return { role, content };
      if (!Array.isArray(toolCalls) || !toolCalls.every(isToolCall)) {
        return 'toolCalls: expected { id, name, arguments } strings';
      }
      return {
        role,
        content,
        toolCalls: toolCalls.map(({ id, name, arguments: a }) => ({ id, name, arguments: a })),
      };
    }
    case 'tool': {
      const { toolCallId, name } = value as { toolCallId?: unknown; name?: unknown };
      if (typeof toolCallId !== 'string' || typeof name !== 'string') {
        return 'a tool message needs toolCallId and name';
      }
      return { role, toolCallId, name, content };
    }
    default:
      return 'expected role system, user, assistant or tool';
  }
}

function isToolCall(value: unknown): value is ToolCall {
  const call = value as Partial<Record<keyof ToolCall, unknown>> | null;
  return (
    typeof call === 'object' &&
    call !== null &&
    typeof call.id === 'string' &&
    typeof call.name === 'string' &&
    typeof call.arguments === 'string'
  );
}
