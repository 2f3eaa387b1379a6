/**
 * A session whose turns run in this process, as an actor: messages wait in its mailbox (in
 * order, bounded), pass global admission, and run one at a time as turns on its runner (its
 * worker, kept by {@link RunnerSupervision}). What a message arriving mid-turn does is the
 * session's busy policy: wait its turn (`enqueue`), fail fast (`reject`), cut the running turn
 * short (`interrupt`), join it (`steer`), or join the others into one next turn (`coalesce`).
 */
import { randomUUID } from 'node:crypto';
import type { TurnInput } from '../agent/approval.js';
import { conversationMessages } from '../agent/journal.js';
import type { ChatMessage, Usage } from '../agent/messages.js';
import {
  type AgentcellError,
  SessionBusyError,
  SessionClosedError,
  type SessionFailedError,
} from '../errors.js';
import type { ApprovalAnswer, PausedTurn, PendingApprovalView } from './approval-desk.js';
import { Coalescer } from './coalescer.js';
import { deferred } from './deferred.js';
import { Mailbox } from './mailbox.js';
import type { BusyPolicy, SessionBudget } from './options.js';
import { RunnerSupervision, type SupervisedSession } from './runner-supervision.js';
import { Session, type Submission } from './session.js';
import { SessionActivity } from './session-activity.js';
import { type PausingSession, SessionApprovals } from './session-approvals.js';
import type { SessionHost } from './session-host.js';
import { SessionTally } from './session-tally.js';
import {
  type Caller,
  type CurrentTurn,
  interruptAnswered,
  interruptTurn,
  newTurn,
  reportTurnEnd,
  runTurnOn,
  steerInto,
  turnError,
} from './session-turn.js';
import type { Reply, SessionStats } from './session-types.js';

export class ActorSession extends Session {
  readonly #host: SessionHost;
  readonly #policy: BusyPolicy;
  readonly #mailbox: Mailbox;
  readonly #supervision: RunnerSupervision;
  #current: CurrentTurn | undefined;
  readonly #coalescer: Coalescer;
  #closing: Promise<void> | undefined;
  readonly #tally: SessionTally;
  /** From the moment a turn leaves the mailbox until its callers are settled. */
  #turnActive = false;
  readonly #activity: SessionActivity;
  readonly #approvals: SessionApprovals;

  constructor(
    key: string,
    agent: string,
    host: SessionHost,
    options: { busyPolicy: BusyPolicy; budget?: SessionBudget | undefined },
  ) {
    super(key, agent, host, options.budget, () => host.store.read(key));
    this.#host = host;
    this.#policy = options.busyPolicy;
    this.#mailbox = new Mailbox({ capacity: host.capacity, overflow: host.overflow, name: key });
    this.#supervision = new RunnerSupervision(host, this.#supervised());
    this.#activity = new SessionActivity(host, agent, () => void this.passivate('idle'));
    this.#tally = new SessionTally(key, host.store);
    this.#coalescer = new Coalescer({
      name: key,
      mailbox: this.#mailbox,
      capacity: host.capacity,
      run: (message, callers, waitedMs) =>
        this.#admitted(() => this.#runTurn(message, callers, waitedMs)),
    });
    this.#approvals = new SessionApprovals(this.#pausing(), host, host.approvalConfig(agent));
  }

  /** The view supervision has of this session. */
  #supervised(): SupervisedSession {
    const session = this;
    return {
      key: this.key,
      agent: this.agent,
      get destroyedWith() {
        return session.destroyedWith;
      },
      get stopping() {
        return session.state === 'closed' || session.state === 'closing';
      },
      runningTurn: () => {
        const current = this.#current;
        return current && { turnId: current.turnId, tools: [...current.inFlightTools.values()] };
      },
      onRunnerStarted: () => this.#armIdleTimer(),
      fail: (failure) => this.#fail(failure),
      canPassivate: () => this.canPassivate(),
      passivate: (reason) => this.passivate(reason),
    };
  }

  override async interrupt(reason = 'interrupted', turnId?: string): Promise<boolean> {
    const current = this.#current;
    const runner = this.#supervision.runner;
    if (!current) return this.#approvals.interrupt(reason, turnId);
    if (!runner) return false;
    if (turnId !== undefined && current.turnId !== turnId) return false;
    return interruptTurn(runner, current, reason, this.key);
  }

  override async history(): Promise<ChatMessage[]> {
    const records = await this.#host.store.read(this.key);
    return conversationMessages(records);
  }

  override async stats(): Promise<SessionStats> {
    const runner = this.#supervision.runner;
    const workerStats = await this.#supervision.workerStats();
    await this.#tally.load();
    return {
      key: this.key,
      agent: this.agent,
      status: this.state,
      threadId: runner?.threadId,
      busy: this.#current !== undefined,
      queued: this.#mailbox.size,
      ...this.#tally.figures(),
      restarts: this.#supervision.restarts,
      heapUsedBytes: workerStats?.heapUsedBytes,
      eventLoopUtilization: runner?.observeEventLoop().utilization,
    };
  }

  override get threadId(): number | undefined {
    return this.#supervision.runner?.threadId;
  }

  override get queued(): number {
    return this.#mailbox.size;
  }

  override get busy(): boolean {
    return this.#current !== undefined;
  }

  override close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.state !== 'failed') this.state = 'closing';
      this.#approvals.leave(new SessionClosedError(`session ${JSON.stringify(this.key)} closed`));
      await this.#mailbox.onIdle();
      await this.#stopRunner();
      this.state = 'closed';
      this.observers.close();
      this.#host.emit('session:close', { key: this.key });
    })();
    return this.#closing;
  }

  override async destroy(error: Error): Promise<void> {
    if (this.state === 'closed' && !this.#closing) return;
    this.destroyedWith ??= error;
    this.state = 'closed';
    this.#mailbox.clear(error);
    this.#approvals.leave(error);
    this.#coalescer.reject(error);
    await this.#stopRunner();
    await this.#mailbox.onIdle();
    this.observers.close();
  }

  override canPassivate(): boolean {
    return (
      this.#supervision.runner !== undefined &&
      this.#current === undefined &&
      !this.#supervision.starting &&
      !this.#turnActive &&
      this.#mailbox.size === 0 &&
      !this.#coalescer.waiting
    );
  }

  override async passivate(
    reason: 'idle' | 'capacity' | 'requested' = 'requested',
  ): Promise<boolean> {
    if (!this.canPassivate()) return false;
    this.#activity.stopIdleTimer();
    if (!(await this.#supervision.passivate(reason))) return false;
    this.#host.emit('session:passivate', { key: this.key, reason });
    return true;
  }

  override get isPassivated(): boolean {
    return this.#supervision.passivated;
  }

  /** Past the restart bound: everything waiting fails with `failure`. */
  #fail(failure: SessionFailedError): void {
    this.state = 'failed';
    this.#mailbox.clear(failure);
    this.#coalescer.reject(failure);
  }

  #armIdleTimer(): void {
    this.#activity.startIdleTimer(this.#supervision.runner !== undefined);
  }

  /** A reset marker (carrying the history to start from), then a worker rebuilt from it. */
  async #startNewConversation(history: readonly ChatMessage[] = []): Promise<void> {
    await this.#host.store.append(this.key, this.#activity.resetMarker(history));
    await this.#stopRunner();
    this.#host.emit('session:reset', { key: this.key });
  }

  protected override submit(message: string, submission: Submission): Promise<Reply> {
    this.assertAccepting();
    this.assertMessage(message);
    const history = this.checkedHistory(submission.history);
    this.#activity.noteMessage();
    const { onEvent, idempotency, trace } = submission;
    const caller: Caller = { reply: deferred(), onEvent, idempotency, trace };
    const waiting = this.#approvals.desk.waiting;
    const busy = this.#turnActive || this.#mailbox.size > 0 || waiting !== undefined;
    if (busy && this.#policy === 'reject') {
      const why = waiting ? 'has a turn waiting for approval' : 'is in a turn';
      throw new SessionBusyError(`session ${JSON.stringify(this.key)} ${why}`);
    }
    // A message with its own history cannot join a turn that runs on another one.
    const joins = history === undefined;
    if (joins && this.#current && this.#policy === 'steer') {
      const requeue = () => this.#enqueue(message, [caller], true);
      const { runner } = this.#supervision;
      void steerInto(runner, this.#current, { message, caller }, this.key, requeue);
      return caller.reply.promise;
    }
    if (joins && busy && this.#policy === 'coalesce') return this.#coalescer.add(message, caller);
    if ((this.#current || waiting) && this.#policy === 'interrupt')
      void this.interrupt('superseded by a newer message');
    this.#enqueue(message, [caller], false, history);
    return caller.reply.promise;
  }

  /** Queues a turn for `callers`; a rejection is delivered to each of them. */
  #enqueue(message: string, callers: Caller[], first = false, history?: ChatMessage[]): void {
    const run = (waitedMs: number) => this.#runTurn(message, callers, waitedMs, history);
    this.#mailbox
      .add((waitedMs) => this.#admitted(() => run(waitedMs)), { first })
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

  async #runTurn(
    message: TurnInput,
    callers: Caller[],
    waitedMs: number,
    history?: ChatMessage[],
    rest?: PausedTurn,
  ): Promise<void> {
    if (this.destroyedWith) throw this.destroyedWith;
    this.#tally.lastMailboxWaitMs = waitedMs;
    const current = newTurn(rest?.turnId ?? randomUUID(), callers, this.observers);
    const { turnId } = current;
    const budget = this.budget;
    const started = this.#host.clock.now();
    let outcome = 'ok';
    let cpuMs: number | undefined;
    let usage: Usage | undefined;
    let replyText: string | undefined;
    let approvals: number | undefined; // set when the turn stopped to wait for a person
    // Callers are settled last, once the session is idle again: whoever awaited a reply may
    // send the next message at once, even under the 'reject' policy.
    let settle: () => void = () => {};
    this.#turnActive = true;
    try {
      await this.#tally.checkBudget(budget);
      // A replaced history is a new conversation too: it supersedes a reset that was due.
      if (!rest && (this.#activity.takeReset() || history))
        await this.#startNewConversation(history);
      const runner = await this.#supervision.ensure();
      this.#current = current;
      this.state = this.state === 'idle' ? 'running' : this.state;
      this.#host.emit('turn:start', { key: this.key, turnId, waitedMs });
      const reply = await runTurnOn(runner, current, message, {
        host: this.#host,
        key: this.key,
        agent: this.agent,
        waitedMs,
        maxTurnCpuMs: budget?.maxTurnCpuMs,
        onCpu: (ms) => {
          cpuMs = ms;
        },
        stamps: rest?.stamps,
      });
      if (rest) this.#approvals.desk.ended(rest);
      if ('paused' in reply) {
        await this.#approvals.pause(current, reply);
        approvals = reply.paused.approvals.length;
        return;
      }
      this.#tally.answered(reply.usage);
      usage = reply.usage;
      replyText = reply.text;
      settle = () => {
        for (const caller of current.callers) caller.reply.resolve(reply);
      };
    } catch (thrown) {
      // A destroyed session answers with the error it was destroyed with (always typed).
      const error =
        (this.destroyedWith as AgentcellError | undefined) ??
        turnError(current, thrown, {
          turnTimeoutMs: this.#host.turnTimeoutMs,
          maxTurnCpuMs: budget?.maxTurnCpuMs,
        });
      outcome = error.code;
      if (rest) await this.#approvals.desk.failed(rest, error);
      this.#tally.failedTurns++;
      this.observers.failed(turnId, error);
      settle = () => {
        for (const caller of current.callers) caller.reply.reject(error);
      };
    } finally {
      this.#turnActive = false;
      if (this.#current === current) this.#current = undefined;
      if (this.state === 'running') this.state = 'idle';
      this.#approvals.turnEnded();
      this.#requeueUntakenSteers(current);
      this.#tally.lastTurnCpuMs = cpuMs;
      this.#activity.noteTurnEnd();
      this.#armIdleTimer();
      this.#host.onIdle(this.key);
      reportTurnEnd(this.#host, {
        key: this.key,
        agent: this.agent,
        turnId,
        outcome,
        started,
        firstTextAt: current.firstTextAt,
        cpuMs,
        usage,
        reply: replyText,
        approvals,
      });
      await interruptAnswered(current);
      settle();
    }
  }

  override async approve(approvalId: string, answer: ApprovalAnswer): Promise<void> {
    this.assertAnswer(approvalId, answer);
    await this.#approvals.answer(approvalId, answer);
  }

  override approvals(): Promise<PendingApprovalView[]> {
    return this.#approvals.desk.load().then(() => this.#approvals.desk.list());
  }

  /** The view its approvals have of this session. */
  #pausing(): PausingSession {
    return {
      key: this.key,
      agent: this.agent,
      mailbox: this.#mailbox,
      observers: this.observers,
      runRest: (turn, checkpoint, waitedMs) =>
        this.#admitted(() =>
          this.#runTurn({ kind: 'resume', checkpoint }, turn.callers, waitedMs, undefined, turn),
        ),
      tally: this.#tally,
    };
  }

  #requeueUntakenSteers(current: CurrentTurn): void {
    for (const { message, caller } of current.steers.values()) {
      if (this.state === 'closed' || this.state === 'failed')
        caller.reply.reject(this.destroyedWith ?? new SessionClosedError());
      else this.#enqueue(message, [caller], true);
    }
    current.steers.clear();
  }

  async #stopRunner(): Promise<void> {
    this.#activity.stopIdleTimer();
    await this.#supervision.stop();
  }
}
