/**
 * What the dashboard shows of each session's resources: its worker's heap and event-loop
 * utilisation (read from the live workers at most once per snapshot interval, whatever the
 * number of open dashboards) and the mean latency of its model calls (from the supervisor's
 * `model:call` events, matched to the session by the turn that made each call).
 */
import { listenTo } from '../runtime/events.js';
import type { Supervisor } from '../runtime/supervisor.js';
import { sampleWorkers, type WorkerSample } from '../runtime/worker-sample.js';

export interface SessionFigureRow {
  readonly heapUsedBytes: number | null;
  readonly eventLoopUtilization: number | null;
  /** Mean latency of the session's model calls (retries included), in ms. */
  readonly modelCallMs: number | null;
  readonly modelCalls: number;
}

export class SessionFigures {
  readonly #supervisor: Supervisor;
  readonly #intervalMs: number;
  readonly #keyOfTurn = new Map<string, string>();
  readonly #model = new Map<string, { calls: number; totalMs: number }>();
  #workers = new Map<string, WorkerSample>();
  #refreshing: Promise<void> | undefined;
  #refreshedAt = Number.NEGATIVE_INFINITY;
  readonly #unlisten: () => void;

  constructor(supervisor: Supervisor, intervalMs: number) {
    this.#supervisor = supervisor;
    this.#intervalMs = intervalMs;
    this.#unlisten = listenTo(supervisor, {
      'turn:start': ({ key, turnId }) => this.#keyOfTurn.set(turnId, key),
      'turn:end': ({ turnId }) => this.#keyOfTurn.delete(turnId),
      'model:call': ({ turnId, durationMs }) => {
        // A handoff's calls (`<turnId>/<agent>`) count for the session whose turn it is.
        const key = turnId && this.#keyOfTurn.get(turnId.split('/', 1)[0] ?? turnId);
        if (!key) return;
        const sum = this.#model.get(key) ?? { calls: 0, totalMs: 0 };
        sum.calls++;
        sum.totalMs += Math.max(0, durationMs);
        this.#model.set(key, sum);
      },
      'session:close': ({ key }) => {
        this.#model.delete(key);
        this.#workers.delete(key);
      },
    });
  }

  /** Reads the live workers again, unless a reading of this interval is done or under way. */
  refresh(): Promise<void> {
    if (this.#refreshing) return this.#refreshing;
    if (Date.now() - this.#refreshedAt < this.#intervalMs / 2) return Promise.resolve();
    this.#refreshing = sampleWorkers(this.#supervisor)
      .then((byKey) => {
        this.#workers = byKey;
        this.#refreshedAt = Date.now();
      })
      .finally(() => {
        this.#refreshing = undefined;
      });
    return this.#refreshing;
  }

  of(key: string): SessionFigureRow {
    const worker = this.#workers.get(key);
    const model = this.#model.get(key);
    return {
      heapUsedBytes: worker?.heapUsedBytes ?? null,
      eventLoopUtilization: worker?.eventLoopUtilization ?? null,
      modelCallMs: model ? Math.round(model.totalMs / model.calls) : null,
      modelCalls: model?.calls ?? 0,
    };
  }

  close(): void {
    this.#unlisten();
  }
}
