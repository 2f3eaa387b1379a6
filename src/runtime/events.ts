/** The supervisor's lifecycle events, as a typed map for `EventEmitter<SupervisorEvents>`. */
import type { AgentcellError } from '../errors.js';

export interface SupervisorEvents {
  /** A session's worker is up (first start, or a restart from the journal). */
  'session:start': [
    {
      readonly key: string;
      readonly agent: string;
      readonly threadId: number;
      readonly restoredTurns: number;
    },
  ];
  'turn:start': [{ readonly key: string; readonly turnId: string; readonly waitedMs: number }];
  'turn:end': [
    {
      readonly key: string;
      readonly turnId: string;
      /** 'ok', or the code of the error the turn ended with. */
      readonly outcome: string;
      readonly durationMs: number;
      readonly cpuMs: number | undefined;
    },
  ];
  /** A session's worker died; `inFlightTools` were running (their side effects may be unsettled). */
  'session:crash': [
    {
      readonly key: string;
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
}
