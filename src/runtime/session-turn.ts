/**
 * One turn of a session on its runner: the message in, the events out to its callers (the
 * final one held back until the turn is journaled), the delta journaled, and the reply. A turn
 * that fails ends with the error its callers should see.
 */
import { randomUUID } from 'node:crypto';
import type { Context } from '@opentelemetry/api';
import type { TurnInput, TurnPause } from '../agent/approval.js';
import type { IdempotencyStamp, JournalRecord } from '../agent/journal.js';
import { addUsage, type Usage } from '../agent/messages.js';
import type { TurnEvent } from '../agent/turn-events.js';
import {
  type AgentcellError,
  BudgetExceededError,
  fromWire,
  InternalError,
  isAgentcellError,
  TurnTimeoutError,
  withDetails,
} from '../errors.js';
import { errorFields, log } from '../log.js';
import type { Deferred } from './deferred.js';
import type { TurnRunner } from './placement/runner.js';
import type { SessionHost } from './session-host.js';
import type { SessionObservers } from './session-observers.js';
import type { Reply } from './session-types.js';
import { type WatchedTurn, watchTurn } from './turn-watch.js';

/** Whoever waits for a turn's reply, and hears its events. */
export interface Caller {
  readonly reply: Deferred<Reply>;
  readonly onEvent: ((event: TurnEvent) => void) | undefined;
  /** Journaled with the turn, so that a repeat is answered after a restart too. */
  readonly idempotency?: IdempotencyStamp | undefined;
  /** The caller's trace context: the turn's span continues it. */
  readonly trace?: Context | undefined;
}

export interface CurrentTurn extends WatchedTurn {
  readonly callers: Caller[];
  /** The session's observers: they hear what the callers hear. */
  readonly observers: SessionObservers;
  /** Messages steered into the turn, by steer id, until the worker says it took them. */
  readonly steers: Map<string, { message: string; caller: Caller }>;
  readonly inFlightTools: Map<string, string>;
  /** Held back until the turn is journaled. */
  final?: TurnEvent | undefined;
  /** When the turn's first text arrived (host clock), for the first-token latency. */
  firstTextAt?: number | undefined;
  /** Settles when the thread answered an interrupt of this turn (whatever it answered). */
  interruptAnswered?: Promise<unknown> | undefined;
}

export function newTurn(
  turnId: string,
  callers: Caller[],
  observers: SessionObservers,
): CurrentTurn {
  return {
    turnId,
    callers,
    observers,
    steers: new Map(),
    inFlightTools: new Map(),
    timedOut: false,
    overCpuBudget: false,
  };
}

/** What a turn reports besides its reply. */
export interface TurnOutcome {
  readonly reply: Reply;
  readonly cpuMs: number;
}

/** A turn that stopped for a person, with the idempotency keys its reply will carry. */
export interface PausedOutcome {
  readonly paused: TurnPause;
  readonly stamps: readonly IdempotencyStamp[];
}

/**
 * Runs `turn` on `runner` under the turn watch, journals it and returns its reply (or its
 * pause, journaled by the caller). A completed turn is journaled before anyone hears the
 * reply, so an acknowledged turn is never lost. `onCpu` hears the CPU the worker reported even
 * when the turn then fails. The rest of a paused turn adds what the turn spent before.
 */
export async function runTurnOn(
  runner: TurnRunner,
  turn: CurrentTurn,
  message: TurnInput,
  context: {
    readonly host: SessionHost;
    readonly key: string;
    readonly agent: string;
    /** How long the message waited in the mailbox. */
    readonly waitedMs: number;
    readonly maxTurnCpuMs: number | undefined;
    readonly onCpu: (ms: number) => void;
    /** Keys of messages a paused turn answered before this run. */
    readonly stamps?: readonly IdempotencyStamp[] | undefined;
  },
): Promise<Reply | PausedOutcome> {
  const { host } = context;
  const stopWatch = watchTurn(runner, turn, {
    clock: host.clock,
    turnTimeoutMs: host.turnTimeoutMs,
    interruptGraceMs: host.interruptGraceMs,
    maxTurnCpuMs: context.maxTurnCpuMs,
    sessionKey: context.key,
  });
  const { key, agent, waitedMs } = context;
  const parent = turn.callers[0]?.trace;
  const text = typeof message === 'string' ? message : undefined;
  host.traces.begin({ key, turnId: turn.turnId, agent, message: text, waitedMs, parent });
  try {
    const end = await runner.runTurn(turn.turnId, message, (event) => {
      if (event.type === 'text') turn.firstTextAt ??= host.clock.now();
      host.traces.event(event);
      deliver(turn, event);
    });
    context.onCpu(end.cpuMs);
    for (const steerId of end.steered) {
      const steer = turn.steers.get(steerId);
      if (steer) {
        turn.steers.delete(steerId);
        turn.callers.push(steer.caller);
      }
    }
    if (!end.ok) throw fromWire(end.error);
    const before = typeof message === 'string' ? undefined : message.checkpoint.usage;
    const spent = (usage: Usage) => (before ? addUsage(before, usage) : usage);
    const stamps = [
      ...(context.stamps ?? []),
      ...turn.callers.flatMap(({ idempotency }) => (idempotency ? [idempotency] : [])),
    ];
    if (end.paused) {
      const { checkpoint } = end.paused;
      const paused = {
        ...end.paused,
        checkpoint: { ...checkpoint, usage: spent(checkpoint.usage) },
      };
      return { paused, stamps };
    }
    const { result } = end;
    const usage = spent(result.delta.usage);
    const record: JournalRecord = {
      turnId: result.turnId,
      messages: result.delta.messages,
      usage,
      ...(result.output !== undefined && { output: result.output }),
      at: host.clock.now(),
      agent: context.agent,
      ...(stamps.length > 0 && { idempotency: stamps }),
    };
    await host.store.append(context.key, record);
    if (turn.final?.type === 'final') hear(turn, { ...turn.final, usage });
    return {
      text: result.reply,
      turnId: result.turnId,
      usage,
      ...(result.output !== undefined && { output: result.output }),
    };
  } finally {
    stopWatch();
  }
}

function deliver(turn: CurrentTurn, event: TurnEvent): void {
  if (event.type === 'tool-start') turn.inFlightTools.set(event.callId, event.name);
  if (event.type === 'tool-end') turn.inFlightTools.delete(event.callId);
  // The final event waits for the journal: a stream never shows a reply that is then lost.
  if (event.type === 'final') {
    turn.final = event;
    return;
  }
  hear(turn, event);
}

export function hear(turn: CurrentTurn, event: TurnEvent): void {
  for (const caller of turn.callers) caller.onEvent?.(event);
  turn.observers.emit(event);
}

/** The error callers see: a crash of a timed-out turn is a timeout, and so on. */
export function turnError(
  turn: CurrentTurn,
  thrown: unknown,
  limits: { readonly turnTimeoutMs: number; readonly maxTurnCpuMs: number | undefined },
): AgentcellError {
  const inFlightTools = [...turn.inFlightTools.values()];
  const details = { turnId: turn.turnId, inFlightTools };
  if (turn.timedOut) {
    return new TurnTimeoutError(
      `turn ${turn.turnId} ran past ${limits.turnTimeoutMs} ms (turnTimeoutMs)`,
      { details, cause: thrown },
    );
  }
  if (turn.overCpuBudget) {
    return new BudgetExceededError(
      `turn ${turn.turnId} used more than ${limits.maxTurnCpuMs} ms of CPU (budget.maxTurnCpuMs)`,
      { details, cause: thrown },
    );
  }
  if (!isAgentcellError(thrown)) return new InternalError(String(thrown), { cause: thrown });
  if (thrown.code === 'AGENTCELL_SESSION_CRASHED') return withDetails(thrown, details);
  return thrown;
}

/**
 * Interrupts `turn` on its runner; false when the interrupt did not reach the thread (logged).
 * The answer is kept on the turn, for {@link interruptAnswered}.
 */
export function interruptTurn(
  runner: TurnRunner,
  turn: CurrentTurn,
  reason: string,
  sessionKey: string,
): Promise<boolean> {
  const answered = runner.interrupt(turn.turnId, reason).catch((error: unknown) => {
    log('runtime').warn(
      { ...errorFields(error), sessionKey, turnId: turn.turnId },
      'the interrupt did not reach the worker',
    );
    return false;
  });
  turn.interruptAnswered = answered;
  return answered;
}

/**
 * Hands a message to the running turn (busy policy `steer`). If the turn can no longer take it
 * (it ended, or the worker could not be asked: logged), `requeue` gives it a turn of its own,
 * so nothing is lost either way.
 */
export async function steerInto(
  runner: TurnRunner | undefined,
  turn: CurrentTurn,
  steer: { readonly message: string; readonly caller: Caller },
  sessionKey: string,
  requeue: () => void,
): Promise<void> {
  const steerId = randomUUID();
  turn.steers.set(steerId, steer);
  const taken = runner
    ? await runner.steer(turn.turnId, steerId, steer.message).catch((error: unknown) => {
        log('runtime').warn(
          { ...errorFields(error), sessionKey, turnId: turn.turnId },
          'the steer did not reach the worker; the message waits for a turn of its own',
        );
        return false;
      })
    : false;
  if (!taken && turn.steers.delete(steerId)) requeue();
}

/**
 * Resolves once whoever interrupted `turn` has heard the answer (at once if nobody did): the
 * thread's answer and the turn's end travel on different ports, in no set order, and the
 * interrupter must hear first, before the turn's callers hear its outcome.
 */
export async function interruptAnswered(turn: CurrentTurn): Promise<void> {
  if (!turn.interruptAnswered) return;
  await turn.interruptAnswered;
  await new Promise<void>((resolve) => setImmediate(resolve));
}

/** What the host hears of a turn that ended, or paused for a person. */
export interface TurnReport {
  readonly key: string;
  readonly agent: string;
  readonly turnId: string;
  readonly outcome: string;
  readonly started: number;
  readonly firstTextAt: number | undefined;
  readonly cpuMs: number | undefined;
  readonly usage: Usage | undefined;
  readonly reply: string | undefined;
  /** How many approvals the turn waits for; set only when it paused. */
  readonly approvals: number | undefined;
}

/** Ends the turn's span, then emits `turn:pause` or `turn:end`. */
export function reportTurnEnd(host: SessionHost, report: TurnReport): void {
  const { key, agent, turnId, outcome, started, firstTextAt, cpuMs, usage, approvals } = report;
  const durationMs = host.clock.now() - started;
  // A paused turn's span ends here; the rest of the turn, once answered, is a turn of its own.
  host.traces.end(turnId, outcome, usage, report.reply);
  if (approvals !== undefined) {
    host.emit('turn:pause', { key, turnId, approvals, durationMs });
    return;
  }
  const firstTokenMs = firstTextAt === undefined ? undefined : firstTextAt - started;
  host.emit('turn:end', { key, agent, turnId, outcome, durationMs, firstTokenMs, cpuMs, usage });
}
