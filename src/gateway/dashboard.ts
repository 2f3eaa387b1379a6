/**
 * The dashboard: one self-contained page (inline CSS and JS, no CDN, a strict Content Security
 * Policy that allows only its own two inline blocks) served at `GET /` and `GET /dashboard`,
 * and `GET /v1/dashboard/events`, a server-sent event stream of stats snapshots (every
 * second) and turn and session events for one tenant.
 *
 * What a tenant sees: aggregate figures of the whole server (counts only, no keys), and its
 * own sessions and turns (keys as it named them). The page asks for the tenant's token, keeps
 * it in sessionStorage and sends it as a bearer token; it renders every value as text (no
 * `innerHTML`), so a session key or a reply can never become markup.
 */
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { SupervisorEvents } from '../runtime/events.js';
import type { Supervisor } from '../runtime/supervisor.js';
import { sseFrame } from './sse.js';
import { ownKeys, type Tenant } from './tenants.js';

/** How often a snapshot is sent to each dashboard stream. */
export const DASHBOARD_INTERVAL_MS = 1_000;
/** Turn ends remembered for the latency chart and the error counts of a freshly opened page. */
const RECENT_TURNS = 500;
/** Turn ends sent to a page when it connects. */
const TURNS_ON_CONNECT = 120;
/** Most sessions listed in one snapshot (most recently active first). */
const SESSIONS_LISTED = 200;

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
  'x-content-type-options': 'nosniff',
} as const;

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

/** A session row of a snapshot. */
export interface DashboardSession {
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
  readonly server: {
    readonly sessions: number;
    readonly liveWorkers: number;
    readonly maxLiveSessions: number;
    readonly warmWorkers: number;
    readonly passivatedSessions: number;
    readonly busySessions: number;
    readonly queuedMessages: number;
    readonly turnsInFlight: number;
    readonly turnsWaitingForAdmission: number;
    readonly activationsWaiting: number;
    readonly turns: {
      readonly ok: number;
      readonly failed: number;
      readonly byCode: Readonly<Record<string, number>>;
    };
    readonly workerStarts: number;
    readonly crashes: number;
    readonly restarts: number;
  };
  /** The tenant's sessions, most recently active first (at most 200). */
  readonly sessions: readonly DashboardSession[];
}

export interface DashboardHubOptions {
  readonly isClosing: () => boolean;
  readonly intervalMs?: number;
}

type Listeners = { [E in keyof SupervisorEvents]?: (...args: SupervisorEvents[E]) => void };

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
  readonly #listeners: Listeners;
  #closed = false;

  constructor(supervisor: Supervisor, options: DashboardHubOptions) {
    this.#supervisor = supervisor;
    this.#options = options;
    this.#listeners = {
      'turn:end': (event) => this.#onTurnEnd(event),
      'session:start': ({ key, warm, activationMs, afterPassivation }) =>
        this.#broadcast(key, 'session', {
          kind: 'start',
          warm,
          activationMs: Math.round(activationMs),
          afterPassivation,
        }),
      'session:passivate': ({ key, reason }) =>
        this.#broadcast(key, 'session', { kind: 'passivate', reason }),
      'session:crash': ({ key, error }) =>
        this.#broadcast(key, 'session', { kind: 'crash', code: error.code }),
      'session:restart': ({ key, restarts }) =>
        this.#broadcast(key, 'session', { kind: 'restart', restarts }),
      'session:fail': ({ key, error }) =>
        this.#broadcast(key, 'session', { kind: 'fail', code: error.code }),
      'session:reset': ({ key }) => this.#broadcast(key, 'session', { kind: 'reset' }),
      'session:close': ({ key }) => {
        this.#activity.delete(key);
        this.#broadcast(key, 'session', { kind: 'close' });
      },
    };
    this.#subscribe('on');
  }

  #subscribe(how: 'on' | 'off'): void {
    const emitter = this.#supervisor as unknown as {
      on(event: string, listener: (...args: never[]) => void): unknown;
      off(event: string, listener: (...args: never[]) => void): unknown;
    };
    for (const [event, listener] of Object.entries(this.#listeners)) {
      emitter[how](event, listener);
    }
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

  #broadcast(key: string, event: string, data: Record<string, unknown>): void {
    for (const client of this.#clients) {
      if (!key.startsWith(client.prefix)) continue;
      this.#write(client, event, { key: key.slice(client.prefix.length), at: Date.now(), ...data });
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
      this.#write(client, 'hello', {
        tenant: tenant.id,
        intervalMs: this.#intervalMs,
        turns,
      });
      this.#write(client, 'snapshot', this.snapshot(tenant));
      client.timer = setInterval(
        () => this.#write(client, 'snapshot', this.snapshot(tenant)),
        this.#intervalMs,
      );
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
    this.#subscribe('off');
    for (const client of [...this.#clients]) {
      this.#write(client, 'bye', { reason: 'the server is shutting down' });
      client.finish();
    }
  }
}

function turnFor(turn: TurnRecord, prefix: string) {
  return {
    key: turn.key.slice(prefix.length),
    turnId: turn.turnId,
    outcome: turn.outcome,
    durationMs: turn.durationMs,
    at: turn.at,
    tokens: turn.tokens ?? null,
  };
}

// ---------------------------------------------------------------------------------------------
// The page. Written as plain strings (String.raw: no `${`, no backticks inside), rendered once.
// Every dynamic value reaches the DOM through textContent, createElement or dataset.

const STYLE = String.raw`
:root{--bg:#f5f6f8;--card:#fff;--ink:#1b1f24;--muted:#5f6b7a;--line:#e3e6eb;--accent:#2563eb;
--ok:#0f9d76;--warn:#c27c0e;--bad:#d1343e;--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:var(--bg)}
header{display:flex;align-items:center;gap:14px;padding:12px 22px;background:#111827;color:#f9fafb}
header h1{font-size:16px;margin:0;font-weight:650;letter-spacing:.2px}
header h1 span{color:#93c5fd;font-weight:500}
header .spacer{flex:1}
header .who{color:#cbd5e1;font-size:13px}
header button{background:transparent;color:#e5e7eb;border:1px solid #374151;border-radius:6px;padding:4px 10px;cursor:pointer}
.pill{display:inline-flex;align-items:center;gap:6px;font-size:12px;padding:3px 9px;border-radius:999px;background:#1f2937;color:#e5e7eb}
.pill::before{content:"";width:8px;height:8px;border-radius:50%;background:#9ca3af}
.pill.live::before{background:#34d399}.pill.wait::before{background:#fbbf24}.pill.down::before{background:#f87171}
main{padding:18px 22px;display:grid;gap:16px;max-width:1400px;margin:0 auto}
.hidden{display:none!important}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px}
.card h2{font-size:13px;margin:0 0 10px;color:var(--muted);font-weight:600;text-transform:uppercase;letter-spacing:.5px}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px}
.stat{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 14px}
.stat .label{color:var(--muted);font-size:12px}
.stat .value{font-size:24px;font-weight:650;margin-top:2px;font-variant-numeric:tabular-nums}
.stat .sub{color:var(--muted);font-size:12px;margin-top:2px}
.grid2{display:grid;grid-template-columns:minmax(0,1.35fr) minmax(0,1fr);gap:16px}
.grid3{display:grid;grid-template-columns:minmax(0,1.35fr) minmax(0,.8fr) minmax(0,1fr);gap:16px}
@media (max-width:1000px){.grid2,.grid3{grid-template-columns:1fr}}
table{width:100%;border-collapse:collapse;font-size:13px}
th{text-align:left;color:var(--muted);font-weight:600;border-bottom:1px solid var(--line);padding:6px 7px;white-space:nowrap}
td{border-bottom:1px solid var(--line);padding:6px 7px;font-variant-numeric:tabular-nums}
td.key{font-family:var(--mono);max-width:190px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
td.outcome{max-width:130px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
tbody tr{cursor:pointer}tbody tr:hover{background:#f3f6fb}tbody tr.selected{background:#e8f0fe}
.scroll{max-height:340px;overflow:auto}
td.code{word-break:break-all;font-family:var(--mono);font-size:12px}
.state{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;background:#eef1f5;color:#374151}
.state.busy{background:#dbeafe;color:#1e40af}.state.live{background:#dcfce7;color:#166534}
.state.passivated{background:#f3f4f6;color:#6b7280}.state.failed{background:#fee2e2;color:#991b1b}
.ok{color:var(--ok)}.bad{color:var(--bad)}
.empty{color:var(--muted);font-style:italic;padding:8px 0}
.chat{display:flex;flex-direction:column;gap:10px;min-height:420px}
.chat .controls{display:flex;gap:8px;flex-wrap:wrap;align-items:end}
.chat label{display:flex;flex-direction:column;font-size:12px;color:var(--muted);gap:3px}
input,select,textarea{font:inherit;border:1px solid #cfd6df;border-radius:7px;padding:6px 9px;background:#fff;color:var(--ink)}
input#chat-key{font-family:var(--mono);min-width:200px}
button.primary{background:var(--accent);color:#fff;border:0;border-radius:7px;padding:8px 16px;font-weight:600;cursor:pointer}
button.primary:disabled{opacity:.55;cursor:default}
button.ghost{background:#fff;border:1px solid #cfd6df;border-radius:7px;padding:6px 12px;cursor:pointer}
.transcript{flex:1;min-height:240px;max-height:420px;overflow:auto;border:1px solid var(--line);border-radius:8px;padding:10px;background:#fafbfc;display:flex;flex-direction:column;gap:8px}
.msg{max-width:88%;padding:8px 11px;border-radius:10px;white-space:pre-wrap;word-break:break-word}
.msg.user{align-self:flex-end;background:var(--accent);color:#fff}
.msg.assistant{align-self:flex-start;background:#fff;border:1px solid var(--line)}
.msg.assistant.streaming .text::after{content:"\258D";color:var(--accent)}
.msg .note{font-family:var(--mono);font-size:12px;color:var(--muted)}
.msg .meta{font-size:11px;color:var(--muted);margin-top:4px}
.msg.error{border-color:#f3b4b8;background:#fff5f5}.msg.error .text{color:var(--bad)}
.composer{display:flex;gap:8px}.composer textarea{flex:1;resize:vertical}
.chart svg{width:100%;height:200px;display:block}
.chart .legend{display:flex;gap:16px;color:var(--muted);font-size:12px;margin-top:6px}
.chart .legend b{color:var(--ink);font-variant-numeric:tabular-nums}
ul.log{list-style:none;margin:0;padding:0;font-size:12.5px;max-height:240px;overflow:auto}
ul.log li{padding:4px 0;border-bottom:1px solid var(--line);display:flex;gap:8px}
ul.log .t{color:var(--muted);font-variant-numeric:tabular-nums}
ul.log .k{font-family:var(--mono);white-space:nowrap}
code{font-family:var(--mono);font-size:12.5px}
.login{max-width:440px;margin:10vh auto;background:var(--card);border:1px solid var(--line);border-radius:12px;padding:26px}
.login h2{margin:0 0 6px;font-size:18px}.login p{color:var(--muted);margin:0 0 16px}
.login form{display:flex;flex-direction:column;gap:10px}
.login .error{color:var(--bad);min-height:1.2em;margin:0}
`;

const BODY = `
<header>
  <h1>agentcell <span>dashboard</span></h1>
  <span id="status" class="pill wait">connecting</span>
  <span class="spacer"></span>
  <span id="who" class="who"></span>
  <button id="signout" type="button" class="hidden">Sign out</button>
</header>
<section id="login" class="login hidden">
  <h2>Sign in</h2>
  <p>Enter a tenant token of this server. It is kept in this tab only (sessionStorage).</p>
  <form id="login-form" autocomplete="off">
    <input id="token" type="password" autocomplete="off" placeholder="Tenant token" aria-label="Tenant token" required>
    <button class="primary" type="submit">Open dashboard</button>
    <p id="login-error" class="error" role="alert"></p>
  </form>
</section>
<main id="main" class="hidden">
  <div id="stats" class="stats"></div>
  <div class="grid2">
    <section class="card">
      <h2>Your sessions</h2>
      <div class="scroll">
        <table>
          <thead><tr><th>Session</th><th>Agent</th><th>State</th><th>Queue</th><th>Turns</th><th>Failed</th><th>Last turn</th><th>Outcome</th></tr></thead>
          <tbody id="sessions"></tbody>
        </table>
        <p id="sessions-empty" class="empty">No sessions yet: send a message from the chat.</p>
      </div>
    </section>
    <section class="card chat">
      <h2>Chat</h2>
      <form id="chat-form" class="chat">
        <div class="controls">
          <label>Agent<select id="chat-agent"></select></label>
          <label>Session<input id="chat-key" maxlength="200" spellcheck="false"></label>
          <button id="chat-new" type="button" class="ghost">New session</button>
        </div>
        <div id="transcript" class="transcript" aria-live="polite"></div>
        <div class="composer">
          <textarea id="chat-input" rows="2" placeholder="Message (Enter to send, Shift+Enter for a new line)"></textarea>
          <button id="chat-send" class="primary" type="submit">Send</button>
        </div>
      </form>
    </section>
  </div>
  <div class="grid3">
    <section class="card chart">
      <h2>Turn latency (your last 60 turns)</h2>
      <svg id="chart" viewBox="0 0 640 200" role="img" aria-label="Turn latency"></svg>
      <div class="legend"><span>p50 <b id="p50">-</b></span><span>p95 <b id="p95">-</b></span><span>max <b id="pmax">-</b></span><span>turns <b id="pcount">0</b></span></div>
    </section>
    <section class="card">
      <h2>Errors by code</h2>
      <table><thead><tr><th>Code</th><th title="Among your recent turns">Yours</th><th title="Every tenant, since the server started">Server</th></tr></thead><tbody id="errors"></tbody></table>
      <p id="errors-empty" class="empty">No errors.</p>
    </section>
    <section class="card">
      <h2>Activity</h2>
      <ul id="log" class="log"></ul>
      <p id="log-empty" class="empty">Waiting for turns and sessions.</p>
    </section>
  </div>
</main>
`;

const SCRIPT = String.raw`
'use strict';
(() => {
  const TOKEN_KEY = 'agentcell.dashboard.token';
  const CHAT_KEY = 'agentcell.dashboard.session';
  const SVG = 'http://www.w3.org/2000/svg';
  const base = location.pathname.replace(/\/dashboard\/?$/, '').replace(/\/+$/, '');
  const $ = (id) => document.getElementById(id);
  const state = { token: sessionStorage.getItem(TOKEN_KEY), abort: null, retryMs: 1000, retryTimer: 0,
    turns: [], snapshot: null, log: [], sending: false };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const name of Object.keys(attrs)) node.setAttribute(name, String(attrs[name]));
    return node;
  }
  function ms(value) {
    if (value === null || value === undefined) return '-';
    return value >= 10000 ? (value / 1000).toFixed(1) + ' s' : Math.round(value) + ' ms';
  }
  function clock(at) { return new Date(at).toLocaleTimeString([], { hour12: false }); }
  function axis(value) { return value >= 1000 ? (value / 1000).toFixed(1) + ' s' : Math.round(value) + ' ms'; }
  /** Error codes all start alike; tables show the rest (the full code is in the tooltip). */
  function short(code) { return String(code).replace(/^AGENTCELL_/, ''); }
  function headers(extra) { return Object.assign({ authorization: 'Bearer ' + state.token }, extra || {}); }

  async function readEvents(response, onFrame) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const step = await reader.read();
      if (step.done) return;
      buffer += decoder.decode(step.value, { stream: true });
      let at;
      while ((at = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        let event = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue;
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        if (data.length === 0) continue;
        let parsed;
        try { parsed = JSON.parse(data.join('\n')); } catch { continue; }
        onFrame(event, parsed);
      }
    }
  }

  async function errorOf(response) {
    try {
      const body = await response.json();
      if (body && body.error) return { code: String(body.error.code), message: String(body.error.message) };
    } catch {}
    return { code: 'HTTP ' + response.status, message: response.statusText || 'request failed' };
  }

  function setStatus(kind, text) {
    const node = $('status');
    node.className = 'pill ' + kind;
    node.textContent = text;
  }

  function showLogin(message) {
    $('main').classList.add('hidden');
    $('signout').classList.add('hidden');
    $('login').classList.remove('hidden');
    $('who').textContent = '';
    $('login-error').textContent = message || '';
    setStatus('down', 'signed out');
    $('token').focus();
  }
  function showMain() {
    $('login').classList.add('hidden');
    $('main').classList.remove('hidden');
    $('signout').classList.remove('hidden');
  }

  function stop() {
    clearTimeout(state.retryTimer);
    if (state.abort) state.abort.abort();
    state.abort = null;
  }
  function signOut(message) {
    stop();
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin(message);
  }
  function retry(slow) {
    clearTimeout(state.retryTimer);
    const delay = slow ? Math.max(3000, state.retryMs) : state.retryMs;
    state.retryMs = Math.min(10000, state.retryMs * 2);
    state.retryTimer = setTimeout(connect, delay);
  }

  async function connect() {
    stop();
    if (!state.token) return showLogin();
    const controller = new AbortController();
    state.abort = controller;
    setStatus('wait', 'connecting');
    let response;
    try {
      response = await fetch(base + '/v1/dashboard/events', {
        headers: headers({ accept: 'text/event-stream' }), signal: controller.signal, cache: 'no-store' });
    } catch {
      if (!controller.signal.aborted) { setStatus('down', 'server unreachable'); retry(); }
      return;
    }
    if (response.status === 401) return signOut('That token is not valid on this server.');
    if (!response.ok) {
      const error = await errorOf(response);
      setStatus('down', error.code);
      return retry(true);
    }
    showMain();
    setStatus('live', 'live');
    state.retryMs = 1000;
    let bye = false;
    try {
      await readEvents(response, (event, data) => { if (event === 'bye') bye = true; onFrame(event, data); });
    } catch {}
    if (controller.signal.aborted) return;
    setStatus(bye ? 'down' : 'wait', bye ? 'server stopped' : 'reconnecting');
    retry(bye);
  }

  function onFrame(event, data) {
    if (event === 'hello') {
      $('who').textContent = 'tenant ' + data.tenant;
      state.turns = Array.isArray(data.turns) ? data.turns : [];
      renderChart();
    } else if (event === 'snapshot') {
      state.snapshot = data;
      renderStats(data);
      renderSessions(data);
      renderErrors(data);
      renderAgents(data);
      if (data.closing) setStatus('wait', 'server closing');
    } else if (event === 'turn') {
      state.turns.push(data);
      if (state.turns.length > 500) state.turns.splice(0, state.turns.length - 500);
      renderChart();
      const ok = data.outcome === 'ok';
      addLog(data.at, data.key, ok ? 'turn ok in ' + ms(data.durationMs) : 'turn failed: ' + data.outcome, !ok);
    } else if (event === 'session') {
      addLog(data.at, data.key, describeSession(data), data.kind === 'crash' || data.kind === 'fail');
    } else if (event === 'bye') {
      addLog(Date.now(), '', 'server shutting down', true);
    }
  }

  function describeSession(data) {
    switch (data.kind) {
      case 'start': return (data.afterPassivation ? 'reactivated' : 'worker started') + (data.warm ? ' (warm)' : ' (cold)') + ' in ' + ms(data.activationMs);
      case 'passivate': return 'passivated (' + data.reason + ')';
      case 'crash': return 'worker crashed: ' + data.code;
      case 'restart': return 'restarted (' + data.restarts + ')';
      case 'fail': return 'failed: ' + data.code;
      case 'reset': return 'conversation reset';
      case 'close': return 'closed';
      default: return String(data.kind);
    }
  }

  function addLog(at, key, text, bad) {
    state.log.unshift({ at, key, text, bad });
    if (state.log.length > 60) state.log.length = 60;
    const list = $('log');
    clear(list);
    for (const entry of state.log) {
      const item = el('li');
      item.append(el('span', 't', clock(entry.at)));
      if (entry.key) item.append(el('span', 'k', entry.key));
      item.append(el('span', entry.bad ? 'bad' : '', entry.text));
      list.append(item);
    }
    $('log-empty').classList.toggle('hidden', state.log.length > 0);
  }

  const STAT_CARDS = [
    ['sessions', 'Your sessions'], ['live', 'Live workers'], ['busy', 'Busy sessions'],
    ['queued', 'Queued messages'], ['inflight', 'Turns in flight'], ['turns', 'Turns ok / failed'],
  ];
  function renderStats(data) {
    const box = $('stats');
    if (!box.firstChild) {
      for (const [id, label] of STAT_CARDS) {
        const card = el('div', 'stat');
        card.append(el('div', 'label', label));
        const value = el('div', 'value', '-'); value.id = 'stat-' + id; card.append(value);
        const sub = el('div', 'sub', ''); sub.id = 'sub-' + id; card.append(sub);
        box.append(card);
      }
    }
    const s = data.server;
    const set = (id, value, sub) => { $('stat-' + id).textContent = value; $('sub-' + id).textContent = sub; };
    set('sessions', data.tenant.sessionCount, 'server: ' + s.sessions + ' open');
    set('live', s.liveWorkers + ' / ' + s.maxLiveSessions, 'warm ' + s.warmWorkers + ', passivated ' + s.passivatedSessions);
    set('busy', s.busySessions, 'worker starts ' + s.workerStarts);
    set('queued', s.queuedMessages, 'admission wait ' + s.turnsWaitingForAdmission + ', activation wait ' + s.activationsWaiting);
    set('inflight', s.turnsInFlight, 'yours ' + data.tenant.turnsInFlight);
    set('turns', s.turns.ok + ' / ' + s.turns.failed, 'crashes ' + s.crashes + ', restarts ' + s.restarts);
  }

  function sessionState(row) {
    if (row.status === 'failed') return ['failed', 'failed'];
    if (row.busy) return ['busy', 'in turn'];
    if (row.live) return ['live', 'live'];
    if (row.passivated) return ['passivated', 'passivated'];
    return ['', row.status];
  }
  function renderSessions(data) {
    const body = $('sessions');
    clear(body);
    const current = $('chat-key').value.trim();
    for (const row of data.sessions) {
      const tr = el('tr');
      tr.dataset.key = row.key;
      tr.dataset.agent = row.agent;
      if (row.key === current) tr.classList.add('selected');
      const key = el('td', 'key', row.key); key.title = row.key; tr.append(key);
      tr.append(el('td', '', row.agent));
      const [cls, text] = sessionState(row);
      const stateCell = el('td'); stateCell.append(el('span', 'state ' + cls, text)); tr.append(stateCell);
      tr.append(el('td', '', row.queued));
      tr.append(el('td', '', row.turns));
      tr.append(el('td', row.failedTurns ? 'bad' : '', row.failedTurns));
      tr.append(el('td', '', ms(row.lastDurationMs)));
      const outcome = row.lastOutcome;
      const outcomeCell = el('td', 'outcome ' + (outcome === 'ok' ? 'ok' : outcome ? 'bad' : ''), outcome === null ? '-' : short(outcome));
      if (outcome) outcomeCell.title = outcome;
      tr.append(outcomeCell);
      body.append(tr);
    }
    $('sessions-empty').classList.toggle('hidden', data.sessions.length > 0);
  }

  function renderErrors(data) {
    const body = $('errors');
    clear(body);
    const codes = new Set(Object.keys(data.tenant.errors).concat(Object.keys(data.server.turns.byCode)));
    for (const code of [...codes].sort()) {
      const tr = el('tr');
      const cell = el('td', 'bad code', short(code)); cell.title = code; tr.append(cell);
      tr.append(el('td', '', data.tenant.errors[code] || 0));
      tr.append(el('td', '', data.server.turns.byCode[code] || 0));
      body.append(tr);
    }
    $('errors-empty').classList.toggle('hidden', codes.size > 0);
  }

  function renderAgents(data) {
    const select = $('chat-agent');
    const names = data.tenant.agents;
    const have = [...select.options].map((o) => o.value);
    if (have.join('\n') === names.join('\n')) return;
    const chosen = select.value;
    clear(select);
    for (const name of names) { const option = el('option', '', name); option.value = name; select.append(option); }
    if (names.includes(chosen)) select.value = chosen;
  }

  function quantile(sorted, q) {
    if (sorted.length === 0) return null;
    return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  }
  function renderChart() {
    const chart = $('chart');
    clear(chart);
    const turns = state.turns.slice(-60);
    const durations = turns.map((t) => t.durationMs).sort((a, b) => a - b);
    const W = Math.max(320, Math.round(chart.getBoundingClientRect().width) || 640);
    const H = 200, L = 54, B = 22, T = 10;
    chart.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    const max = Math.max(100, (durations[durations.length - 1] || 0) * 1.1);
    const slots = Math.max(24, turns.length);
    for (const f of [0, 0.5, 1]) {
      const y = T + (H - T - B) * (1 - f);
      chart.append(svg('line', { x1: L, x2: W, y1: y, y2: y, stroke: '#e3e6eb', 'stroke-width': 1 }));
      const label = svg('text', { x: L - 6, y: y + 4, 'text-anchor': 'end', 'font-size': 11, fill: '#5f6b7a' });
      label.textContent = axis(max * f);
      chart.append(label);
    }
    const slot = (W - L) / slots;
    turns.forEach((turn, i) => {
      const h = Math.max(2, (H - T - B) * (turn.durationMs / max));
      const bar = svg('rect', { x: L + i * slot + slot * 0.15, y: H - B - h, width: slot * 0.7, height: h, rx: 2,
        fill: turn.outcome === 'ok' ? '#0f9d76' : '#d1343e' });
      bar.classList.add('bar');
      const title = svg('title', {});
      title.textContent = turn.key + ': ' + turn.outcome + ' in ' + ms(turn.durationMs);
      bar.append(title);
      chart.append(bar);
    });
    const caption = svg('text', { x: L, y: H - 6, 'font-size': 11, fill: '#5f6b7a' });
    caption.textContent = turns.length ? 'oldest first' : 'no turns yet';
    chart.append(caption);
    $('p50').textContent = ms(quantile(durations, 0.5));
    $('p95').textContent = ms(quantile(durations, 0.95));
    $('pmax').textContent = ms(durations.length ? durations[durations.length - 1] : null);
    $('pcount').textContent = String(state.turns.length);
  }

  // ---- chat ----
  function newKey() { return 'web-' + Math.random().toString(36).slice(2, 8); }
  function knownSession(key) {
    return state.snapshot ? state.snapshot.sessions.find((row) => row.key === key) : undefined;
  }
  function bubble(role, text) {
    const node = el('div', 'msg ' + role);
    node.append(el('div', 'text', text));
    $('transcript').append(node);
    node.scrollIntoView({ block: 'end' });
    return node;
  }
  function note(node, text) { node.insertBefore(el('div', 'note', text), node.lastChild); }
  function fail(node, error) {
    node.classList.add('error');
    node.dataset.state = 'error';
    node.querySelector('.text').textContent = error.code + ': ' + error.message;
  }

  async function loadHistory(key) {
    const transcript = $('transcript');
    clear(transcript);
    if (!key || !knownSession(key)) return;
    try {
      const response = await fetch(base + '/v1/sessions/' + encodeURIComponent(key) + '?history=1', { headers: headers() });
      if (!response.ok) return;
      const body = await response.json();
      if ($('chat-key').value.trim() !== key) return;
      for (const message of body.history || []) {
        if ((message.role === 'user' || message.role === 'assistant') && message.content) bubble(message.role, message.content);
      }
    } catch {}
  }

  function selectSession(key, agent) {
    $('chat-key').value = key;
    sessionStorage.setItem(CHAT_KEY, key);
    if (agent) $('chat-agent').value = agent;
    for (const tr of $('sessions').children) tr.classList.toggle('selected', tr.dataset.key === key);
    loadHistory(key);
  }

  async function send(message) {
    const key = $('chat-key').value.trim();
    if (!key || !message || state.sending) return;
    state.sending = true;
    $('chat-send').disabled = true;
    sessionStorage.setItem(CHAT_KEY, key);
    bubble('user', message);
    const reply = bubble('assistant', '');
    reply.classList.add('streaming');
    reply.dataset.state = 'streaming';
    const text = reply.querySelector('.text');
    const body = { message };
    const known = knownSession(key);
    if (known) $('chat-agent').value = known.agent;
    else if ($('chat-agent').value) body.agent = $('chat-agent').value;
    const started = performance.now();
    let deltas = 0;
    try {
      const response = await fetch(base + '/v1/sessions/' + encodeURIComponent(key) + '/messages', {
        method: 'POST', body: JSON.stringify(body),
        headers: headers({ 'content-type': 'application/json', accept: 'text/event-stream' }) });
      if (response.status === 401) { signOut('That token is no longer valid.'); return; }
      const type = response.headers.get('content-type') || '';
      if (!response.ok || !type.startsWith('text/event-stream')) { fail(reply, await errorOf(response)); return; }
      await readEvents(response, (event, data) => {
        if (event === 'text') {
          deltas++;
          text.textContent += data.delta;
          reply.dataset.deltas = String(deltas);
          reply.scrollIntoView({ block: 'end' });
        } else if (event === 'tool-start') {
          note(reply, 'tool ' + data.name + '(' + String(data.arguments).slice(0, 120) + ')');
        } else if (event === 'tool-end') {
          note(reply, 'tool ' + data.name + (data.ok ? ' done' : ' failed'));
        } else if (event === 'retry') {
          note(reply, 'retry ' + data.attempt + ' after ' + data.code);
        } else if (event === 'done') {
          text.textContent = data.reply;
          const usage = data.usage ? ', ' + data.usage.totalTokens + ' tokens' : '';
          reply.append(el('div', 'meta', ms(performance.now() - started) + usage + ' · ' + deltas + ' chunks'));
          reply.dataset.state = 'done';
        } else if (event === 'error') {
          fail(reply, { code: String(data.code), message: String(data.message) });
        }
      });
      if (reply.dataset.state === 'streaming') fail(reply, { code: 'disconnected', message: 'the stream ended before the reply' });
    } catch (error) {
      fail(reply, { code: 'network', message: String(error && error.message) });
    } finally {
      reply.classList.remove('streaming');
      state.sending = false;
      $('chat-send').disabled = false;
    }
  }

  $('login-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = $('token').value.trim();
    if (!token) return;
    state.token = token;
    sessionStorage.setItem(TOKEN_KEY, token);
    $('token').value = '';
    connect();
  });
  $('signout').addEventListener('click', () => signOut(''));
  $('chat-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('chat-input');
    const message = input.value;
    if (!message.trim() || state.sending) return;
    input.value = '';
    send(message);
  });
  $('chat-input').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey) { event.preventDefault(); $('chat-form').requestSubmit(); }
  });
  $('chat-new').addEventListener('click', () => selectSession(newKey()));
  $('chat-key').addEventListener('change', () => selectSession($('chat-key').value.trim()));
  $('sessions').addEventListener('click', (event) => {
    const row = event.target.closest('tr');
    if (row && row.dataset.key !== undefined) selectSession(row.dataset.key, row.dataset.agent);
  });

  $('chat-key').value = sessionStorage.getItem(CHAT_KEY) || newKey();
  renderChart();
  window.addEventListener('resize', renderChart);
  connect();
})();
`;

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/** Only the page's own inline style and script may run; it talks to its own origin only. */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The dashboard page: one HTML document, everything inline. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>agentcell dashboard</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>${BODY}<script>${SCRIPT}</script>
</body>
</html>
`;

const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-length': String(Buffer.byteLength(DASHBOARD_HTML)),
  'cache-control': 'no-store',
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
} as const;

/** Answers with the dashboard page (it holds no data: everything comes with the token). */
export function sendDashboardPage(res: ServerResponse): void {
  res.writeHead(200, PAGE_HEADERS);
  res.end(DASHBOARD_HTML);
}
