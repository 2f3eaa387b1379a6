/**
 * The dashboard's event hub: `GET /v1/dashboard/events`, a server-sent event stream of stats
 * snapshots (every second) and turn and session events for one tenant. The page that reads it
 * lives in `dashboard/` (see dashboard-page.ts).
 *
 * What a tenant sees: aggregate figures of the whole server (counts only, no keys), and its
 * own sessions and turns (keys as it named them).
 */
import type { ServerResponse } from 'node:http';
import { listenTo, type SupervisorEvents } from '../runtime/events.js';
import type { Supervisor, SupervisorStats } from '../runtime/supervisor.js';
import { type SessionFigureRow, SessionFigures } from './dashboard-figures.js';
import { SSE_HEADERS, sseFrame } from './sse.js';
import { ownKeys, type Tenant } from './tenants.js';

/** How often a snapshot is sent to each dashboard stream. */
export const DASHBOARD_INTERVAL_MS = 1_000;
/** Turn ends remembered for the latency chart and the error counts of a freshly opened page. */
const RECENT_TURNS = 500;
/** Turn ends sent to a page when it connects. */
const TURNS_ON_CONNECT = 120;
/** Most sessions listed in one snapshot (most recently active first). */
const SESSIONS_LISTED = 200;

/** One ended turn, as the dashboard keeps it (the key is the supervisor's, namespaced). */
interface TurnRecord {
  readonly key: string;
  readonly turnId: string;
  readonly outcome: string;
  readonly durationMs: number;
  readonly at: number;
  readonly tokens: number | undefined;
}

/** What the dashboard knows of a session from its turn ends. */
interface Activity {
  turns: number;
  failed: number;
  lastOutcome: string | undefined;
  lastDurationMs: number | undefined;
  lastAt: number;
}

interface Client {
  readonly res: ServerResponse;
  readonly tenant: Tenant;
  readonly prefix: string;
  timer: NodeJS.Timeout | undefined;
  finish(): void;
}

/** The `turn` event, and the turns of `hello`: one ended turn of the tenant's. */
export interface DashboardTurn {
  readonly key: string;
  readonly turnId: string;
  /** `ok`, or the error code the turn failed with. */
  readonly outcome: string;
  readonly durationMs: number;
  readonly at: number;
  readonly tokens: number | null;
}

/** The `hello` event: the first of a stream. */
export interface DashboardHello {
  readonly tenant: string;
  readonly intervalMs: number;
  /** The tenant's most recent turns, oldest first. */
  readonly turns: readonly DashboardTurn[];
}

/** What a `session` event says happened to the session. */
export type DashboardSessionChange =
  | {
      readonly kind: 'start';
      readonly warm: boolean;
      readonly activationMs: number;
      readonly afterPassivation: boolean;
    }
  | { readonly kind: 'passivate'; readonly reason: string }
  | { readonly kind: 'crash' | 'fail'; readonly code: string }
  | { readonly kind: 'restart'; readonly restarts: number }
  | { readonly kind: 'reset' | 'close' };

/** The `session` event: a lifecycle event of one of the tenant's sessions. */
export type DashboardSessionEvent = {
  readonly key: string;
  readonly at: number;
} & DashboardSessionChange;

/** A session row of a snapshot: its figures, and its worker's while it has one. */
export interface DashboardSession extends SessionFigureRow {
  readonly key: string;
  readonly agent: string;
  readonly status: string;
  readonly busy: boolean;
  readonly live: boolean;
  readonly passivated: boolean;
  readonly queued: number;
  readonly turns: number;
  readonly failedTurns: number;
  readonly lastOutcome: string | null;
  readonly lastDurationMs: number | null;
  readonly lastActivityAt: number | null;
}

/** The `snapshot` event: what one tenant's dashboard shows, once a second. */
export interface DashboardSnapshot {
  readonly at: number;
  readonly closing: boolean;
  readonly tenant: {
    readonly id: string;
    readonly turnsInFlight: number;
    readonly agents: readonly string[];
    readonly sessionCount: number;
    /** Outcomes other than ok among the tenant's recent turns, by error code. */
    readonly errors: Readonly<Record<string, number>>;
  };
  /** Aggregate figures of the whole server (no session keys). */
  readonly server: Pick<
    SupervisorStats,
    | 'sessions'
    | 'liveWorkers'
    | 'maxLiveSessions'
    | 'warmWorkers'
    | 'passivatedSessions'
    | 'busySessions'
    | 'queuedMessages'
    | 'turnsInFlight'
    | 'turnsWaitingForAdmission'
    | 'activationsWaiting'
    | 'turns'
    | 'workerStarts'
    | 'crashes'
    | 'restarts'
  >;
  /** The tenant's sessions, most recently active first (at most 200). */
  readonly sessions: readonly DashboardSession[];
}

export interface DashboardHubOptions {
  readonly isClosing: () => boolean;
  readonly intervalMs?: number;
}

/**
 * Keeps what the dashboard streams show: recent turn ends and per-session activity, fed by
 * the supervisor's events, and the open streams themselves.
 */
export class DashboardHub {
  readonly #supervisor: Supervisor;
  readonly #options: DashboardHubOptions;
  readonly #clients = new Set<Client>();
  readonly #turns: TurnRecord[] = [];
  readonly #activity = new Map<string, Activity>();
  readonly #unlisten: () => void;
  readonly #figures: SessionFigures;
  #closed = false;

  constructor(supervisor: Supervisor, options: DashboardHubOptions) {
    this.#supervisor = supervisor;
    this.#options = options;
    this.#figures = new SessionFigures(supervisor, this.#intervalMs);
    this.#unlisten = listenTo(supervisor, {
      'turn:end': (event) => this.#onTurnEnd(event),
      'session:start': ({ key, warm, activationMs, afterPassivation }) =>
        this.#broadcast(key, {
          kind: 'start',
          warm,
          activationMs: Math.round(activationMs),
          afterPassivation,
        }),
      'session:passivate': ({ key, reason }) => this.#broadcast(key, { kind: 'passivate', reason }),
      'session:crash': ({ key, error }) =>
        this.#broadcast(key, { kind: 'crash', code: error.code }),
      'session:restart': ({ key, restarts }) => this.#broadcast(key, { kind: 'restart', restarts }),
      'session:fail': ({ key, error }) => this.#broadcast(key, { kind: 'fail', code: error.code }),
      'session:reset': ({ key }) => this.#broadcast(key, { kind: 'reset' }),
      'session:close': ({ key }) => {
        this.#activity.delete(key);
        this.#broadcast(key, { kind: 'close' });
      },
    });
  }

  #onTurnEnd(event: SupervisorEvents['turn:end'][0]): void {
    const record: TurnRecord = {
      key: event.key,
      turnId: event.turnId,
      outcome: event.outcome,
      durationMs: Math.max(0, Math.round(event.durationMs)),
      at: Date.now(),
      tokens: event.usage?.totalTokens,
    };
    this.#turns.push(record);
    if (this.#turns.length > RECENT_TURNS) this.#turns.splice(0, this.#turns.length - RECENT_TURNS);
    const activity = this.#activity.get(event.key) ?? {
      turns: 0,
      failed: 0,
      lastOutcome: undefined,
      lastDurationMs: undefined,
      lastAt: 0,
    };
    activity.turns++;
    if (record.outcome !== 'ok') activity.failed++;
    activity.lastOutcome = record.outcome;
    activity.lastDurationMs = record.durationMs;
    activity.lastAt = record.at;
    this.#activity.set(event.key, activity);
    for (const client of this.#clients) {
      if (record.key.startsWith(client.prefix)) {
        this.#write(client, 'turn', turnFor(record, client.prefix));
      }
    }
  }

  #broadcast(key: string, change: DashboardSessionChange): void {
    for (const client of this.#clients) {
      if (!key.startsWith(client.prefix)) continue;
      const event: DashboardSessionEvent = {
        key: key.slice(client.prefix.length),
        at: Date.now(),
        ...change,
      };
      this.#write(client, 'session', event);
    }
  }

  /** Writes one frame, or drops it when the client is not keeping up (a dashboard can skip). */
  #write(client: Client, event: string, data: unknown): void {
    const { res } = client;
    if (res.destroyed || res.writableEnded || res.writableNeedDrain) return;
    res.write(sseFrame(event, data));
  }

  /**
   * Streams `tenant`'s dashboard on `res` until the client goes away or the hub closes:
   * `hello` (the tenant and its recent turns), then `snapshot` every interval, `turn` at
   * each turn end and `session` at each session lifecycle event; `bye` when the server stops.
   */
  stream(res: ServerResponse, tenant: Tenant): Promise<void> {
    const prefix = `${tenant.id}:`;
    res.writeHead(200, SSE_HEADERS);
    res.flushHeaders();
    return new Promise<void>((resolve) => {
      const client: Client = {
        res,
        tenant,
        prefix,
        timer: undefined,
        finish: () => {
          if (!this.#clients.delete(client)) return;
          clearInterval(client.timer);
          res.off('close', client.finish);
          if (!res.writableEnded) res.end();
          resolve();
        },
      };
      res.on('close', client.finish);
      this.#clients.add(client);
      const turns = this.#turns
        .filter((turn) => turn.key.startsWith(prefix))
        .slice(-TURNS_ON_CONNECT)
        .map((turn) => turnFor(turn, prefix));
      const hello: DashboardHello = { tenant: tenant.id, intervalMs: this.#intervalMs, turns };
      this.#write(client, 'hello', hello);
      this.#write(client, 'snapshot', this.snapshot(tenant));
      void this.#figures.refresh();
      client.timer = setInterval(() => {
        void this.#figures
          .refresh()
          .then(() => this.#write(client, 'snapshot', this.snapshot(tenant)));
      }, this.#intervalMs);
      client.timer.unref();
    });
  }

  get #intervalMs(): number {
    return this.#options.intervalMs ?? DASHBOARD_INTERVAL_MS;
  }

  /** What `tenant`'s dashboard shows now. */
  snapshot(tenant: Tenant): DashboardSnapshot {
    const stats = this.#supervisor.stats();
    const prefix = `${tenant.id}:`;
    const keys = ownKeys(tenant, this.#supervisor.sessionKeys());
    const rows: DashboardSession[] = [];
    for (const key of keys) {
      const session = this.#supervisor.peek(`${prefix}${key}`);
      if (!session) continue;
      const activity = this.#activity.get(session.key);
      rows.push({
        key,
        agent: session.agent,
        status: session.status,
        busy: session.busy,
        live: session.threadId !== undefined,
        passivated: session.isPassivated && session.threadId === undefined,
        queued: session.queued,
        turns: activity?.turns ?? 0,
        failedTurns: activity?.failed ?? 0,
        lastOutcome: activity?.lastOutcome ?? null,
        lastDurationMs: activity?.lastDurationMs ?? null,
        lastActivityAt: activity?.lastAt ?? null,
        ...this.#figures.of(session.key),
      });
    }
    rows.sort(
      (a, b) => (b.lastActivityAt ?? 0) - (a.lastActivityAt ?? 0) || (a.key < b.key ? -1 : 1),
    );
    const errors: Record<string, number> = {};
    for (const turn of this.#turns) {
      if (turn.outcome === 'ok' || !turn.key.startsWith(prefix)) continue;
      errors[turn.outcome] = (errors[turn.outcome] ?? 0) + 1;
    }
    const registered = this.#supervisor.agentNames();
    return {
      at: Date.now(),
      closing: this.#options.isClosing(),
      tenant: {
        id: tenant.id,
        turnsInFlight: tenant.turnsInFlight,
        agents: tenant.agents ? registered.filter((name) => tenant.agents?.has(name)) : registered,
        sessionCount: rows.length,
        errors,
      },
      server: {
        sessions: stats.sessions,
        liveWorkers: stats.liveWorkers,
        maxLiveSessions: stats.maxLiveSessions,
        warmWorkers: stats.warmWorkers,
        passivatedSessions: stats.passivatedSessions,
        busySessions: stats.busySessions,
        queuedMessages: stats.queuedMessages,
        turnsInFlight: stats.turnsInFlight,
        turnsWaitingForAdmission: stats.turnsWaitingForAdmission,
        activationsWaiting: stats.activationsWaiting,
        turns: stats.turns,
        workerStarts: stats.workerStarts,
        crashes: stats.crashes,
        restarts: stats.restarts,
      },
      sessions: rows.slice(0, SESSIONS_LISTED),
    };
  }

  /** Whether the hub has been closed (new streams are refused). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Ends every stream (after a `bye` frame) and stops listening to the supervisor. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unlisten();
    this.#figures.close();
    for (const client of [...this.#clients]) {
      this.#write(client, 'bye', { reason: 'the server is shutting down' });
      client.finish();
    }
  }
}

function turnFor(turn: TurnRecord, prefix: string): DashboardTurn {
  return {
    key: turn.key.slice(prefix.length),
    turnId: turn.turnId,
    outcome: turn.outcome,
    durationMs: turn.durationMs,
    at: turn.at,
    tokens: turn.tokens ?? null,
  };
}
