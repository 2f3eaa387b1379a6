/**
 * The Open Responses wire shapes the gateway answers with: the response object, its one output
 * message and the usage. Every field the specification lists is present, with `null` or the
 * neutral default where agentcell has nothing to say, because strict clients validate the whole
 * object; the sampling fields are null since the agent's own config decides them.
 */
import { randomBytes } from 'node:crypto';
import type { Usage } from '../../agent/messages.js';

export type ResponseStatus = 'in_progress' | 'completed' | 'failed';

export interface OutputText {
  readonly type: 'output_text';
  readonly text: string;
  readonly annotations: readonly never[];
  readonly logprobs: readonly never[];
}

export interface OutputMessage {
  readonly type: 'message';
  readonly id: string;
  readonly status: 'in_progress' | 'completed';
  readonly role: 'assistant';
  readonly content: readonly OutputText[];
}

/** A response object as JSON; kept as plain data so the store can hand it out as it is. */
export type ResponseBody = Readonly<Record<string, unknown>> & { readonly id: string };

/** What one response is, from its request to its end. */
export interface ResponseFields {
  readonly id: string;
  /** Unix seconds. */
  readonly createdAt: number;
  readonly model: string;
  readonly status: ResponseStatus;
  readonly output: readonly OutputMessage[];
  readonly usage?: Usage | undefined;
  readonly previousResponseId?: string | undefined;
  readonly conversation?: string | undefined;
  readonly store: boolean;
  readonly error?: { readonly code: string; readonly message: string } | undefined;
}

/** 24 random bytes as hex after OpenAI's prefixes: unguessable, as ids that fetch data must be. */
function newId(prefix: string): string {
  return `${prefix}_${randomBytes(24).toString('hex')}`;
}

export const newResponseId = (): string => newId('resp');
export const newMessageId = (): string => newId('msg');

export function outputText(text: string): OutputText {
  return { type: 'output_text', text, annotations: [], logprobs: [] };
}

export function outputMessage(id: string, text: string | undefined): OutputMessage {
  return text === undefined
    ? { type: 'message', id, status: 'in_progress', role: 'assistant', content: [] }
    : { type: 'message', id, status: 'completed', role: 'assistant', content: [outputText(text)] };
}

function responseUsage(usage: Usage): object {
  return {
    input_tokens: usage.inputTokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: usage.outputTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: usage.totalTokens,
  };
}

export function responseObject(fields: ResponseFields): ResponseBody {
  return {
    id: fields.id,
    object: 'response',
    created_at: fields.createdAt,
    completed_at: fields.status === 'completed' ? Math.floor(Date.now() / 1000) : null,
    status: fields.status,
    incomplete_details: null,
    model: fields.model,
    previous_response_id: fields.previousResponseId ?? null,
    instructions: null,
    output: fields.output,
    error: fields.error ?? null,
    tools: [],
    tool_choice: 'auto',
    truncation: 'disabled',
    parallel_tool_calls: true,
    text: { format: { type: 'text' } },
    top_p: null,
    presence_penalty: null,
    frequency_penalty: null,
    top_logprobs: null,
    temperature: null,
    reasoning: null,
    usage: fields.usage ? responseUsage(fields.usage) : null,
    max_output_tokens: null,
    max_tool_calls: null,
    store: fields.store,
    background: false,
    service_tier: 'default',
    metadata: {},
    safety_identifier: null,
    prompt_cache_key: null,
    conversation: fields.conversation === undefined ? null : { id: fields.conversation },
  };
}
