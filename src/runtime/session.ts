/**
 * One session: a clone bound to a session key. This is its face to callers; where its turns
 * run is the placement's business: an actor with a mailbox and a worker in this process
 * ({@link ActorSession}), or the node of a cluster that owns it ({@link RoutedSession}).
 */
import { streamEvents } from '../agent/event-stream.js';
import type { ChatMessage } from '../agent/messages.js';
import type { TurnEvent } from '../agent/turn-events.js';
import {
  MessageInvalidError,
  SessionClosedError,
  SessionFailedError,
  SessionReentrantError,
} from '../errors.js';
import { parseBudget, type SessionBudget } from './options.js';
import type { SessionGate } from './session-host.js';
import type { Reply, SendOptions, SessionStats, SessionStatus } from './session-types.js';

export type TurnListener = (event: TurnEvent) => void;

export abstract class Session {
  readonly key: string;
  readonly agent: string;
  readonly #gate: SessionGate;
  #budget: SessionBudget | undefined;
  protected state: SessionStatus = 'idle';
  /** The error a destroyed session answers every message with. */
  protected destroyedWith: Error | undefined;

  constructor(key: string, agent: string, gate: SessionGate, budget: SessionBudget | undefined) {
    this.key = key;
    this.agent = agent;
    this.#gate = gate;
    this.#budget = budget;
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
      return this.submit(message, options.onEvent);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Sends a message and yields the events of the turn that answers it (text deltas, tool
   * calls, usage, final). Throws the turn's typed error if it fails.
   */
  stream(message: string): AsyncIterable<TurnEvent> {
    return streamEvents((onEvent) => this.submit(message, onEvent));
  }

  /**
   * Interrupts the running turn (only if it is `turnId`, when given); it ends with
   * `AGENTCELL_INTERRUPTED` and is not journaled. Returns whether a turn was interrupted.
   */
  abstract interrupt(reason?: string, turnId?: string): Promise<boolean>;

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
  protected abstract submit(message: string, onEvent: TurnListener | undefined): Promise<Reply>;

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
