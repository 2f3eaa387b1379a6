/**
 * The dashboard page's code that runs without a browser: its latency figures (read through the
 * one quantile definition) and its SSE reading (eventsource-parser); and its markup holds
 * every element the script asks for by id. The page in a browser is dashboard.e2e.test.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { errorOf, readEvents } from '../../src/gateway/dashboard/events.js';
import { latencyOf } from '../../src/gateway/dashboard/latency.js';
import { sseFrame } from '../../src/gateway/sse.js';
import { quantile } from '../../src/quantile.js';

describe('the latency chart', () => {
  it('reads p50 and p95 through the shared quantile()', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 120_000 }), { maxLength: 60 }), (durations) => {
        const sorted = [...durations].sort((a, b) => a - b);
        const latency = latencyOf(durations);
        expect(latency.p50).toBe(quantile(sorted, 0.5));
        expect(latency.p95).toBe(quantile(sorted, 0.95));
        expect(latency.max).toBe(sorted.at(-1));
      }),
    );
  });

  it('gives nearest-rank figures, and none without turns', () => {
    expect(latencyOf([40, 10, 30, 20])).toEqual({
      sorted: [10, 20, 30, 40],
      p50: 20,
      p95: 40,
      max: 40,
    });
    expect(latencyOf([])).toEqual({ sorted: [], p50: undefined, p95: undefined, max: undefined });
  });
});

/** A response whose body arrives in `chunks`. */
function streamed(chunks: readonly Uint8Array[]): Response {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
  return new Response(body, { headers: { 'content-type': 'text/event-stream' } });
}

async function framesOf(chunks: readonly Uint8Array[]) {
  const frames: { event: string; data: unknown }[] = [];
  await readEvents(streamed(chunks), (event, data) => frames.push({ event, data }));
  return frames;
}

describe('reading an event stream', () => {
  const text = [
    sseFrame('text', { delta: 'grüße ✓' }),
    ': keep-alive\n\n',
    'data: {"plain":true}\n\n',
    'event: broken\ndata: not json\n\n',
    sseFrame('done', { reply: 'ok' }),
  ].join('');
  const bytes = new TextEncoder().encode(text);
  const expected = [
    { event: 'text', data: { delta: 'grüße ✓' } },
    { event: 'message', data: { plain: true } },
    { event: 'done', data: { reply: 'ok' } },
  ];

  it('hands over each frame with JSON data; skips comments and data that is not JSON', async () => {
    expect(await framesOf([bytes])).toEqual(expected);
  });

  it('gives the same frames however the bytes are cut (inside a line, inside a character)', async () => {
    for (let at = 1; at < bytes.length; at++) {
      expect(await framesOf([bytes.subarray(0, at), bytes.subarray(at)])).toEqual(expected);
    }
    expect(await framesOf([...bytes].map((byte) => Uint8Array.of(byte)))).toEqual(expected);
  });

  it('ends the reading with what the frame handler throws', async () => {
    const failing = readEvents(streamed([bytes]), () => {
      throw new Error('handler failed');
    });
    await expect(failing).rejects.toThrow('handler failed');
  });

  it('reads a refusal as the gateway writes it, or falls back to the status', async () => {
    const refusal = Response.json(
      { error: { code: 'AGENTCELL_TENANT_LIMIT', message: 'too many' } },
      { status: 429 },
    );
    expect(await errorOf(refusal)).toEqual({ code: 'AGENTCELL_TENANT_LIMIT', message: 'too many' });
    const bare = new Response('<html>', { status: 502, statusText: 'Bad Gateway' });
    expect(await errorOf(bare)).toEqual({ code: 'HTTP 502', message: 'Bad Gateway' });
  });
});

describe('the page', () => {
  it('has every element its script asks for by id', () => {
    const dir = fileURLToPath(new URL('../../src/gateway/dashboard/', import.meta.url));
    const html = readFileSync(join(dir, 'page.html'), 'utf8');
    const ids = new Set<string>();
    for (const file of readdirSync(dir).filter((name) => name.endsWith('.ts'))) {
      const code = readFileSync(join(dir, file), 'utf8');
      for (const match of code.matchAll(/\$(?:<\w+>)?\('([\w-]+)'\)/g)) ids.add(match[1] ?? '');
    }
    expect(ids.size).toBeGreaterThan(20);
    const missing = [...ids].filter((id) => !html.includes(`id="${id}"`));
    expect(missing).toEqual([]);
  });
});
