/**
 * The OpenAI-compatible chat client: one streamed Chat Completions call with abort, retries
 * with backoff on 429/5xx and cut-off streams, and failures mapped to typed errors. Built on
 * the `openai` SDK; the SDK's own retries are off because a turn needs retries that also
 * cover a stream that stalls or breaks mid-way, with the agent's own backoff settings.
 */
import OpenAI from 'openai';
import type { ChatMessage } from '../agent/messages.js';
import { estimateTokens } from '../agent/tokens.js';
import { type Clock, systemClock } from '../clock.js';
import {
  type AgentcellError,
  InterruptedError,
  isAgentcellError,
  LlmAuthFailedError,
  LlmBadResponseError,
  LlmRateLimitedError,
  LlmRequestFailedError,
} from '../errors.js';
import type { LlmCallObserver, LlmRequest, LlmResponse } from './model.js';
import { isRetryable, retryDelay, sleep } from './retry.js';

export interface LlmClientOptions {
  readonly baseUrl?: string | undefined;
  readonly apiKey?: string | undefined;
  readonly headers?: Readonly<Record<string, string>> | undefined;
  readonly organization?: string | undefined;
  readonly project?: string | undefined;
  /** Retries of a call answered 429/5xx, refused, or cut off. @default 2 */
  readonly maxRetries?: number | undefined;
  /**
   * The backoff before the first retry, doubled each retry and capped at 60 s; each wait is a
   * random share of it (full jitter). A Retry-After header wins. @default 250
   */
  readonly retryBaseDelayMs?: number | undefined;
  /** A stream silent for this long is cut off and retried. @default 60000 */
  readonly idleTimeoutMs?: number | undefined;
  /** What retry waits run on; a simulated clock lets tests advance them. @default the system clock */
  readonly clock?: Clock | undefined;
  /** Uniform in [0, 1), for the jitter; seed it to make waits repeatable. @default Math.random */
  readonly random?: (() => number) | undefined;
}

const DEFAULT_MODEL = 'gpt-4o-mini';
const DEFAULT_BASE_URL = 'https://api.openai.com/v1';

/**
 * A Chat Completions client for one agent's endpoint.
 *
 * @example
 * const llm = new LlmClient({ baseUrl: 'http://127.0.0.1:8080/v1', apiKey: 'k' });
 * const reply = await llm.complete({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }, signal);
 */
export class LlmClient {
  readonly #sdk: OpenAI;
  readonly #maxRetries: number;
  readonly #retryBaseDelayMs: number;
  readonly #idleTimeoutMs: number;
  readonly #clock: Clock;
  readonly #random: () => number;

  constructor(options: LlmClientOptions = {}) {
    this.#sdk = new OpenAI({
      baseURL: options.baseUrl ?? DEFAULT_BASE_URL,
      // The SDK refuses to start without a key; local servers often need none.
      apiKey: options.apiKey ?? 'none',
      organization: options.organization ?? null,
      project: options.project ?? null,
      defaultHeaders: options.headers,
      maxRetries: 0,
      // Failures become typed errors here; the SDK's own console warnings would only add noise.
      logLevel: 'off',
    });
    this.#maxRetries = options.maxRetries ?? 2;
    this.#retryBaseDelayMs = options.retryBaseDelayMs ?? 250;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
  }

  /** One completion, streamed; retried on transient failures; aborted by `signal`. */
  async complete(
    request: LlmRequest,
    signal: AbortSignal,
    observer: LlmCallObserver = {},
  ): Promise<LlmResponse> {
    for (let attempt = 0; ; attempt++) {
      // An 'abort' listener never fires for a signal that is already aborted.
      if (signal.aborted) throw toLlmError(undefined, signal);
      try {
        return await this.#streamOnce(request, signal, observer);
      } catch (thrown) {
        const error = toLlmError(thrown, signal);
        const retryable = isRetryable(error);
        if (!retryable || attempt >= this.#maxRetries) throw error;
        const delayMs = retryDelay({
          attempt,
          baseDelayMs: this.#retryBaseDelayMs,
          headers: thrown instanceof OpenAI.APIError ? thrown.headers : undefined,
          now: this.#clock.now(),
          random: this.#random,
        });
        observer.onRetry?.(attempt + 1, error, delayMs);
        try {
          await sleep(this.#clock, delayMs, signal);
        } catch {
          throw toLlmError(undefined, signal);
        }
      }
    }
  }

  async #streamOnce(
    request: LlmRequest,
    signal: AbortSignal,
    observer: LlmCallObserver,
  ): Promise<LlmResponse> {
    const attempt = new AbortController();
    const onAbort = () => attempt.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    let idle: NodeJS.Timeout | undefined;
    const armIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(() => attempt.abort(new StreamStalled()), this.#idleTimeoutMs);
    };
    try {
      armIdle();
      const stream = await this.#sdk.chat.completions.create(toSdkRequest(request), {
        signal: attempt.signal,
      });
      const assembled = new ResponseAssembler();
      for await (const chunk of stream) {
        armIdle();
        const delta = assembled.add(chunk);
        if (delta) observer.onTextDelta?.(delta);
      }
      // An aborted SDK stream may just end instead of throwing: never mistake it for a reply.
      if (attempt.signal.aborted) throw attempt.signal.reason;
      return assembled.finish(request);
    } catch (error) {
      if (attempt.signal.reason instanceof StreamStalled && !signal.aborted)
        throw attempt.signal.reason;
      throw error;
    } finally {
      clearTimeout(idle);
      signal.removeEventListener('abort', onAbort);
    }
  }
}

/** A stream that went silent past the idle timeout. */
class StreamStalled extends Error {
  constructor() {
    super('the model stream stalled');
  }
}

type SdkRequest = OpenAI.Chat.Completions.ChatCompletionCreateParamsStreaming;

function toSdkRequest(request: LlmRequest): SdkRequest {
  const tools = request.tools?.length
    ? request.tools.map((tool) => ({
        type: 'function' as const,
        function: {
          name: tool.name,
          description: tool.description,
          parameters: tool.parameters as Record<string, unknown>,
        },
      }))
    : undefined;
  return {
    model: request.model || DEFAULT_MODEL,
    messages: request.messages.map(toSdkMessage),
    stream: true,
    stream_options: { include_usage: true },
    ...(tools && { tools }),
    ...(tools &&
      request.parallelToolCalls !== undefined && {
        parallel_tool_calls: request.parallelToolCalls,
      }),
    ...(request.jsonSchema && {
      response_format: {
        type: 'json_schema' as const,
        json_schema: {
          name: request.jsonSchema.name,
          schema: request.jsonSchema.schema as Record<string, unknown>,
          strict: request.jsonSchema.strict,
        },
      },
    }),
  };
}

function toSdkMessage(message: ChatMessage): OpenAI.Chat.Completions.ChatCompletionMessageParam {
  switch (message.role) {
    case 'system':
    case 'user':
      return { role: message.role, content: message.content };
    case 'assistant':
      return {
        role: 'assistant',
        content: message.content,
        ...(message.toolCalls?.length && {
          tool_calls: message.toolCalls.map((call) => ({
            id: call.id,
            type: 'function' as const,
            function: { name: call.name, arguments: call.arguments },
          })),
        }),
      };
    case 'tool':
      return { role: 'tool', tool_call_id: message.toolCallId, content: message.content };
  }
}

/** Puts streamed chunks back together: text, tool calls by index, usage, finish reason. */
class ResponseAssembler {
  #content = '';
  readonly #calls = new Map<number, { id: string; name: string; arguments: string }>();
  #inputTokens: number | undefined;
  #outputTokens: number | undefined;
  #finishReason = '';
  #chunks = 0;

  add(chunk: OpenAI.Chat.Completions.ChatCompletionChunk): string {
    if (typeof chunk !== 'object' || chunk === null || !Array.isArray(chunk.choices)) {
      throw new LlmBadResponseError('a stream chunk has no choices array');
    }
    this.#chunks++;
    if (chunk.usage) {
      this.#inputTokens = chunk.usage.prompt_tokens;
      this.#outputTokens = chunk.usage.completion_tokens;
    }
    let text = '';
    for (const choice of chunk.choices) {
      if (choice.finish_reason) this.#finishReason = choice.finish_reason;
      const delta = choice.delta;
      if (!delta) continue;
      if (typeof delta.content === 'string') text += delta.content;
      for (const call of delta.tool_calls ?? []) this.#addToolCall(call);
    }
    this.#content += text;
    return text;
  }

  #addToolCall(call: OpenAI.Chat.Completions.ChatCompletionChunk.Choice.Delta.ToolCall): void {
    const current = this.#calls.get(call.index) ?? { id: '', name: '', arguments: '' };
    if (call.id) current.id = call.id;
    if (call.function?.name) current.name += call.function.name;
    if (call.function?.arguments) current.arguments += call.function.arguments;
    this.#calls.set(call.index, current);
  }

  finish(request: LlmRequest): LlmResponse {
    if (this.#chunks === 0)
      throw new LlmBadResponseError('the model stream ended without a single chunk');
    const toolCalls = [...this.#calls.entries()]
      .sort(([a], [b]) => a - b)
      .map(([index, call]) => ({
        id: call.id || `call_${index}`,
        name: call.name,
        arguments: call.arguments || '{}',
      }));
    if (toolCalls.some((call) => !call.name))
      throw new LlmBadResponseError('a streamed tool call has no function name');
    return {
      content: this.#content,
      toolCalls,
      // Servers that send no usage still cost something: estimate rather than report zero.
      inputTokens:
        this.#inputTokens ?? estimateTokens(request.messages.map((m) => m.content).join('')),
      outputTokens:
        this.#outputTokens ??
        estimateTokens(this.#content + toolCalls.map((c) => c.arguments).join('')),
      finishReason: this.#finishReason || 'stop',
    };
  }
}

function toLlmError(thrown: unknown, signal: AbortSignal): AgentcellError {
  if (signal.aborted) {
    const reason: unknown = signal.reason;
    return isAgentcellError(reason)
      ? reason
      : new InterruptedError('the model request was aborted');
  }
  if (isAgentcellError(thrown)) return thrown;
  if (thrown instanceof StreamStalled) {
    return new LlmRequestFailedError('the model stream stalled (no data within the idle timeout)', {
      cause: thrown,
    });
  }
  if (thrown instanceof OpenAI.APIError && thrown.status !== undefined) {
    const status = thrown.status;
    const details = { status };
    if (status === 401 || status === 403) {
      return new LlmAuthFailedError(`the model server refused the credentials (HTTP ${status})`, {
        details,
      });
    }
    if (status === 429)
      return new LlmRateLimitedError('the model server answered 429 Too Many Requests', {
        details,
      });
    return new LlmRequestFailedError(`the model server answered HTTP ${status}`, { details });
  }
  if (thrown instanceof OpenAI.APIConnectionError) {
    return new LlmRequestFailedError('could not reach the model server', {
      details: { connection: true },
    });
  }
  if (thrown instanceof SyntaxError) {
    return new LlmBadResponseError('the model server sent a body that is not valid JSON');
  }
  return new LlmRequestFailedError(
    `the model request failed: ${(thrown as Error)?.message ?? String(thrown)}`,
  );
}
