/**
 * The host's model service: every model call of every session goes through it. It holds the
 * credentials (session threads only ever see an endpoint's opaque reference), keeps one warm
 * client per endpoint so connections are shared, limits calls per provider across all sessions
 * (a provider that answers 429 slows its own sessions, not the machine), checks what the model
 * sent back against the schemas, and counts tokens and cost where no tool can tamper with them.
 */
import { randomUUID } from 'node:crypto';
import { trace } from '@opentelemetry/api';
import PQueue from 'p-queue';
import type { AgentSpec } from '../agent/config.js';
import type { Usage } from '../agent/messages.js';
import { type Clock, systemClock } from '../clock.js';
import { InternalError } from '../errors.js';
import { LlmClient, type LlmClientOptions } from './client.js';
import type { LlmCallObserver, LlmRequest, ModelClient, ModelResponse } from './model.js';
import {
  type ModelCallScope,
  type ModelCallTelemetry,
  ModelCallWatch,
} from './model-call-telemetry.js';
import { checkResponse } from './schema-check.js';

/**
 * Where and how to reach a model (the client's connection and retry settings) and what it
 * costs: everything secret about an agent's model lives here.
 */
export interface ModelEndpoint
  extends Omit<LlmClientOptions, 'idleTimeoutMs' | 'clock' | 'random'> {
  /** USD per million tokens, for cost accounting. */
  readonly pricing?:
    | { readonly inputPerMillion: number; readonly outputPerMillion: number }
    | undefined;
}

export interface ModelServiceOptions {
  /** Model calls in flight at once per provider (base URL), across all sessions. @default 256 */
  readonly maxConcurrentPerProvider?: number | undefined;
  readonly clock?: Clock | undefined;
  /** Spans and call records. @default the global tracer, no content, no listener */
  readonly telemetry?: Partial<Omit<ModelCallTelemetry, 'now'>> | undefined;
}

const DEFAULT_BASE_URL = 'https://api.openai.com/v1';

interface Registered {
  readonly endpoint: ModelEndpoint;
  readonly baseUrl: string;
  readonly client: LlmClient;
  readonly provider: ProviderGate;
}

/**
 * @example
 * const models = new ModelService();
 * const ref = models.register({ baseUrl: 'http://127.0.0.1:8080/v1', apiKey: 'k' });
 * const reply = await models.complete(ref, { model: 'm', messages }, signal);
 */
export class ModelService {
  readonly #byRef = new Map<string, Registered>();
  /** Identical endpoints share one reference (and one client). */
  readonly #refByEndpoint = new Map<string, string>();
  readonly #providers = new Map<string, ProviderGate>();
  readonly #maxConcurrent: number;
  readonly #clock: Clock;
  readonly #telemetry: ModelCallTelemetry;

  constructor(options: ModelServiceOptions = {}) {
    this.#maxConcurrent = options.maxConcurrentPerProvider ?? 256;
    const clock = options.clock ?? systemClock;
    this.#clock = clock;
    this.#telemetry = {
      tracer: options.telemetry?.tracer ?? trace.getTracer('agentcell'),
      recordContent: options.telemetry?.recordContent ?? false,
      onCall: options.telemetry?.onCall,
      now: () => clock.now(),
    };
  }

  /** Registers an endpoint and returns its reference: opaque, and safe to hand to a thread. */
  register(endpoint: ModelEndpoint): string {
    const identity = canonical(endpoint);
    const known = this.#refByEndpoint.get(identity);
    if (known) return known;
    const ref = `model-${randomUUID()}`;
    const baseUrl = endpoint.baseUrl ?? DEFAULT_BASE_URL;
    let provider = this.#providers.get(baseUrl);
    if (!provider) {
      provider = new ProviderGate(this.#maxConcurrent, this.#clock);
      this.#providers.set(baseUrl, provider);
    }
    const { pricing: _pricing, ...connection } = endpoint;
    const client = new LlmClient({ ...connection, baseUrl, clock: this.#clock });
    this.#byRef.set(ref, { endpoint, baseUrl, client, provider });
    this.#refByEndpoint.set(identity, ref);
    return ref;
  }

  /** The model client of one endpoint (what an in-process agent uses). */
  client(ref: string): ModelClient {
    return {
      complete: (request, signal, observer) => this.complete(ref, request, signal, observer),
    };
  }

  /**
   * One model call for the endpoint `ref`: queued behind its provider's limit, then streamed.
   * Its `chat` span is a child of `scope.parent` (a session turn's span), else of the active
   * context.
   */
  async complete(
    ref: string,
    request: LlmRequest,
    signal: AbortSignal,
    observer: LlmCallObserver = {},
    scope: ModelCallScope = {},
  ): Promise<ModelResponse> {
    const registered = this.#byRef.get(ref);
    if (!registered) {
      throw new InternalError(
        `no model endpoint is registered as ${JSON.stringify(ref)}; register the agent with the supervisor first`,
      );
    }
    const { client, provider, endpoint, baseUrl } = registered;
    const watch = new ModelCallWatch(this.#telemetry, request, baseUrl, scope);
    try {
      const response = await provider.run(signal, () =>
        client.complete(request, signal, {
          ...observer,
          onRetry: (attempt, error, delayMs) => {
            if (error.code === 'AGENTCELL_LLM_RATE_LIMITED') provider.coolDown(delayMs);
            watch.retried(attempt, error, delayMs);
            observer.onRetry?.(attempt, error, delayMs);
          },
        }),
      );
      const checked = checkResponse(request, response);
      const answer: ModelResponse = {
        ...response,
        toolCalls: checked.toolCalls,
        ...(checked.outputProblems !== undefined && { outputProblems: checked.outputProblems }),
        usage: usageOf(response.inputTokens, response.outputTokens, endpoint),
      };
      watch.succeeded(answer);
      return answer;
    } catch (error) {
      watch.failed(error);
      throw error;
    }
  }
}

/** JSON with keys sorted at every level: equal endpoints give equal text. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner && typeof inner === 'object' && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : 1)))
      : inner,
  );
}

function usageOf(inputTokens: number, outputTokens: number, endpoint: ModelEndpoint): Usage {
  const pricing = endpoint.pricing;
  return {
    inputTokens,
    outputTokens,
    totalTokens: inputTokens + outputTokens,
    costUsd: pricing
      ? (inputTokens * pricing.inputPerMillion + outputTokens * pricing.outputPerMillion) / 1e6
      : 0,
    llmCalls: 1,
  };
}

/**
 * The calls in flight to one provider: at most `concurrency` at once, and none started while
 * the provider asked to be left alone (a 429's delay).
 */
class ProviderGate {
  readonly #queue: PQueue;
  readonly #clock: Clock;
  #resumeAt = 0;

  constructor(concurrency: number, clock: Clock) {
    this.#queue = new PQueue({ concurrency });
    this.#clock = clock;
  }

  run<T>(signal: AbortSignal, task: () => Promise<T>): Promise<T> {
    signal.throwIfAborted();
    return this.#queue.add(task, { signal }) as Promise<T>;
  }

  /** Holds new calls back for `ms` (calls already running retry on their own schedule). */
  coolDown(ms: number): void {
    const until = this.#clock.now() + ms;
    if (until <= this.#resumeAt) return;
    const armed = this.#resumeAt > this.#clock.now();
    this.#resumeAt = until;
    this.#queue.pause();
    if (!armed) this.#resumeWhenDue();
  }

  /**
   * One timer at a time; it re-arms while a later cool-down moved the end (a timer may also
   * fire a millisecond before the wall clock says it is due), so the queue is never left paused.
   */
  #resumeWhenDue(): void {
    const wait = this.#resumeAt - this.#clock.now();
    if (wait <= 0) {
      this.#queue.start();
      return;
    }
    this.#clock.setTimeout(() => this.#resumeWhenDue(), wait);
  }
}

/** The model endpoint an agent's config names: its model's address, credentials and pricing. */
export function modelEndpointOf(spec: AgentSpec): ModelEndpoint {
  return {
    baseUrl: spec.baseUrl,
    apiKey: spec.apiKey,
    headers: spec.auth?.headers,
    organization: spec.auth?.organization,
    project: spec.auth?.project,
    maxRetries: spec.execution?.maxRetries,
    retryBaseDelayMs: spec.execution?.retryBaseDelayMs,
    pricing: spec.execution?.pricing,
  };
}

let shared: ModelService | undefined;

/** The model service of agents used in-process (`agent.chat()`): one per process, made on first use. */
export function sharedModelService(): ModelService {
  shared ??= new ModelService();
  return shared;
}
