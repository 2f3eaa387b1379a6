/**
 * One trace per turn, with the OpenTelemetry GenAI conventions: an `invoke_agent {agent}` span
 * on the host for the whole turn, `chat {model}` spans for the model calls the host serves for
 * it, and `execute_tool {tool}` spans for the tool calls the session thread reports.
 *
 * The session thread loads no tracing code: every message it posts already names its turn, so
 * the host finds the span a model call or a tool event belongs under by turn id, and records
 * the thread's tool calls with the times the thread stamped on them. Only the OpenTelemetry
 * API is used; without an SDK registered every span is a no-op.
 */
import { createHash } from 'node:crypto';
import {
  type Attributes,
  type Context,
  context as otelContext,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import type { Usage } from '../agent/messages.js';
import type { TurnEvent } from '../agent/turn-events.js';
import type { TurnSpanLookup } from './placement/model-calls.js';

/** How a session key appears as `gen_ai.conversation.id`. */
export type ConversationIdForm = 'key' | 'sha256';

export interface TracingOptions {
  /** @default the global tracer provider (a no-op until an OpenTelemetry SDK registers one) */
  readonly tracerProvider?: TracerProvider | undefined;
  /** `sha256` puts a hash of the session key in spans instead of the key. @default 'key' */
  readonly conversationId?: ConversationIdForm | undefined;
  /**
   * Puts message text, tool arguments and tool results on spans (`gen_ai.input.messages`, …).
   * They may hold personal data. @default false
   */
  readonly recordContent?: boolean | undefined;
}

/** What the tracer calls itself in every span it makes. */
export const TRACER_NAME = 'agentcell';

interface OpenTurn {
  readonly span: Span;
  readonly context: Context;
  readonly tools: Map<string, Span>;
}

export interface TurnBeginning {
  readonly key: string;
  readonly turnId: string;
  readonly agent: string;
  /** The user's message; none when the turn continues one that paused for an approval. */
  readonly message: string | undefined;
  readonly waitedMs: number;
  /** The caller's context: the turn's span is its child (a gateway request's `traceparent`). */
  readonly parent: Context | undefined;
}

export class TurnTraces implements TurnSpanLookup {
  readonly tracer: Tracer;
  readonly recordContent: boolean;
  readonly #conversationId: ConversationIdForm;
  readonly #turns = new Map<string, OpenTurn>();

  constructor(options: TracingOptions = {}) {
    const provider = options.tracerProvider ?? trace.getTracerProvider();
    this.tracer = provider.getTracer(TRACER_NAME);
    this.recordContent = options.recordContent ?? false;
    this.#conversationId = options.conversationId ?? 'key';
  }

  begin(turn: TurnBeginning): void {
    const parent = turn.parent ?? otelContext.active();
    const span = this.tracer.startSpan(
      `invoke_agent ${turn.agent}`,
      {
        kind: SpanKind.INTERNAL,
        attributes: {
          'gen_ai.operation.name': 'invoke_agent',
          'gen_ai.agent.name': turn.agent,
          'gen_ai.conversation.id': this.#conversation(turn.key),
          'agentcell.turn_id': turn.turnId,
          'agentcell.mailbox_wait_ms': turn.waitedMs,
          ...(this.recordContent &&
            turn.message !== undefined && {
              'gen_ai.input.messages': JSON.stringify([textMessage('user', turn.message)]),
            }),
        },
      },
      parent,
    );
    const context = trace.setSpan(parent, span);
    this.#turns.set(turn.turnId, { span, context, tools: new Map() });
  }

  /** The context of a running turn; a handoff's calls (`<turnId>/<agent>`) belong to its turn. */
  contextOf(turnId: string): Context | undefined {
    return this.#turns.get(turnId.split('/', 1)[0] ?? turnId)?.context;
  }

  /** Tool calls become `execute_tool` spans timed by the thread's own stamps. */
  event(event: TurnEvent): void {
    const turn = this.#turns.get(event.turnId);
    if (!turn) return;
    if (event.type === 'tool-start') {
      const attributes: Attributes = {
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': event.name,
        'gen_ai.tool.call.id': event.callId,
        'gen_ai.tool.type': 'function',
        ...(this.recordContent && { 'gen_ai.tool.call.arguments': event.arguments }),
      };
      const span = this.tracer.startSpan(
        `execute_tool ${event.name}`,
        {
          kind: SpanKind.INTERNAL,
          attributes,
          ...(event.at !== undefined && { startTime: event.at }),
        },
        turn.context,
      );
      turn.tools.set(event.callId, span);
    } else if (event.type === 'tool-end') {
      const span = turn.tools.get(event.callId);
      if (!span) return;
      turn.tools.delete(event.callId);
      if (this.recordContent) span.setAttribute('gen_ai.tool.call.result', event.result);
      if (!event.ok) fail(span, event.error?.code ?? 'AGENTCELL_TOOL_FAILED');
      span.end(event.at);
    }
  }

  /** Ends the turn's span (and any tool span the thread never closed: it died or was cut). */
  end(turnId: string, outcome: string, usage: Usage | undefined, reply?: string): void {
    const turn = this.#turns.get(turnId);
    if (!turn) return;
    this.#turns.delete(turnId);
    for (const span of turn.tools.values()) {
      fail(span, outcome === 'ok' ? 'AGENTCELL_INTERNAL' : outcome);
      span.end();
    }
    if (usage) {
      turn.span.setAttributes({
        'gen_ai.usage.input_tokens': usage.inputTokens,
        'gen_ai.usage.output_tokens': usage.outputTokens,
        'agentcell.usage.cost_usd': usage.costUsd,
        'agentcell.usage.llm_calls': usage.llmCalls,
      });
    }
    if (this.recordContent && reply !== undefined) {
      turn.span.setAttribute(
        'gen_ai.output.messages',
        JSON.stringify([textMessage('assistant', reply)]),
      );
    }
    if (outcome !== 'ok') fail(turn.span, outcome);
    turn.span.end();
  }

  #conversation(key: string): string {
    return this.#conversationId === 'sha256' ? createHash('sha256').update(key).digest('hex') : key;
  }
}

function fail(span: Span, code: string): void {
  span.setAttribute('error.type', code);
  span.setStatus({ code: SpanStatusCode.ERROR, message: code });
}

function textMessage(role: string, content: string) {
  return { role, parts: [{ type: 'text', content }] };
}
