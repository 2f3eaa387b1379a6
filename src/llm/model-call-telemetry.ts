/**
 * What the host's model service reports about each model call: a `chat {model}` span with the
 * OpenTelemetry GenAI attributes (one span covering every retry, as the conventions ask), and a
 * plain record for metrics. Message text enters a span only when the embedder opted in.
 */
import {
  type Context,
  context as otelContext,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
} from '@opentelemetry/api';
import type { AgentcellError } from '../errors.js';
import type { LlmRequest, ModelResponse } from './model.js';

/** One finished model call, as metrics count it. Every label value is bounded by the config. */
export interface ModelCallRecord {
  /** The provider's host (`api.openai.com`, `127.0.0.1:8080`): one per configured endpoint. */
  readonly provider: string;
  readonly model: string;
  /** `ok`, or the code of the error the call failed with. */
  readonly outcome: string;
  readonly durationMs: number;
  /** The error codes of the attempts that were retried, in order. */
  readonly retries: readonly string[];
  /** The session turn that made the call, when a session thread did. */
  readonly turnId?: string | undefined;
}

/** Where a call belongs: the span it is a child of, and the session turn that made it. */
export interface ModelCallScope {
  readonly parent?: Context | undefined;
  readonly turnId?: string | undefined;
}

export interface ModelCallTelemetry {
  /** Where `chat` spans are made; the OpenTelemetry API's no-op tracer when none is set up. */
  readonly tracer: Tracer;
  /** Puts the request's messages and the reply's text on spans (they may hold personal data). */
  readonly recordContent: boolean;
  /** Hears every finished call. */
  readonly onCall?: ((call: ModelCallRecord) => void) | undefined;
  readonly now: () => number;
}

/** One call being watched: the span is started at once, so samplers see its attributes. */
export class ModelCallWatch {
  readonly #telemetry: ModelCallTelemetry;
  readonly #span: Span;
  readonly #provider: string;
  readonly #model: string;
  readonly #started: number;
  readonly #retries: string[] = [];
  readonly #turnId: string | undefined;

  constructor(
    telemetry: ModelCallTelemetry,
    request: LlmRequest,
    baseUrl: string,
    scope: ModelCallScope,
  ) {
    this.#telemetry = telemetry;
    this.#turnId = scope.turnId;
    this.#model = request.model;
    this.#started = telemetry.now();
    const url = new URL(baseUrl);
    this.#provider = url.host;
    const port = url.port === '' ? (url.protocol === 'http:' ? 80 : 443) : Number(url.port);
    this.#span = telemetry.tracer.startSpan(
      `chat ${request.model}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'gen_ai.operation.name': 'chat',
          // The wire protocol spoken: every endpoint is OpenAI-compatible.
          'gen_ai.provider.name': 'openai',
          'gen_ai.request.model': request.model,
          'server.address': url.hostname,
          'server.port': port,
          ...(telemetry.recordContent && {
            'gen_ai.input.messages': JSON.stringify(request.messages),
          }),
        },
      },
      scope.parent ?? otelContext.active(),
    );
  }

  retried(attempt: number, error: AgentcellError, delayMs: number): void {
    this.#retries.push(error.code);
    this.#span.addEvent('retry', {
      'agentcell.retry.attempt': attempt,
      'error.type': error.code,
      'agentcell.retry.delay_ms': delayMs,
    });
  }

  succeeded(response: ModelResponse): void {
    this.#span.setAttributes({
      'gen_ai.response.model': this.#model,
      'gen_ai.response.finish_reasons': [response.finishReason],
      'gen_ai.usage.input_tokens': response.usage.inputTokens,
      'gen_ai.usage.output_tokens': response.usage.outputTokens,
      ...(this.#telemetry.recordContent && {
        'gen_ai.output.messages': JSON.stringify([
          { role: 'assistant', parts: [{ type: 'text', content: response.content }] },
        ]),
      }),
    });
    this.#end('ok');
  }

  failed(error: unknown): void {
    const code = (error as { code?: unknown } | null)?.code;
    const type = typeof code === 'string' ? code : 'AGENTCELL_INTERNAL';
    this.#span.setAttribute('error.type', type);
    this.#span.setStatus({ code: SpanStatusCode.ERROR, message: type });
    this.#end(type);
  }

  #end(outcome: string): void {
    this.#span.end();
    this.#telemetry.onCall?.({
      provider: this.#provider,
      model: this.#model,
      outcome,
      durationMs: this.#telemetry.now() - this.#started,
      retries: this.#retries,
      ...(this.#turnId !== undefined && { turnId: this.#turnId }),
    });
  }
}
