/**
 * GET /metrics: Prometheus text exposition that parses, with the supervisor's gauges and
 * counters, the turn latency histogram and the gateway's per-tenant usage; optional token.
 */
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createGateway } from '../../src/gateway/gateway.js';
import { forwardTo, listen } from '../support/harness.js';
import { Client, expectError, expectNoSecrets, parseExposition } from './helpers.js';
import { TOKENS, useGatewayWorld } from './setup.js';

const { acme: ACME, globex: GLOBEX, limited: LIMITED } = TOKENS;

const world = useGatewayWorld();
const client = forwardTo(() => world.client);

describe('GET /metrics', () => {
  it('serves Prometheus text that parses, with the supervisor’s and the gateway’s numbers', async () => {
    // Some traffic first: replies for two tenants and two agents, an interrupted turn, a 429
    // and a 401.
    expect((await client.send(ACME, 'm-1', { message: 'count me' })).status).toBe(200);
    expect(
      (await client.send(ACME, 'm-3', { message: 'count me apart', agent: 'other' })).status,
    ).toBe(200);
    expect((await client.send(GLOBEX, 'm-1', { message: 'count me too' })).status).toBe(200);
    const held = client.send(ACME, 'm-2', { message: 'hold to interrupt' });
    const call = await world.gate.next();
    await client.request('POST', '/v1/sessions/m-2/interrupt', { token: ACME });
    call.release();
    expectError(await held, 409, 'AGENTCELL_INTERRUPTED');
    await client.send(LIMITED, 'l-1', { message: 'one' });
    await client.send(LIMITED, 'l-2', { message: 'two' });
    expectError(
      await client.send(LIMITED, 'l-3', { message: 'three' }),
      429,
      'AGENTCELL_TENANT_LIMIT',
    );
    expectError(await client.request('GET', '/v1/sessions'), 401, 'AGENTCELL_UNAUTHORIZED');

    const answer = await client.request('GET', '/metrics');
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const parsed = parseExposition(answer.text);
    expect(parsed.types.get('agentcell_turn_duration_seconds')).toBe('histogram');
    for (const gauge of [
      'agentcell_sessions_live',
      'agentcell_workers_warm',
      'agentcell_sessions_passivated',
      'agentcell_messages_queued',
      'agentcell_turns_in_flight',
      'agentcell_mcp_connections',
    ]) {
      expect(parsed.types.get(gauge)).toBe('gauge');
      expect(parsed.value(gauge)).toBeGreaterThanOrEqual(0);
    }
    const stats = world.supervisor.stats();
    expect(parsed.value('agentcell_turns_total', { outcome: 'ok' })).toBe(stats.turns.ok);
    expect(parsed.value('agentcell_turns_total', { outcome: 'AGENTCELL_INTERRUPTED' })).toBe(
      stats.turns.byCode['AGENTCELL_INTERRUPTED'],
    );
    expect(parsed.value('agentcell_restarts_total')).toBe(stats.restarts);
    expect(parsed.value('agentcell_crashes_total')).toBe(stats.crashes);
    expect(parsed.value('agentcell_turn_duration_seconds_count')).toBe(
      stats.turns.ok + stats.turns.failed,
    );
    expect(
      parsed.value('agentcell_tokens_total', { tenant: 'acme', type: 'input' }),
    ).toBeGreaterThan(0);
    expect(
      parsed.value('agentcell_tokens_total', { tenant: 'globex', type: 'output' }),
    ).toBeGreaterThan(0);
    expect(parsed.value('agentcell_cost_usd_total', { tenant: 'acme' })).toBeGreaterThanOrEqual(0);
    // Usage is countable by tenant and agent together: acme used both agents, globex only echo.
    for (const agent of ['echo', 'other']) {
      expect(
        parsed.value('agentcell_tokens_total', { tenant: 'acme', agent, type: 'input' }),
      ).toBeGreaterThan(0);
      expect(parsed.value('agentcell_replies_total', { tenant: 'acme', agent })).toBe(1);
      expect(
        parsed.value('agentcell_cost_usd_total', { tenant: 'acme', agent }),
      ).toBeGreaterThanOrEqual(0);
      expect(parsed.value('agentcell_llm_calls_total', { tenant: 'acme', agent })).toBe(1);
    }
    expect(parsed.value('agentcell_replies_total', { tenant: 'globex', agent: 'other' })).toBe(
      undefined,
    );
    expect(parsed.value('agentcell_replies_total', { tenant: 'globex', agent: 'echo' })).toBe(1);
    expect(
      parsed.value('agentcell_http_requests_total', {
        route: 'POST /v1/sessions/:key/messages',
        status: '429',
      }),
    ).toBe(1);
    expect(
      parsed.value('agentcell_http_requests_total', { route: 'GET /v1/sessions', status: '401' }),
    ).toBe(1);
    expect(parsed.value('agentcell_replies_total', { tenant: 'limited' })).toBe(2);
    expect(parsed.value('agentcell_gateway_turns_in_flight', { tenant: 'acme' })).toBe(0);
    expect(parsed.value('agentcell_gateway_closing')).toBe(0);
    expect(await world.gateway.metrics()).toMatch(/^# HELP /);
  });

  it('can require a token, or not be served at all', async () => {
    const guarded = createGateway(world.supervisor, {
      tenants: { [ACME]: { id: 'acme' } },
      metricsToken: 'metrics-token-0123456789',
    });
    const hiddenMetrics = createGateway(world.supervisor, {
      tenants: { [ACME]: { id: 'acme' } },
      serveMetrics: false,
    });
    const a = await listen(guarded.handler);
    const b = await listen(hiddenMetrics.handler);
    try {
      const guardedClient = new Client(a.url, world.bodies);
      expectError(await guardedClient.request('GET', '/metrics'), 401, 'AGENTCELL_UNAUTHORIZED');
      expectError(
        await guardedClient.request('GET', '/metrics', { token: ACME }),
        401,
        'AGENTCELL_UNAUTHORIZED',
      );
      const ok = await guardedClient.request('GET', '/metrics', {
        token: 'metrics-token-0123456789',
      });
      expect(() => parseExposition(ok.text)).not.toThrow();
      expectError(
        await new Client(b.url, world.bodies).request('GET', '/metrics'),
        404,
        'AGENTCELL_NOT_FOUND',
      );
    } finally {
      await Promise.all([guarded.close(), hiddenMetrics.close(), a.close(), b.close()]);
    }
  });
});

describe('the exposition', () => {
  it('passes a Prometheus text-format parser and carries Node’s process metrics', async () => {
    expect((await client.send(ACME, 'parsed-1', { message: 'hello' })).status).toBe(200);
    const answer = await client.request('GET', '/metrics');
    const families = parsePrometheusTextFormat(answer.text);
    const byName = new Map(families.map((family) => [family.name, family]));
    for (const [name, type] of [
      ['process_cpu_user_seconds_total', 'COUNTER'],
      ['process_resident_memory_bytes', 'GAUGE'],
      ['nodejs_heap_size_used_bytes', 'GAUGE'],
      ['nodejs_eventloop_lag_seconds', 'GAUGE'],
      ['nodejs_gc_duration_seconds', 'HISTOGRAM'],
      ['agentcell_turns_total', 'COUNTER'],
      ['agentcell_model_call_duration_seconds', 'HISTOGRAM'],
      ['agentcell_worker_heap_used_bytes', 'SUMMARY'],
      ['agentcell_tokens_total', 'COUNTER'],
    ] as const) {
      expect(byName.get(name)?.type, name).toBe(type);
    }
    expect(Number(byName.get('process_resident_memory_bytes')?.metrics[0]?.value)).toBeGreaterThan(
      0,
    );
    // Every sample value is a number as Prometheus reads one.
    const values = families.flatMap((family) =>
      family.metrics.flatMap((sample) => [
        sample.value,
        sample.count,
        sample.sum,
        ...Object.values(sample.buckets ?? {}),
        ...Object.values(sample.quantiles ?? {}),
      ]),
    );
    for (const value of values.filter((v) => v !== undefined)) {
      expect(value).toMatch(/^(-?[0-9.]+(e[-+]?[0-9]+)?|[-+]?Inf|nan)$/i);
    }
    // Labels are bounded: agent names, tenants, providers, routes; never a session key.
    expect(answer.text).not.toContain('parsed-1');
    expect(
      parseExposition(answer.text).value('agentcell_turns_total', { agent: 'echo', outcome: 'ok' }),
    ).toBeGreaterThan(0);
  });

  it('puts its metrics in the embedder’s registry when given one, and takes them out on close', async () => {
    const registry = new Registry();
    const gateway = createGateway(world.supervisor, {
      tenants: { [ACME]: { id: 'acme' } },
      defaultAgent: 'echo',
      metricsRegistry: registry,
    });
    const served = await listen(gateway.handler);
    try {
      const own = new Client(served.url, world.bodies);
      expect((await own.send(ACME, 'own-1', { message: 'hello' })).status).toBe(200);
      const text = await registry.metrics();
      // gateway.metrics() reads the same registry.
      expect([...parseExposition(await gateway.metrics()).types.keys()]).toEqual([
        ...parseExposition(text).types.keys(),
      ]);
      const parsed = parseExposition(text);
      expect(parsed.value('agentcell_replies_total', { tenant: 'acme' })).toBe(1);
      expect(parsed.types.has('process_cpu_user_seconds_total')).toBe(false);
    } finally {
      await gateway.close();
      await served.close();
    }
    expect(registry.getMetricsAsArray()).toEqual([]);
  });

  it('refuses a metricsRegistry that is not a prom-client registry, or one taken', () => {
    expect(() =>
      createGateway(world.supervisor, {
        tenants: { [ACME]: { id: 'acme' } },
        metricsRegistry: {} as Registry,
      }),
    ).toThrow(expect.objectContaining({ code: 'AGENTCELL_OPTIONS_INVALID' }));
    // Nor one holding another gateway's (or supervisor's) metrics: names would clash.
    const shared = new Registry();
    const first = createGateway(world.supervisor, {
      tenants: { [ACME]: { id: 'acme' } },
      metricsRegistry: shared,
    });
    expect(() =>
      createGateway(world.supervisor, {
        tenants: { [ACME]: { id: 'acme' } },
        metricsRegistry: shared,
      }),
    ).toThrow(expect.objectContaining({ code: 'AGENTCELL_OPTIONS_INVALID' }));
    return first.close();
  });
});

describe('secrets', () => {
  it('never puts the apiKey in a response body (every body of this file)', () => {
    expectNoSecrets(world.bodies, 3);
  });
});
