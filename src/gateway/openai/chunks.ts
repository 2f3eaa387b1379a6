/**
 * OpenAI's wire shapes for what the Chat Completions routes answer: the completion, the
 * stream's chunks (role first, content deltas, the finish, then usage when asked for), the
 * model list and the error body. Field for field as OpenAI sends them, because clients parse
 * them strictly (the `openai` SDKs, Open WebUI, LibreChat).
 */
import type { Usage } from '../../agent/messages.js';
import type { PublicError } from '../http.js';

export interface OpenAiUsage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly total_tokens: number;
}

export function openAiUsage(usage: Usage): OpenAiUsage {
  return {
    prompt_tokens: usage.inputTokens,
    completion_tokens: usage.outputTokens,
    total_tokens: usage.totalTokens,
  };
}

/** What every completion and chunk of one answer shares. */
export interface CompletionIds {
  readonly id: string;
  /** Unix seconds. */
  readonly created: number;
  readonly model: string;
}

export function completionId(turnId: string): string {
  return `chatcmpl-${turnId}`;
}

export function completion(ids: CompletionIds, text: string, usage: Usage): object {
  return {
    id: ids.id,
    object: 'chat.completion',
    created: ids.created,
    model: ids.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: text, refusal: null },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: openAiUsage(usage),
  };
}

type Delta =
  | { readonly role: 'assistant'; readonly content: string }
  | { readonly content: string };

/**
 * One chunk with one choice. With `include_usage` OpenAI sends `usage: null` on every chunk
 * but the last, and some clients read the field's presence to know usage is coming.
 */
export function chunk(
  ids: CompletionIds,
  choice: { delta: Delta | Record<string, never>; finish: 'stop' | null },
  includeUsage: boolean,
): object {
  return {
    id: ids.id,
    object: 'chat.completion.chunk',
    created: ids.created,
    model: ids.model,
    choices: [{ index: 0, delta: choice.delta, logprobs: null, finish_reason: choice.finish }],
    ...(includeUsage && { usage: null }),
  };
}

/** The last chunk when usage was asked for: no choices, the turn's usage. */
export function usageChunk(ids: CompletionIds, usage: Usage): object {
  return {
    id: ids.id,
    object: 'chat.completion.chunk',
    created: ids.created,
    model: ids.model,
    choices: [],
    usage: openAiUsage(usage),
  };
}

/** One SSE event as OpenAI writes them: a `data:` line, no event name. */
export function dataFrame(data: unknown): string {
  return `data: ${JSON.stringify(data)}\n\n`;
}

export const DONE_FRAME = 'data: [DONE]\n\n';

/** OpenAI's error `type` for a status; `code` carries agentcell's stable code. */
function errorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** `{ error: { message, type, code } }`, as OpenAI-compatible clients read errors. */
export function errorBody(shown: PublicError): object {
  return { error: { message: shown.message, type: errorType(shown.status), code: shown.code } };
}

export interface ModelObject {
  readonly id: string;
  readonly object: 'model';
  readonly created: number;
  readonly owned_by: 'agentcell';
}

export function modelList(names: readonly string[], created: number): object {
  const data: ModelObject[] = names.map((id) => ({
    id,
    object: 'model',
    created,
    owned_by: 'agentcell',
  }));
  return { object: 'list', data };
}
