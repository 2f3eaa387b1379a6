/**
 * The watch over one running turn: past the turn timeout it is interrupted, and its worker
 * terminated if it has not ended after the grace period; past its CPU budget its worker is
 * terminated at once. What fired is noted on the turn, so that the crash that follows is told
 * to callers as the timeout or the budget it was. Also the session's own token and money budget,
 * checked before a turn starts.
 */
import type { Usage } from '../agent/messages.js';
import type { Clock, ClockTimer } from '../clock.js';
import { BudgetExceededError } from '../errors.js';
import { errorFields, log } from '../log.js';
import type { SessionBudget } from './options.js';
import type { TurnRunner } from './placement/runner.js';

/** What the watch notes on the turn it watches. */
export interface WatchedTurn {
  readonly turnId: string;
  timedOut: boolean;
  overCpuBudget: boolean;
}

export interface TurnWatchOptions {
  readonly clock: Clock;
  readonly turnTimeoutMs: number;
  readonly interruptGraceMs: number;
  /** CPU the turn may use in its worker; undefined: no limit. */
  readonly maxTurnCpuMs: number | undefined;
  /** Names the session in log lines. */
  readonly sessionKey: string;
}

/** Starts watching `turn` on `runner`; returns what stops the watch. */
export function watchTurn(
  runner: TurnRunner,
  turn: WatchedTurn,
  options: TurnWatchOptions,
): () => void {
  const { clock } = options;
  let grace: ClockTimer | undefined;
  const timeout = clock.setTimeout(() => {
    turn.timedOut = true;
    void runner.interrupt(turn.turnId, 'turn timeout').catch((error: unknown) => {
      // The grace timer terminates the worker anyway; the failed interrupt is only worth a line.
      log('runtime').debug(
        { ...errorFields(error), sessionKey: options.sessionKey, turnId: turn.turnId },
        'the interrupt of a timed-out turn failed',
      );
    });
    grace = clock.setTimeout(() => void runner.terminate(), options.interruptGraceMs);
  }, options.turnTimeoutMs);
  const cpuWatch = watchCpu(runner, turn, options.maxTurnCpuMs);
  return () => {
    clock.clearTimeout(timeout);
    if (grace) clock.clearTimeout(grace);
    clearInterval(cpuWatch);
  };
}

function watchCpu(
  runner: TurnRunner,
  turn: WatchedTurn,
  maxCpu: number | undefined,
): NodeJS.Timeout | undefined {
  if (maxCpu === undefined) return undefined;
  runner.eventLoopUtilization();
  let used = 0;
  // CPU is real time spent by the worker, so it is sampled on the real clock.
  return setInterval(
    () => {
      used += runner.eventLoopUtilization().active;
      if (used > maxCpu) {
        turn.overCpuBudget = true;
        void runner.terminate();
      }
    },
    Math.max(5, Math.min(50, maxCpu / 4)),
  );
}

/** Throws `AGENTCELL_BUDGET_EXCEEDED` once a session spent its tokens or its money. */
export function checkSessionBudget(key: string, usage: Usage, budget: SessionBudget): void {
  if (budget.maxTokens !== undefined && usage.totalTokens >= budget.maxTokens) {
    throw new BudgetExceededError(
      `session ${JSON.stringify(key)} used ${usage.totalTokens} of ${budget.maxTokens} tokens (budget.maxTokens)`,
    );
  }
  if (budget.maxCostUsd !== undefined && usage.costUsd >= budget.maxCostUsd) {
    throw new BudgetExceededError(
      `session ${JSON.stringify(key)} spent $${usage.costUsd} of $${budget.maxCostUsd} (budget.maxCostUsd)`,
    );
  }
}
