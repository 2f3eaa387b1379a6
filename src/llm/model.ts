/**
 * What a turn asks of a model and what it gets back, as plain data, with no client attached:
 * session threads import this module, so it must stay free of the SDK, the validators and
 * anything that holds a secret. The host's model service (`model-service.ts`) answers these
 * requests; a session thread reaches it over its port (`src/worker/remote-model.ts`).
 */
import type { JsonSchema } from '../agent/config.js';
import type { ChatMessage, ToolCall, Usage } from '../agent/messages.js';
import type { AgentcellError } from '../errors.js';

export interface LlmToolSpec {
  readonly name: string;
  readonly description: string;
  readonly parameters: JsonSchema;
}

export interface LlmRequest {
  readonly model: string;
  readonly messages: readonly ChatMessage[];
  readonly tools?: readonly LlmToolSpec[] | undefined;
  readonly parallelToolCalls?: boolean | undefined;
  /** Ask for a JSON reply matching this schema (structured output). */
  readonly jsonSchema?:
    | { readonly name: string; readonly schema: JsonSchema; readonly strict: boolean }
    | undefined;
}

/** A tool call as the model sent it, with what the host found wrong with its arguments. */
export interface CheckedToolCall extends ToolCall {
  /** Why the arguments do not match the tool's JSON Schema; absent when they do. */
  readonly argumentProblems?: string | undefined;
}

export interface LlmResponse {
  readonly content: string;
  readonly toolCalls: readonly CheckedToolCall[];
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly finishReason: string;
}

/** A response as the model service returns it: checked, and its usage counted on the host. */
export interface ModelResponse extends LlmResponse {
  /** Tokens and cost of this call, counted by the host with the agent's pricing. */
  readonly usage: Usage;
  /**
   * Structured output only: why the reply does not match the schema (`''` when it does,
   * absent when the reply is not JSON or no schema was asked for).
   */
  readonly outputProblems?: string | undefined;
}

/** What a caller hears while a call runs. */
export interface LlmCallObserver {
  onTextDelta?(delta: string): void;
  onRetry?(attempt: number, error: AgentcellError, delayMs: number): void;
}

/** Which session turn a call belongs to: for usage counted per turn and interrupts on the host. */
export interface ModelCallMeta {
  readonly sessionKey: string;
  /** The turn making the call (a handoff's own turn id is `<turnId>/<agent>`). */
  readonly turnId: string;
}

/**
 * The model as a turn sees it: one call, streamed, aborted by `signal`. In-process it is the
 * host's model service bound to the agent's endpoint; in a session thread it is a proxy that
 * asks the host over a port. Either way the credentials stay on the host.
 */
export interface ModelClient {
  complete(
    request: LlmRequest,
    signal: AbortSignal,
    observer?: LlmCallObserver,
    meta?: ModelCallMeta,
  ): Promise<ModelResponse>;
}
