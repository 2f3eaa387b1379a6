/**
 * The session thread's side of the model service: model clients that ask the host over the
 * thread's port instead of calling a provider. The thread holds no SDK, no connection and no
 * credential; it names an endpoint by its opaque reference and receives the streamed answer.
 *
 * Everything the thread posts (turn events and model calls alike) goes through one outbox,
 * flushed once per microtask checkpoint as one message: a turn that emits ten events in a row
 * costs the port one crossing, and the host still sees them in the order they were made.
 */
import { fromWire, InterruptedError, isAgentcellError } from '../errors.js';
import type { LlmCallObserver, LlmRequest, ModelClient, ModelResponse } from '../llm/model.js';
import { isModelReply, type ModelCallMessage, type ModelReplyMessage } from './model-protocol.js';

/** The part of a MessagePort the link uses (a port, or a test double). */
export interface LinkPort {
  postMessage(message: unknown): void;
  on(event: 'message', listener: (message: unknown) => void): unknown;
}

/**
 * Batches what the thread posts into one message per microtask checkpoint. A message that
 * `urgent` picks goes out at once with whatever waits before it: a tool is about to run, and
 * tool code may end the thread on the spot (`process.exit`, a crash), so the host must already
 * know which tool was in flight.
 */
export class Outbox<T> {
  readonly #port: LinkPort;
  readonly #urgent: (message: T) => boolean;
  #pending: T[] = [];

  constructor(port: LinkPort, urgent: (message: T) => boolean = isToolStart) {
    this.#port = port;
    this.#urgent = urgent;
  }

  post(message: T): void {
    if (this.#pending.length === 0) queueMicrotask(() => this.flush());
    this.#pending.push(message);
    if (this.#urgent(message)) this.flush();
  }

  /** Sends what is waiting now (before the thread blocks or exits). */
  flush(): void {
    if (this.#pending.length === 0) return;
    const batch = this.#pending;
    this.#pending = [];
    this.#port.postMessage(batch);
  }
}

function isToolStart(message: unknown): boolean {
  return (message as { type?: unknown } | null)?.type === 'tool-start';
}

interface PendingCall {
  readonly observer: LlmCallObserver;
  readonly resolve: (response: ModelResponse) => void;
  readonly reject: (error: unknown) => void;
}

export class ModelLink {
  readonly #outbox: { post(message: ModelCallMessage): void };
  readonly #calls = new Map<number, PendingCall>();
  #nextCallId = 1;

  constructor(port: LinkPort, outbox: { post(message: ModelCallMessage): void }) {
    this.#outbox = outbox;
    port.on('message', (message) => {
      if (Array.isArray(message)) {
        for (const item of message) if (isModelReply(item)) this.#receive(item);
      } else if (isModelReply(message)) {
        this.#receive(message);
      }
    });
  }

  /** A model client for one endpoint reference. */
  client(ref: string): ModelClient {
    return {
      complete: (request, signal, observer, meta) =>
        this.#call(ref, request, signal, observer, meta?.turnId ?? ''),
    };
  }

  #call(
    ref: string,
    request: LlmRequest,
    signal: AbortSignal,
    observer: LlmCallObserver | undefined,
    turnId: string,
  ): Promise<ModelResponse> {
    if (signal.aborted) return Promise.reject(abortReason(signal));
    const callId = this.#nextCallId++;
    return new Promise<ModelResponse>((resolve, reject) => {
      const onAbort = () => {
        if (!this.#calls.delete(callId)) return;
        this.#outbox.post({ type: 'model-cancel', callId });
        reject(abortReason(signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#calls.set(callId, {
        observer: observer ?? {},
        resolve: (response) => {
          signal.removeEventListener('abort', onAbort);
          resolve(response);
        },
        reject: (error) => {
          signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      });
      this.#outbox.post({ type: 'model-call', callId, turnId, ref, request });
    });
  }

  #receive(message: ModelReplyMessage): void {
    const call = this.#calls.get(message.callId);
    if (!call) return; // cancelled here already: whatever was still on its way is dropped
    switch (message.type) {
      case 'model-text':
        for (const delta of message.deltas) call.observer.onTextDelta?.(delta);
        return;
      case 'model-retry':
        call.observer.onRetry?.(message.attempt, fromWire(message.error), message.delayMs);
        return;
      case 'model-done':
        this.#calls.delete(message.callId);
        call.resolve(message.response);
        return;
      case 'model-failed':
        this.#calls.delete(message.callId);
        call.reject(fromWire(message.error));
        return;
    }
  }
}

function abortReason(signal: AbortSignal): unknown {
  const reason: unknown = signal.reason;
  return isAgentcellError(reason) ? reason : new InterruptedError('the model request was aborted');
}
