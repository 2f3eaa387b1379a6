/**
 * Helpers for the reliability suite: a seeded PRNG (the seed is printed when a test fails), a
 * kill switch that terminates chosen worker threads from outside, resource readings (handles,
 * RSS, a forced GC), a small HTTP client whose sockets can be closed for good, a raw-socket
 * client for requests no well-behaved client would send, and checks on typed errors.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { setEnvironmentData, threadId } from 'node:worker_threads';
import { onTestFailed } from 'vitest';
import { type AgentcellErrorCode, errorCatalogue } from '../../src/errors.js';
import type { ToolRegistry } from '../../src/tools/registry.js';
import type { Tool } from '../../src/tools/tool.js';
import { fixtureToolRegistry, jsonOrUndefined } from '../support/harness.js';

// ---------------------------------------------------------------------------------------------
// Seeds

/** The suite's seed: `AGENTCELL_SEED=<n>` reproduces a failing run. */
export function suiteSeed(fallback: number): number {
  const raw = process.env['AGENTCELL_SEED'];
  const parsed = raw === undefined ? Number.NaN : Number(raw);
  return Number.isSafeInteger(parsed) ? parsed : fallback;
}

/** Prints the seed if the current test fails (call inside a test). */
export function printSeedOnFailure(seed: number, what: string): void {
  onTestFailed(() => {
    console.error(`${what} failed with seed ${seed}: rerun with AGENTCELL_SEED=${seed}`);
  });
}

/** mulberry32: a tiny, fast, seedable PRNG (uniform in [0, 1)). */
export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new Error('pick() from an empty list');
    return item;
  }

  /** Picks a key of `weights` with probability proportional to its weight. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
    const entries = Object.entries(weights) as [K, number][];
    const total = entries.reduce((sum, [, w]) => sum + w, 0);
    let roll = this.next() * total;
    for (const [key, weight] of entries) {
      roll -= weight;
      if (roll < 0) return key;
    }
    return (entries.at(-1) as [K, number])[0];
  }
}

// ---------------------------------------------------------------------------------------------
// Fixture tools

const TOOL_FILES = {
  chaos: 'chaos-tool.js',
  killswitch: 'killswitch-tool.js',
  spin: 'spin-tool.js',
  exhaust_heap: 'exhaust-heap-tool.js',
  crash: 'crash-tool.js',
} as const;
export type ReliabilityTool = keyof typeof TOOL_FILES;

/** A loaded registry of fixture modules and the tools to give an agent. */
export function reliabilityRegistry(
  names: readonly ReliabilityTool[],
  hostTools: readonly Tool[] = [],
): Promise<{ registry: ToolRegistry; tools: Tool[] }> {
  return fixtureToolRegistry(
    Object.fromEntries(names.map((name) => [name, TOOL_FILES[name]])),
    hostTools,
  );
}

// ---------------------------------------------------------------------------------------------
// Kill switch (see test/fixtures/tools/killswitch-tool.js)

const KILLSWITCH_KEY = 'agentcell-test:killswitch';
const KILLSWITCH_HOST_KEY = 'agentcell-test:killswitch-host';
const ALIVE = 1;
const KILL = 2;
const DEAD = 3;
export const KILL_EXIT_CODE = 9;

export interface KillSwitch {
  /** Asks thread `id` to exit; false if it never registered or is already gone or asked. */
  kill(id: number): boolean;
  /** Threads that registered and were not killed (some may have ended normally since). */
  registered(): number[];
  /** Threads that exited because they were asked to. */
  killed(): number;
}

/**
 * Publishes the kill table; call before any worker of the test starts (environment data is
 * copied into a worker when it is created).
 */
export function installKillSwitch(size = 1 << 16): KillSwitch {
  const buffer = new SharedArrayBuffer(size * Int32Array.BYTES_PER_ELEMENT);
  const cells = new Int32Array(buffer);
  setEnvironmentData(KILLSWITCH_KEY, buffer);
  setEnvironmentData(KILLSWITCH_HOST_KEY, threadId);
  return {
    kill: (id) => id >= 0 && id < size && Atomics.compareExchange(cells, id, ALIVE, KILL) === ALIVE,
    registered: () => {
      const ids: number[] = [];
      for (let id = 0; id < size; id++) if (Atomics.load(cells, id) === ALIVE) ids.push(id);
      return ids;
    },
    killed: () => {
      let count = 0;
      for (let id = 0; id < size; id++) if (Atomics.load(cells, id) === DEAD) count++;
      return count;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Resources

/** Active resources of this process by type (`process.getActiveResourcesInfo()`). */
export function handleCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const name of process.getActiveResourcesInfo()) counts[name] = (counts[name] ?? 0) + 1;
  return counts;
}

/** Types whose count is above the baseline, with how many more. */
export function handlesAbove(
  baseline: Readonly<Record<string, number>>,
  now: Readonly<Record<string, number>> = handleCounts(),
): Record<string, number> {
  const extra: Record<string, number> = {};
  for (const [name, count] of Object.entries(now)) {
    const more = count - (baseline[name] ?? 0);
    if (more > 0) extra[name] = more;
  }
  return extra;
}

let gcFunction: (() => void) | undefined;

/** A full garbage collection (exposes `gc` once, without a command-line flag). */
export function forceGc(): void {
  if (!gcFunction) {
    setFlagsFromString('--expose-gc');
    gcFunction = runInNewContext('gc') as () => void;
  }
  gcFunction();
}

export const MiB = 1024 * 1024;

/** Polls `check` every few milliseconds until it holds or `timeoutMs` passes; returns whether it held. */
export async function eventually(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Typed errors

/** What a caller sees of a failure. */
export interface CaughtError {
  readonly code?: unknown;
  readonly message?: unknown;
}

/** Whether `code` is one of agentcell's error codes. */
export function isTypedCode(code: unknown): code is AgentcellErrorCode {
  return typeof code === 'string' && Object.hasOwn(errorCatalogue, code);
}

/** The code of a thrown value, or a description of what it was instead (for failure messages). */
export function codeOf(error: unknown): string {
  const code = (error as CaughtError | null | undefined)?.code;
  if (isTypedCode(code)) return code;
  return `UNTYPED(${error instanceof Error ? `${error.name}: ${error.message}` : String(error)})`;
}

// ---------------------------------------------------------------------------------------------
// HTTP

export interface HttpAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
  readonly json: unknown;
}

export interface HttpRequestOptions {
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Buffer;
  readonly timeoutMs?: number;
}

/**
 * A client of one server over `node:http` with its own keep-alive agent, so that every
 * socket it opened can be closed at the end (the handle check needs that; fetch's pool
 * keeps sockets open past the test).
 */
export class HttpClient {
  readonly #base: URL;
  readonly #agent = new HttpAgent({ keepAlive: true, maxSockets: 32 });
  /** Every body read, for the secret scans. */
  readonly bodies: string[] = [];

  constructor(baseUrl: string) {
    this.#base = new URL(baseUrl);
  }

  request(method: string, path: string, options: HttpRequestOptions = {}): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: this.#base.hostname,
          port: this.#base.port,
          method,
          path,
          agent: this.#agent,
          headers: {
            ...(options.body !== undefined && {
              'content-length': String(Buffer.byteLength(options.body)),
            }),
            ...options.headers,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            this.bodies.push(text);
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              text,
              json: jsonOrUndefined(text),
            });
          });
        },
      );
      req.setTimeout(options.timeoutMs ?? 30_000, () =>
        req.destroy(new Error(`${method} ${path}: no answer in time`)),
      );
      req.on('error', reject);
      req.end(options.body);
    });
  }

  /** Closes every socket of the client. */
  close(): void {
    this.#agent.destroy();
  }
}

/** One SSE frame. */
export interface SseEvent {
  readonly event: string;
  readonly data: unknown;
}

/** Parses a `text/event-stream` body (comments skipped). */
export function parseSse(text: string): SseEvent[] {
  const events: SseEvent[] = [];
  for (const block of text.split('\n\n')) {
    let event = 'message';
    let data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data += line.slice(6);
    }
    if (data !== '') events.push({ event, data: JSON.parse(data) as unknown });
  }
  return events;
}

export interface RawAnswer {
  /** The status of the response, or undefined when the server closed without answering. */
  readonly status: number | undefined;
  readonly head: string;
  readonly body: string;
}

/**
 * Sends `bytes` as they are over a new TCP connection, half-closes it, and reads until the
 * server closes (or `timeoutMs`). For requests that fetch and `http.request` refuse to send.
 */
export function rawRequest(
  port: number,
  bytes: string | Buffer,
  timeoutMs = 5_000,
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // A server that closes while we still write is an answer too (no status).
      if (error.code !== 'ECONNRESET' && error.code !== 'EPIPE') reject(error);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      const head = split < 0 ? text : text.slice(0, split);
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      resolve({
        status: match ? Number(match[1]) : undefined,
        head,
        body: split < 0 ? '' : text.slice(split + 4),
      });
    });
    socket.end(bytes);
  });
}
