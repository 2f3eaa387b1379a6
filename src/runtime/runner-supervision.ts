/**
 * Supervision of a session's runner, as an OTP supervisor keeps a child: the runner starts on
 * demand from blueprint + journal (after any restart backoff); when its worker goes away
 * uninvited the session is restarted later, with backoff, or failed once it crashed more often
 * than the restart policy allows.
 */
import { currentConversation } from '../agent/journal.js';
import {
  type AgentcellError,
  InternalError,
  isAgentcellError,
  SessionCrashedError,
  SessionFailedError,
} from '../errors.js';
import { errorFields, log } from '../log.js';
import type { WorkerStats } from '../worker/api.js';
import type { TurnRunner } from './placement/runner.js';
import { RestartPolicy } from './restart-policy.js';
import type { PlacedSession, SessionHost } from './session-host.js';

/** What supervision needs to know of, and do to, the session it keeps. */
export interface SupervisedSession extends PlacedSession {
  /** Set once the session was destroyed: nothing may start any more. */
  readonly destroyedWith: Error | undefined;
  /** Closing or closed: a worker going away is expected. */
  readonly stopping: boolean;
  /** The running turn and its tools in flight, if a turn runs (a crash mid-turn reports them). */
  runningTurn(): { readonly turnId: string; readonly tools: readonly string[] } | undefined;
  /** A runner is up: the session arms its idle timer. */
  onRunnerStarted(): void;
  /** Past the restart bound: the session fails everything waiting with `failure`. */
  fail(failure: SessionFailedError): void;
}

export class RunnerSupervision {
  readonly #host: SessionHost;
  readonly #session: SupervisedSession;
  readonly #restart: RestartPolicy;
  #runner: TurnRunner | undefined;
  #starting: Promise<TurnRunner> | undefined;
  #restartAt = 0;
  /** Ends a restart backoff early (set while one is being waited out). */
  #backoff: (() => void) | undefined;
  #passivated = false;

  constructor(host: SessionHost, session: SupervisedSession) {
    this.#host = host;
    this.#session = session;
    this.#restart = new RestartPolicy(host.restart, host.clock);
  }

  /** The live runner, if any. */
  get runner(): TurnRunner | undefined {
    return this.#runner;
  }

  get starting(): boolean {
    return this.#starting !== undefined;
  }

  get restarts(): number {
    return this.#restart.restarts;
  }

  /** Whether the session has no live runner after having had one. */
  get passivated(): boolean {
    return this.#passivated;
  }

  /** The live runner, or a new one from blueprint + journal (after the restart backoff). */
  ensure(): Promise<TurnRunner> {
    if (this.#runner) return Promise.resolve(this.#runner);
    this.#starting ??= this.#start().finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  /**
   * Lets the live runner go on purpose: it is not a crash, and the next message starts one.
   * False when its thread would not stop (logged: idle and capacity passivations have nobody
   * else to tell).
   */
  async passivate(reason: string): Promise<boolean> {
    const runner = this.#runner;
    this.#runner = undefined;
    try {
      await runner?.terminate();
    } catch (error) {
      log('runtime').warn(
        { ...errorFields(error), sessionKey: this.#session.key, reason },
        'the session could not be passivated; the next message starts its worker again',
      );
      return false;
    }
    this.#passivated = true;
    return true;
  }

  /** The live worker's own figures; undefined without one, or when it does not answer. */
  async workerStats(): Promise<WorkerStats | undefined> {
    return this.#runner?.stats().catch((error: unknown) => {
      log('runtime').warn(
        { ...errorFields(error), sessionKey: this.#session.key },
        'the session worker did not answer a stats call; its heap is left out',
      );
      return undefined;
    });
  }

  /** Stops the runner (live, or the one starting) and ends a backoff being waited out. */
  async stop(): Promise<void> {
    this.#backoff?.();
    // A start that failed was reported where it failed (a crash, or the caller's error).
    const runner = this.#runner ?? (await this.#starting?.catch(() => undefined));
    this.#runner = undefined;
    await runner?.terminate();
  }

  async #start(): Promise<TurnRunner> {
    await this.#waitOutBackoff();
    const session = this.#session;
    if (session.destroyedWith) throw session.destroyedWith;
    const host = this.#host;
    const journal = await host.store.read(session.key);
    const started = host.clock.now();
    let runner: TurnRunner;
    let warm: boolean;
    try {
      ({ runner, warm } = await host.startRunner(
        session,
        host.runnerInit(session.key, session.agent, journal),
      ));
    } catch (error) {
      // No room on the machine is not a crash of this session: it must not use up restarts.
      if (!isAgentcellError(error, 'AGENTCELL_CAPACITY_EXCEEDED')) {
        const typed = isAgentcellError(error) ? error : new InternalError(String(error));
        this.#onGone(typed, undefined, []);
      }
      throw error;
    }
    if (session.destroyedWith) {
      await runner.terminate();
      throw session.destroyedWith;
    }
    this.#runner = runner;
    void runner.exited.then((exit) => {
      if (this.#runner !== runner) return;
      this.#runner = undefined;
      const turn = session.runningTurn();
      if (exit.terminated && turn === undefined) return;
      const error = new SessionCrashedError(
        `the worker of session ${JSON.stringify(session.key)} exited (code ${exit.code})`,
      );
      this.#onGone(error, turn?.turnId, turn?.tools ?? []);
    });
    host.emit('session:start', {
      key: session.key,
      agent: session.agent,
      threadId: runner.threadId,
      restoredTurns: currentConversation(journal).length,
      warm,
      activationMs: host.clock.now() - started,
      afterPassivation: this.#passivated,
    });
    this.#passivated = false;
    session.onRunnerStarted();
    return runner;
  }

  async #waitOutBackoff(): Promise<void> {
    const clock = this.#host.clock;
    const wait = this.#restartAt - clock.now();
    if (wait <= 0) return;
    await new Promise<void>((resolve) => {
      const timer = clock.setTimeout(resolve, wait);
      // destroy() ends the backoff at once instead of waiting it out.
      this.#backoff = () => {
        clock.clearTimeout(timer);
        resolve();
      };
    });
    this.#backoff = undefined;
  }

  /** Restart later with backoff, or fail the session past the restart bound. */
  #onGone(
    error: AgentcellError,
    turnId: string | undefined,
    inFlightTools: readonly string[],
  ): void {
    const session = this.#session;
    if (session.stopping) return;
    const host = this.#host;
    host.emit('session:crash', { key: session.key, turnId, error, inFlightTools });
    const delayMs = this.#restart.onCrash();
    if (delayMs === undefined) {
      const failure = new SessionFailedError(
        `session ${JSON.stringify(session.key)} crashed more than ${host.restart.maxRestarts} times in ${host.restart.windowMs} ms`,
        { cause: error },
      );
      session.fail(failure);
      host.emit('session:fail', { key: session.key, error: failure });
      return;
    }
    this.#restartAt = host.clock.now() + delayMs;
    host.emit('session:restart', { key: session.key, restarts: this.#restart.restarts, delayMs });
  }
}
