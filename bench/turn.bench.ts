/**
 * In-process turns against the mock LLM (in its own process): the runtime's own overhead per
 * turn at zero model latency, and throughput at 50 ms latency with 100 concurrent clones.
 * Baseline: the same streamed request made directly with the openai SDK.
 */
import OpenAI from 'openai';
import { Agent } from '../src/agent/agent.js';
import { formatMicros, formatNumber, measure, ratioTable } from './_util/measure.js';
import { startMockProcess } from './_util/mock-process.js';

async function rawStream(sdk: OpenAI): Promise<void> {
  const stream = await sdk.chat.completions.create({
    model: 'mock-model',
    messages: [{ role: 'user', content: 'hello there' }],
    stream: true,
    stream_options: { include_usage: true },
  });
  for await (const _ of stream);
}

async function concurrentTurns(
  agents: readonly Agent[],
  turnsEach: number,
): Promise<{ turnsPerSecond: number; elapsedMs: number }> {
  const start = performance.now();
  await Promise.all(
    agents.map(async (agent) => {
      for (let i = 0; i < turnsEach; i++) await agent.chat(`hello ${i}`);
    }),
  );
  const elapsedMs = performance.now() - start;
  return { turnsPerSecond: (agents.length * turnsEach * 1000) / elapsedMs, elapsedMs };
}

export default async function turnBench(): Promise<string> {
  const fast = await startMockProcess();
  const slow = await startMockProcess({ firstTokenMs: 50 });
  try {
    const sdk = new OpenAI({ baseURL: fast.url, apiKey: 'k', maxRetries: 0 });
    const agent = new Agent({
      name: 'bench',
      llm: 'mock-model',
      baseUrl: fast.url,
      apiKey: 'k',
      memory: { historyWindow: 10 },
    });
    // Warm the mock server's process and both code paths before anything is measured.
    for (let i = 0; i < 500; i++) {
      await rawStream(sdk);
      await agent.chat('warm-up');
    }
    const zeroLatency = [
      await measure('openai SDK streamed request — baseline', () => rawStream(sdk), {
        durationMs: 3000,
      }),
      await measure('agent.chat() turn', () => agent.chat('hello there'), { durationMs: 3000 }),
    ];
    const overheadMicros = (zeroLatency[1]?.meanMicros ?? 0) - (zeroLatency[0]?.meanMicros ?? 0);

    const template = new Agent({
      name: 'bench',
      llm: 'mock-model',
      baseUrl: slow.url,
      apiKey: 'k',
      memory: { historyWindow: 10 },
    });
    const clones = Array.from({ length: 100 }, () => template.clone());
    const sdkSlow = new OpenAI({ baseURL: slow.url, apiKey: 'k', maxRetries: 0 });
    const rawStart = performance.now();
    await Promise.all(
      clones.map(async () => {
        for (let i = 0; i < 5; i++) await rawStream(sdkSlow);
      }),
    );
    const rawPerSecond = (100 * 5 * 1000) / (performance.now() - rawStart);
    await concurrentTurns(clones, 1); // warm-up: first request per clone builds its client
    const loaded = await concurrentTurns(clones, 5);
    const ideal = (100 * 1000) / 50;

    return [
      '### Zero model latency (runtime overhead per turn)',
      '',
      ratioTable(zeroLatency),
      '',
      `Runtime overhead per turn over the bare SDK request: ${formatMicros(overheadMicros)}.`,
      '',
      '### 50 ms time to first token, 100 concurrent clones × 5 turns',
      '',
      '| case | turns/s | vs ideal (100 / 50 ms) |',
      '|---|---:|---:|',
      `| openai SDK, 100 concurrent streams — baseline | ${formatNumber(rawPerSecond)} | ${(rawPerSecond / ideal).toFixed(2)}× |`,
      `| 100 clones, agent.chat() | ${formatNumber(loaded.turnsPerSecond)} | ${(loaded.turnsPerSecond / ideal).toFixed(2)}× |`,
      '',
      `Clones vs SDK baseline: ${(loaded.turnsPerSecond / rawPerSecond).toFixed(2)}×.`,
    ].join('\n');
  } finally {
    await Promise.all([fast.stop(), slow.stop()]);
  }
}
