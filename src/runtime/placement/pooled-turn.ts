/**
 * The host side of one pooled turn: the ports its task gets (events and control on one, the
 * host's callbacks over comlink on the other), what the task said so far, and how the turn ended.
 * A turn stranded on a blocked thread is opened again: its first task is cancelled and a new
 * one gets new ports, so nothing the first one might still say is heard.
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
import type { PoolTask } from './turn-dispatch.js';

/** The ports of one task of the turn and the server of its model calls. */
interface TaskLink {
  readonly events: MessageChannel;
  readonly host: MessageChannel;
  readonly models: ModelCallServer;
}

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
  /** The task running the turn now (a stranded turn gets a new one). */
  task: PoolTask | undefined;
  /** The same for observers (see TurnRunner.observeEventLoop). */
  observedElu: EventLoopUtilization | undefined;
  /** How many tasks the turn was handed to. */
  placements = 0;
  readonly #onEvent: (event: TurnEvent) => void;
  readonly #ended: Deferred<TurnEnd> = deferred();
  #settled = false;
  #lastSeq = -1;
  #link: TaskLink | undefined;

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
   * Starts listening to a task and serving `host` to it; `onStart` hears which thread picked
   * the task up. The returned ports go to the task. Opening again cancels the previous task.
   */
  open(
    host: HostApi,
    models: ModelService,
    session: { readonly sessionKey: string; readonly spans: TurnSpanLookup | undefined },
    onStart: (threadId: number) => void,
  ): OpenedTurn {
    if (this.#link) {
      this.post({ type: 'cancel' });
      this.#closeLink(this.#link);
    }
    const events = new MessageChannel();
    const hostChannel = new MessageChannel();
    const server = new ModelCallServer(models, events.port1, session);
    const link: TaskLink = { events, host: hostChannel, models: server };
    this.#link = link;
    events.port1.on('message', (batch: TurnTaskMessage[]) => {
      if (this.#link !== link) return;
      for (const message of batch) {
        if (isModelCall(message)) server.handle(message);
        else this.#route(message, server, onStart);
      }
    });
    const closed = portClosed(events.port1);
    Comlink.expose(host, endpointOf(hostChannel.port1));
    return { port: events.port2, hostPort: hostChannel.port2, closed };
  }

  /** Sends the task a control message; it reads them at its next check. */
  post(control: TurnTaskControl): void {
    this.#link?.events.port1.postMessage(control);
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
    if (this.#link) this.#closeLink(this.#link);
  }

  #closeLink(link: TaskLink): void {
    link.models.close();
    // Closing the ends that were transferred to the task is a no-op here.
    for (const port of [link.events.port1, link.events.port2]) port.close();
    for (const port of [link.host.port1, link.host.port2]) port.close();
  }

  /** Events of another turn, repeated ones, and anything after the turn settled are dropped. */
  #route(
    message: TurnTaskStart | WorkerMessage,
    models: ModelCallServer,
    onStart: (threadId: number) => void,
  ): void {
    if (message.type === 'task-start') {
      this.threadId = message.threadId;
      onStart(message.threadId);
      return;
    }
    if (this.#settled || message.turnId !== this.turnId) return;
    if (message.type !== 'turn-end' && message.seq <= this.#lastSeq) return;
    const corrected = models.correct(message);
    if (corrected.type === 'turn-end') {
      this.settle(corrected);
      return;
    }
    this.#lastSeq = corrected.seq;
    this.#onEvent(corrected);
  }
}
