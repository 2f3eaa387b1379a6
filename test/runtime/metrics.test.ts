/**
 * A supervisor's Prometheus metrics in an embedder's own prom-client registry: turns by agent
 * and outcome, latency histograms (turn, first token, model call), retries and 429s per
 * provider, tokens and cost per agent, passivations, the live workers' heap and event-loop
 * utilisation as summaries; bounded labels only (never a session key).
 */
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SupervisorMetrics } from '../../src/runtime/metrics.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { parseExposition } from '../gateway/helpers.js';
import { fixtureRegistry, mockAgent, shutdown } from './helpers.js';

const KEY = 'tenant-9:user-secret-key';

let mock: MockLlm;
let supervisor: Supervisor;

beforeAll(async () => {
  mock = await startMockLlm({
    rules: [
      {
        match: /^weather/,
        steps: [
          { fault: { kind: '429', times: 1 } },
          { toolCalls: [{ name: 'echo', arguments: { text: 'x' } }] },
          { reply: 'Sunny.' },
        ],
      },
    ],
  });
  const { registry, tools } = await fixtureRegistry(['echo']);
  supervisor = new Supervisor({ tools: registry });
  supervisor.register('forecaster', mockAgent(mock, { name: 'forecaster', tools }));
});

afterAll(async () => {
  if (supervisor) await shutdown(supervisor);
  await mock?.close();
});

async function sampleOf(
  registry: Registry,
  name: string,
  labels: Record<string, string | number> = {},
): Promise<number | undefined> {
  const metric = await registry.getSingleMetric(name)?.get();
  const matching = metric?.values.filter((sample) =>
    Object.entries(labels).every(([k, v]) => sample.labels[k] === v),
  );
  if (!matching || matching.length === 0) return undefined;
  return matching.reduce((sum, sample) => sum + sample.value, 0);
}

describe('SupervisorMetrics', () => {
  it('counts a turn, its model calls, a 429 and the live worker, in the embedder’s registry', async () => {
    const registry = new Registry();
    const metrics = new SupervisorMetrics(supervisor, { registry });
    try {
      const session = supervisor.session(KEY, { agent: 'forecaster' });
      const reply = await session.send('weather please');
      const provider = new URL(mock.url).host;
      const agent = { agent: 'forecaster' };

      expect(await sampleOf(registry, 'agentcell_turns_total', { ...agent, outcome: 'ok' })).toBe(
        1,
      );
      expect(
        await sampleOf(registry, 'agentcell_turn_duration_seconds', { ...agent, le: '+Inf' }),
      ).toBe(1);
      expect(
        await sampleOf(registry, 'agentcell_first_token_seconds', { ...agent, le: '+Inf' }),
      ).toBe(1);
      expect(
        await sampleOf(registry, 'agentcell_model_call_duration_seconds', {
          provider,
          outcome: 'ok',
          le: '+Inf',
        }),
      ).toBe(2);
      expect(
        await sampleOf(registry, 'agentcell_model_retries_total', {
          provider,
          code: 'AGENTCELL_LLM_RATE_LIMITED',
        }),
      ).toBe(1);
      expect(await sampleOf(registry, 'agentcell_model_rate_limited_total', { provider })).toBe(1);
      expect(
        await sampleOf(registry, 'agentcell_agent_tokens_total', { ...agent, type: 'input' }),
      ).toBe(reply.usage.inputTokens);
      expect(await sampleOf(registry, 'agentcell_sessions_live')).toBe(1);

      const text = await registry.metrics();
      const parsed = parseExposition(text);
      expect(parsed.types.get('agentcell_worker_heap_used_bytes')).toBe('summary');
      expect(parsed.value('agentcell_worker_heap_used_bytes_count')).toBe(1);
      expect(parsed.value('agentcell_worker_heap_used_bytes', { quantile: '0.5' })).toBeGreaterThan(
        0,
      );
      const elu = parsed.value('agentcell_worker_event_loop_utilization', { quantile: '0.99' });
      expect(elu).toBeGreaterThanOrEqual(0);
      expect(elu).toBeLessThanOrEqual(1);
      // Bounded labels: no session key, and Node's process metrics are the embedder's call.
      expect(text).not.toContain('user-secret-key');
      expect(parsed.types.has('process_cpu_user_seconds_total')).toBe(false);

      await session.passivate('requested');
      expect(
        await sampleOf(registry, 'agentcell_passivations_total', { reason: 'requested' }),
      ).toBe(1);
    } finally {
      metrics.close();
    }
    expect(registry.getMetricsAsArray()).toEqual([]);
  });

  it('refuses a registry that holds a supervisor’s metrics already, with AGENTCELL_OPTIONS_INVALID', () => {
    const registry = new Registry();
    const first = new SupervisorMetrics(supervisor, { registry });
    expect(() => new SupervisorMetrics(supervisor, { registry })).toThrow(
      expect.objectContaining({ code: 'AGENTCELL_OPTIONS_INVALID' }),
    );
    first.close();
    // Once closed, the registry takes them again.
    new SupervisorMetrics(supervisor, { registry }).close();
  });

  it('stops counting once closed', async () => {
    const registry = new Registry();
    const metrics = new SupervisorMetrics(supervisor, { registry });
    metrics.stop();
    await supervisor.session('tenant-9:other', { agent: 'forecaster' }).send('hello');
    expect(await sampleOf(registry, 'agentcell_turns_total')).toBeUndefined();
    metrics.close();
  });
});
