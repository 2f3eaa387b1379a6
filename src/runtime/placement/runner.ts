/**
 * Where a session's turns run. Dedicated placement keeps one worker per live session; the
 * session actor talks to either through this interface, so ordering, busy policies and
 * supervision are written once.
 */
import type { TurnEvent } from '../../agent/turn-events.js';
import type { ToolRegistryEntry } from '../../tools/registry.js';
import type { HostApi, TurnEnd, WorkerStats } from '../../worker/api.js';
import type { WorkerExit } from './worker-handle.js';

export interface RunnerInit {
  readonly sessionKey: string;
  readonly blueprint: string;
  readonly journal: string;
  readonly tools: readonly ToolRegistryEntry[];
  readonly handoffs: Readonly<Record<string, string>>;
  readonly hooks: readonly string[];
  readonly validators: readonly string[];
  readonly host: HostApi;
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
  runTurn(turnId: string, message: string, onEvent: (event: TurnEvent) => void): Promise<TurnEnd>;
  interrupt(turnId: string, reason: string): Promise<boolean>;
  steer(turnId: string, steerId: string, message: string): Promise<boolean>;
  stats(): Promise<WorkerStats>;
  /** Event-loop utilisation of the thread since the previous reading. */
  eventLoopUtilization(): { readonly active: number; readonly utilization: number };
  /** Stops the thread now. */
  terminate(): Promise<void>;
}
