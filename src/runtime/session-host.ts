/** What a session needs from its supervisor, kept apart so that the two depend on an interface. */
import type PQueue from 'p-queue';
import type { JournalRecord } from '../agent/journal.js';
import type { Clock } from '../clock.js';
import type { SupervisorEvents } from './events.js';
import type { OverflowPolicy } from './mailbox.js';
import type { ResetPolicy } from './options.js';
import type { RunnerInit, TurnRunner } from './placement/runner.js';
import type { RestartOptions } from './restart-policy.js';
import type { Session } from './session.js';
import type { JournalStore } from './stores/store.js';

/** What a session needs from its supervisor. */
export interface SessionHost {
  readonly clock: Clock;
  readonly store: JournalStore;
  readonly admission: PQueue;
  readonly capacity: number;
  readonly overflow: OverflowPolicy;
  readonly turnTimeoutMs: number;
  readonly interruptGraceMs: number;
  readonly maxMessageBytes: number;
  readonly restart: RestartOptions;
  /** Throws the supervisor's closed/destroyed error when it no longer admits messages. */
  assertOpen(): void;
  /** Whether the caller is inside a turn of this session (a host tool calling back in). */
  isInsideTurnOf(key: string): boolean;
  /** Idle time after which a session's worker is released (0 = never). */
  readonly idleTimeoutMs: number;
  /** When a session starts a new conversation on its next message. */
  resetPolicy(agent: string): ResetPolicy | undefined;
  runnerInit(key: string, agent: string, journal: readonly JournalRecord[]): RunnerInit;
  /** A runner for the session: a live slot taken, then a warm worker or a cold start. */
  startRunner(session: Session, init: RunnerInit): Promise<{ runner: TurnRunner; warm: boolean }>;
  /** A turn ended or a worker went away: waiting activations may now get a slot. */
  onIdle(session: Session): void;
  emit<E extends keyof SupervisorEvents>(event: E, ...payload: SupervisorEvents[E]): void;
}
