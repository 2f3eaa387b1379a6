/**
 * Prometheus text exposition (format 0.0.4) of a supervisor and its gateway. Small enough to
 * write by hand: gauges and counters read from `supervisor.stats()` at scrape time, a turn
 * latency histogram fed by `turn:end`, and usage counters fed by the replies the gateway
 * delivers. Label values are bounded: tenant ids come from the options, outcomes from the
 * error catalogue, routes from the route table.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Usage } from '../agent/messages.js';
import { NotFoundError, UnauthorizedError } from '../errors.js';
import type { SupervisorStats } from '../runtime/supervisor.js';
import { bearerToken } from './http.js';
import { sameToken } from './tenants.js';

const METRICS_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Upper bounds of the turn latency histogram, in seconds (50 ms to 60 s). */
export const TURN_SECONDS_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60] as const;

type Labels = Readonly<Record<string, string>>;

interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge' | 'counter' | 'histogram';
  readonly samples: readonly { readonly suffix?: string; labels?: Labels; value: number }[];
}

class Histogram {
  readonly #bounds: readonly number[];
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.#counts = bounds.map(() => 0);
  }

  observe(value: number): void {
    this.#sum += value;
    this.#count++;
    const index = this.#bounds.findIndex((bound) => value <= bound);
    if (index >= 0) this.#counts[index] = (this.#counts[index] ?? 0) + 1;
  }

  samples(): Family['samples'] {
    let cumulative = 0;
    const buckets = this.#bounds.map((bound, index) => {
      cumulative += this.#counts[index] ?? 0;
      return { suffix: '_bucket', labels: { le: formatValue(bound) }, value: cumulative };
    });
    return [
      ...buckets,
      { suffix: '_bucket', labels: { le: '+Inf' }, value: this.#count },
      { suffix: '_sum', value: this.#sum },
      { suffix: '_count', value: this.#count },
    ];
  }
}

interface TenantUsage {
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  llmCalls: number;
  turns: number;
}

/** What the gateway itself knows at scrape time. */
export interface GatewaySnapshot {
  readonly closing: boolean;
  readonly tenants: readonly { readonly id: string; readonly turnsInFlight: number }[];
  readonly observers: { readonly open: number; readonly dropped: number };
}

/** `GET /metrics`: 404 when not served, 401 without the metrics token when one is set. */
export function sendMetrics(
  req: IncomingMessage,
  res: ServerResponse,
  options: { readonly serveMetrics: boolean; readonly metricsToken?: string | undefined },
  render: () => string,
): void {
  if (!options.serveMetrics) throw new NotFoundError('metrics are not served here');
  const token = options.metricsToken;
  if (token !== undefined && !sameToken(bearerToken(req), token)) {
    throw new UnauthorizedError('the metrics token is missing or not valid');
  }
  const text = render();
  res.writeHead(200, {
    'content-type': METRICS_TYPE,
    'content-length': String(Buffer.byteLength(text)),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/** Turn ids already counted: replies shared by several callers (coalesce, steer) count once. */
const COUNTED_TURNS_KEPT = 4_096;

export class GatewayMetrics {
  readonly #turnSeconds = new Histogram(TURN_SECONDS_BUCKETS);
  readonly #usage = new Map<string, TenantUsage>();
  readonly #requests = new Map<string, { route: string; status: string; value: number }>();
  readonly #counted = new Set<string>();

  /** A turn ended (any outcome) after `durationMs`. */
  observeTurn(durationMs: number): void {
    this.#turnSeconds.observe(Math.max(0, durationMs) / 1000);
  }

  /** A successful reply of `turnId` reached a caller of `tenant`. */
  countReply(tenant: string, turnId: string, usage: Usage): void {
    if (this.#counted.has(turnId)) return;
    this.#counted.add(turnId);
    if (this.#counted.size > COUNTED_TURNS_KEPT) {
      const oldest = this.#counted.values().next().value;
      if (oldest !== undefined) this.#counted.delete(oldest);
    }
    const sum = this.#usage.get(tenant) ?? {
      inputTokens: 0,
      outputTokens: 0,
      costUsd: 0,
      llmCalls: 0,
      turns: 0,
    };
    sum.inputTokens += usage.inputTokens;
    sum.outputTokens += usage.outputTokens;
    sum.costUsd += usage.costUsd;
    sum.llmCalls += usage.llmCalls;
    sum.turns++;
    this.#usage.set(tenant, sum);
  }

  countRequest(route: string, status: number): void {
    const id = `${route} ${status}`;
    const entry = this.#requests.get(id) ?? { route, status: String(status), value: 0 };
    entry.value++;
    this.#requests.set(id, entry);
  }

  /** The whole exposition, ending in a newline. */
  render(stats: SupervisorStats, gateway: GatewaySnapshot): string {
    const usage = [...this.#usage.entries()];
    const perTenant = (pick: (sum: TenantUsage) => number, extra: Labels = {}) =>
      usage.map(([tenant, sum]) => ({ labels: { tenant, ...extra }, value: pick(sum) }));
    const gauge = (name: string, help: string, value: number): Family => ({
      name,
      help,
      type: 'gauge',
      samples: [{ value }],
    });
    const counter = (name: string, help: string, value: number): Family => ({
      name,
      help,
      type: 'counter',
      samples: [{ value }],
    });
    const families: Family[] = [
      gauge('agentcell_sessions', 'Open sessions, live or passivated.', stats.sessions),
      gauge('agentcell_sessions_live', 'Sessions with a live worker.', stats.liveWorkers),
      gauge(
        'agentcell_sessions_passivated',
        'Sessions whose idle worker was released.',
        stats.passivatedSessions,
      ),
      gauge('agentcell_sessions_busy', 'Sessions in a turn.', stats.busySessions),
      gauge('agentcell_workers_warm', 'Prepared workers in the warm pool.', stats.warmWorkers),
      gauge(
        'agentcell_live_sessions_max',
        'Most live workers allowed (option capped by the machine ceiling).',
        stats.maxLiveSessions,
      ),
      gauge(
        'agentcell_activations_waiting',
        'Activations waiting for a live slot.',
        stats.activationsWaiting,
      ),
      gauge('agentcell_messages_queued', 'Messages waiting in mailboxes.', stats.queuedMessages),
      gauge('agentcell_turns_in_flight', 'Turns running now.', stats.turnsInFlight),
      gauge(
        'agentcell_turns_waiting_admission',
        'Turns waiting for global admission.',
        stats.turnsWaitingForAdmission,
      ),
      gauge(
        'agentcell_mcp_connections',
        'MCP connections open on this node (shared and per session).',
        stats.mcpConnections ?? 0,
      ),
      {
        name: 'agentcell_turns_total',
        help: 'Turns ended, by outcome (ok or an error code).',
        type: 'counter',
        samples: [
          { labels: { outcome: 'ok' }, value: stats.turns.ok },
          ...Object.entries(stats.turns.byCode).map(([outcome, value]) => ({
            labels: { outcome },
            value,
          })),
        ],
      },
      counter(
        'agentcell_worker_starts_total',
        'Cold starts of session workers.',
        stats.workerStarts,
      ),
      counter('agentcell_warm_hits_total', 'Activations served by a warm worker.', stats.warmHits),
      counter('agentcell_warm_misses_total', 'Activations that started cold.', stats.warmMisses),
      counter('agentcell_crashes_total', 'Session workers that died.', stats.crashes),
      counter('agentcell_restarts_total', 'Session restarts from the journal.', stats.restarts),
      {
        name: 'agentcell_turn_duration_seconds',
        help: 'Turn latency from start to end, every outcome.',
        type: 'histogram',
        samples: this.#turnSeconds.samples(),
      },
      {
        name: 'agentcell_tokens_total',
        help: 'Tokens of the replies delivered through the gateway, by tenant and type.',
        type: 'counter',
        samples: [
          ...perTenant((sum) => sum.inputTokens, { type: 'input' }),
          ...perTenant((sum) => sum.outputTokens, { type: 'output' }),
        ],
      },
      {
        name: 'agentcell_cost_usd_total',
        help: 'Cost in USD of the replies delivered through the gateway, by tenant.',
        type: 'counter',
        samples: perTenant((sum) => sum.costUsd),
      },
      {
        name: 'agentcell_llm_calls_total',
        help: 'Model calls of the replies delivered through the gateway, by tenant.',
        type: 'counter',
        samples: perTenant((sum) => sum.llmCalls),
      },
      {
        name: 'agentcell_replies_total',
        help: 'Successful replies delivered through the gateway, by tenant.',
        type: 'counter',
        samples: perTenant((sum) => sum.turns),
      },
      {
        name: 'agentcell_gateway_turns_in_flight',
        help: 'Message requests in progress, by tenant.',
        type: 'gauge',
        samples: gateway.tenants.map((tenant) => ({
          labels: { tenant: tenant.id },
          value: tenant.turnsInFlight,
        })),
      },
      gauge(
        'agentcell_gateway_closing',
        '1 while the gateway or its supervisor is shutting down.',
        gateway.closing ? 1 : 0,
      ),
      gauge(
        'agentcell_observers',
        'Open observer streams (GET /v1/sessions/:key/events).',
        gateway.observers.open,
      ),
      counter(
        'agentcell_observers_dropped_total',
        'Observer streams dropped for falling behind (observers.maxBufferedBytes).',
        gateway.observers.dropped,
      ),
      {
        name: 'agentcell_http_requests_total',
        help: 'HTTP requests answered by the gateway, by route and status.',
        type: 'counter',
        samples: [...this.#requests.values()].map(({ route, status, value }) => ({
          labels: { route, status },
          value,
        })),
      },
    ];
    return `${families.map(renderFamily).join('\n')}\n`;
  }
}

function renderFamily(family: Family): string {
  const lines = [`# HELP ${family.name} ${escapeHelp(family.help)}`];
  lines.push(`# TYPE ${family.name} ${family.type}`);
  for (const sample of family.samples) {
    lines.push(
      `${family.name}${sample.suffix ?? ''}${renderLabels(sample.labels)} ${formatValue(sample.value)}`,
    );
  }
  return lines.join('\n');
}

function renderLabels(labels: Labels | undefined): string {
  if (!labels) return '';
  const pairs = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabel(value)}"`);
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}
