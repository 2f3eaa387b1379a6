/**
 * One worker thread seen from the host: started, announced `ready`, called over comlink, and
 * watched until it exits. comlink never settles a call whose worker died, so every call here
 * races the worker's exit and a deadline.
 */
import { type ResourceLimits, Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { endpointOf } from '../../codec.js';
import { RpcTimeoutError, SessionCrashedError } from '../../errors.js';
import { type WorkerEntryName, workerEntryUrl } from '../worker-entry.js';

/** How a worker ended: its exit code and the error it died of, if any. */
export interface WorkerExit {
  readonly code: number;
  readonly error?: Error | undefined;
  /** True when the host terminated it on purpose. */
  readonly terminated: boolean;
}

export interface WorkerStartOptions {
  readonly entry: WorkerEntryName;
  readonly resourceLimits?: ResourceLimits | undefined;
  /** Milliseconds to wait for `ready`. */
  readonly startTimeoutMs: number;
  readonly name?: string | undefined;
}

export class WorkerHandle<Api> {
  readonly worker: Worker;
  readonly api: Comlink.Remote<Api>;
  /** Resolves (never rejects) when the thread has exited. */
  readonly exited: Promise<WorkerExit>;
  #exit: WorkerExit | undefined;
  #terminating = false;

  private constructor(worker: Worker) {
    this.worker = worker;
    this.api = Comlink.wrap<Api>(endpointOf(worker));
    let error: Error | undefined;
    worker.on('error', (thrown: Error) => {
      error = thrown;
    });
    this.exited = new Promise((resolve) => {
      worker.once('exit', (code) => {
        this.#exit = { code, error, terminated: this.#terminating };
        resolve(this.#exit);
      });
    });
  }

  /** Starts a worker and resolves once it said `ready`; rejects if it dies or is late. */
  static async start<Api>(options: WorkerStartOptions): Promise<WorkerHandle<Api>> {
    const worker = new Worker(workerEntryUrl(options.entry), {
      ...(options.resourceLimits && { resourceLimits: options.resourceLimits }),
      ...(options.name && { name: options.name }),
    });
    const handle = new WorkerHandle<Api>(worker);
    const ready = new Promise<void>((resolve) => {
      const onMessage = (message: { type?: string }) => {
        if (message?.type !== 'ready') return;
        worker.off('message', onMessage);
        resolve();
      };
      worker.on('message', onMessage);
    });
    try {
      await handle.#race(ready, options.startTimeoutMs, 'start');
    } catch (error) {
      await handle.terminate();
      throw error;
    }
    return handle;
  }

  get threadId(): number {
    return this.worker.threadId;
  }

  /** Whether the thread has exited. */
  get isExited(): boolean {
    return this.#exit !== undefined;
  }

  /** A remote call raced against the worker's exit and a deadline. */
  call<T>(
    invoke: (api: Comlink.Remote<Api>) => Promise<T>,
    deadlineMs: number,
    what = 'call',
  ): Promise<T> {
    return this.#race(invoke(this.api), deadlineMs, what);
  }

  async #race<T>(work: Promise<T>, deadlineMs: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new RpcTimeoutError(
              `worker ${this.threadId} did not answer ${what} within ${deadlineMs} ms`,
            ),
          ),
        deadlineMs,
      );
    });
    const died = this.exited.then((exit): never => {
      throw crashError(exit, what);
    });
    try {
      return await Promise.race([work, deadline, died]);
    } finally {
      clearTimeout(timer);
      died.catch(() => {}); // a death is the exit's to report (the session's crash), not a call's
    }
  }

  /** Stops the thread now; resolves when it has exited. Idempotent. */
  async terminate(): Promise<WorkerExit> {
    if (!this.#exit) {
      this.#terminating = true;
      await this.worker.terminate();
    }
    return this.exited;
  }
}

/** The typed error for a worker that died; says why when Node told us. */
export function crashError(exit: WorkerExit, during: string): SessionCrashedError {
  const code = (exit.error as { code?: string } | undefined)?.code;
  const cause = exit.terminated
    ? 'it was terminated'
    : code === 'ERR_WORKER_OUT_OF_MEMORY'
      ? 'it ran out of heap (resourceLimits)'
      : exit.error
        ? `it threw ${exit.error.name}: ${exit.error.message}`
        : `it exited with code ${exit.code}`;
  return new SessionCrashedError(`the session worker died during ${during}: ${cause}`, {
    details: { exitCode: exit.code, ...(code && { errorCode: code }), terminated: exit.terminated },
  });
}
