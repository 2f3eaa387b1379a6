/** What one LLM call cost, and the spending limit a turn checks around each call. */
import { BudgetExceededError } from '../errors.js';
import type { LlmResponse } from '../llm/client.js';
import type { AgentSpec } from './config.js';
import type { Usage } from './messages.js';

/** The usage of one response, priced when the config has pricing. */
export function usageOf(response: LlmResponse, spec: AgentSpec): Usage {
  const pricing = spec.execution?.pricing;
  const costUsd = pricing
    ? (response.inputTokens * pricing.inputPerMillion +
        response.outputTokens * pricing.outputPerMillion) /
      1e6
    : 0;
  return {
    inputTokens: response.inputTokens,
    outputTokens: response.outputTokens,
    totalTokens: response.inputTokens + response.outputTokens,
    costUsd,
    llmCalls: 1,
  };
}

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
