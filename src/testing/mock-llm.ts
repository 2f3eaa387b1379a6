/**
 * An OpenAI-compatible chat completions server over real HTTP, for tests, the demo and load
 * tests. Behaviour is deterministic (rules, markers, headers), so tests never need sleeps.
 *
 * This module serves and routes; the answers are planned by `mock-llm-script`, written by
 * `mock-llm-writer` (paced by `mock-llm-pacing`) or `mock-llm-faults`, and every request is
 * kept by `mock-llm-recorder`.
 */
import type { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorFields, log } from '../log.js';
import { writeFault } from './mock-llm-faults.js';
import {
  type Exchange,
  JSON_HEADERS,
  lowercaseHeaders,
  parseJson,
  readBody,
  sendError,
} from './mock-llm-http.js';
import {
  type MockLlmOptions,
  parseMockLatency,
  parseMockLlmOptions,
  type ResolvedMockLlmOptions,
} from './mock-llm-options.js';
import type { MockLatency } from './mock-llm-pacing.js';
import { type MockLlmEvents, type MockLlmRequest, RequestRecorder } from './mock-llm-recorder.js';
import {
  type ChatCompletionRequest,
  type CompiledRule,
  compileRules,
  FaultCounters,
  type MockRule,
  planResponse,
  validateRequest,
} from './mock-llm-script.js';
import { CompletionWriter } from './mock-llm-writer.js';

export type { MockLlmOptions } from './mock-llm-options.js';
export type { MockLatency } from './mock-llm-pacing.js';
export type {
  MockLlmEvents,
  MockLlmRequest,
  MockLlmRequestHeaders,
} from './mock-llm-recorder.js';

/** A running mock server; see {@link startMockLlm}. */
export interface MockLlm {
  /** Base URL including `/v1`, usable as the OpenAI SDK's `baseURL`. */
  readonly url: string;
  readonly requests: readonly MockLlmRequest[];
  readonly events: EventEmitter<MockLlmEvents>;
  /** Clears recorded requests, pending aborts, fault counters and the tool call id counter. */
  reset(): void;
  /** Resolves once at least `n` requests have been recorded since the last reset. */
  waitForRequests(n: number): Promise<void>;
  /**
   * Resolves with the next aborted request not yet returned by an earlier call, so an abort
   * that happened before the call is not missed.
   */
  waitForAbort(): Promise<MockLlmRequest>;
  setRules(rules: readonly MockRule[]): void;
  setLatency(latency: MockLatency): void;
  /** Stops listening and destroys every open connection, stalled streams included. */
  close(): Promise<void>;
}

/**
 * Starts the mock on 127.0.0.1 and a free port. Throws `AGENTCELL_OPTIONS_INVALID` for bad
 * options.
 *
 * @example
 * const mock = await startMockLlm({ rules: [{ match: 'hi', steps: [{ reply: 'hello' }] }] });
 * const client = new OpenAI({ baseURL: mock.url, apiKey: 'k' });
 * // ... exercise the client, inspect mock.requests ...
 * await mock.close();
 */
export async function startMockLlm(options: MockLlmOptions = {}): Promise<MockLlm> {
  const resolved = parseMockLlmOptions(options);
  const server = new MockLlmServer(resolved);
  await server.listen(resolved.host, resolved.port);
  return server;
}

class MockLlmServer implements MockLlm {
  readonly #recorder = new RequestRecorder();
  readonly #writer: CompletionWriter;
  #url = '';
  #rules: readonly CompiledRule[];
  #counters = new FaultCounters();
  #closed: Promise<void> | undefined;
  readonly #apiKey: string | undefined;
  readonly #models: readonly string[];
  readonly #server = createServer((req, res) => this.#handle(req, res));

  constructor(options: ResolvedMockLlmOptions) {
    this.#apiKey = options.apiKey;
    this.#models = options.models;
    this.#rules = compileRules(options.rules);
    this.#writer = new CompletionWriter(options.latency);
  }

  get url(): string {
    return this.#url;
  }

  get requests(): readonly MockLlmRequest[] {
    return this.#recorder.requests;
  }

  get events(): EventEmitter<MockLlmEvents> {
    return this.#recorder.events;
  }

  listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host, port, backlog: 4096 }, () => {
        this.#server.off('error', reject);
        const address = this.#server.address() as AddressInfo;
        const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
        this.#url = `http://${shownHost}:${address.port}/v1`;
        resolve();
      });
    });
  }

  reset(): void {
    this.#recorder.reset();
    this.#counters.clear();
    this.#writer.resetIds();
  }

  waitForRequests(n: number): Promise<void> {
    return this.#recorder.waitForRequests(n);
  }

  waitForAbort(): Promise<MockLlmRequest> {
    return this.#recorder.waitForAbort();
  }

  setRules(rules: readonly MockRule[]): void {
    this.#rules = compileRules(rules);
  }

  setLatency(latency: MockLatency): void {
    this.#writer.setLatency(parseMockLatency(latency));
  }

  close(): Promise<void> {
    // Cached so that a test's afterAll and an explicit close can both await it.
    this.#closed ??= new Promise((resolve, reject) => {
      this.#server.close((error) => (error ? reject(error) : resolve()));
      this.#server.closeAllConnections();
    });
    return this.#closed;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const exchange: Exchange = { req, res, record: undefined, timer: undefined };
    res.on('close', () => this.#onClose(exchange));
    this.#serve(exchange).catch((error: unknown) => {
      // Mostly a client that went away while its body was being read.
      log('cli').debug(errorFields(error), 'mock LLM: a request failed');
      res.destroy();
    });
  }

  #onClose(exchange: Exchange): void {
    if (exchange.timer !== undefined) clearTimeout(exchange.timer);
    exchange.timer = undefined;
    const record = exchange.record;
    if (record === undefined || exchange.res.writableFinished) return;
    this.#recorder.aborted(record);
  }

  async #serve(exchange: Exchange): Promise<void> {
    const { req, res } = exchange;
    const raw = await readBody(req);
    if (res.destroyed) return;
    const parsed = raw ? parseJson(raw) : undefined;
    const validated = parsed?.ok ? validateRequest(parsed.value) : undefined;
    const record: MockLlmRequest = {
      method: req.method ?? 'GET',
      path: (req.url ?? '/').split('?', 1)[0] ?? '/',
      headers: lowercaseHeaders(req),
      body: typeof validated === 'object' ? validated : undefined,
      aborted: false,
      receivedAt: Date.now(),
    };
    exchange.record = record;
    this.#recorder.record(record);

    if (raw === undefined) return sendError(res, 'tooLarge', 'Request body too large.');
    if (!this.#authorized(record)) {
      return sendError(res, 'unauthorized', 'Incorrect API key provided.');
    }
    if (record.method === 'GET' && record.path === '/v1/models') return this.#sendModels(res);
    if (record.method !== 'POST' || record.path !== '/v1/chat/completions') {
      return sendError(res, 'notFound', `Unknown request URL: ${record.method} ${record.path}.`);
    }
    if (typeof validated !== 'object') {
      return sendError(res, 'badRequest', validated ?? 'The request body is not valid JSON.');
    }
    this.#complete(exchange, validated);
  }

  #authorized(record: MockLlmRequest): boolean {
    if (this.#apiKey === undefined) return true;
    return record.headers.authorization === `Bearer ${this.#apiKey}`;
  }

  #sendModels(res: ServerResponse): void {
    const data = this.#models.map((id) => ({
      id,
      object: 'model',
      created: 0,
      owned_by: 'agentcell-mock',
    }));
    res.writeHead(200, JSON_HEADERS);
    res.end(JSON.stringify({ object: 'list', data }));
  }

  #complete(exchange: Exchange, body: ChatCompletionRequest): void {
    const header = exchange.record?.headers['x-mock-fault'];
    const plan = planResponse(body, this.#rules, this.#counters, header);
    if (plan.kind === 'fault') writeFault(exchange, body, plan.fault, this.#writer);
    else this.#writer.write(exchange, body, plan);
  }
}
