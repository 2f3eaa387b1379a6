/**
 * An OpenAI-compatible chat completions server over real HTTP, for tests, the demo and load
 * tests. Behaviour is deterministic (rules, markers, headers), so tests never need sleeps.
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type ChatCompletionRequest,
  type CompiledRule,
  compileRules,
  completionTokens,
  FaultCounters,
  type MockFaultKind,
  type MockPlan,
  type MockRule,
  planResponse,
  promptTokens,
  validateRequest,
} from './mock-llm-script.js';

/**
 * Response pacing. Streams send their first chunk after `firstTokenMs`, then one ~4-character
 * chunk per token at `tokensPerSecond`; JSON responses wait the same total time.
 */
export interface MockLatency {
  readonly firstTokenMs?: number;
  /** 0 or undefined: no delay between chunks. */
  readonly tokensPerSecond?: number;
}

export interface MockLlmOptions {
  /** Defaults to 127.0.0.1. */
  readonly host?: string;
  /** Defaults to 0 (a free port). */
  readonly port?: number;
  /** When set, requests without `Authorization: Bearer <apiKey>` get a 401. */
  readonly apiKey?: string;
  /** Listed by `GET /v1/models`; defaults to `['mock-model']`. Any model is accepted. */
  readonly models?: readonly string[];
  readonly rules?: readonly MockRule[];
  readonly latency?: MockLatency;
}

/**
 * Request headers, lowercase. The common ones are declared so they read as `headers.authorization`
 * (an index signature alone would force `headers['authorization']`, which Biome rejects).
 */
export interface MockLlmRequestHeaders {
  readonly authorization?: string;
  readonly 'content-type'?: string;
  readonly 'x-mock-fault'?: string;
  readonly [name: string]: string | undefined;
}

/** One request as the mock received it. */
export interface MockLlmRequest {
  readonly method: string;
  /** Path without the query string, e.g. `/v1/chat/completions`. */
  readonly path: string;
  /** Header names are lowercase; repeated headers are joined with `, `. */
  readonly headers: MockLlmRequestHeaders;
  /** The parsed body; undefined when it was empty or not a valid chat completion request. */
  readonly body: ChatCompletionRequest | undefined;
  /** True when the client closed the connection before the response was complete. */
  aborted: boolean;
  /** `Date.now()` when the body had been read. */
  readonly receivedAt: number;
}

export interface MockLlmEvents {
  request: [MockLlmRequest];
  abort: [MockLlmRequest];
}

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

type Action = Exclude<MockPlan, { kind: 'fault' }>;

interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  record: MockLlmRequest | undefined;
  timer: NodeJS.Timeout | undefined;
}

interface FrameParts {
  /** `data: {` plus the fields every chunk of the stream shares. */
  readonly prefix: string;
  /** Everything up to a choice's delta. */
  readonly head: string;
  /** Everything after a non-final choice's delta. */
  readonly tail: string;
}

interface ErrorBody {
  readonly status: number;
  readonly message: string;
  readonly type: string;
  readonly code: string | null;
}

const MAX_BODY_BYTES = 32 * 1024 * 1024;
const JSON_HEADERS = { 'content-type': 'application/json' } as const;
const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
} as const;
const CHUNK_CHARS = 4;
// Truncated JSON: a client must fail on these rather than read an empty completion.
const MALFORMED_STREAM =
  'data: {"id":"chatcmpl-mock","object":"chat.completion.chunk","choices":[{\n\ndata: [DONE]\n\n';
const MALFORMED_JSON = '{"id":"chatcmpl-mock","object":"chat.completion","choices":[{"index":0,';

const ERRORS = {
  unauthorized: { status: 401, type: 'invalid_request_error', code: 'invalid_api_key' },
  notFound: { status: 404, type: 'invalid_request_error', code: 'not_found' },
  badRequest: { status: 400, type: 'invalid_request_error', code: 'invalid_request' },
  tooLarge: { status: 413, type: 'invalid_request_error', code: 'request_too_large' },
  rateLimited: { status: 429, type: 'requests', code: 'rate_limit_exceeded' },
  serverError: { status: 500, type: 'server_error', code: 'internal_error' },
} as const;

function sendError(
  res: ServerResponse,
  kind: keyof typeof ERRORS,
  message: string,
  extraHeaders?: Record<string, string>,
): void {
  const { status, type, code }: Omit<ErrorBody, 'message'> = ERRORS[kind];
  res.writeHead(status, { ...JSON_HEADERS, ...extraHeaders });
  res.end(JSON.stringify({ error: { message, type, param: null, code } }));
}

function lowercaseHeaders(req: IncomingMessage): Record<string, string | undefined> {
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () =>
      resolve(size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks).toString()),
    );
    req.on('error', reject);
  });
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

/** Produces the SSE frames of one streamed completion lazily, so a stream holds O(1) strings. */
class FrameSource {
  readonly #head: string;
  readonly #tail: string;
  readonly #plan: Action;
  readonly #ids: readonly string[];
  #call = 0;
  /** -1: the frame that opens the message (or the current tool call) is next. */
  #offset = -1;

  constructor(head: string, tail: string, plan: Action, ids: readonly string[]) {
    this.#head = head;
    this.#tail = tail;
    this.#plan = plan;
    this.#ids = ids;
  }

  get done(): boolean {
    if (this.#plan.kind === 'reply') return this.#offset >= this.#plan.text.length;
    return this.#call >= this.#plan.calls.length;
  }

  next(): string {
    return `${this.#head}${this.#plan.kind === 'reply' ? this.#textDelta(this.#plan.text) : this.#toolDelta(this.#plan.calls)}${this.#tail}`;
  }

  #textDelta(text: string): string {
    if (this.#offset < 0) {
      this.#offset = 0;
      return '{"role":"assistant","content":"","refusal":null}';
    }
    return `{"content":${JSON.stringify(this.#piece(text))}}`;
  }

  #toolDelta(calls: Extract<Action, { kind: 'toolCalls' }>['calls']): string {
    const call = calls[this.#call];
    if (call === undefined) return '{}';
    const index = this.#call;
    if (this.#offset < 0) {
      this.#offset = 0;
      const role = index === 0 ? '"role":"assistant","content":null,' : '';
      if (call.arguments.length === 0) this.#nextCall();
      return `{${role}"tool_calls":[{"index":${index},"id":"${this.#ids[index]}","type":"function","function":{"name":${JSON.stringify(call.name)},"arguments":""}}]}`;
    }
    const piece = this.#piece(call.arguments);
    if (this.#offset >= call.arguments.length) this.#nextCall();
    return `{"tool_calls":[{"index":${index},"function":{"arguments":${JSON.stringify(piece)}}}]}`;
  }

  #nextCall(): void {
    this.#call++;
    this.#offset = -1;
  }

  /** The next ~4 characters, never splitting a surrogate pair. */
  #piece(text: string): string {
    let end = Math.min(this.#offset + CHUNK_CHARS, text.length);
    const last = text.charCodeAt(end - 1);
    if (last >= 0xd800 && last <= 0xdbff && end < text.length) end++;
    const piece = text.slice(this.#offset, end);
    this.#offset = end;
    return piece;
  }
}

/**
 * Starts the mock on 127.0.0.1 and a free port.
 *
 * @example
 * const mock = await startMockLlm({ rules: [{ match: 'hi', steps: [{ reply: 'hello' }] }] });
 * const client = new OpenAI({ baseURL: mock.url, apiKey: 'k' });
 * // ... exercise the client, inspect mock.requests ...
 * await mock.close();
 */
export async function startMockLlm(options: MockLlmOptions = {}): Promise<MockLlm> {
  const server = new MockLlmServer(options);
  await server.listen(options.host ?? '127.0.0.1', options.port ?? 0);
  return server;
}

class MockLlmServer implements MockLlm {
  readonly events = new EventEmitter<MockLlmEvents>();
  #url = '';
  #requests: MockLlmRequest[] = [];
  #pendingAborts: MockLlmRequest[] = [];
  #abortWaiters: ((request: MockLlmRequest) => void)[] = [];
  #rules: readonly CompiledRule[];
  #latency: MockLatency;
  #counters = new FaultCounters();
  #nextId = 0;
  #closed: Promise<void> | undefined;
  readonly #apiKey: string | undefined;
  readonly #models: readonly string[];
  readonly #server = createServer((req, res) => this.#handle(req, res));

  constructor(options: MockLlmOptions) {
    this.#apiKey = options.apiKey;
    this.#models = options.models ?? ['mock-model'];
    this.#rules = compileRules(options.rules ?? []);
    this.#latency = options.latency ?? {};
    // Load tests park thousands of waiters and streams; the default cap of 10 would warn.
    this.events.setMaxListeners(0);
  }

  get url(): string {
    return this.#url;
  }

  get requests(): readonly MockLlmRequest[] {
    return this.#requests;
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
    this.#requests = [];
    this.#pendingAborts = [];
    this.#counters.clear();
    this.#nextId = 0;
  }

  waitForRequests(n: number): Promise<void> {
    if (this.#requests.length >= n) return Promise.resolve();
    return new Promise((resolve) => {
      const onRequest = (): void => {
        if (this.#requests.length < n) return;
        this.events.off('request', onRequest);
        resolve();
      };
      this.events.on('request', onRequest);
    });
  }

  waitForAbort(): Promise<MockLlmRequest> {
    const pending = this.#pendingAborts.shift();
    if (pending) return Promise.resolve(pending);
    return new Promise((resolve) => this.#abortWaiters.push(resolve));
  }

  setRules(rules: readonly MockRule[]): void {
    this.#rules = compileRules(rules);
  }

  setLatency(latency: MockLatency): void {
    this.#latency = latency;
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
    this.#serve(exchange).catch(() => res.destroy());
  }

  #onClose(exchange: Exchange): void {
    if (exchange.timer !== undefined) clearTimeout(exchange.timer);
    exchange.timer = undefined;
    const record = exchange.record;
    if (record === undefined || exchange.res.writableFinished) return;
    record.aborted = true;
    this.events.emit('abort', record);
    const waiter = this.#abortWaiters.shift();
    if (waiter) waiter(record);
    else this.#pendingAborts.push(record);
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
    this.#requests.push(record);
    this.events.emit('request', record);

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
    if (plan.kind === 'fault') this.#fault(exchange, body, plan.fault);
    else if (body.stream === true) this.#stream(exchange, body, plan);
    else this.#json(exchange, body, plan);
  }

  #fault(exchange: Exchange, body: ChatCompletionRequest, fault: MockFaultKind): void {
    const { res } = exchange;
    if (fault === '429') {
      sendError(res, 'rateLimited', 'Rate limit reached (mock).', {
        'retry-after-ms': '10',
        'retry-after': '0',
      });
    } else if (fault === '500') {
      sendError(res, 'serverError', 'The server had an error (mock).');
    } else if (fault === 'malformed') {
      const streaming = body.stream === true;
      res.writeHead(200, streaming ? SSE_HEADERS : JSON_HEADERS);
      res.end(streaming ? MALFORMED_STREAM : MALFORMED_JSON);
    } else {
      this.#stall(exchange, body);
    }
  }

  /** Sends headers (and for streams the first chunk), then nothing until someone disconnects. */
  #stall({ res }: Exchange, body: ChatCompletionRequest): void {
    if (body.stream !== true) {
      res.writeHead(200, JSON_HEADERS);
      res.flushHeaders();
      return;
    }
    res.writeHead(200, SSE_HEADERS);
    const { head, tail } = this.#frameParts(body, this.#completionId());
    res.write(`${head}{"role":"assistant","content":"","refusal":null}${tail}`);
  }

  #completionId(): string {
    return `chatcmpl-mock-${this.#nextId++}`;
  }

  #toolCallIds(plan: Action): string[] {
    return plan.kind === 'toolCalls' ? plan.calls.map(() => `call_${this.#nextId++}`) : [];
  }

  #usage(body: ChatCompletionRequest, plan: Action): string {
    const prompt = promptTokens(body.messages);
    const completion = completionTokens(plan);
    return `{"prompt_tokens":${prompt},"completion_tokens":${completion},"total_tokens":${prompt + completion}}`;
  }

  #json(exchange: Exchange, body: ChatCompletionRequest, plan: Action): void {
    const ids = this.#toolCallIds(plan);
    const message =
      plan.kind === 'reply'
        ? { role: 'assistant', content: plan.text, refusal: null }
        : {
            role: 'assistant',
            content: null,
            refusal: null,
            tool_calls: plan.calls.map((call, i) => ({
              id: ids[i],
              type: 'function',
              function: { name: call.name, arguments: call.arguments },
            })),
          };
    const finish = plan.kind === 'reply' ? 'stop' : 'tool_calls';
    const payload = `{"id":"${this.#completionId()}","object":"chat.completion","created":${nowSeconds()},"model":${JSON.stringify(body.model)},"choices":[{"index":0,"message":${JSON.stringify(message)},"logprobs":null,"finish_reason":"${finish}"}],"usage":${this.#usage(body, plan)}}`;
    const send = (): void => {
      exchange.timer = undefined;
      exchange.res.writeHead(200, JSON_HEADERS);
      exchange.res.end(payload);
    };
    const delay = totalDelayMs(this.#latency, completionTokens(plan));
    if (delay <= 0) send();
    else exchange.timer = setTimeout(send, delay);
  }

  /** The fixed text around every delta, built once per stream instead of once per chunk. */
  #frameParts(body: ChatCompletionRequest, id: string): FrameParts {
    const usageNull = body.stream_options?.include_usage === true ? ',"usage":null' : '';
    const prefix = `data: {"id":"${id}","object":"chat.completion.chunk","created":${nowSeconds()},"model":${JSON.stringify(body.model)},`;
    return {
      prefix,
      head: `${prefix}"choices":[{"index":0,"delta":`,
      tail: `,"logprobs":null,"finish_reason":null}]${usageNull}}\n\n`,
    };
  }

  #stream(exchange: Exchange, body: ChatCompletionRequest, plan: Action): void {
    const parts = this.#frameParts(body, this.#completionId());
    const frames = new FrameSource(parts.head, parts.tail, plan, this.#toolCallIds(plan));
    const end = this.#streamEnd(body, plan, parts);
    const { res } = exchange;
    res.writeHead(200, SSE_HEADERS);
    const firstMs = Math.max(0, this.#latency.firstTokenMs ?? 0);
    const tps = this.#latency.tokensPerSecond ?? 0;
    const interval = tps > 0 ? 1000 / tps : 0;
    const start = performance.now() + firstMs;
    let sent = 0;
    const pump = (): void => {
      exchange.timer = undefined;
      // Catch up on every frame that is due, so timer lag never slows the whole stream down.
      const due =
        interval === 0 ? Number.POSITIVE_INFINITY : (performance.now() - start) / interval;
      // One write per tick: each write is a syscall and a chunked-encoding frame of its own.
      let batch = '';
      while (!frames.done && sent <= due) {
        batch += frames.next();
        sent++;
      }
      if (frames.done) {
        res.end(batch + end);
        return;
      }
      if (batch !== '') res.write(batch);
      exchange.timer = setTimeout(pump, start + sent * interval - performance.now());
    };
    if (firstMs > 0) exchange.timer = setTimeout(pump, firstMs);
    else pump();
  }

  #streamEnd(body: ChatCompletionRequest, plan: Action, { prefix, head }: FrameParts): string {
    const finish = plan.kind === 'reply' ? 'stop' : 'tool_calls';
    const includeUsage = body.stream_options?.include_usage === true;
    let end = `${head}{},"logprobs":null,"finish_reason":"${finish}"}]${includeUsage ? ',"usage":null' : ''}}\n\n`;
    if (includeUsage) {
      end += `${prefix}"choices":[],"usage":${this.#usage(body, plan)}}\n\n`;
    }
    return `${end}data: [DONE]\n\n`;
  }
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function totalDelayMs(latency: MockLatency, tokens: number): number {
  const first = Math.max(0, latency.firstTokenMs ?? 0);
  const tps = latency.tokensPerSecond ?? 0;
  return tps > 0 ? first + (tokens * 1000) / tps : first;
}
