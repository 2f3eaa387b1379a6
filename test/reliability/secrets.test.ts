/**
 * Secrets and tenants. A full small load (dedicated workers, the HTTP gateway with two
 * tenants, JSON and SSE, several failing turns) runs with a sentinel apiKey, sentinel auth
 * header values and sentinel bearer tokens, while everything observable is captured: console
 * output and every write to stdout/stderr, process warnings, every supervisor event (as JSON
 * and as util.inspect sees it), hook and validator contexts, metrics (text and over HTTP), the
 * OpenTelemetry spans of every turn (attributes and events), stats, the journal files on disk,
 * every HTTP response (bodies and headers), and the errors of the failing turns (message,
 * details, cause, stack). The sentinels appear nowhere, though
 * the model server did receive them.
 *
 * Then a seeded, randomized cross-tenant test: every route, with every other tenant's session
 * keys (as that tenant names them, namespaced, encoded), always answers 404 (or 400 for a key
 * that is not valid) and never any of the other tenant's data.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inspect } from 'node:util';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it, type MockInstance, vi } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import type { HookContext } from '../../src/agent/extensions.js';
import { createGateway, type Gateway } from '../../src/gateway/gateway.js';
import { createLogger, setLogger } from '../../src/log.js';
import { SUPERVISOR_EVENT_NAMES } from '../../src/runtime/events.js';
import { FileStore } from '../../src/runtime/stores/file.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { defineTool } from '../../src/tools/define-tool.js';
import { agentFor, type Listening, listen, useTempDir } from '../support/harness.js';
import {
  codeOf,
  HttpClient,
  parseSse,
  printSeedOnFailure,
  Rng,
  reliabilityRegistry,
  suiteSeed,
} from './helpers.js';

const API_KEY = 'sk-SENTINEL-7f3a9';
const HEADER_VALUE = 'hdr-SENTINEL-7f3a9';
const TOKENS = {
  acme: 'tok-SENTINEL-acme-7f3a9-0123',
  globex: 'tok-SENTINEL-globex-7f3a9-0123',
  initech: 'tok-SENTINEL-initech-7f3a9-0123',
} as const;
const METRICS_TOKEN = 'tok-SENTINEL-metrics-7f3a9';
/** Everything that must never be shown. */
const SECRETS = [API_KEY, HEADER_VALUE, ...Object.values(TOKENS), METRICS_TOKEN, 'SENTINEL'];

const SEED = suiteSeed(0x5ec7e75);

type Tenant = keyof typeof TOKENS;

/** Everything observable, by where it came from. */
const captured: { readonly source: string; readonly text: string }[] = [];
function capture(source: string, value: unknown): void {
  const text =
    typeof value === 'string'
      ? value
      : `${safeJson(value)}\n${inspect(value, { depth: 12, showHidden: true, getters: true })}`;
  captured.push({ source, text });
}
function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? '';
  } catch {
    return '';
  }
}

/** Where a secret shows, if anywhere. */
function leaks(): string[] {
  return captured.flatMap(({ source, text }) =>
    SECRETS.filter((secret) => text.includes(secret)).map(
      (secret) =>
        `${source}: …${text.slice(Math.max(0, text.indexOf(secret) - 80), text.indexOf(secret) + 40)}…`,
    ),
  );
}

let mock: MockLlm;
/** A model server that accepts another key only: the sentinel key is refused. */
let locked: MockLlm;
let supervisor: Supervisor;
let gateway: Gateway;
let server: Listening | undefined;
let client: HttpClient;
const dir = useTempDir('agentcell-secrets-');
const spies: MockInstance[] = [];
const onWarning = (warning: Error) => capture('process warning', warning);
/** Every span of every turn, with its attributes and events. */
const spans = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({
  spanProcessors: [new SimpleSpanProcessor(spans)],
});

/** A host tool that records what a tool is told about its call. */
const witness = defineTool({
  name: 'witness',
  description: 'Records its context',
  host: true,
  run: (_args, context) => {
    capture('host tool context', { ...context, signal: undefined });
    return 'witnessed';
  },
});

beforeAll(async () => {
  for (const method of ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const) {
    spies.push(
      vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
        capture(
          `console.${method}`,
          args
            .map((arg) => (typeof arg === 'string' ? arg : inspect(arg, { depth: 12 })))
            .join(' '),
        );
      }),
    );
  }
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream);
    spies.push(
      vi.spyOn(stream, 'write').mockImplementation(((chunk: unknown, ...rest: unknown[]) => {
        capture(stream === process.stdout ? 'stdout' : 'stderr', String(chunk));
        return (write as (...args: unknown[]) => boolean)(chunk, ...rest);
      }) as typeof stream.write),
    );
  }
  process.on('warning', onWarning);
  // Every log line of every area, at every level, is captured too.
  setLogger(
    createLogger({
      level: 'trace',
      destination: { write: (line: string) => capture('log', line) },
    }),
  );

  mock = await startMockLlm({
    apiKey: API_KEY,
    rules: [
      { match: /^crash/, steps: [{ toolCalls: [{ name: 'chaos', arguments: { mode: 'exit' } }] }] },
      {
        match: /^throw/,
        steps: [{ toolCalls: [{ name: 'chaos', arguments: { mode: 'throw' } }] }],
      },
      { match: /^witness/, steps: [{ toolCalls: [{ name: 'witness', arguments: {} }] }] },
    ],
  });
  locked = await startMockLlm({ apiKey: 'sk-the-right-one' });
  const { registry, tools } = await reliabilityRegistry(['chaos'], [witness]);
  supervisor = new Supervisor({
    tools: registry,
    store: new FileStore({ dir, fsync: false }),
    maxLiveSessions: 16,
    warmPoolSize: 1,
    turnTimeoutMs: 2_000,
    interruptGraceMs: 300,
    restart: { maxRestarts: 20, windowMs: 60_000, backoffMs: 0 },
    tracing: { tracerProvider },
    hooks: {
      record: (context: HookContext) => capture(`hook ${context.point}`, context),
      explode: () => {
        throw new Error('the hook exploded');
      },
    },
    validators: {
      look: (reply, context) => {
        capture('validator context', { reply, context });
        return true;
      },
    },
  });
  const agent = (name: string, extra: Partial<ConstructorParameters<typeof Agent>[0]> = {}) =>
    agentFor(mock, {
      name,
      apiKey: API_KEY,
      auth: { headers: { 'x-gateway-key': HEADER_VALUE } },
      tools,
      hooks: { beforeLlmCall: ['record'], afterToolCall: ['record'], onTurnEnd: ['record'] },
      guardrails: { validators: ['look'] },
      execution: { maxRetries: 1 },
      ...extra,
    });
  const main = agent('main');
  capture('agent inspect', inspect(main, { depth: 12, showHidden: true }));
  capture('agent JSON', JSON.stringify(main));
  capture('agent String', String(main));
  supervisor.register('main', main);
  supervisor.register('locked', agent('locked', { baseUrl: locked.url }), { warmPoolSize: 0 });
  supervisor.register('hooked', agent('hooked', { hooks: { beforeLlmCall: ['explode'] } }), {
    warmPoolSize: 0,
  });
  for (const name of SUPERVISOR_EVENT_NAMES) {
    (supervisor.on as (event: string, listener: (payload: unknown) => void) => Supervisor)(
      name,
      (payload) => capture(`event ${name}`, payload),
    );
  }
  gateway = createGateway(supervisor, {
    tenants: {
      [TOKENS.acme]: { id: 'acme' },
      [TOKENS.globex]: { id: 'globex' },
      [TOKENS.initech]: { id: 'initech', agents: ['main'] },
    },
    defaultAgent: 'main',
    metricsToken: METRICS_TOKEN,
  });
  server = await listen(gateway.handler);
  client = new HttpClient(server.url);
}, 60_000);

afterAll(async () => {
  for (const spy of spies) spy.mockRestore();
  process.off('warning', onWarning);
  setLogger(createLogger());
  client?.close();
  await gateway?.close();
  await server?.close();
  await supervisor?.destroy('test over');
  await mock?.close();
  await locked?.close();
});

const auth = (tenant: Tenant) => ({
  authorization: `Bearer ${TOKENS[tenant]}`,
  'content-type': 'application/json',
});

/** POSTs a message as `tenant`; records the response (body and headers). */
async function post(tenant: Tenant, key: string, body: unknown, sse = false) {
  const answer = await client.request('POST', `/v1/sessions/${encodeURIComponent(key)}/messages`, {
    headers: { ...auth(tenant), ...(sse && { accept: 'text/event-stream' }) },
    body: JSON.stringify(body),
  });
  capture(`HTTP ${answer.status} headers`, answer.headers);
  capture(`HTTP ${answer.status} body`, answer.text);
  return answer;
}

describe('secrets never leave', () => {
  it('a small load with failing turns shows the apiKey, auth header values and bearer tokens nowhere', async () => {
    // Traffic over HTTP: two tenants, five sessions each, JSON and SSE, some failing.
    const messages = ['hello', 'witness this', 'throw please', 'hello again [[mock:500]]'];
    const answers = await Promise.all(
      (['acme', 'globex'] as const).flatMap((tenant) =>
        Array.from({ length: 5 }, async (_, i) => {
          const statuses: number[] = [];
          for (const [n, message] of messages.entries()) {
            const answer = await post(tenant, `user-${i}`, { message }, n % 2 === 1);
            statuses.push(answer.status);
            if (answer.headers['content-type']?.startsWith('text/event-stream')) {
              capture('SSE frames', parseSse(answer.text));
            }
          }
          return statuses;
        }),
      ),
    );
    expect(answers.flat().every((status) => status === 200 || status === 502)).toBe(true);
    // Failing turns through the embedded API: their errors, every part of them.
    const failing: [string, string][] = [
      ['main', '[[mock:500]] fails'],
      ['main', '[[mock:malformed]] fails'],
      ['main', '[[mock:stall]] times out'],
      ['main', 'crash the worker'],
      ['locked', 'the key is refused'],
      ['hooked', 'the hook explodes'],
    ];
    const codes: string[] = [];
    for (const [agentName, message] of failing) {
      const session = supervisor.session(`direct:${agentName}`, { agent: agentName });
      try {
        await session.send(message);
        codes.push('reply');
      } catch (error) {
        codes.push(codeOf(error));
        capture(`error of "${message}"`, error);
        capture(`error stack of "${message}"`, String((error as Error).stack));
        capture(`error cause of "${message}"`, (error as Error).cause);
      }
      capture(`stats of ${session.key}`, await session.stats());
      capture(`history of ${session.key}`, await session.history());
    }
    expect(codes).toEqual([
      'AGENTCELL_LLM_REQUEST_FAILED',
      'AGENTCELL_LLM_BAD_RESPONSE',
      'AGENTCELL_TURN_TIMEOUT',
      'AGENTCELL_SESSION_CRASHED',
      'AGENTCELL_LLM_AUTH_FAILED',
      'AGENTCELL_HOOK_FAILED',
    ]);
    // The hidden 500 of a failing hook over HTTP (logged by the gateway's logger).
    const hidden = await post('acme', 'hooked-session', { message: 'boom', agent: 'hooked' });
    expect(hidden.status).toBe(500);
    expect((hidden.json as { error?: { code?: string } }).error?.code).toBe('AGENTCELL_INTERNAL');

    // Metrics, stats and listings.
    capture('gateway.metrics()', await gateway.metrics());
    const metrics = await client.request('GET', '/metrics', {
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    });
    expect(metrics.status).toBe(200);
    capture('GET /metrics', metrics.text);
    capture('supervisor.stats()', supervisor.stats());
    const finished = spans.getFinishedSpans();
    expect(finished.some((span) => span.name.startsWith('execute_tool'))).toBe(true);
    expect(finished.some((span) => span.name.startsWith('chat '))).toBe(true);
    for (const span of finished) {
      capture(`span ${span.name}`, {
        name: span.name,
        attributes: span.attributes,
        events: span.events,
        status: span.status,
        links: span.links,
        resource: span.resource.attributes,
      });
    }
    capture('supervisor.capacity()', supervisor.capacity());
    for (const tenant of ['acme', 'globex'] as const) {
      const listing = await client.request('GET', '/v1/sessions', { headers: auth(tenant) });
      capture('GET /v1/sessions', listing.text);
      const one = await client.request('GET', '/v1/sessions/user-1?history=1', {
        headers: auth(tenant),
      });
      capture('GET /v1/sessions/user-1?history=1', one.text);
    }
    capture('HTTP bodies', client.bodies.join('\n'));

    // The journals on disk.
    await supervisor.close();
    for (const name of await readdir(dir)) {
      capture(`file ${name}`, (await readFile(join(dir, name))).toString('latin1'));
    }

    // The sentinels did reach the model server (so the scan above is not vacuous) ...
    expect(
      mock.requests.some((request) => request.headers.authorization === `Bearer ${API_KEY}`),
    ).toBe(true);
    expect(mock.requests.some((request) => request.headers['x-gateway-key'] === HEADER_VALUE)).toBe(
      true,
    );
    expect(captured.length).toBeGreaterThan(200);
    expect(captured.some(({ source }) => source.startsWith('hook '))).toBe(true);
    expect(captured.some(({ source }) => source === 'log')).toBe(true);
    // ... and show nowhere else.
    for (const spy of spies.splice(0)) spy.mockRestore();
    expect(leaks()).toEqual([]);
  }, 120_000);

  it('auth.organization and auth.project are redacted from toJSON() and inspect, like every auth value', () => {
    const agent = new Agent({
      name: 'org',
      llm: 'mock-model',
      apiKey: API_KEY,
      auth: { organization: 'org-SENTINEL-7f3a9', project: 'proj-SENTINEL-7f3a9' },
    });
    const shown = `${JSON.stringify(agent)}\n${inspect(agent, { depth: 12 })}`;
    expect(shown).not.toContain('org-SENTINEL-7f3a9');
    expect(shown).not.toContain('proj-SENTINEL-7f3a9');
  });
});

describe('tenants', () => {
  const TENANTS = ['acme', 'globex', 'initech'] as const;
  /** Every tenant has a session named `shared`, and one only it has. */
  const keysOf = (tenant: Tenant) => ['shared', `${tenant}-private`];
  const secretOf = (tenant: Tenant, key: string) => `secret-of-${tenant}-${key}`;

  it("every route with every other tenant's session keys answers 404 (or 400), never data (seeded, randomized)", async () => {
    printSeedOnFailure(SEED, 'cross-tenant');
    const rng = new Rng(SEED);
    const { registry } = await reliabilityRegistry([]);
    const isolated = new Supervisor({ tools: registry, maxLiveSessions: 8, warmPoolSize: 1 });
    isolated.register(
      'main',
      new Agent({ name: 'main', llm: 'mock-model', baseUrl: mock.url, apiKey: API_KEY }),
    );
    const tenantGateway = createGateway(isolated, {
      tenants: {
        [TOKENS.acme]: { id: 'acme' },
        [TOKENS.globex]: { id: 'globex' },
        [TOKENS.initech]: { id: 'initech' },
      },
      defaultAgent: 'main',
    });
    const tenantServer = await listen(tenantGateway.handler);
    const http = new HttpClient(tenantServer.url);
    const request = (tenant: Tenant, method: string, path: string, body?: unknown) =>
      http.request(method, path, {
        headers: auth(tenant),
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
    try {
      // Each tenant tells each of its sessions a secret.
      for (const tenant of TENANTS) {
        for (const key of keysOf(tenant)) {
          const answer = await request(tenant, 'POST', `/v1/sessions/${key}/messages`, {
            message: secretOf(tenant, key),
          });
          expect(answer.status).toBe(200);
        }
      }
      // The victim's key as the victim names it (`shared` is the attacker's own too, so only
      // the private one), namespaced, encoded, and dressed up.
      const variants = (victim: Tenant, key: string): string[] => [
        ...(key === 'shared' ? [] : [encodeURIComponent(key)]),
        encodeURIComponent(`${victim}:${key}`),
        `${victim}%3A${key}`,
        `${victim}%3a${key}`,
        encodeURIComponent(`../${victim}:${key}`),
        `..%2F${victim}%3A${key}`,
        encodeURIComponent(` ${victim}:${key}`),
        encodeURIComponent(`${victim.toUpperCase()}:${key}`),
      ];
      const routes = [
        (path: string) => ['GET', `/v1/sessions/${path}`] as const,
        (path: string) => ['GET', `/v1/sessions/${path}?history=1`] as const,
        (path: string) => ['DELETE', `/v1/sessions/${path}`] as const,
        (path: string) => ['POST', `/v1/sessions/${path}/interrupt`] as const,
      ];
      const problems: string[] = [];
      const seen: Record<number, number> = {};
      const foreignSecrets = (attacker: Tenant) =>
        TENANTS.filter((t) => t !== attacker).flatMap((t) => keysOf(t).map((k) => secretOf(t, k)));
      for (let i = 0; i < 400; i++) {
        const attacker = rng.pick(TENANTS);
        const victim = rng.pick(TENANTS.filter((t) => t !== attacker));
        const key = rng.pick(keysOf(victim));
        const path = rng.pick(variants(victim, key));
        const [method, url] = rng.pick(routes)(path);
        const answer = await request(attacker, method, url, method === 'POST' ? {} : undefined);
        seen[answer.status] = (seen[answer.status] ?? 0) + 1;
        if (foreignSecrets(attacker).some((secret) => answer.text.includes(secret))) {
          problems.push(`${attacker} → ${method} ${url}: another tenant's data`);
        }
        if (answer.status !== 404 && answer.status !== 400) {
          problems.push(`${attacker} → ${method} ${url}: ${answer.status}`);
        }
      }
      // Messages to another tenant's keys open the caller's own session, never the victim's.
      for (const attacker of TENANTS) {
        for (const victim of TENANTS.filter((t) => t !== attacker)) {
          for (const key of keysOf(victim)) {
            const answer = await request(
              attacker,
              'POST',
              `/v1/sessions/${encodeURIComponent(`${victim}:${key}`)}/messages`,
              {
                message: 'what did they say?',
              },
            );
            expect(answer.status).toBe(200);
            if (foreignSecrets(attacker).some((secret) => answer.text.includes(secret))) {
              problems.push(`${attacker} → POST ${victim}:${key}: another tenant's data`);
            }
            const own = await request(
              attacker,
              'GET',
              `/v1/sessions/${encodeURIComponent(`${victim}:${key}`)}?history=1`,
            );
            const history = (own.json as { history?: { content: string }[] }).history ?? [];
            expect(history.map((message) => message.content)).toEqual([
              'what did they say?',
              'echo: what did they say?',
            ]);
          }
        }
      }
      expect(problems).toEqual([]);
      // Every victim session is intact, and each tenant lists only its own sessions.
      for (const tenant of TENANTS) {
        for (const key of keysOf(tenant)) {
          const answer = await request(tenant, 'GET', `/v1/sessions/${key}?history=1`);
          expect(answer.status).toBe(200);
          const history = (answer.json as { history: { content: string }[] }).history;
          expect(history[0]?.content).toBe(secretOf(tenant, key));
        }
        const listing = await request(tenant, 'GET', '/v1/sessions');
        const listed = (listing.json as { sessions: string[] }).sessions.sort();
        expect(listed).toEqual(
          [
            ...keysOf(tenant),
            ...TENANTS.filter((t) => t !== tenant).flatMap((t) =>
              keysOf(t).map((k) => `${t}:${k}`),
            ),
          ].sort(),
        );
      }
      console.info(`cross-tenant: 400 randomized requests, statuses ${JSON.stringify(seen)}`);
    } finally {
      http.close();
      await tenantGateway.close();
      await tenantServer.close();
      await isolated.close();
    }
  }, 120_000);
});
