/** The supervisor's lifecycle events, as a typed map for `EventEmitter<SupervisorEvents>`. */
import type { EventEmitter } from 'node:events';
import type { Usage } from '../agent/messages.js';
import type { AgentcellError } from '../errors.js';
import type { ModelCallRecord } from '../llm/model-call-telemetry.js';

export interface SupervisorEvents {
  /** A session's worker is up (first start, or a restart from the journal). */
  /** A session got a worker: first start, activation after passivation, or restart. */
  'session:start': [
    {
      readonly key: string;
      readonly agent: string;
      /** -1 under pooled placement, where a session has no thread of its own. */
      readonly threadId: number;
      readonly restoredTurns: number;
      /** Taken from the warm pool rather than started cold. */
      readonly warm: boolean;
      readonly activationMs: number;
      readonly afterPassivation: boolean;
    },
  ];
  /** An idle session's worker was released (`idle` timeout, `capacity` for another session, or `requested`). */
  'session:passivate': [
    { readonly key: string; readonly reason: 'idle' | 'capacity' | 'requested' },
  ];
  /** The reset policy started a new conversation. */
  'session:reset': [{ readonly key: string }];
  'turn:start': [{ readonly key: string; readonly turnId: string; readonly waitedMs: number }];
  'turn:end': [
    {
      readonly key: string;
      readonly agent: string;
      readonly turnId: string;
      /** 'ok', or the code of the error the turn ended with. */
      readonly outcome: string;
      readonly durationMs: number;
      /** From the turn's start to its first text; undefined when it produced none. */
      readonly firstTokenMs: number | undefined;
      readonly cpuMs: number | undefined;
      /** Tokens and cost of a completed turn (what was spent by failed ones is not reported). */
      readonly usage: Usage | undefined;
    },
  ];
  /**
   * A turn stopped to wait for a person (`approval-required`): it ends with no `turn:end` now.
   * Once answered, its rest runs as a new `turn:start` … `turn:end` under the same turn id.
   */
  'turn:pause': [
    {
      readonly key: string;
      readonly turnId: string;
      /** How many tool calls wait for an answer. */
      readonly approvals: number;
      readonly durationMs: number;
    },
  ];
  /** A session's worker died; `inFlightTools` were running (their side effects may be unsettled). */
  'session:crash': [
    {
      readonly key: string;
      /** The turn that was running, if one was. */
      readonly turnId: string | undefined;
      readonly error: AgentcellError;
      readonly inFlightTools: readonly string[];
    },
  ];
  'session:restart': [
    { readonly key: string; readonly restarts: number; readonly delayMs: number },
  ];
  /** Crashed more often than the restart policy allows; queued messages were failed. */
  'session:fail': [{ readonly key: string; readonly error: AgentcellError }];
  'session:close': [{ readonly key: string }];
  /** A model call the host made for a session ended (after every retry it took). */
  'model:call': [ModelCallRecord];
}

/** Every lifecycle event a supervisor emits, by name (to forward or record them all). */
export const SUPERVISOR_EVENT_NAMES = [
  'session:start',
  'session:passivate',
  'session:reset',
  'turn:start',
  'turn:end',
  'turn:pause',
  'session:crash',
  'session:restart',
  'session:fail',
  'session:close',
  'model:call',
] as const satisfies readonly (keyof SupervisorEvents)[];

/** Listeners for some of a Supervisor's events, each typed by its event. */
export type SupervisorListeners = {
  [E in keyof SupervisorEvents]?: (...payload: SupervisorEvents[E]) => void;
};

/**
 * Adds each listener to the supervisor; the function returned removes them all again.
 *
 * @example
 * const stop = listenTo(supervisor, { 'turn:end': ({ outcome }) => count(outcome) });
 * stop();
 */
export function listenTo(
  supervisor: EventEmitter<SupervisorEvents>,
  listeners: SupervisorListeners,
): () => void {
  // A mapped type of listeners cannot be handed to `on` entry by entry without widening.
  const emitter = supervisor as unknown as EventEmitter;
  const entries = Object.entries(listeners) as [string, (...args: unknown[]) => void][];
  for (const [event, listener] of entries) emitter.on(event, listener);
  return () => {
    for (const [event, listener] of entries) emitter.off(event, listener);
  };
}
