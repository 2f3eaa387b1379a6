/** What a session needs from its supervisor, kept apart so that the two depend on an interface. */
import type PQueue from 'p-queue';
import type { AgentSpec } from '../agent/config.js';
import type { JournalRecord } from '../agent/journal.js';
import type { Clock } from '../clock.js';
import type { SupervisorEvents } from './events.js';
import type { LiveMember } from './live-set.js';
import type { OverflowPolicy } from './mailbox.js';
import type { ResetPolicy } from './options.js';
import type { RunnerInit, TurnRunner } from './placement/runner.js';
import type { RestartOptions } from './restart-policy.js';
import type { JournalStore } from './stores/store.js';
import type { TurnTraces } from './turn-traces.js';

/** What every session checks a message against, wherever its turns run. */
export interface SessionGate {
  readonly maxMessageBytes: number;
  readonly clock: Clock;
  /** How long an idempotency key answers repeats (idempotencyWindowMs). */
  readonly idempotencyWindowMs: number;
  /** Throws the supervisor's closed/destroyed error when it no longer admits messages. */
  assertOpen(): void;
  /** Whether the caller is inside a turn of this session (a host tool calling back in). */
  isInsideTurnOf(key: string): boolean;
  emit<E extends keyof SupervisorEvents>(event: E, ...payload: SupervisorEvents[E]): void;
}

/** A session as the placement sees it: what makes room for it, and which agent it runs. */
export interface PlacedSession extends LiveMember {
  readonly agent: string;
}

/** What a session whose turns run in this process needs from its supervisor. */
export interface SessionHost extends SessionGate {
  readonly store: JournalStore;
  readonly admission: PQueue;
  readonly capacity: number;
  readonly overflow: OverflowPolicy;
  readonly turnTimeoutMs: number;
  readonly interruptGraceMs: number;
  readonly restart: RestartOptions;
  /** Idle time after which a session's worker is released (0 = never). */
  readonly idleTimeoutMs: number;
  /** Where each turn's trace is recorded. */
  readonly traces: TurnTraces;
  /** When a session starts a new conversation on its next message. */
  resetPolicy(agent: string): ResetPolicy | undefined;
  /** The agent's approval config: a session of an agent without one never pauses. */
  approvalConfig(agent: string): AgentSpec['approval'];
  runnerInit(key: string, agent: string, journal: readonly JournalRecord[]): RunnerInit;
  /** A runner for the session: a live slot taken, then a warm worker or a cold start. */
  startRunner(
    session: PlacedSession,
    init: RunnerInit,
  ): Promise<{ runner: TurnRunner; warm: boolean }>;
  /** A turn of session `key` ended or a worker went away: waiting activations may get a slot. */
  onIdle(key: string): void;
}
