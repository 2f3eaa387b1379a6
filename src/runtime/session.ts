/**
 * One session: a clone bound to a session key, run as an actor. Messages enter through
 * `send`/`stream`, wait in the mailbox (in order, bounded), pass global admission, and run as
 * turns on the session's runner (its worker). A completed turn is journaled before its reply
 * is delivered; a crashed worker fails only its in-flight turn and is restarted from the
 * journal for the messages still queued.
 */
import { randomUUID } from 'node:crypto';
import { streamEvents } from '../agent/event-stream.js';
import { currentConversation, type JournalRecord } from '../agent/journal.js';
import { addUsage, type ChatMessage, type Usage, ZERO_USAGE } from '../agent/messages.js';
import type { TurnEvent } from '../agent/turn-events.js';
import type { ClockTimer } from '../clock.js';
import {
  type AgentcellError,
  BudgetExceededError,
  fromWire,
  InternalError,
  isAgentcellError,
  MailboxFullError,
  MessageInvalidError,
  SessionBusyError,
  SessionClosedError,
  SessionCrashedError,
  SessionFailedError,
  SessionReentrantError,
  TurnTimeoutError,
  withDetails,
} from '../errors.js';
import { type Deferred, deferred } from './deferred.js';
import { Mailbox } from './mailbox.js';
import { type BusyPolicy, parseBudget, type SessionBudget } from './options.js';
import type { TurnRunner } from './placement/runner.js';
import { shouldReset } from './reset-policy.js';
import { RestartPolicy } from './restart-policy.js';
import type { SessionHost } from './session-host.js';
import type {
  Reply,
  SendOptions,
  SessionRoute,
  SessionStats,
  SessionStatus,
} from './session-types.js';

type Listener = (event: TurnEvent) => void;

interface Caller {
  readonly reply: Deferred<Reply>;
  readonly onEvent: Listener | undefined;
}

interface CurrentTurn {
  readonly turnId: string;
  readonly callers: Caller[];
  readonly steers: Map<string, { message: string; caller: Caller }>;
  readonly inFlightTools: Map<string, string>;
  timedOut: boolean;
  overCpuBudget: boolean;
  /** Held back until the turn is journaled. */
  final?: TurnEvent | undefined;
}

export class Session {
  readonly key: string;
  readonly agent: string;
  readonly #host: SessionHost;
  readonly #policy: BusyPolicy;
  #budget: SessionBudget | undefined;
  readonly #mailbox: Mailbox;
  readonly #restart: RestartPolicy;
  #status: SessionStatus = 'idle';
  #runner: TurnRunner | undefined;
  #starting: Promise<TurnRunner> | undefined;
  #restartAt = 0;
  #current: CurrentTurn | undefined;
  #coalesced: { parts: string[]; callers: Caller[] } | undefined;
  #closing: Promise<void> | undefined;
  #destroyedWith: Error | undefined;
  #usage: Usage = ZERO_USAGE;
  #usageLoaded = false;
  #turns = 0;
  #failedTurns = 0;
  #lastTurnCpuMs: number | undefined;
  #lastWaitMs: number | undefined;
  #passivated = false;
  /** From the moment a turn leaves the mailbox until its callers are settled. */
  #turnActive = false;
  #idleTimer: ClockTimer | undefined;
  /** When the session last accepted a message or ended a turn (for idle time and resets). */
  #lastActivity: number | undefined;
  #resetPending = false;
  /** Ends a restart backoff early (set while one is being waited out). */
  #backoff: (() => void) | undefined;
  readonly #route: SessionRoute | undefined;
  /** Messages sent over the route and not yet answered (close waits for them). */
  readonly #routed = new Set<Promise<unknown>>();

  constructor(
    key: string,
    agent: string,
    host: SessionHost,
    options: {
      busyPolicy: BusyPolicy;
      budget?: SessionBudget | undefined;
      route?: SessionRoute | undefined;
    },
  ) {
    this.key = key;
    this.agent = agent;
    this.#host = host;
    this.#policy = options.busyPolicy;
    this.#budget = options.budget;
    this.#mailbox = new Mailbox({ capacity: host.capacity, overflow: host.overflow, name: key });
    this.#restart = new RestartPolicy(host.restart, host.clock);
    this.#route = options.route;
  }

  get status(): SessionStatus {
    return this.#status;
  }

  /** The budget its turns run under (tokens and cost in all, CPU per turn), if any. */
  get budget(): SessionBudget | undefined {
    return this.#budget;
  }

  /**
   * Replaces the session's budget for the turns that start from now on (undefined: none).
   * Throws `AGENTCELL_OPTIONS_INVALID` for a malformed budget, changing nothing.
   *
   * @example
   * session.setBudget({ maxTokens: 200_000 }); // this tenant upgraded its plan
   */
  setBudget(budget: SessionBudget | undefined): void {
    this.#budget = budget === undefined ? undefined : parseBudget(budget);
  }

  /**
   * Sends a message and resolves with the reply of the turn that answered it.
   *
   * @example
   * const { text } = await supervisor.session('slack:T01:C42', { agent: 'support' }).send('hi');
   */
  send(message: string, options: SendOptions = {}): Promise<Reply> {
    try {
      return this.#submit(message, options.onEvent);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Sends a message and yields the events of the turn that answers it (text deltas, tool
   * calls, usage, final). Throws the turn's typed error if it fails.
   */
  stream(message: string): AsyncIterable<TurnEvent> {
    return streamEvents((onEvent) => this.#submit(message, onEvent));
  }

  /**
   * Interrupts the running turn (only if it is `turnId`, when given); it ends with
   * `AGENTCELL_INTERRUPTED` and is not journaled. Returns whether a turn was interrupted.
   */
  async interrupt(reason = 'interrupted', turnId?: string): Promise<boolean> {
    if (this.#route) return this.#route.interrupt(reason);
    const current = this.#current;
    if (!current || !this.#runner) return false;
    if (turnId !== undefined && current.turnId !== turnId) return false;
    return this.#runner.interrupt(current.turnId, reason).catch(() => false);
  }

  /** The conversation so far, from the journal. */
  async history(): Promise<ChatMessage[]> {
    const records = await (this.#route ? this.#route.journal() : this.#host.store.read(this.key));
    return currentConversation(records).flatMap((record) => record.messages);
  }

  async stats(): Promise<SessionStats> {
    const runner = this.#runner;
    const workerStats = runner ? await runner.stats().catch(() => undefined) : undefined;
    await this.#loadUsage();
    return {
      key: this.key,
      agent: this.agent,
      status: this.#status,
      threadId: runner?.threadId,
      busy: this.#current !== undefined,
      queued: this.#mailbox.size,
      turns: this.#turns,
      failedTurns: this.#failedTurns,
      restarts: this.#restart.restarts,
      usage: this.#usage,
      heapUsedBytes: workerStats?.heapUsedBytes,
      eventLoopUtilization: runner?.eventLoopUtilization().utilization,
      lastTurnCpuMs: this.#lastTurnCpuMs,
      lastMailboxWaitMs: this.#lastWaitMs,
    };
  }

  /** Live worker thread id, if any. */
  get threadId(): number | undefined {
    return this.#runner?.threadId;
  }

  get queued(): number {
    return this.#mailbox.size;
  }

  get busy(): boolean {
    return this.#current !== undefined;
  }

  /** Graceful: stops taking messages, lets queued ones finish, stops the worker. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#status !== 'failed') this.#status = 'closing';
      await this.#mailbox.onIdle();
      await Promise.allSettled(this.#routed);
      await this.#stopRunner();
      this.#status = 'closed';
      this.#host.emit('session:close', { key: this.key });
    })();
    return this.#closing;
  }

  /** Immediate: fails every queued and running message with `error`, terminates the worker. */
  async destroy(error: Error): Promise<void> {
    if (this.#status === 'closed' && !this.#closing) return;
    this.#destroyedWith ??= error;
    this.#status = 'closed';
    this.#mailbox.clear(error);
    for (const caller of this.#coalesced?.callers ?? []) caller.reply.reject(error);
    this.#coalesced = undefined;
    this.#backoff?.();
    await this.#stopRunner();
    await this.#mailbox.onIdle();
  }

  /** Whether the worker can be released now: live, idle, nothing queued or starting. */
  canPassivate(): boolean {
    return (
      this.#runner !== undefined &&
      this.#current === undefined &&
      this.#starting === undefined &&
      !this.#turnActive &&
      this.#mailbox.size === 0 &&
      this.#coalesced === undefined
    );
  }

  /**
   * Releases the worker of an idle session; its journal is already safe, and its next
   * message activates it again with its history. Returns false when it is not idle.
   */
  async passivate(reason: 'idle' | 'capacity' | 'requested' = 'requested'): Promise<boolean> {
    if (!this.canPassivate()) return false;
    const runner = this.#runner;
    this.#runner = undefined;
    this.#clearIdleTimer();
    await runner?.terminate();
    this.#passivated = true;
    this.#host.emit('session:passivate', { key: this.key, reason });
    return true;
  }

  /** Whether the session has no live worker after having had one. */
  get isPassivated(): boolean {
    return this.#passivated;
  }

  /**
   * Activity is a message accepted or a turn ended. It is what the idle timeout counts from
   * and what the reset policy compares with the clock.
   */
  #noteActivity(): void {
    const now = this.#host.clock.now();
    const policy = this.#host.resetPolicy(this.agent);
    if (
      policy &&
      this.#lastActivity !== undefined &&
      shouldReset(policy, this.#lastActivity, now)
    ) {
      this.#resetPending = true;
    }
    this.#lastActivity = now;
    this.#clearIdleTimer();
  }

  #armIdleTimer(): void {
    this.#clearIdleTimer();
    const ms = this.#host.idleTimeoutMs;
    if (ms <= 0 || !this.#runner) return;
    this.#idleTimer = this.#host.clock.setTimeout(() => {
      this.#idleTimer = undefined;
      void this.passivate('idle');
    }, ms);
  }

  #clearIdleTimer(): void {
    if (this.#idleTimer === undefined) return;
    this.#host.clock.clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }

  /** A reset marker in the journal, then a worker rebuilt from it: a fresh conversation. */
  async #startNewConversation(): Promise<void> {
    this.#resetPending = false;
    await this.#host.store.append(this.key, {
      turnId: `reset-${randomUUID()}`,
      messages: [],
      usage: ZERO_USAGE,
      at: this.#host.clock.now(),
      agent: this.agent,
      reset: true,
    });
    await this.#stopRunner();
    this.#host.emit('session:reset', { key: this.key });
  }

  /** The busy policy and the order are kept where the turn runs, not here. */
  #sendRouted(route: SessionRoute, message: string, onEvent: Listener | undefined): Promise<Reply> {
    const reply = route.send(message, onEvent, this.#budget).catch((error: unknown) => {
      this.#failedTurns++;
      throw error;
    });
    const settled = reply.catch(() => {});
    this.#routed.add(settled);
    void settled.finally(() => this.#routed.delete(settled));
    return reply;
  }

  #submit(message: string, onEvent: Listener | undefined): Promise<Reply> {
    this.#assertAccepting();
    this.#assertMessage(message);
    this.#noteActivity();
    if (this.#route) return this.#sendRouted(this.#route, message, onEvent);
    const caller: Caller = { reply: deferred(), onEvent };
    const busy = this.#turnActive || this.#mailbox.size > 0;
    if (busy && this.#policy === 'reject') {
      throw new SessionBusyError(`session ${JSON.stringify(this.key)} is in a turn`);
    }
    if (this.#current && this.#policy === 'steer') {
      void this.#steer(this.#current, message, caller);
      return caller.reply.promise;
    }
    if (busy && this.#policy === 'coalesce') return this.#coalesce(message, caller);
    if (this.#current && this.#policy === 'interrupt')
      void this.interrupt('superseded by a newer message');
    this.#enqueue(message, [caller]);
    return caller.reply.promise;
  }

  #assertAccepting(): void {
    this.#host.assertOpen();
    if (this.#status === 'failed') {
      throw new SessionFailedError(`session ${JSON.stringify(this.key)} has failed`);
    }
    if (this.#status === 'closing' || this.#status === 'closed') {
      throw (
        this.#destroyedWith ??
        new SessionClosedError(`session ${JSON.stringify(this.key)} is closed`)
      );
    }
    if (this.#host.isInsideTurnOf(this.key)) {
      throw new SessionReentrantError(
        `a turn of session ${JSON.stringify(this.key)} sent a message to its own session`,
      );
    }
  }

  #assertMessage(message: unknown): asserts message is string {
    if (typeof message !== 'string' || message.trim().length === 0) {
      throw new MessageInvalidError(
        `expected a non-empty string, got ${typeof message === 'string' ? 'an empty one' : typeof message}`,
      );
    }
    const bytes = Buffer.byteLength(message, 'utf8');
    if (bytes > this.#host.maxMessageBytes) {
      throw new MessageInvalidError(
        `the message is ${bytes} bytes, over the limit of ${this.#host.maxMessageBytes} (maxMessageBytes)`,
      );
    }
  }

  /** Queues a turn for `callers`; a rejection is delivered to each of them. */
  #enqueue(message: string, callers: Caller[], first = false): void {
    this.#mailbox
      .add((waitedMs) => this.#admitted(() => this.#runTurn(message, callers, waitedMs)), { first })
      .catch((error: unknown) => {
        for (const caller of callers) caller.reply.reject(error);
      });
  }

  /**
   * Runs a turn that left the mailbox through global admission. The session counts as busy
   * from here, while it waits for admission too, so the 'reject' policy sees it.
   */
  async #admitted(run: () => Promise<void>): Promise<void> {
    this.#turnActive = true;
    try {
      await this.#host.admission.add(run);
    } finally {
      this.#turnActive = false;
    }
  }

  /** Messages that arrive during a turn become one next turn, answered to each of them. */
  #coalesce(message: string, caller: Caller): Promise<Reply> {
    const pending = this.#coalesced;
    if (pending) {
      if (pending.parts.length >= Math.max(1, this.#host.capacity)) {
        return Promise.reject(
          new MailboxFullError(
            `session ${JSON.stringify(this.key)} has ${pending.parts.length} coalesced messages`,
          ),
        );
      }
      pending.parts.push(message);
      pending.callers.push(caller);
      return caller.reply.promise;
    }
    const batch = { parts: [message], callers: [caller] };
    this.#coalesced = batch;
    this.#mailbox
      .add((waitedMs) => {
        if (this.#coalesced === batch) this.#coalesced = undefined;
        return this.#admitted(() =>
          this.#runTurn(batch.parts.join('\n\n'), batch.callers, waitedMs),
        );
      })
      .catch((error: unknown) => {
        if (this.#coalesced === batch) this.#coalesced = undefined;
        for (const each of batch.callers) each.reply.reject(error);
      });
    return caller.reply.promise;
  }

  /** Hands the message to the running turn; if it can no longer take it, it waits its turn. */
  async #steer(current: CurrentTurn, message: string, caller: Caller): Promise<void> {
    const steerId = randomUUID();
    current.steers.set(steerId, { message, caller });
    const taken = await this.#runner?.steer(current.turnId, steerId, message).catch(() => false);
    if (!taken && current.steers.delete(steerId)) this.#enqueue(message, [caller], true);
  }

  async #runTurn(message: string, callers: Caller[], waitedMs: number): Promise<void> {
    if (this.#destroyedWith) throw this.#destroyedWith;
    this.#lastWaitMs = waitedMs;
    const turnId = randomUUID();
    const current: CurrentTurn = {
      turnId,
      callers,
      steers: new Map(),
      inFlightTools: new Map(),
      timedOut: false,
      overCpuBudget: false,
    };
    const started = this.#host.clock.now();
    let outcome = 'ok';
    let cpuMs: number | undefined;
    let usage: Usage | undefined;
    // Callers are settled last, once the session is idle again: whoever awaited a reply may
    // send the next message at once, even under the 'reject' policy.
    let settle: () => void = () => {};
    this.#turnActive = true;
    try {
      await this.#checkBudget();
      if (this.#resetPending) await this.#startNewConversation();
      const runner = await this.#ensureRunner();
      this.#current = current;
      this.#status = this.#status === 'idle' ? 'running' : this.#status;
      this.#host.emit('turn:start', { key: this.key, turnId, waitedMs });
      const reply = await this.#runOnWorker(runner, current, message, (ms) => {
        cpuMs = ms;
      });
      usage = reply.usage;
      settle = () => {
        for (const caller of current.callers) caller.reply.resolve(reply);
      };
    } catch (thrown) {
      const error = this.#turnError(current, thrown);
      outcome = error.code;
      this.#failedTurns++;
      settle = () => {
        for (const caller of current.callers) caller.reply.reject(error);
      };
    } finally {
      this.#turnActive = false;
      if (this.#current === current) this.#current = undefined;
      if (this.#status === 'running') this.#status = 'idle';
      this.#requeueUntakenSteers(current);
      this.#lastTurnCpuMs = cpuMs;
      this.#lastActivity = this.#host.clock.now();
      this.#armIdleTimer();
      this.#host.onIdle(this);
      this.#host.emit('turn:end', {
        key: this.key,
        turnId,
        outcome,
        durationMs: this.#host.clock.now() - started,
        cpuMs,
        usage,
      });
      settle();
    }
  }

  async #runOnWorker(
    runner: TurnRunner,
    current: CurrentTurn,
    message: string,
    onCpu: (ms: number) => void,
  ): Promise<Reply> {
    const stopWatch = this.#watchTurn(runner, current);
    try {
      const end = await runner.runTurn(current.turnId, message, (event) =>
        this.#deliver(current, event),
      );
      onCpu(end.cpuMs);
      for (const steerId of end.steered) {
        const steer = current.steers.get(steerId);
        if (steer) {
          current.steers.delete(steerId);
          current.callers.push(steer.caller);
        }
      }
      if (!end.ok) throw fromWire(end.error);
      const { result } = end;
      const record: JournalRecord = {
        turnId: result.turnId,
        messages: result.delta.messages,
        usage: result.delta.usage,
        ...(result.output !== undefined && { output: result.output }),
        at: this.#host.clock.now(),
        agent: this.agent,
      };
      // Journaled before anyone hears the reply: an acknowledged turn is never lost.
      await this.#host.store.append(this.key, record);
      const final = current.final;
      if (final) for (const caller of current.callers) caller.onEvent?.(final);
      this.#usage = addUsage(this.#usage, result.delta.usage);
      this.#turns++;
      return {
        text: result.reply,
        turnId: result.turnId,
        usage: result.delta.usage,
        ...(result.output !== undefined && { output: result.output }),
      };
    } finally {
      stopWatch();
    }
  }

  #deliver(current: CurrentTurn, event: TurnEvent): void {
    if (event.type === 'tool-start') current.inFlightTools.set(event.callId, event.name);
    if (event.type === 'tool-end') current.inFlightTools.delete(event.callId);
    // The final event waits for the journal: a stream never shows a reply that is then lost.
    if (event.type === 'final') {
      current.final = event;
      return;
    }
    for (const caller of current.callers) caller.onEvent?.(event);
  }

  /** Turn timeout (interrupt, then terminate after the grace period) and the CPU budget. */
  #watchTurn(runner: TurnRunner, current: CurrentTurn): () => void {
    const clock = this.#host.clock;
    let grace: ClockTimer | undefined;
    const timeout = clock.setTimeout(() => {
      current.timedOut = true;
      void runner.interrupt(current.turnId, 'turn timeout').catch(() => {});
      grace = clock.setTimeout(() => void runner.terminate(), this.#host.interruptGraceMs);
    }, this.#host.turnTimeoutMs);
    const maxCpu = this.#budget?.maxTurnCpuMs;
    let cpuWatch: NodeJS.Timeout | undefined;
    if (maxCpu !== undefined) {
      runner.eventLoopUtilization();
      let used = 0;
      // CPU is real time spent by the worker, so it is sampled on the real clock.
      cpuWatch = setInterval(
        () => {
          used += runner.eventLoopUtilization().active;
          if (used > maxCpu) {
            current.overCpuBudget = true;
            void runner.terminate();
          }
        },
        Math.max(5, Math.min(50, maxCpu / 4)),
      );
    }
    return () => {
      clock.clearTimeout(timeout);
      if (grace) clock.clearTimeout(grace);
      clearInterval(cpuWatch);
    };
  }

  /** The error callers see: a crash of a timed-out turn is a timeout, and so on. */
  #turnError(current: CurrentTurn, thrown: unknown): AgentcellError {
    if (this.#destroyedWith) return this.#destroyedWith as AgentcellError;
    const inFlightTools = [...current.inFlightTools.values()];
    const details = { turnId: current.turnId, inFlightTools };
    if (current.timedOut) {
      return new TurnTimeoutError(
        `turn ${current.turnId} ran past ${this.#host.turnTimeoutMs} ms (turnTimeoutMs)`,
        { details, cause: thrown },
      );
    }
    if (current.overCpuBudget) {
      return new BudgetExceededError(
        `turn ${current.turnId} used more than ${this.#budget?.maxTurnCpuMs} ms of CPU (budget.maxTurnCpuMs)`,
        {
          details,
          cause: thrown,
        },
      );
    }
    if (!isAgentcellError(thrown)) return new InternalError(String(thrown), { cause: thrown });
    if (thrown.code === 'AGENTCELL_SESSION_CRASHED') return withDetails(thrown, details);
    return thrown;
  }

  #requeueUntakenSteers(current: CurrentTurn): void {
    for (const { message, caller } of current.steers.values()) {
      if (this.#status === 'closed' || this.#status === 'failed')
        caller.reply.reject(this.#destroyedWith ?? new SessionClosedError());
      else this.#enqueue(message, [caller], true);
    }
    current.steers.clear();
  }

  async #checkBudget(): Promise<void> {
    const budget = this.#budget;
    if (budget?.maxTokens === undefined && budget?.maxCostUsd === undefined) return;
    await this.#loadUsage();
    if (budget.maxTokens !== undefined && this.#usage.totalTokens >= budget.maxTokens) {
      throw new BudgetExceededError(
        `session ${JSON.stringify(this.key)} used ${this.#usage.totalTokens} of ${budget.maxTokens} tokens (budget.maxTokens)`,
      );
    }
    if (budget.maxCostUsd !== undefined && this.#usage.costUsd >= budget.maxCostUsd) {
      throw new BudgetExceededError(
        `session ${JSON.stringify(this.key)} spent $${this.#usage.costUsd} of $${budget.maxCostUsd} (budget.maxCostUsd)`,
      );
    }
  }

  async #loadUsage(): Promise<void> {
    // Turns of a routed session are journaled elsewhere: read afresh each time.
    if (this.#usageLoaded && !this.#route) return;
    this.#usageLoaded = true;
    const records = await (this.#route ? this.#route.journal() : this.#host.store.read(this.key));
    this.#usage = records.reduce((sum, record) => addUsage(sum, record.usage), ZERO_USAGE);
    this.#turns = records.length;
  }

  /** The live runner, or a new one from blueprint + journal (after the restart backoff). */
  #ensureRunner(): Promise<TurnRunner> {
    if (this.#runner) return Promise.resolve(this.#runner);
    this.#starting ??= this.#startRunner().finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  async #startRunner(): Promise<TurnRunner> {
    const wait = this.#restartAt - this.#host.clock.now();
    if (wait > 0) {
      await new Promise<void>((resolve) => {
        const timer = this.#host.clock.setTimeout(resolve, wait);
        // destroy() ends the backoff at once instead of waiting it out.
        this.#backoff = () => {
          this.#host.clock.clearTimeout(timer);
          resolve();
        };
      });
      this.#backoff = undefined;
    }
    if (this.#destroyedWith) throw this.#destroyedWith;
    const journal = await this.#host.store.read(this.key);
    const started = this.#host.clock.now();
    let runner: TurnRunner;
    let warm: boolean;
    try {
      ({ runner, warm } = await this.#host.startRunner(
        this,
        this.#host.runnerInit(this.key, this.agent, journal),
      ));
    } catch (error) {
      // No room on the machine is not a crash of this session: it must not use up restarts.
      if (!isAgentcellError(error, 'AGENTCELL_CAPACITY_EXCEEDED')) {
        this.#onRunnerGone(isAgentcellError(error) ? error : new InternalError(String(error)), []);
      }
      throw error;
    }
    if (this.#destroyedWith) {
      await runner.terminate();
      throw this.#destroyedWith;
    }
    this.#runner = runner;
    void runner.exited.then((exit) => {
      if (this.#runner !== runner) return;
      this.#runner = undefined;
      if (exit.terminated && !this.#current) return;
      const error = new SessionCrashedError(
        `the worker of session ${JSON.stringify(this.key)} exited (code ${exit.code})`,
      );
      this.#onRunnerGone(error, [...(this.#current?.inFlightTools.values() ?? [])]);
    });
    this.#host.emit('session:start', {
      key: this.key,
      agent: this.agent,
      threadId: runner.threadId,
      restoredTurns: currentConversation(journal).length,
      warm,
      activationMs: this.#host.clock.now() - started,
      afterPassivation: this.#passivated,
    });
    this.#passivated = false;
    this.#armIdleTimer();
    return runner;
  }

  /** Supervision: restart later with backoff, or fail the session past the restart bound. */
  #onRunnerGone(error: AgentcellError, inFlightTools: readonly string[]): void {
    if (this.#status === 'closed' || this.#status === 'closing') return;
    this.#host.emit('session:crash', { key: this.key, error, inFlightTools });
    const delayMs = this.#restart.onCrash();
    if (delayMs === undefined) {
      this.#status = 'failed';
      const failure = new SessionFailedError(
        `session ${JSON.stringify(this.key)} crashed more than ${this.#host.restart.maxRestarts} times in ${this.#host.restart.windowMs} ms`,
        {
          cause: error,
        },
      );
      this.#mailbox.clear(failure);
      for (const caller of this.#coalesced?.callers ?? []) caller.reply.reject(failure);
      this.#coalesced = undefined;
      this.#host.emit('session:fail', { key: this.key, error: failure });
      return;
    }
    this.#restartAt = this.#host.clock.now() + delayMs;
    this.#host.emit('session:restart', {
      key: this.key,
      restarts: this.#restart.restarts,
      delayMs,
    });
  }

  async #stopRunner(): Promise<void> {
    this.#clearIdleTimer();
    const runner = this.#runner ?? (await this.#starting?.catch(() => undefined));
    this.#runner = undefined;
    await runner?.terminate();
  }
}
