/**
 * A supervisor's figures as Prometheus metrics (prom-client), registered into any registry:
 * the gateway's own, or an embedder's. Gauges are read from `supervisor.stats()` at scrape
 * time; counters and histograms are fed by the supervisor's events. Label values are bounded:
 * agent names come from `register()`, outcomes from the error catalogue, providers from the
 * configured endpoints. No label ever holds a session key.
 */
import {
  Counter,
  type CounterConfiguration,
  Gauge,
  Histogram,
  type HistogramConfiguration,
  type Registry,
  register,
  Summary,
} from 'prom-client';
import { OptionsInvalidError } from '../errors.js';
import { listenTo } from './events.js';
import type { Supervisor } from './supervisor.js';
import type { SupervisorStats } from './supervisor-stats.js';
import { sampleWorkers, type WorkerSample } from './worker-sample.js';

/** Upper bounds of the turn latency histogram, in seconds (50 ms to 60 s). */
export const TURN_SECONDS_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60];
/** Upper bounds of the first-token and model-call histograms, in seconds. */
export const MODEL_SECONDS_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface SupervisorMetricsOptions {
  /** Where the metrics are registered. @default prom-client's global registry */
  readonly registry?: Registry | undefined;
}

/**
 * Registers a supervisor's metrics; `close()` stops counting and unregisters them.
 *
 * @example
 * import { Registry, collectDefaultMetrics } from 'prom-client';
 * const registry = new Registry();
 * collectDefaultMetrics({ register: registry });
 * const metrics = new SupervisorMetrics(supervisor, { registry });
 * app.get('/metrics', async (_req, res) => res.type(registry.contentType).send(await registry.metrics()));
 */
export class SupervisorMetrics {
  readonly #supervisor: Supervisor;
  readonly #registry: Registry;
  readonly #names: string[] = [];
  readonly #unlisten: () => void;
  #sampling: Promise<WorkerSample[]> | undefined;

  constructor(supervisor: Supervisor, options: SupervisorMetricsOptions = {}) {
    this.#supervisor = supervisor;
    this.#registry = options.registry ?? register;
    if (this.#registry.getSingleMetric('agentcell_turns_total')) {
      throw new OptionsInvalidError(
        'registry: it holds agentcell metrics already (one supervisor per registry); give each supervisor a registry of its own, or close() the metrics registered before',
      );
    }
    const registers = [this.#registry];
    const named = <M>(name: string, metric: M): M => {
      this.#names.push(name);
      return metric;
    };
    const counter = <L extends string>(config: CounterConfiguration<L>) =>
      named(config.name, new Counter({ ...config, registers }));
    const histogram = <L extends string>(config: HistogramConfiguration<L>) =>
      named(config.name, new Histogram({ ...config, registers }));
    const stats = () => supervisor.stats();
    this.#gauges(stats, named);
    const mirrored = (name: string, help: string, pick: (s: SupervisorStats) => number) =>
      named(
        name,
        mirrorCounter(name, help, () => pick(stats()), registers),
      );
    mirrored(
      'agentcell_worker_starts_total',
      'Cold starts of session workers.',
      (s) => s.workerStarts,
    );
    mirrored(
      'agentcell_warm_hits_total',
      'Activations served by a warm worker.',
      (s) => s.warmHits,
    );
    mirrored('agentcell_warm_misses_total', 'Activations that started cold.', (s) => s.warmMisses);
    mirrored('agentcell_crashes_total', 'Session workers that died.', (s) => s.crashes);
    mirrored('agentcell_restarts_total', 'Session restarts from the journal.', (s) => s.restarts);

    const turns = counter({
      name: 'agentcell_turns_total',
      help: 'Turns ended, by agent and outcome (ok or an error code).',
      labelNames: ['agent', 'outcome'] as const,
    });
    const turnSeconds = histogram({
      name: 'agentcell_turn_duration_seconds',
      help: 'Turn latency from start to end, every outcome, by agent.',
      labelNames: ['agent'] as const,
      buckets: TURN_SECONDS_BUCKETS,
    });
    const firstToken = histogram({
      name: 'agentcell_first_token_seconds',
      help: 'Time from a turn’s start to its first text, by agent.',
      labelNames: ['agent'] as const,
      buckets: MODEL_SECONDS_BUCKETS,
    });
    const tokens = counter({
      name: 'agentcell_agent_tokens_total',
      help: 'Tokens of completed turns, by agent and type (input, output).',
      labelNames: ['agent', 'type'] as const,
    });
    const cost = counter({
      name: 'agentcell_agent_cost_usd_total',
      help: 'Cost in USD of completed turns, by agent.',
      labelNames: ['agent'] as const,
    });
    const passivations = counter({
      name: 'agentcell_passivations_total',
      help: 'Idle session workers released, by reason (idle, capacity, requested).',
      labelNames: ['reason'] as const,
    });
    const failures = counter({
      name: 'agentcell_session_failures_total',
      help: 'Sessions that crashed more often than the restart policy allows.',
    });
    const modelSeconds = histogram({
      name: 'agentcell_model_call_duration_seconds',
      help: 'Model call latency (every retry included), by provider and outcome.',
      labelNames: ['provider', 'outcome'] as const,
      buckets: MODEL_SECONDS_BUCKETS,
    });
    const retries = counter({
      name: 'agentcell_model_retries_total',
      help: 'Model call attempts that were retried, by provider and error code.',
      labelNames: ['provider', 'code'] as const,
    });
    const rateLimited = counter({
      name: 'agentcell_model_rate_limited_total',
      help: 'Model call attempts the provider answered with 429, by provider.',
      labelNames: ['provider'] as const,
    });
    this.#workerSummaries(named, registers);

    this.#unlisten = listenTo(supervisor, {
      'turn:end': ({ agent, outcome, durationMs, firstTokenMs, usage }) => {
        turns.inc({ agent, outcome });
        turnSeconds.observe({ agent }, seconds(durationMs));
        if (firstTokenMs !== undefined) firstToken.observe({ agent }, seconds(firstTokenMs));
        if (!usage) return;
        tokens.inc({ agent, type: 'input' }, usage.inputTokens);
        tokens.inc({ agent, type: 'output' }, usage.outputTokens);
        cost.inc({ agent }, usage.costUsd);
      },
      'session:passivate': ({ reason }) => passivations.inc({ reason }),
      'session:fail': () => failures.inc(),
      'model:call': ({ provider, outcome, durationMs, retries: codes }) => {
        modelSeconds.observe({ provider, outcome }, seconds(durationMs));
        for (const code of codes) {
          retries.inc({ provider, code });
          if (code === 'AGENTCELL_LLM_RATE_LIMITED') rateLimited.inc({ provider });
        }
      },
    });
  }

  /** Stops counting the supervisor's events; what was counted stays readable. Idempotent. */
  stop(): void {
    this.#unlisten();
  }

  /** Stops counting and removes these metrics from the registry. Idempotent. */
  close(): void {
    this.stop();
    for (const name of this.#names.splice(0)) this.#registry.removeSingleMetric(name);
  }

  #gauges(stats: () => SupervisorStats, named: <M>(name: string, metric: M) => M): void {
    const gauge = (name: string, help: string, pick: (s: SupervisorStats) => number) =>
      named(
        name,
        new Gauge({
          name,
          help,
          registers: [this.#registry],
          collect() {
            this.set(pick(stats()));
          },
        }),
      );
    gauge('agentcell_sessions', 'Open sessions, live or passivated.', (s) => s.sessions);
    gauge('agentcell_sessions_live', 'Sessions with a live worker.', (s) => s.liveWorkers);
    gauge(
      'agentcell_sessions_passivated',
      'Sessions whose idle worker was released.',
      (s) => s.passivatedSessions,
    );
    gauge('agentcell_sessions_busy', 'Sessions in a turn.', (s) => s.busySessions);
    gauge('agentcell_workers_warm', 'Prepared workers in the warm pool.', (s) => s.warmWorkers);
    gauge(
      'agentcell_live_sessions_max',
      'Most live workers allowed (option capped by the machine ceiling).',
      (s) => s.maxLiveSessions,
    );
    gauge(
      'agentcell_activations_waiting',
      'Activations waiting for a live slot.',
      (s) => s.activationsWaiting,
    );
    gauge(
      'agentcell_messages_queued',
      'Messages waiting in mailboxes (all sessions).',
      (s) => s.queuedMessages,
    );
    gauge('agentcell_turns_in_flight', 'Turns running now.', (s) => s.turnsInFlight);
    gauge(
      'agentcell_mcp_connections',
      'MCP connections open on this node (shared and per session).',
      (s) => s.mcpConnections ?? 0,
    );
    gauge(
      'agentcell_turns_waiting_admission',
      'Turns waiting for global admission.',
      (s) => s.turnsWaitingForAdmission,
    );
  }

  /**
   * Heap and event-loop utilisation of the live workers, as summaries over them: one series
   * per quantile, whatever the number of sessions. Each scrape samples every live worker.
   */
  #workerSummaries(named: <M>(name: string, metric: M) => M, registers: Registry[]): void {
    const sample = () => this.#sample();
    const summary = (name: string, help: string, pick: (w: WorkerSample) => number | undefined) =>
      named(
        name,
        new Summary({
          name,
          help,
          percentiles: [0.5, 0.9, 0.99],
          maxAgeSeconds: 60,
          ageBuckets: 2,
          registers,
          async collect() {
            for (const worker of await sample()) {
              const value = pick(worker);
              if (value !== undefined) this.observe(value);
            }
          },
        }),
      );
    summary(
      'agentcell_worker_heap_used_bytes',
      'Heap used by each live session worker, sampled at each scrape.',
      (w) => w.heapUsedBytes,
    );
    summary(
      'agentcell_worker_event_loop_utilization',
      'Event-loop utilisation (0–1) of each live session worker since the previous reading.',
      (w) => w.eventLoopUtilization,
    );
  }

  /** One sampling per scrape, shared by both summaries. */
  #sample(): Promise<WorkerSample[]> {
    this.#sampling ??= sampleWorkers(this.#supervisor)
      .then((byKey) => [...byKey.values()])
      .finally(() => {
        setImmediate(() => {
          this.#sampling = undefined;
        });
      });
    return this.#sampling;
  }
}

/**
 * A counter that follows a count kept elsewhere (the supervisor's own): each scrape adds what
 * the count grew by since the last one.
 */
export function mirrorCounter(
  name: string,
  help: string,
  read: () => number,
  registers: Registry[],
): Counter {
  let seen = 0;
  return new Counter({
    name,
    help,
    registers,
    collect() {
      const now = read();
      if (now > seen) this.inc(now - seen);
      seen = Math.max(seen, now);
    },
  });
}

function seconds(ms: number): number {
  return Math.max(0, ms) / 1000;
}
