/** The spending limit a turn checks around each call (the host prices each call). */
import { BudgetExceededError } from '../errors.js';
import type { AgentSpec } from './config.js';

/** Throws `AGENTCELL_BUDGET_EXCEEDED` once `spentUsd` is past `execution.maxBudget`. */
export function checkBudget(spec: AgentSpec, spentUsd: number): void {
  const maxBudget = spec.execution?.maxBudget;
  if (maxBudget === undefined) return;
  if (spentUsd > maxBudget || (spentUsd === maxBudget && maxBudget === 0)) {
    throw new BudgetExceededError(
      `spent $${spentUsd.toFixed(6)} of a $${maxBudget} budget (execution.maxBudget)`,
      { details: { spentUsd, maxBudgetUsd: maxBudget } },
    );
  }
}
