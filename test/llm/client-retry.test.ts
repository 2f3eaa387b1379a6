/**
 * When the LlmClient retries: full jitter over the capped exponential backoff (a seeded random
 * makes it repeatable), the server's Retry-After in both forms, and sleeps that run on the
 * injected clock, so these tests advance a SimulatedClock instead of waiting.
 */
import { execFile } from 'node:child_process';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pDefer, { type DeferredPromise } from 'p-defer';
import { afterEach, describe, expect, it } from 'vitest';
import { mulberry32 } from '../../src/cli/loadtest/random.js';
import { LlmClient, type LlmClientOptions } from '../../src/llm/client.js';
import type { LlmRequest } from '../../src/llm/model.js';
import { SimulatedClock } from '../../src/testing/simulated-clock.js';
import { useMockLlm } from '../support/harness.js';

const MAX_DELAY_MS = 60_000;
/** A whole second, so an HTTP-date (second resolution) names an exact instant. */
const EPOCH = Date.parse('2025-03-01T12:00:00.000Z');

const mock = useMockLlm();

const ask = (content: string): LlmRequest => ({
  model: 'mock-model',
  messages: [{ role: 'user', content }],
});

const live = (): AbortSignal => new AbortController().signal;

interface Retry {
  readonly attempt: number;
  readonly code: string;
  readonly delayMs: number;
}

/** Retries as they are announced; the sleep is armed by the time `next()` resolves. */
function retryLog() {
  const seen: Retry[] = [];
  const waiting: DeferredPromise<Retry>[] = [];
  const queued: Retry[] = [];
  return {
    seen,
    onRetry(attempt: number, error: { code: string }, delayMs: number) {
      const retry = { attempt, code: error.code, delayMs };
      seen.push(retry);
      const waiter = waiting.shift();
      if (waiter) waiter.resolve(retry);
      else queued.push(retry);
    },
    async next(): Promise<Retry> {
      const ready = queued.shift();
      const retry = ready ?? (await pushWaiter(waiting));
      // The client arms its sleep right after onRetry returns.
      await Promise.resolve();
      return retry;
    },
  };
}

function pushWaiter(waiting: DeferredPromise<Retry>[]): Promise<Retry> {
  const waiter = pDefer<Retry>();
  waiting.push(waiter);
  return waiter.promise;
}

function client(options: LlmClientOptions & { baseUrl?: string }): LlmClient {
  return new LlmClient({ baseUrl: mock.url, apiKey: 'k', ...options });
}

// Broken, these would hang rather than fail: fail fast instead.
describe('full jitter', { timeout: 5_000 }, () => {
  it('waits a seeded random share of the capped exponential backoff', async () => {
    const clock = new SimulatedClock(EPOCH);
    const log = retryLog();
    const base = 20_000;
    const call = client({
      clock,
      random: mulberry32(7),
      maxRetries: 4,
      retryBaseDelayMs: base,
    }).complete(ask('hi [[mock:500]]'), live(), log);
    const outcome = call.catch((error: unknown) => error);

    for (let attempt = 1; attempt <= 4; attempt++) {
      const retry = await log.next();
      expect(clock.pendingTimers).toBe(1);
      clock.increment(retry.delayMs);
    }

    await expect(outcome).resolves.toMatchObject({ code: 'AGENTCELL_LLM_REQUEST_FAILED' });
    const draws = mulberry32(7);
    const capped = [20_000, 40_000, MAX_DELAY_MS, MAX_DELAY_MS];
    expect(log.seen.map((retry) => retry.delayMs)).toEqual(
      capped.map((backoff) => Math.round(draws() * backoff)),
    );
    expect(mock.requests).toHaveLength(5);
  });

  it('spreads the retries of many callers that failed together across the backoff', async () => {
    const clock = new SimulatedClock(EPOCH);
    const random = mulberry32(42);
    const base = 10_000;
    const logs = Array.from({ length: 20 }, () => retryLog());
    const calls = logs.map((log) =>
      client({ clock, random, maxRetries: 1, retryBaseDelayMs: base })
        .complete(ask('hi [[mock:500]]'), live(), log)
        .catch((error: unknown) => error),
    );

    const delays = await Promise.all(logs.map(async (log) => (await log.next()).delayMs));
    clock.increment(base);
    await Promise.all(calls);

    expect(new Set(delays).size).toBe(delays.length);
    for (const delay of delays) {
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThanOrEqual(base);
    }
    expect(Math.max(...delays) - Math.min(...delays)).toBeGreaterThan(base / 2);
  });
});

/** A model server that answers each request with the next scripted response. */
interface ScriptedServer {
  readonly url: string;
  readonly requests: number;
  close(): Promise<void>;
}

type Respond = (res: ServerResponse) => void;

function rateLimited(headers: Record<string, string>): Respond {
  return (res) => {
    res.writeHead(429, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify({ error: { message: 'slow down', type: 'requests' } }));
  };
}

const replyOk: Respond = (res) => {
  const chunk = {
    id: 'chatcmpl-1',
    object: 'chat.completion.chunk',
    created: 0,
    model: 'mock-model',
    choices: [{ index: 0, delta: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
  };
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.end(`data: ${JSON.stringify(chunk)}\n\ndata: [DONE]\n\n`);
};

async function startScripted(script: readonly Respond[]): Promise<ScriptedServer> {
  let requests = 0;
  const server = createServer((req, res) => {
    const respond = script[Math.min(requests, script.length - 1)] as Respond;
    requests++;
    req.resume();
    req.on('end', () => respond(res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    get requests() {
      return requests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// Broken, these would hang rather than fail: fail fast instead.
describe('Retry-After', { timeout: 5_000 }, () => {
  let server: ScriptedServer | undefined;

  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  /** Runs one call that meets one 429 with `headers`, and returns the delay it announced. */
  async function delayAfter(
    headers: Record<string, string>,
    clock = new SimulatedClock(EPOCH),
  ): Promise<number> {
    server = await startScripted([rateLimited(headers), replyOk]);
    const log = retryLog();
    const call = client({
      baseUrl: server.url,
      clock,
      random: () => 0.5,
      maxRetries: 1,
      retryBaseDelayMs: 1_000,
    }).complete(ask('hi'), live(), log);

    const retry = await log.next();
    expect(retry.code).toBe('AGENTCELL_LLM_RATE_LIMITED');
    clock.increment(retry.delayMs - 1);
    expect(clock.pendingTimers).toBe(1);
    expect(server.requests).toBe(1);
    clock.increment(1);
    expect(clock.pendingTimers).toBe(0);
    await expect(call).resolves.toMatchObject({ content: 'ok' });
    expect(server.requests).toBe(2);
    return retry.delayMs;
  }

  it('honours the HTTP-date form, relative to the clock’s now', async () => {
    const at = new Date(EPOCH + 7_000).toUTCString();

    expect(await delayAfter({ 'retry-after': at })).toBe(7_000);
  });

  it('honours the delta-seconds form', async () => {
    expect(await delayAfter({ 'retry-after': '3' })).toBe(3_000);
  });

  it('prefers retry-after-ms to retry-after', async () => {
    expect(await delayAfter({ 'retry-after-ms': '1500', 'retry-after': '9' })).toBe(1_500);
  });

  it('caps what the server asks for', async () => {
    expect(await delayAfter({ 'retry-after': '3600' })).toBe(MAX_DELAY_MS);
    await server?.close();
    const at = new Date(EPOCH + 3_600_000).toUTCString();
    expect(await delayAfter({ 'retry-after': at })).toBe(MAX_DELAY_MS);
  });

  it.each([
    ['a date in the past', new Date(EPOCH - 5_000).toUTCString()],
    ['zero seconds', '0'],
    ['text that is neither form', 'soon'],
  ])('falls back to the jittered backoff for %s', async (_label, value) => {
    // random 0.5 of the 1 s backoff.
    expect(await delayAfter({ 'retry-after': value })).toBe(500);
  });
});

// Broken, these would hang rather than fail: fail fast instead.
describe('an abort during a retry sleep', { timeout: 5_000 }, () => {
  it('rejects at once with AGENTCELL_INTERRUPTED and clears the timer', async () => {
    const clock = new SimulatedClock(EPOCH);
    const controller = new AbortController();
    const log = retryLog();
    const call = client({ clock, maxRetries: 3, retryBaseDelayMs: 30_000 }).complete(
      ask('hi [[mock:500]]'),
      controller.signal,
      log,
    );

    await log.next();
    expect(clock.pendingTimers).toBe(1);
    controller.abort();

    await expect(call).rejects.toMatchObject({ code: 'AGENTCELL_INTERRUPTED' });
    expect(clock.pendingTimers).toBe(0);
    expect(mock.requests).toHaveLength(1);
  });
});

describe('a retry wait on the system clock', () => {
  it('keeps a script alive until the call settles', async () => {
    const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
    const child = join(root, 'test/fixtures/llm-retry-child.ts');

    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', child, mock.url],
      { cwd: root },
    );

    expect(stdout.trim()).toBe('settled AGENTCELL_LLM_REQUEST_FAILED');
    expect(mock.requests).toHaveLength(2);
  });
});
