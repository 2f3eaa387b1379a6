/**
 * One OpenTelemetry trace per turn, across the thread boundary: the host's `invoke_agent` span,
 * the `chat` spans of the model calls the host served for it, and the `execute_tool` spans of
 * the tool calls its session thread ran, with the GenAI attributes and no message text unless
 * asked for. Recorded by the SDK's in-memory exporter, and exported over OTLP/HTTP to a real
 * receiver on 127.0.0.1.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createGateway } from '../../src/gateway/gateway.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, startMockLlm } from '../../src/testing/mock-llm.js';
import { listen } from '../support/harness.js';
import { fixtureRegistry, mockAgent, rejectionOf, shutdown, thrownBy } from './helpers.js';

const QUESTION = 'weather secret-question-text';
const TOOL_TEXT = 'secret-tool-argument';

let mock: MockLlm;
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
let dedicated: Supervisor;
let pooled: Supervisor;

beforeAll(async () => {
  mock = await startMockLlm({
    rules: [
      {
        match: /^weather/,
        steps: [
          // The first call meets a 429, retried: still one `chat` span.
          { fault: { kind: '429', times: 1 } },
          { toolCalls: [{ name: 'echo', arguments: { text: TOOL_TEXT } }] },
          { reply: 'Sunny.' },
        ],
      },
    ],
  });
  const { registry, tools } = await fixtureRegistry(['echo']);
  dedicated = new Supervisor({ tools: registry, tracing: { tracerProvider: provider } });
  dedicated.register('forecaster', mockAgent(mock, { name: 'forecaster', tools }));
  pooled = new Supervisor({
    tools: registry,
    placement: 'pooled',
    poolThreads: 1,
    tracing: { tracerProvider: provider, conversationId: 'sha256', recordContent: true },
  });
  pooled.register('forecaster', mockAgent(mock, { name: 'forecaster', tools }));
});

afterAll(async () => {
  await Promise.all([dedicated && shutdown(dedicated), pooled && shutdown(pooled)]);
  await mock?.close();
  await provider.shutdown();
});

beforeEach(() => exporter.reset());

/** The spans of one trace, by operation. */
function treeOf(spans: readonly ReadableSpan[], turnId: string) {
  const turn = spans.find((span) => span.attributes['agentcell.turn_id'] === turnId);
  if (!turn) throw new Error(`no invoke_agent span for turn ${turnId}`);
  const traceId = turn.spanContext().traceId;
  const inTrace = spans.filter((span) => span.spanContext().traceId === traceId);
  const operation = (name: string) =>
    inTrace.filter((span) => span.attributes['gen_ai.operation.name'] === name);
  return { turn, inTrace, chats: operation('chat'), tools: operation('execute_tool') };
}

describe('a tool-calling turn in a session worker', () => {
  it('is one trace: invoke_agent under the caller, chat and execute_tool under it', async () => {
    const caller = provider.getTracer('test').startSpan('caller');
    const parent = trace.setSpan(ROOT_CONTEXT, caller);
    const reply = await dedicated
      .session('tenant-1:user-1', { agent: 'forecaster' })
      .send(QUESTION, { traceContext: parent });
    caller.end();
    expect(reply.text).toBe('Sunny.');

    const { turn, inTrace, chats, tools } = treeOf(exporter.getFinishedSpans(), reply.turnId);
    expect(turn.name).toBe('invoke_agent forecaster');
    expect(turn.kind).toBe(SpanKind.INTERNAL);
    expect(turn.spanContext().traceId).toBe(caller.spanContext().traceId);
    expect(turn.parentSpanContext?.spanId).toBe(caller.spanContext().spanId);
    expect(turn.attributes).toMatchObject({
      'gen_ai.operation.name': 'invoke_agent',
      'gen_ai.agent.name': 'forecaster',
      'gen_ai.conversation.id': 'tenant-1:user-1',
      'gen_ai.usage.input_tokens': reply.usage.inputTokens,
      'gen_ai.usage.output_tokens': reply.usage.outputTokens,
    });
    expect(turn.status.code).not.toBe(SpanStatusCode.ERROR);

    // The 429 was retried inside the first call: two calls, two spans, one retry event.
    expect(chats).toHaveLength(2);
    for (const chat of chats) {
      expect(chat.name).toBe('chat mock-model');
      expect(chat.kind).toBe(SpanKind.CLIENT);
      expect(chat.parentSpanContext?.spanId).toBe(turn.spanContext().spanId);
      expect(chat.attributes).toMatchObject({
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': 'mock-model',
        'server.address': '127.0.0.1',
        'server.port': Number(new URL(mock.url).port),
      });
      expect(chat.attributes['gen_ai.usage.input_tokens']).toBeGreaterThan(0);
    }
    const retried = chats.flatMap((chat) => chat.events.filter((e) => e.name === 'retry'));
    expect(retried.map((event) => event.attributes?.['error.type'])).toEqual([
      'AGENTCELL_LLM_RATE_LIMITED',
    ]);

    expect(tools).toHaveLength(1);
    const [tool] = tools;
    expect(tool?.name).toBe('execute_tool echo');
    expect(tool?.parentSpanContext?.spanId).toBe(turn.spanContext().spanId);
    expect(tool?.attributes).toMatchObject({
      'gen_ai.tool.name': 'echo',
      'gen_ai.tool.type': 'function',
    });
    expect(tool?.attributes['gen_ai.tool.call.id']).toEqual(expect.any(String));
    expect(inTrace).toHaveLength(1 + 2 + 1 + 1); // caller, turn, chats, tool

    // No message text, tool argument or result unless the supervisor opted in.
    const recorded = JSON.stringify(inTrace.map((span) => [span.attributes, span.events]));
    expect(recorded).not.toContain('secret-question-text');
    expect(recorded).not.toContain(TOOL_TEXT);
    expect(recorded).not.toContain('Sunny.');
  });

  it('without a caller context starts a trace of its own per turn', async () => {
    const session = dedicated.session('tenant-1:user-2', { agent: 'forecaster' });
    const first = await session.send('hello');
    const second = await session.send('hello again');
    const spans = exporter.getFinishedSpans();
    const a = treeOf(spans, first.turnId).turn;
    const b = treeOf(spans, second.turnId).turn;
    expect(a.parentSpanContext).toBeUndefined();
    expect(a.spanContext().traceId).not.toBe(b.spanContext().traceId);
  });

  it('under pooled placement: the same tree, a hashed conversation id, and content when asked', async () => {
    const reply = await pooled.session('tenant-1:user-3', { agent: 'forecaster' }).send(QUESTION);
    const { turn, inTrace, chats, tools } = treeOf(exporter.getFinishedSpans(), reply.turnId);
    expect(inTrace).toHaveLength(1 + 2 + 1);
    for (const child of [...chats, ...tools]) {
      expect(child.parentSpanContext?.spanId).toBe(turn.spanContext().spanId);
    }
    const conversation = turn.attributes['gen_ai.conversation.id'];
    expect(conversation).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(inTrace.map((span) => span.attributes))).not.toContain('user-3');
    expect(turn.attributes['gen_ai.input.messages']).toContain('secret-question-text');
    expect(turn.attributes['gen_ai.output.messages']).toContain('Sunny.');
    expect(tools[0]?.attributes['gen_ai.tool.call.arguments']).toContain(TOOL_TEXT);
    expect(tools[0]?.attributes['gen_ai.tool.call.result']).toContain(TOOL_TEXT);
  });

  it('marks a failed turn with its error code', async () => {
    mock.setRules([{ match: /^broken/, steps: [{ fault: { kind: '500' } }] }]);
    try {
      const session = dedicated.session('tenant-1:user-4', { agent: 'forecaster' });
      const failed = await rejectionOf(session.send('broken'));
      const spans = exporter.getFinishedSpans();
      const turn = spans.find((span) => span.name === 'invoke_agent forecaster');
      expect(turn?.attributes['error.type']).toBe(failed.code);
      expect(turn?.status.code).toBe(SpanStatusCode.ERROR);
      const chat = spans.find((span) => span.name === 'chat mock-model');
      expect(chat?.attributes['error.type']).toBe(failed.code);
    } finally {
      mock.setRules([]);
    }
  });
});

describe('the gateway', () => {
  it('continues the trace of an incoming traceparent', async () => {
    // What an OpenTelemetry SDK registers: the W3C propagator reads `traceparent`.
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    const gateway = createGateway(dedicated, {
      tenants: { 'trace-token-0123456789': { id: 'acme' } },
      defaultAgent: 'forecaster',
    });
    const server = await listen(gateway.handler);
    try {
      const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
      const spanId = '00f067aa0ba902b7';
      const answer = await fetch(`${server.url}/v1/sessions/traced/messages`, {
        method: 'POST',
        headers: {
          authorization: 'Bearer trace-token-0123456789',
          'content-type': 'application/json',
          traceparent: `00-${traceId}-${spanId}-01`,
        },
        body: JSON.stringify({ message: 'hello' }),
      });
      expect(answer.status).toBe(200);
      const { turnId } = (await answer.json()) as { turnId: string };
      const { turn, chats } = treeOf(exporter.getFinishedSpans(), turnId);
      expect(turn.spanContext().traceId).toBe(traceId);
      expect(turn.parentSpanContext?.spanId).toBe(spanId);
      expect(chats.map((chat) => chat.spanContext().traceId)).toEqual([traceId]);
    } finally {
      propagation.disable();
      await gateway.close();
      await server.close();
    }
  });
});

describe('tracing options', () => {
  it('refuses what is not a tracer provider or a known conversation id form', () => {
    for (const tracing of [
      { tracerProvider: {} },
      { conversationId: 'md5' },
      { recordContent: 1 },
    ]) {
      expect(thrownBy(() => new Supervisor({ tracing } as never)).code).toBe(
        'AGENTCELL_OPTIONS_INVALID',
      );
    }
  });
});

describe('OTLP/HTTP', () => {
  it('exports a turn’s spans to a collector over HTTP', async () => {
    const bodies: unknown[] = [];
    const receiver = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        if (req.url === '/v1/traces') bodies.push(JSON.parse(Buffer.concat(chunks).toString()));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const { port } = receiver.address() as AddressInfo;
    const otlp = new BasicTracerProvider({
      spanProcessors: [
        new SimpleSpanProcessor(
          new OTLPTraceExporter({ url: `http://127.0.0.1:${port}/v1/traces` }),
        ),
      ],
    });
    const supervisor = new Supervisor({
      placement: 'pooled',
      poolThreads: 1,
      tracing: { tracerProvider: otlp },
    });
    try {
      supervisor.register('forecaster', mockAgent(mock, { name: 'forecaster' }));
      const reply = await supervisor.session('otlp-1', { agent: 'forecaster' }).send('hello');
      await otlp.forceFlush();
      const spans = (bodies as OtlpBody[]).flatMap((body) =>
        body.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans)),
      );
      const attribute = (span: OtlpSpan, key: string) =>
        span.attributes.find((a) => a.key === key)?.value;
      const turn = spans.find(
        (span) => attribute(span, 'agentcell.turn_id')?.stringValue === reply.turnId,
      );
      expect(turn?.name).toBe('invoke_agent forecaster');
      const chat = spans.find((span) => span.name === 'chat mock-model');
      expect(chat?.traceId).toBe(turn?.traceId);
      expect(chat?.parentSpanId).toBe(turn?.spanId);
      expect(attribute(turn as OtlpSpan, 'gen_ai.conversation.id')?.stringValue).toBe('otlp-1');
    } finally {
      await shutdown(supervisor);
      await otlp.shutdown();
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    }
  });
});

interface OtlpSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly name: string;
  readonly attributes: readonly { key: string; value: { stringValue?: string } }[];
}
interface OtlpBody {
  readonly resourceSpans: readonly { scopeSpans: readonly { spans: readonly OtlpSpan[] }[] }[];
}
