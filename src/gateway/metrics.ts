/**
 * The gateway's metrics (prom-client): the supervisor's (see `SupervisorMetrics`), Node's
 * process metrics when the registry is the gateway's own, and what only the gateway knows —
 * usage per tenant and agent of the replies it delivered, requests per route and status,
 * observers. Label values are bounded: tenant ids come from the options, agents from the
 * registered set (never a session key), routes from the route table.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { Usage } from '../agent/messages.js';
import { NotFoundError, UnauthorizedError } from '../errors.js';
import { mirrorCounter, SupervisorMetrics } from '../runtime/metrics.js';
import type { Supervisor } from '../runtime/supervisor.js';
import { bearerToken } from './http.js';
import { sameToken } from './tenants.js';

export { TURN_SECONDS_BUCKETS } from '../runtime/metrics.js';

/** What the gateway itself knows at scrape time. */
export interface GatewaySnapshot {
  readonly closing: boolean;
  readonly tenants: readonly { readonly id: string; readonly turnsInFlight: number }[];
  readonly observers: { readonly open: number; readonly dropped: number };
}

/** `GET /metrics`: 404 when not served, 401 without the metrics token when one is set. */
export async function sendMetrics(
  req: IncomingMessage,
  res: ServerResponse,
  options: { readonly serveMetrics: boolean; readonly metricsToken?: string | undefined },
  metrics: GatewayMetrics,
): Promise<void> {
  if (!options.serveMetrics) throw new NotFoundError('metrics are not served here');
  const token = options.metricsToken;
  if (token !== undefined && !sameToken(bearerToken(req), token)) {
    throw new UnauthorizedError('the metrics token is missing or not valid');
  }
  const text = await metrics.render();
  res.writeHead(200, {
    'content-type': metrics.contentType,
    'content-length': String(Buffer.byteLength(text)),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/** Turn ids already counted: replies shared by several callers (coalesce, steer) count once. */
const COUNTED_TURNS_KEPT = 4_096;

export class GatewayMetrics {
  readonly #registry: Registry;
  readonly #ownsRegistry: boolean;
  readonly #supervisorMetrics: SupervisorMetrics;
  readonly #names: string[] = [];
  readonly #counted = new Set<string>();
  readonly #tokens: Counter<'tenant' | 'agent' | 'type'>;
  readonly #cost: Counter<'tenant' | 'agent'>;
  readonly #llmCalls: Counter<'tenant' | 'agent'>;
  readonly #replies: Counter<'tenant' | 'agent'>;
  readonly #requests: Counter<'route' | 'status'>;

  constructor(
    supervisor: Supervisor,
    snapshot: () => GatewaySnapshot,
    registry: Registry | undefined,
  ) {
    this.#ownsRegistry = registry === undefined;
    this.#registry = registry ?? new Registry();
    const registers = [this.#registry];
    if (this.#ownsRegistry) collectDefaultMetrics({ register: this.#registry });
    this.#supervisorMetrics = new SupervisorMetrics(supervisor, { registry: this.#registry });
    const named = <M>(name: string, metric: M): M => {
      this.#names.push(name);
      return metric;
    };
    const perTenantAndAgent = (name: string, help: string) =>
      named(name, new Counter({ name, help, labelNames: ['tenant', 'agent'] as const, registers }));
    this.#tokens = named(
      'agentcell_tokens_total',
      new Counter({
        name: 'agentcell_tokens_total',
        help: 'Tokens of the replies delivered through the gateway, by tenant, agent and type.',
        labelNames: ['tenant', 'agent', 'type'] as const,
        registers,
      }),
    );
    this.#cost = perTenantAndAgent(
      'agentcell_cost_usd_total',
      'Cost in USD of the replies delivered through the gateway, by tenant and agent.',
    );
    this.#llmCalls = perTenantAndAgent(
      'agentcell_llm_calls_total',
      'Model calls of the replies delivered through the gateway, by tenant and agent.',
    );
    this.#replies = perTenantAndAgent(
      'agentcell_replies_total',
      'Successful replies delivered through the gateway, by tenant and agent.',
    );
    this.#requests = named(
      'agentcell_http_requests_total',
      new Counter({
        name: 'agentcell_http_requests_total',
        help: 'HTTP requests answered by the gateway, by route and status.',
        labelNames: ['route', 'status'] as const,
        registers,
      }),
    );
    named(
      'agentcell_gateway_turns_in_flight',
      new Gauge({
        name: 'agentcell_gateway_turns_in_flight',
        help: 'Message requests in progress, by tenant.',
        labelNames: ['tenant'] as const,
        registers,
        collect() {
          for (const tenant of snapshot().tenants) {
            this.set({ tenant: tenant.id }, tenant.turnsInFlight);
          }
        },
      }),
    );
    const gauge = (name: string, help: string, read: () => number) =>
      named(
        name,
        new Gauge({
          name,
          help,
          registers,
          collect() {
            this.set(read());
          },
        }),
      );
    gauge(
      'agentcell_gateway_closing',
      '1 while the gateway or its supervisor is shutting down.',
      () => (snapshot().closing ? 1 : 0),
    );
    gauge(
      'agentcell_observers',
      'Open observer streams (GET /v1/sessions/:key/events).',
      () => snapshot().observers.open,
    );
    named(
      'agentcell_observers_dropped_total',
      mirrorCounter(
        'agentcell_observers_dropped_total',
        'Observer streams dropped for falling behind (observers.maxBufferedBytes).',
        () => snapshot().observers.dropped,
        registers,
      ),
    );
  }

  get contentType(): string {
    return this.#registry.contentType;
  }

  /** The whole exposition of the registry (Prometheus text format 0.0.4). */
  render(): Promise<string> {
    return this.#registry.metrics();
  }

  /** A successful reply of `turnId`, by `agent`, reached a caller of `tenant`. */
  countReply(tenant: string, agent: string, turnId: string, usage: Usage): void {
    if (this.#counted.has(turnId)) return;
    this.#counted.add(turnId);
    if (this.#counted.size > COUNTED_TURNS_KEPT) {
      const oldest = this.#counted.values().next().value;
      if (oldest !== undefined) this.#counted.delete(oldest);
    }
    this.#tokens.inc({ tenant, agent, type: 'input' }, usage.inputTokens);
    this.#tokens.inc({ tenant, agent, type: 'output' }, usage.outputTokens);
    this.#cost.inc({ tenant, agent }, usage.costUsd);
    this.#llmCalls.inc({ tenant, agent }, usage.llmCalls);
    this.#replies.inc({ tenant, agent });
  }

  countRequest(route: string, status: number): void {
    this.#requests.inc({ route, status: String(status) });
  }

  /** Stops counting; metrics put in an embedder's registry are taken out of it. */
  close(): void {
    if (this.#ownsRegistry) {
      this.#supervisorMetrics.stop();
      return;
    }
    this.#supervisorMetrics.close();
    for (const name of this.#names.splice(0)) this.#registry.removeSingleMetric(name);
  }
}
