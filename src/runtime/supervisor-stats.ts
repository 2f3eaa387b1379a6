/** The figures a Supervisor reports about itself, and the counts they are made of. */
import type { EventEmitter } from 'node:events';
import type { SupervisorEvents } from './events.js';
import type { TurnPoolStats } from './placement/turn-pool.js';
import type { Session } from './session.js';

export type SupervisorStatus = 'open' | 'closing' | 'closed' | 'destroyed';

export interface SupervisorStats {
  readonly status: SupervisorStatus;
  /**
   * The shared pool of pooled placement, once a pooled session has run a turn: its threads
   * (`responsive`, `blocked` by a tool holding their event loop), turns `queued` for a thread,
   * and turns `moved` off a thread that blocked before they began there.
   */
  readonly pool?: TurnPoolStats;
  readonly agents: number;
  readonly sessions: number;
  /** Sessions with a live worker of their own. */
  readonly liveWorkers: number;
  /** The most live workers allowed (option, capped by the machine ceiling). */
  readonly maxLiveSessions: number;
  /** Prepared workers waiting in the warm pool. */
  readonly warmWorkers: number;
  readonly warmHits: number;
  readonly warmMisses: number;
  /** Sessions whose worker was released while idle (they come back on their next message). */
  readonly passivatedSessions: number;
  /** Activations waiting for a live slot. */
  readonly activationsWaiting: number;
  /** Worker starts running now (at most one per core) and waiting for a start slot. */
  readonly workerStartsRunning: number;
  readonly workerStartsQueued: number;
  readonly busySessions: number;
  readonly queuedMessages: number;
  readonly turnsInFlight: number;
  readonly turnsWaitingForAdmission: number;
  /** MCP connections open on this node (shared and `perSession`); not reported by a cluster. */
  readonly mcpConnections?: number;
  readonly turns: {
    readonly ok: number;
    readonly failed: number;
    readonly byCode: Readonly<Record<string, number>>;
  };
  readonly workerStarts: number;
  readonly crashes: number;
  readonly restarts: number;
}

/** The counts a supervisor keeps of its sessions' lifecycle events. */
export class LifecycleCounters {
  #ok = 0;
  #failed = 0;
  readonly #byCode: Record<string, number> = {};
  #starts = 0;
  #crashes = 0;
  #restarts = 0;

  /** Counts the events of `supervisor` from now on. */
  constructor(supervisor: EventEmitter<SupervisorEvents>) {
    supervisor.on('turn:end', ({ outcome }) => {
      if (outcome === 'ok') this.#ok++;
      else {
        this.#failed++;
        this.#byCode[outcome] = (this.#byCode[outcome] ?? 0) + 1;
      }
    });
    supervisor.on('session:start', ({ warm, threadId }) => {
      if (!warm && threadId >= 0) this.#starts++;
    });
    supervisor.on('session:crash', () => this.#crashes++);
    supervisor.on('session:restart', () => this.#restarts++);
  }

  figures(): Pick<SupervisorStats, 'turns' | 'workerStarts' | 'crashes' | 'restarts'> {
    return {
      turns: { ok: this.#ok, failed: this.#failed, byCode: { ...this.#byCode } },
      workerStarts: this.#starts,
      crashes: this.#crashes,
      restarts: this.#restarts,
    };
  }
}

/** What the open sessions of one process add up to. */
export function sessionFigures(sessions: readonly Session[]): {
  readonly sessions: number;
  readonly passivatedSessions: number;
  readonly busySessions: number;
  readonly queuedMessages: number;
} {
  return {
    sessions: sessions.length,
    passivatedSessions: sessions.filter((s) => s.isPassivated).length,
    busySessions: sessions.filter((s) => s.busy).length,
    queuedMessages: sessions.reduce((sum, s) => sum + s.queued, 0),
  };
}
