/**
 * The host's end of a session thread's model calls: each `model-call` the thread posts runs on
 * the host's model service; the streamed text goes back batched per tick, then the response or
 * the typed error. The host can cut a turn's calls itself (an interrupt, a timeout, a dead
 * thread) without waiting for the thread, and it counts each turn's usage from the responses it
 * served: that count, not the thread's, is what budgets and the journal use.
 */
import type { Context } from '@opentelemetry/api';
import { addUsage, type Usage, ZERO_USAGE } from '../../agent/messages.js';
import { InterruptedError, toWire } from '../../errors.js';
import type { ModelService } from '../../llm/model-service.js';
import { errorFields, log } from '../../log.js';
import type { WorkerMessage } from '../../worker/api.js';
import type { ModelCallMessage, ModelReplyMessage } from '../../worker/model-protocol.js';

/** The part of a MessagePort the server uses. */
export interface ReplyPort {
  postMessage(message: unknown): void;
}

/** Where a turn's model calls find the span they belong under (handoffs included). */
export interface TurnSpanLookup {
  contextOf(turnId: string): Context | undefined;
}

interface RunningCall {
  readonly turnId: string;
  readonly controller: AbortController;
}

export class ModelCallServer {
  readonly #service: ModelService;
  readonly #port: ReplyPort;
  readonly #calls = new Map<number, RunningCall>();
  /** Usage served per turn id (a handoff's calls are under its own `<turnId>/<agent>`). */
  readonly #usage = new Map<string, Usage>();
  /** Per-call usages in the order served, to correct the thread's own `usage` events. */
  readonly #served = new Map<string, Usage[]>();
  readonly #spans: TurnSpanLookup | undefined;
  /** For log lines; a warm thread learns it when a session takes it. */
  #sessionKey: string | undefined;
  #closed = false;

  constructor(
    service: ModelService,
    port: ReplyPort,
    session: {
      readonly sessionKey?: string | undefined;
      readonly spans?: TurnSpanLookup | undefined;
    },
  ) {
    this.#service = service;
    this.#port = port;
    this.#sessionKey = session.sessionKey;
    this.#spans = session.spans;
  }

  /** The session the thread now serves. */
  bind(sessionKey: string): void {
    this.#sessionKey = sessionKey;
  }

  handle(message: ModelCallMessage): void {
    if (message.type === 'model-cancel') {
      this.#calls
        .get(message.callId)
        ?.controller.abort(new InterruptedError('the model call was cancelled'));
      return;
    }
    if (this.#closed) {
      this.#reply({
        type: 'model-failed',
        callId: message.callId,
        error: toWire(new InterruptedError('the session thread is being stopped')),
      });
      return;
    }
    void this.#run(message);
  }

  async #run(message: Extract<ModelCallMessage, { type: 'model-call' }>): Promise<void> {
    const { callId, turnId } = message;
    const controller = new AbortController();
    this.#calls.set(callId, { turnId, controller });
    let deltas: string[] = [];
    const flushText = () => {
      if (deltas.length > 0) this.#reply({ type: 'model-text', callId, deltas });
      deltas = [];
    };
    try {
      const response = await this.#service.complete(
        message.ref,
        message.request,
        controller.signal,
        {
          onTextDelta: (delta) => {
            if (deltas.length === 0) setImmediate(flushText);
            deltas.push(delta);
          },
          onRetry: (attempt, error, delayMs) => {
            log('runtime').warn(
              { ...errorFields(error), sessionKey: this.#sessionKey, turnId, attempt, delayMs },
              'a model call failed and is retried',
            );
            flushText();
            this.#reply({ type: 'model-retry', callId, attempt, error: toWire(error), delayMs });
          },
        },
        { parent: this.#spans?.contextOf(turnId), turnId },
      );
      this.#count(turnId, response.usage);
      flushText();
      this.#reply({ type: 'model-done', callId, response });
    } catch (error) {
      flushText();
      this.#reply({ type: 'model-failed', callId, error: toWire(error) });
    } finally {
      this.#calls.delete(callId);
    }
  }

  #count(turnId: string, usage: Usage): void {
    this.#usage.set(turnId, addUsage(this.#usage.get(turnId) ?? ZERO_USAGE, usage));
    const served = this.#served.get(turnId);
    if (served) served.push(usage);
    else this.#served.set(turnId, [usage]);
  }

  /**
   * The thread's message with the usage the host counted in place of the thread's own figures:
   * each `usage` event gets the call's, the `final` event and a completed turn's delta get the
   * turn's sum. A tool that tampered with the thread's counters changes nothing that counts.
   */
  correct<M extends WorkerMessage>(message: M): M {
    switch (message.type) {
      case 'usage': {
        const served = this.#served.get(message.turnId)?.shift();
        return served ? { ...message, usage: served } : message;
      }
      case 'final':
        return { ...message, usage: this.#usageOf(message.turnId) };
      case 'turn-end': {
        const usage = this.#usageOf(message.turnId);
        this.#usage.delete(message.turnId);
        this.#served.delete(message.turnId);
        if (!message.ok) return message;
        const { result, paused } = message;
        if (paused) {
          return { ...message, paused: { ...paused, checkpoint: { ...paused.checkpoint, usage } } };
        }
        return { ...message, result: { ...result, delta: { ...result.delta, usage } } };
      }
      default:
        return message;
    }
  }

  #usageOf(turnId: string): Usage {
    return this.#usage.get(turnId) ?? ZERO_USAGE;
  }

  /**
   * Aborts the model calls of one turn and of its handoffs now: an interrupt or a timeout does
   * not wait for the thread to notice.
   */
  abortTurn(turnId: string, reason: unknown): void {
    for (const call of this.#calls.values()) {
      if (call.turnId === turnId || call.turnId.startsWith(`${turnId}/`)) {
        call.controller.abort(reason);
      }
    }
  }

  /** Aborts every call; later calls fail at once. For a thread that is gone or being stopped. */
  close(reason: unknown = new InterruptedError('the session thread stopped')): void {
    this.#closed = true;
    for (const call of this.#calls.values()) call.controller.abort(reason);
  }

  #reply(message: ModelReplyMessage): void {
    if (this.#closed && message.type !== 'model-failed') return;
    try {
      this.#port.postMessage(message);
    } catch (error) {
      // The port closed with its thread: nobody is left to answer.
      log('runtime').debug(
        { ...errorFields(error), sessionKey: this.#sessionKey, type: message.type },
        'a model call answer found its session thread gone',
      );
    }
  }
}
