/**
 * Where a session's turns run. Dedicated placement keeps one worker per live session; the
 * session actor talks to either through this interface, so ordering, busy policies and
 * supervision are written once.
 */
import type { TurnInput } from '../../agent/approval.js';
import type { TurnEvent } from '../../agent/turn-events.js';
import type { ModelService } from '../../llm/model-service.js';
import type { AgentInit, HostApi, TurnEnd, WorkerStats } from '../../worker/api.js';
import type { TurnSpanLookup } from './model-calls.js';
import type { WorkerExit } from './worker-handle.js';

/** What any runner needs to build an agent: its blueprint, tools, handoffs and host callbacks. */
export interface AgentRunnerInit extends AgentInit {
  readonly host: HostApi;
  /** Where the thread's model calls are made (the credentials live there, not in the thread). */
  readonly models: ModelService;
  /** The spans of running turns: the thread's model calls are traced under them. */
  readonly spans?: TurnSpanLookup | undefined;
}

/** ...and to serve one session: its key and journal. */
export interface RunnerInit extends AgentRunnerInit {
  readonly sessionKey: string;
  readonly journal: string;
}

export interface TurnRunner {
  readonly threadId: number;
  /** Resolves when the runner's thread is gone (crash, exit or terminate). */
  readonly exited: Promise<WorkerExit>;
  /**
   * Runs one turn, delivering its events in order, and resolves with how it ended. Rejects
   * with `AGENTCELL_SESSION_CRASHED` if the thread dies first. Never resolves before the
   * worker has confirmed the turn ended.
   */
  runTurn(turnId: string, input: TurnInput, onEvent: (event: TurnEvent) => void): Promise<TurnEnd>;
  interrupt(turnId: string, reason: string): Promise<boolean>;
  steer(turnId: string, steerId: string, message: string): Promise<boolean>;
  stats(): Promise<WorkerStats>;
  /** Event-loop utilisation of the thread since the previous reading. */
  eventLoopUtilization(): { readonly active: number; readonly utilization: number };
  /**
   * The same figure for observers (stats, metrics, dashboards), since their previous reading:
   * a baseline of its own, so that watching a session never hides CPU from its turn's budget.
   */
  observeEventLoop(): { readonly active: number; readonly utilization: number };
  /** Stops the thread now. */
  terminate(): Promise<void>;
}
