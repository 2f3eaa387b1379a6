/**
 * Dedicated placement: one worker thread per live session, RPC with comlink, turn events on a
 * port of their own (ordered, and ended by the turn's `turn-end`; the thread's model calls
 * travel on it too and are answered there), host callbacks on another.
 */

import type { EventLoopUtilization } from 'node:perf_hooks';
import { MessageChannel, type ResourceLimits } from 'node:worker_threads';
import * as Comlink from 'comlink';
import type { TurnInput } from '../../agent/approval.js';
import type { TurnEvent } from '../../agent/turn-events.js';
import { endpointOf } from '../../codec.js';
import type {
  SessionWorkerApi,
  TurnEnd,
  WorkerMessage,
  WorkerOutput,
  WorkerStats,
} from '../../worker/api.js';
import { isModelCall } from '../../worker/model-protocol.js';
import { type Deferred, deferred } from '../deferred.js';
import { ModelCallServer } from './model-calls.js';
import { drained, portClosed } from './port-drain.js';
import type { AgentRunnerInit, RunnerInit, TurnRunner } from './runner.js';
import { crashError, type WorkerExit, WorkerHandle } from './worker-handle.js';

export interface DedicatedOptions {
  readonly resourceLimits?: ResourceLimits | undefined;
  readonly startTimeoutMs: number;
  readonly rpcTimeoutMs: number;
}

interface ActiveTurn {
  readonly turnId: string;
  readonly onEvent: (event: TurnEvent) => void;
  readonly ended: Deferred<TurnEnd>;
  lastSeq: number;
}

export class DedicatedRunner implements TurnRunner {
  readonly #handle: WorkerHandle<SessionWorkerApi>;
  readonly #options: DedicatedOptions;
  readonly #events: MessageChannel;
  readonly #host: MessageChannel;
  readonly #models: ModelCallServer;
  /**
   * Resolves once the worker is gone and its event port delivered what it held: whoever hears
   * of the exit (the turn, the session's supervision) already heard the thread's last events,
   * such as the tool-start of the tool that ended it.
   */
  readonly #exited: Promise<WorkerExit>;
  #turn: ActiveTurn | undefined;
  #elu: EventLoopUtilization | undefined;
  #observedElu: EventLoopUtilization | undefined;

  private constructor(
    handle: WorkerHandle<SessionWorkerApi>,
    options: DedicatedOptions,
    init: AgentRunnerInit,
  ) {
    this.#handle = handle;
    this.#options = options;
    this.#events = new MessageChannel();
    this.#host = new MessageChannel();
    this.#models = new ModelCallServer(init.models, this.#events.port1, { spans: init.spans });
    const eventsClosed = portClosed(this.#events.port1);
    this.#exited = handle.exited.then(async (exit) => {
      await drained(eventsClosed);
      return exit;
    });
    this.#events.port1.on('message', (batch: WorkerOutput[]) => {
      for (const message of batch) {
        if (isModelCall(message)) this.#models.handle(message);
        else this.#route(message);
      }
    });
    void this.#exited.then(() => this.#closePorts());
  }

  /** Starts a worker and binds it to a session: {@link prepare} then {@link activate}. */
  static async start(init: RunnerInit, options: DedicatedOptions): Promise<DedicatedRunner> {
    const runner = await DedicatedRunner.prepare(init, options);
    try {
      await runner.activate(init.sessionKey, init.journal);
    } catch (error) {
      await runner.terminate();
      throw error;
    }
    return runner;
  }

  /**
   * Starts a worker and builds the agent template in it (blueprint decoded, tools loaded): a
   * warm worker, ready to be bound to any session of that agent in one round trip.
   */
  static async prepare(init: AgentRunnerInit, options: DedicatedOptions): Promise<DedicatedRunner> {
    const handle = await WorkerHandle.start<SessionWorkerApi>({
      entry: 'session-worker',
      resourceLimits: options.resourceLimits,
      startTimeoutMs: options.startTimeoutMs,
    });
    const runner = new DedicatedRunner(handle, options, init);
    try {
      const { host, models: _models, spans: _spans, ...plain } = init;
      Comlink.expose(host, endpointOf(runner.#host.port1));
      const ports = { host: runner.#host.port2, events: runner.#events.port2 };
      await handle.call(
        (api) => api.prepare(Comlink.transfer({ ...plain, ...ports }, [ports.host, ports.events])),
        options.startTimeoutMs,
        'prepare',
      );
    } catch (error) {
      await runner.terminate();
      throw error;
    }
    return runner;
  }

  /** Binds this worker to its one session: a clone of the template, the journal restored. */
  async activate(sessionKey: string, journal: string): Promise<void> {
    this.#models.bind(sessionKey);
    await this.#handle.call(
      (api) => api.activate(sessionKey, journal),
      this.#options.startTimeoutMs,
      'activate',
    );
  }

  get threadId(): number {
    return this.#handle.threadId;
  }

  get exited(): Promise<WorkerExit> {
    return this.#exited;
  }

  async runTurn(
    turnId: string,
    message: TurnInput,
    onEvent: (event: TurnEvent) => void,
  ): Promise<TurnEnd> {
    const turn: ActiveTurn = { turnId, onEvent, ended: deferred(), lastSeq: -1 };
    this.#turn = turn;
    try {
      await this.#handle.call(
        (api) => api.startTurn(turnId, message),
        this.#options.rpcTimeoutMs,
        'startTurn',
      );
      const died = this.#exited.then((exit): never => {
        throw crashError(exit, `turn ${turnId}`);
      });
      return await Promise.race([turn.ended.promise, died]);
    } finally {
      if (this.#turn === turn) this.#turn = undefined;
    }
  }

  /** Events of a turn that already settled, or repeated ones, are dropped here. */
  #route(message: WorkerMessage): void {
    const turn = this.#turn;
    if (!turn || message.turnId !== turn.turnId) return;
    if (message.type !== 'turn-end' && message.seq <= turn.lastSeq) return;
    const corrected = this.#models.correct(message);
    if (corrected.type === 'turn-end') {
      this.#turn = undefined;
      turn.ended.resolve(corrected);
      return;
    }
    turn.lastSeq = corrected.seq;
    turn.onEvent(corrected);
  }

  interrupt(turnId: string, reason: string): Promise<boolean> {
    return this.#handle.call(
      (api) => api.interrupt(turnId, reason),
      this.#options.rpcTimeoutMs,
      'interrupt',
    );
  }

  steer(turnId: string, steerId: string, message: string): Promise<boolean> {
    return this.#handle.call(
      (api) => api.steer(turnId, steerId, message),
      this.#options.rpcTimeoutMs,
      'steer',
    );
  }

  stats(): Promise<WorkerStats> {
    return this.#handle.call((api) => api.stats(), this.#options.rpcTimeoutMs, 'stats');
  }

  eventLoopUtilization(): { readonly active: number; readonly utilization: number } {
    const performance = this.#handle.worker.performance;
    const reading = performance.eventLoopUtilization(this.#elu);
    this.#elu = performance.eventLoopUtilization();
    return reading;
  }

  observeEventLoop(): { readonly active: number; readonly utilization: number } {
    const performance = this.#handle.worker.performance;
    const reading = performance.eventLoopUtilization(this.#observedElu);
    this.#observedElu = performance.eventLoopUtilization();
    return reading;
  }

  async terminate(): Promise<void> {
    await this.#handle.terminate();
    await this.#exited;
    this.#closePorts();
  }

  #closePorts(): void {
    this.#models.close();
    this.#events.port1.close();
    this.#host.port1.close();
  }
}
