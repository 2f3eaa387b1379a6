/**
 * The host's model service against the mock LLM over real HTTP: endpoints registered once and
 * told apart by everything they hold, tool arguments and structured output checked on the host,
 * usage priced on the host, and a provider's 429 holding back that provider's next calls until
 * its delay has passed on the service's clock.
 */
import { describe, expect, it } from 'vitest';
import type { LlmRequest } from '../../src/llm/model.js';
import { ModelService } from '../../src/llm/model-service.js';
import { SimulatedClock } from '../../src/testing/simulated-clock.js';
import { useMockLlm } from '../support/harness.js';

const mock = useMockLlm({
  rules: [
    {
      match: /^call weather badly$/,
      steps: [{ toolCalls: [{ name: 'weather', arguments: { city: 7 } }] }],
    },
    {
      match: /^call weather well$/,
      steps: [{ toolCalls: [{ name: 'weather', arguments: { city: 'Oslo' } }] }],
    },
    { match: /^json please$/, steps: [{ reply: '{"answer":"yes"}' }] },
  ],
});

const weather = {
  name: 'weather',
  description: 'Weather of a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

function ask(text: string, extra: Partial<LlmRequest> = {}): LlmRequest {
  return { model: 'mock-model', messages: [{ role: 'user', content: text }], ...extra };
}

describe('ModelService', () => {
  it('gives equal endpoints one reference and endpoints that differ anywhere their own', () => {
    const models = new ModelService();
    const one = models.register({
      baseUrl: mock.url,
      apiKey: 'k',
      pricing: { inputPerMillion: 1, outputPerMillion: 2 },
    });
    const same = models.register({
      apiKey: 'k',
      baseUrl: mock.url,
      pricing: { outputPerMillion: 2, inputPerMillion: 1 },
    });
    const otherPrice = models.register({
      baseUrl: mock.url,
      apiKey: 'k',
      pricing: { inputPerMillion: 3, outputPerMillion: 2 },
    });
    const otherKey = models.register({
      baseUrl: mock.url,
      apiKey: 'k2',
      pricing: { inputPerMillion: 1, outputPerMillion: 2 },
    });
    expect(same).toBe(one);
    expect(new Set([one, otherPrice, otherKey]).size).toBe(3);
    // The reference says nothing of what it stands for.
    expect(one).not.toContain('k');
  });

  it('refuses a reference it never gave out with a typed error', async () => {
    const models = new ModelService();
    await expect(
      models.complete('model-unknown', ask('hi'), new AbortController().signal),
    ).rejects.toMatchObject({ code: 'AGENTCELL_INTERNAL' });
  });

  it('checks tool arguments against the tool schema on the host, and passes good ones as they are', async () => {
    const models = new ModelService();
    const ref = models.register({ baseUrl: mock.url });
    const signal = new AbortController().signal;
    const bad = await models.complete(ref, ask('call weather badly', { tools: [weather] }), signal);
    expect(bad.toolCalls[0]?.argumentProblems).toContain('arguments/city must be string');
    const good = await models.complete(ref, ask('call weather well', { tools: [weather] }), signal);
    expect(good.toolCalls[0]).not.toHaveProperty('argumentProblems');
    expect(good.toolCalls[0]?.arguments).toBe('{"city":"Oslo"}');
  });

  it('checks structured output against its schema on the host', async () => {
    const models = new ModelService();
    const ref = models.register({ baseUrl: mock.url });
    const signal = new AbortController().signal;
    const schema = (type: string) => ({
      name: 'out',
      strict: false,
      schema: { type: 'object', properties: { answer: { type } }, required: ['answer'] },
    });
    const fits = await models.complete(
      ref,
      ask('json please', { jsonSchema: schema('string') }),
      signal,
    );
    expect(fits.outputProblems).toBe('');
    const off = await models.complete(
      ref,
      ask('json please', { jsonSchema: schema('number') }),
      signal,
    );
    expect(off.outputProblems).toContain('must be number');
  });

  it('prices each call with the endpoint pricing', async () => {
    const models = new ModelService();
    const ref = models.register({
      baseUrl: mock.url,
      pricing: { inputPerMillion: 1e6, outputPerMillion: 2e6 },
    });
    const { usage } = await models.complete(ref, ask('hello'), new AbortController().signal);
    expect(usage.llmCalls).toBe(1);
    expect(usage.totalTokens).toBe(usage.inputTokens + usage.outputTokens);
    expect(usage.costUsd).toBeCloseTo(usage.inputTokens + 2 * usage.outputTokens, 9);
  });

  it('holds a provider back after its 429 until the delay has passed, then lets its calls through', async () => {
    const clock = new SimulatedClock(Date.now());
    const models = new ModelService({ clock });
    const ref = models.register({ baseUrl: mock.url, maxRetries: 1 });
    const signal = new AbortController().signal;
    // The 429 asks for 10 ms: the retry and any other call of this provider wait for the clock.
    let retried = (): void => {};
    const retryScheduled = new Promise<void>((resolve) => {
      retried = resolve;
    });
    const limited = models.complete(ref, ask('first [[mock:429x1]]'), signal, {
      onRetry: () => retried(),
    });
    await retryScheduled;
    const other = models.complete(ref, ask('second'), signal);
    let settled = false;
    void Promise.allSettled([limited, other]).then(() => {
      settled = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(settled).toBe(false);
    expect(mock.requests.length).toBe(1);
    clock.increment(10);
    await expect(limited).resolves.toMatchObject({ finishReason: 'stop' });
    await expect(other).resolves.toMatchObject({ finishReason: 'stop' });
    expect(mock.requests.length).toBe(3);
  });
});
