/**
 * What a session gives its callers (replies, stats) and what it takes (send options, and the
 * route of a session whose turns run on another node).
 */
import type { JournalRecord } from '../agent/journal.js';
import type { Usage } from '../agent/messages.js';
import type { TurnEvent } from '../agent/turn-events.js';
import type { SessionBudget } from './options.js';

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

/** Options of one {@link Session.send}. */
export interface SendOptions {
  /** Called with each event of the turn that answers the message, as {@link Session.stream} yields them. */
  readonly onEvent?: ((event: TurnEvent) => void) | undefined;
}

/**
 * Where a session's messages go when its turns run elsewhere: on a cluster, the node that owns
 * its shard. The session then keeps no mailbox or worker of its own.
 */
export interface SessionRoute {
  /** `budget`: the session's, for the turn the message starts where the session runs. */
  send(
    message: string,
    onEvent: ((event: TurnEvent) => void) | undefined,
    budget: SessionBudget | undefined,
  ): Promise<Reply>;
  /** Whether the interrupt reached the node that runs the session. */
  interrupt(reason: string): Promise<boolean>;
  journal(): Promise<readonly JournalRecord[]>;
}
