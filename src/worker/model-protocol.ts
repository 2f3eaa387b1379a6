/**
 * Model calls across the session boundary: a session thread asks, the host's model service
 * calls the provider and streams the answer back. Both sides import these types.
 *
 * Text arrives batched per tick of the host's event loop, not one message per chunk (the
 * chunks stay apart inside the batch, so a stream keeps its granularity); the thread's own turn
 * events travel the other way batched the same way.
 */
import type { ErrorWire } from '../errors.js';
import type { LlmRequest, ModelResponse } from '../llm/model.js';

/** Thread → host. */
export type ModelCallMessage =
  | {
      readonly type: 'model-call';
      readonly callId: number;
      /** The session turn the call belongs to (handoffs included), for usage and interrupts. */
      readonly turnId: string;
      /** The endpoint's opaque reference: the thread never holds the credentials. */
      readonly ref: string;
      readonly request: LlmRequest;
    }
  | { readonly type: 'model-cancel'; readonly callId: number };

/** Host → thread. */
export type ModelReplyMessage =
  | { readonly type: 'model-text'; readonly callId: number; readonly deltas: readonly string[] }
  | {
      readonly type: 'model-retry';
      readonly callId: number;
      readonly attempt: number;
      readonly error: ErrorWire;
      readonly delayMs: number;
    }
  | { readonly type: 'model-done'; readonly callId: number; readonly response: ModelResponse }
  | { readonly type: 'model-failed'; readonly callId: number; readonly error: ErrorWire };

export function isModelReply(message: unknown): message is ModelReplyMessage {
  const type = (message as { type?: unknown } | null)?.type;
  return (
    type === 'model-text' ||
    type === 'model-retry' ||
    type === 'model-done' ||
    type === 'model-failed'
  );
}

export function isModelCall(message: unknown): message is ModelCallMessage {
  const type = (message as { type?: unknown } | null)?.type;
  return type === 'model-call' || type === 'model-cancel';
}
