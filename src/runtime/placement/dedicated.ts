/**
 * Dedicated placement: one worker thread per live session, RPC with comlink, turn events on a
 * port of their own (ordered, and ended by the turn's `turn-end`), host callbacks on another.
 */
import type { EventLoopUtilization } from 'node:perf_hooks';
import { MessageChannel, type ResourceLimits } from 'node:worker_threads';
import * as Comlink from 'comlink';
import type { TurnEvent } from '../../agent/turn-events.js';
import { endpointOf } from '../../codec.js';
import type { SessionWorkerApi, TurnEnd, WorkerMessage, WorkerStats } from '../../worker/api.js';
import { type Deferred, deferred } from '../deferred.js';
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
  #turn: ActiveTurn | undefined;
  #elu: EventLoopUtilization | undefined;

  private constructor(handle: WorkerHandle<SessionWorkerApi>, options: DedicatedOptions) {
    this.#handle = handle;
    this.#options = options;
    this.#events = new MessageChannel();
    this.#host = new MessageChannel();
    this.#events.port1.on('message', (message: WorkerMessage) => this.#route(message));
    void handle.exited.then(() => this.#closePorts());
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
    const runner = new DedicatedRunner(handle, options);
    try {
      const { host, ...plain } = init;
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
    return this.#handle.exited;
  }

  async runTurn(
    turnId: string,
    message: string,
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
      const died = this.#handle.exited.then((exit): never => {
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
    if (message.type === 'turn-end') {
      this.#turn = undefined;
      turn.ended.resolve(message);
      return;
    }
    if (message.seq <= turn.lastSeq) return;
    turn.lastSeq = message.seq;
    turn.onEvent(message);
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

  async terminate(): Promise<void> {
    await this.#handle.terminate();
    this.#closePorts();
  }

  #closePorts(): void {
    this.#events.port1.close();
    this.#host.port1.close();
  }
}
