/**
 * The host side of one pooled turn: the ports its task gets (events and control on one, the
 * host's callbacks over comlink on the other), what the task said so far, and how the turn ended.
 */
import type { EventLoopUtilization } from 'node:perf_hooks';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import type { TurnEvent } from '../../agent/turn-events.js';
import { endpointOf } from '../../codec.js';
import type { ModelService } from '../../llm/model-service.js';
import type { HostApi, TurnEnd, WorkerMessage } from '../../worker/api.js';
import { isModelCall } from '../../worker/model-protocol.js';
import type {
  TurnTaskControl,
  TurnTaskMessage,
  TurnTaskStart,
} from '../../worker/turn-task-core.js';
import { type Deferred, deferred } from '../deferred.js';
import { ModelCallServer, type TurnSpanLookup } from './model-calls.js';
import { portClosed } from './port-drain.js';

/** Why the host aborted a task. */
export type AbortCause = 'escalated' | 'terminated' | 'interrupted';

/** What the task takes of the turn's ports, and when the events port has delivered everything. */
export interface OpenedTurn {
  readonly port: MessagePort;
  readonly hostPort: MessagePort;
  /** Resolves when the task closed its end of the events port (after its turn-end). */
  readonly closed: Promise<void>;
}

export class PooledTurn {
  readonly turnId: string;
  /** Set by the task's `task-start`: a pool thread has picked the task up. */
  threadId: number | undefined;
  aborted: AbortCause | undefined;
  /** The escalation timer of an interrupt. */
  grace: NodeJS.Timeout | undefined;
  /** Baseline of the last event-loop reading of the turn's thread. */
  elu: EventLoopUtilization | undefined;
  /** The same for observers (see TurnRunner.observeEventLoop). */
  observedElu: EventLoopUtilization | undefined;
  readonly #onEvent: (event: TurnEvent) => void;
  readonly #ended: Deferred<TurnEnd> = deferred();
  readonly #events = new MessageChannel();
  readonly #host = new MessageChannel();
  #settled = false;
  #lastSeq = -1;
  #models: ModelCallServer | undefined;

  constructor(turnId: string, onEvent: (event: TurnEvent) => void) {
    this.turnId = turnId;
    this.#onEvent = onEvent;
    // Settled while nobody awaits it yet (an interrupt during the journal read): not unhandled.
    this.#ended.promise.catch(() => {});
  }

  get settled(): boolean {
    return this.#settled;
  }

  /** How the turn ended: its turn-end, or the error that failed it. */
  get ended(): Promise<TurnEnd> {
    return this.#ended.promise;
  }

  /**
   * Starts listening to the task and serving `host` to it; `onStart` hears which thread
   * picked the task up. The returned ports go to the task.
   */
  open(
    host: HostApi,
    models: ModelService,
    spans: TurnSpanLookup | undefined,
    onStart: (threadId: number) => void,
  ): OpenedTurn {
    const events = this.#events.port1;
    const server = new ModelCallServer(models, events, spans);
    this.#models = server;
    events.on('message', (batch: TurnTaskMessage[]) => {
      for (const message of batch) {
        if (isModelCall(message)) server.handle(message);
        else this.#route(message, onStart);
      }
    });
    const closed = portClosed(events);
    Comlink.expose(host, endpointOf(this.#host.port1));
    return { port: this.#events.port2, hostPort: this.#host.port2, closed };
  }

  /** Sends the task a control message; it reads them at its next check. */
  post(control: TurnTaskControl): void {
    this.#events.port1.postMessage(control);
  }

  settle(end: TurnEnd): void {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.grace);
    this.#ended.resolve(end);
  }

  fail(error: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.grace);
    this.#ended.reject(error);
  }

  /** Stops the turn for good: nothing the task says is heard any more. */
  close(): void {
    this.#settled = true;
    clearTimeout(this.grace);
    this.#models?.close();
    // Closing the ends that were transferred to the task is a no-op here.
    for (const port of [this.#events.port1, this.#events.port2]) port.close();
    for (const port of [this.#host.port1, this.#host.port2]) port.close();
  }

  /** Events of another turn, repeated ones, and anything after the turn settled are dropped. */
  #route(message: TurnTaskStart | WorkerMessage, onStart: (threadId: number) => void): void {
    if (message.type === 'task-start') {
      this.threadId = message.threadId;
      onStart(message.threadId);
      return;
    }
    if (this.#settled || message.turnId !== this.turnId) return;
    if (message.type !== 'turn-end' && message.seq <= this.#lastSeq) return;
    const corrected = this.#models ? this.#models.correct(message) : message;
    if (corrected.type === 'turn-end') {
      this.settle(corrected);
      return;
    }
    this.#lastSeq = corrected.seq;
    this.#onEvent(corrected);
  }
}
