/**
 * What a load test drives: the embedded supervisor (with the bundled mock LLM on loopback and a
 * host tool the mock calls), or a running gateway spoken to over HTTP and server-sent events.
 * Both answer one send with a {@link SendOutcome}; neither ever throws from `send`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../agent/agent.js';
import { isAgentcellError } from '../errors.js';
import type { Session } from '../runtime/session.js';
import { FileStore } from '../runtime/stores/file.js';
import { MemoryStore } from '../runtime/stores/memory.js';
import type { JournalStore } from '../runtime/stores/store.js';
import { Supervisor, type SupervisorStats } from '../runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../testing/mock-llm.js';
import type { MockRule } from '../testing/mock-llm-script.js';
import { defineTool, type Tool } from '../tools/tool.js';
import type { LoadtestOptions } from './loadtest-options.js';

/** How one send ended, as the target saw it. */
export type SendOutcome =
  | { readonly kind: 'reply' }
  /** A typed error: `code` is an agentcell code (or the gateway's), `message` its text. */
  | { readonly kind: 'error'; readonly code: string; readonly message: string }
  /**
   * The message may have been accepted but got neither a reply nor a typed error: an untyped
   * failure, a stream cut short. It counts as lost.
   */
  | { readonly kind: 'broken'; readonly reason: string };

/** Callbacks of one send. */
export interface SendHooks {
  /** The first text delta of the reply arrived (time to first token). */
  readonly onText: () => void;
}

/** Worker figures of an embedded run (a gateway's are not visible from outside). */
export interface WorkerFigures {
  readonly placement: string;
  readonly starts: number;
  readonly warmStarts: number;
  readonly restarts: number;
  readonly crashes: number;
  readonly failedSessions: number;
  readonly passivations: number;
  readonly maxLiveSessions: number;
  readonly warmHits: number;
  readonly warmMisses: number;
  readonly toolCallsRun: number;
}

/** A system under load. */
export interface LoadTarget {
  /** One line naming the target, for the report. */
  readonly description: string;
  send(key: string, message: string, hooks: SendHooks): Promise<SendOutcome>;
  /** Live session workers now, when the target can tell. */
  liveWorkers(): number | undefined;
  /** Worker figures so far, when the target can tell. */
  workers(): WorkerFigures | undefined;
  /** Stops everything it started; `abandon` means sends may still be pending (lost). */
  close(abandon: boolean): Promise<void>;
}

/** The host tool the mock model calls (`--tool-calls`): runs in the supervisor's thread. */
export function lookupTool(onCall: () => void = () => {}): Tool {
  return defineTool<{ key: string }>({
    name: 'lookup',
    description: 'Looks a key up in the host application (a load test stand-in for a real tool)',
    parameters: {
      type: 'object',
      properties: { key: { type: 'string' } },
      required: ['key'],
      additionalProperties: false,
    },
    host: true,
    run: ({ key }) => {
      onCall();
      return { key, value: `value-of-${key}` };
    },
  });
}

/** The reply the mock model gives: ~25 tokens, so `--tokens-per-second` shows. */
const REPLY =
  'Done. I looked that up for you and everything is in order; anything else I can help with today?';

/** Mock rules: `toolCalls` parallel lookups in one model round, then the reply. */
export function loadtestRules(toolCalls: number): MockRule[] {
  if (toolCalls === 0) return [{ steps: [{ reply: REPLY }] }];
  const calls = Array.from({ length: toolCalls }, (_, index) => ({
    name: 'lookup',
    arguments: { key: `item-${index}` },
  }));
  return [{ steps: [{ toolCalls: calls }, { reply: REPLY }] }];
}

const AGENT = 'loadtest';

/** The embedded supervisor with the bundled mock LLM, configured from the options. */
export class EmbeddedTarget implements LoadTarget {
  readonly description: string;
  readonly #supervisor: Supervisor;
  readonly #mock: MockLlm;
  readonly #store: JournalStore;
  readonly #storeDir: string | undefined;
  readonly #placement: string;
  readonly #sessions = new Map<string, Session>();
  #warmStarts = 0;
  #passivations = 0;
  #failedSessions = 0;
  #toolCalls = 0;
  #requestsSinceReset = 0;

  private constructor(
    supervisor: Supervisor,
    mock: MockLlm,
    store: JournalStore,
    storeDir: string | undefined,
    description: string,
    placement: string,
  ) {
    this.#supervisor = supervisor;
    this.#mock = mock;
    this.#store = store;
    this.#storeDir = storeDir;
    this.description = description;
    this.#placement = placement;
    supervisor.on('session:start', ({ warm }) => {
      if (warm) this.#warmStarts++;
    });
    supervisor.on('session:passivate', () => this.#passivations++);
    supervisor.on('session:fail', () => this.#failedSessions++);
    // The mock records every request; forget them now and then so a long run stays flat.
    mock.events.on('request', () => {
      if (++this.#requestsSinceReset < 20_000) return;
      this.#requestsSinceReset = 0;
      mock.reset();
    });
  }

  /** Starts the mock LLM, the store and the supervisor, and registers the load test agent. */
  static async start(options: LoadtestOptions): Promise<EmbeddedTarget> {
    const mock = await startMockLlm({
      rules: loadtestRules(options.toolCalls),
      latency: { firstTokenMs: options.firstTokenMs, tokensPerSecond: options.tokensPerSecond },
    });
    let storeDir: string | undefined;
    let store: JournalStore | undefined;
    let supervisor: Supervisor | undefined;
    let target: EmbeddedTarget | undefined;
    try {
      if (options.store === 'file') {
        storeDir = await mkdtemp(join(tmpdir(), 'agentcell-loadtest-'));
        store = new FileStore({ dir: storeDir });
      } else {
        store = new MemoryStore();
      }
      const lookup = lookupTool(() => {
        if (target) target.#toolCalls++;
      });
      supervisor = new Supervisor({
        store,
        placement: options.placement,
        warmPoolSize: options.warmPool,
        busyPolicy: options.busyPolicy,
        // The load test's concurrency is the system's: every turn it sends may run at once.
        maxConcurrentTurns: options.concurrency,
        ...(options.maxLive !== undefined && { maxLiveSessions: options.maxLive }),
      });
      supervisor.register(
        AGENT,
        new Agent({
          name: AGENT,
          instructions: 'Answer briefly. Use lookup when asked about anything.',
          llm: 'mock-model',
          baseUrl: mock.url,
          apiKey: 'sk-loadtest',
          tools: [lookup],
          parallelToolCalls: true,
        }),
      );
    } catch (error) {
      await supervisor?.destroy('the load test could not start');
      await store?.close();
      await mock.close();
      if (storeDir !== undefined) await rm(storeDir, { recursive: true, force: true });
      throw error;
    }
    const live = supervisor.stats().maxLiveSessions;
    const description =
      `embedded supervisor: ${options.placement} placement` +
      (options.placement === 'dedicated'
        ? `, ≤ ${live} live workers, warm pool ${options.warmPool}`
        : '') +
      `, ${options.store === 'file' ? 'FileStore (temp dir)' : 'MemoryStore'}; ` +
      `mock LLM on loopback, ${options.firstTokenMs} ms to first token, ` +
      `${options.tokensPerSecond === 0 ? 'instant tokens' : `${options.tokensPerSecond} tokens/s`}, ` +
      `${options.toolCalls} host tool call${options.toolCalls === 1 ? '' : 's'} per turn`;
    target = new EmbeddedTarget(supervisor, mock, store, storeDir, description, options.placement);
    return target;
  }

  async send(key: string, message: string, hooks: SendHooks): Promise<SendOutcome> {
    try {
      let session = this.#sessions.get(key);
      if (!session) {
        session = this.#supervisor.session(key, { agent: AGENT });
        this.#sessions.set(key, session);
      }
      for await (const event of session.stream(message)) {
        if (event.type === 'text') hooks.onText();
      }
      return { kind: 'reply' };
    } catch (error) {
      if (isAgentcellError(error))
        return { kind: 'error', code: error.code, message: error.message };
      return {
        kind: 'broken',
        reason: `an error without a code: ${error instanceof Error ? error.message : String(error)}`,
      };
    }
  }

  /** Live session workers; undefined under pooled placement, where sessions have none. */
  liveWorkers(): number | undefined {
    return this.#placement === 'pooled' ? undefined : this.#supervisor.stats().liveWorkers;
  }

  /** The supervisor's own figures (for tests and the report). */
  stats(): SupervisorStats {
    return this.#supervisor.stats();
  }

  workers(): WorkerFigures {
    const stats = this.#supervisor.stats();
    return {
      placement: this.#placement,
      starts: stats.workerStarts + this.#warmStarts,
      warmStarts: this.#warmStarts,
      restarts: stats.restarts,
      crashes: stats.crashes,
      failedSessions: this.#failedSessions,
      passivations: this.#passivations,
      maxLiveSessions: stats.maxLiveSessions,
      warmHits: stats.warmHits,
      warmMisses: stats.warmMisses,
      toolCallsRun: this.#toolCalls,
    };
  }

  async close(abandon: boolean): Promise<void> {
    try {
      if (abandon) await this.#supervisor.destroy('the load test ended');
      else await withTimeout(this.#supervisor.close(), 30_000, () => this.#supervisor.destroy());
    } finally {
      await this.#store.close();
      await this.#mock.close();
      if (this.#storeDir !== undefined) {
        await rm(this.#storeDir, { recursive: true, force: true });
      }
    }
  }
}

async function withTimeout(
  promise: Promise<void>,
  ms: number,
  onTimeout: () => Promise<void>,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    if ((await Promise.race([promise.then(() => 'done' as const), expired])) === 'timeout') {
      await onTimeout();
    }
  } finally {
    clearTimeout(timer);
  }
}

/** One server-sent event. */
export interface SseEvent {
  readonly event: string;
  readonly data: string;
}

/**
 * Splits a server-sent event stream into events: `event:` and `data:` fields, events ending at
 * a blank line, comments (`: keep-alive`) skipped, CRLF or LF.
 */
export class SseParser {
  #buffer = '';

  /** Feeds text; returns the events it completed. */
  push(text: string): SseEvent[] {
    this.#buffer += text.replace(/\r\n?/g, '\n');
    const events: SseEvent[] = [];
    let end = this.#buffer.indexOf('\n\n');
    while (end >= 0) {
      const block = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      const event = parseBlock(block);
      if (event) events.push(event);
      end = this.#buffer.indexOf('\n\n');
    }
    return events;
  }
}

function parseBlock(block: string): SseEvent | undefined {
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (data.length === 0 && event === 'message') return undefined;
  return { event, data: data.join('\n') };
}

/** `{ code, message }` from an `error` event or `{ error: { code, message } }` from a JSON body. */
function typedError(value: unknown): { code: string; message: string } | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const inner: unknown = 'error' in value ? value.error : value;
  if (typeof inner !== 'object' || inner === null) return undefined;
  const { code, message } = inner as { code?: unknown; message?: unknown };
  if (typeof code !== 'string' || code === '') return undefined;
  return { code, message: typeof message === 'string' ? message : '' };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The code of a fetch failure's cause (`ECONNREFUSED`, …), if it has one. */
function causeCode(error: unknown): string | undefined {
  const cause: unknown = error instanceof Error ? error.cause : undefined;
  if (typeof cause !== 'object' || cause === null || !('code' in cause)) return undefined;
  return typeof cause.code === 'string' ? cause.code : undefined;
}

/**
 * A running gateway: `POST /v1/sessions/:key/messages` with `Accept: text/event-stream`, each
 * turn read as SSE until `event: done` (a reply) or `event: error` (`{ code, message }`).
 */
export class GatewayTarget implements LoadTarget {
  readonly description: string;
  readonly #base: string;
  readonly #token: string | undefined;
  /** Aborts every request still open when the run ends. */
  readonly #abort = new AbortController();

  constructor(url: string, token?: string) {
    this.#base = url.replace(/\/+$/, '');
    this.#token = token;
    this.description = `gateway at ${this.#base}`;
  }

  async send(key: string, message: string, hooks: SendHooks): Promise<SendOutcome> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'text/event-stream',
    };
    if (this.#token !== undefined) headers['authorization'] = `Bearer ${this.#token}`;
    let response: Response;
    try {
      response = await fetch(`${this.#base}/v1/sessions/${encodeURIComponent(key)}/messages`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ message }),
        signal: this.#abort.signal,
      });
    } catch (error) {
      const code = causeCode(error);
      // Refused: nothing reached the gateway, so nothing was accepted (and nothing lost).
      if (code === 'ECONNREFUSED' || code === 'ENOTFOUND') {
        return { kind: 'error', code: `CONNECTION_${code}`, message: String(error) };
      }
      return { kind: 'broken', reason: `the request failed: ${code ?? String(error)}` };
    }
    if (!response.ok) {
      const text = await response.text().catch(() => '');
      const typed = typedError(parseJson(text));
      return typed
        ? { kind: 'error', ...typed }
        : { kind: 'error', code: `HTTP_${response.status}`, message: text.slice(0, 200) };
    }
    if (!(response.headers.get('content-type') ?? '').includes('text/event-stream')) {
      const body = parseJson(await response.text().catch(() => ''));
      if (typeof body === 'object' && body !== null && 'reply' in body) return { kind: 'reply' };
      return { kind: 'broken', reason: 'a 200 answer that is neither SSE nor a reply' };
    }
    return this.#readStream(response, hooks);
  }

  async #readStream(response: Response, hooks: SendHooks): Promise<SendOutcome> {
    const body = response.body;
    if (!body) return { kind: 'broken', reason: 'an empty event stream' };
    const reader = body.getReader();
    const decoder = new TextDecoder();
    const parser = new SseParser();
    try {
      while (true) {
        const { done, value } = await reader.read();
        const events = parser.push(
          done ? decoder.decode() : decoder.decode(value, { stream: true }),
        );
        for (const event of events) {
          if (event.event === 'text') hooks.onText();
          else if (event.event === 'done') return { kind: 'reply' };
          else if (event.event === 'error') {
            const typed = typedError(parseJson(event.data));
            return typed
              ? { kind: 'error', ...typed }
              : { kind: 'broken', reason: `an error event without a code: ${event.data}` };
          }
        }
        if (done) return { kind: 'broken', reason: 'the stream ended without done or error' };
      }
    } catch (error) {
      return { kind: 'broken', reason: `the stream broke: ${causeCode(error) ?? String(error)}` };
    } finally {
      reader.releaseLock();
      void body.cancel().catch(() => {});
    }
  }

  liveWorkers(): undefined {
    return undefined;
  }

  workers(): undefined {
    return undefined;
  }

  async close(): Promise<void> {
    this.#abort.abort();
  }
}
