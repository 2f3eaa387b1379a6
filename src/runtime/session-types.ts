/** What a session gives its callers (replies, stats) and what it takes (send options). */
import type { Context } from '@opentelemetry/api';
import type { ChatMessage, Usage } from '../agent/messages.js';
import type { TurnEvent } from '../agent/turn-events.js';

/** What a caller gets back for a message. */
export interface Reply {
  readonly text: string;
  /** The turn that answered; several callers share one under `coalesce` and `steer`. */
  readonly turnId: string;
  /** The parsed reply when the agent has an output schema. */
  readonly output?: unknown;
  readonly usage: Usage;
}

export type SessionStatus = 'idle' | 'running' | 'failed' | 'closing' | 'closed';

export interface SessionStats {
  readonly key: string;
  readonly agent: string;
  readonly status: SessionStatus;
  readonly threadId: number | undefined;
  readonly busy: boolean;
  readonly queued: number;
  readonly turns: number;
  readonly failedTurns: number;
  readonly restarts: number;
  readonly usage: Usage;
  /** Worker heap in use, when a worker is live. */
  readonly heapUsedBytes: number | undefined;
  /** Event-loop utilisation of the worker since the previous reading (0..1). */
  readonly eventLoopUtilization: number | undefined;
  readonly lastTurnCpuMs: number | undefined;
  readonly lastMailboxWaitMs: number | undefined;
}

/** Options of one {@link Session.stream}. */
export interface StreamOptions {
  /**
   * The conversation this message continues, instead of the session's own: when its turn
   * starts (in mailbox order), the session starts a new conversation from these messages,
   * journaled as a reset marker that carries them, then runs the turn on it. The message is
   * its own turn under every busy policy (never steered or coalesced into another). The
   * replacement stays even when the turn then fails. What a client that owns the transcript
   * needs to edit or regenerate an earlier answer.
   *
   * @example
   * await session.send('and in French?', {
   *   history: [{ role: 'user', content: 'say hi' }, { role: 'assistant', content: 'hi' }],
   * });
   */
  readonly history?: readonly ChatMessage[] | LazyHistory | undefined;
  /**
   * Makes the send safe to retry: a repeat with the same key to the same session within the
   * supervisor's `idempotencyWindowMs` gets the first one's outcome (its reply, or its typed
   * error; waiting for it while it runs) and starts no second turn, in this process, after a
   * restart (from the journal, for a completed turn) and through any node of a cluster. The
   * same key with another message fails with `AGENTCELL_IDEMPOTENCY_CONFLICT`. A failure
   * before any turn ran (mailbox full, cluster unavailable, ...) frees the key for a retry.
   * A repeat that joins a submission hears only its `final` event. 1–255 printable ASCII
   * characters.
   *
   * @example
   * const key = randomUUID(); // one per message, kept across the caller's retries
   * const reply = await session.send('book it', { idempotencyKey: key });
   */
  readonly idempotencyKey?: string | undefined;
  /**
   * What a repeat under the same key must match, when the message and history are derived
   * from a larger request (a server passes a hash of the request); by default a hash of the
   * message and the history (of the message alone for a {@link LazyHistory}).
   */
  readonly idempotencyFingerprint?: string | undefined;
  /**
   * The trace this message's turn belongs to: its `invoke_agent` span is a child of this
   * context's span. @default the active context when the message is sent
   *
   * @example
   * const parent = propagation.extract(context.active(), req.headers); // a W3C traceparent
   * await session.send('hi', { traceContext: parent });
   */
  readonly traceContext?: Context | undefined;
}

/**
 * A history worked out only when the message is submitted for the first time, not for a
 * repeat of its idempotency key: what a server needs whose history depends on the journal,
 * which the first submission's turn has changed by the time a repeat arrives. Resolving to
 * undefined goes on from the session's own history.
 */
export type LazyHistory = () => Promise<readonly ChatMessage[] | undefined>;

/** Options of one {@link Session.send}. */
export interface SendOptions extends StreamOptions {
  /** Called with each event of the turn that answers the message, as {@link Session.stream} yields them. */
  readonly onEvent?: ((event: TurnEvent) => void) | undefined;
}
