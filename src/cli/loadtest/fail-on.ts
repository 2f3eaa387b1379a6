/**
 * `--fail-on` thresholds: the metrics they may compare, how an expression such as `p99>2000`
 * is read, and whether a measured value crosses it.
 */
import { optionsError } from './option-errors.js';

/** What a `--fail-on` expression may compare, with its unit (see {@link FAIL_METRICS}). */
export type FailMetric =
  | 'p50'
  | 'p90'
  | 'p99'
  | 'max'
  | 'mean'
  | 'ttft-p50'
  | 'ttft-p99'
  | 'error-rate'
  | 'errors'
  | 'lost'
  | 'throughput'
  | 'rss-mb'
  | 'cpu';

/** Every metric `--fail-on` knows, with what it measures. */
export const FAIL_METRICS: Readonly<Record<FailMetric, string>> = {
  p50: 'turn latency p50 of replies, ms',
  p90: 'turn latency p90 of replies, ms',
  p99: 'turn latency p99 of replies, ms',
  max: 'slowest reply, ms',
  mean: 'mean turn latency of replies, ms',
  'ttft-p50': 'time to first token p50, ms',
  'ttft-p99': 'time to first token p99, ms',
  'error-rate': 'typed errors / turns sent, 0..1',
  errors: 'typed errors, count',
  lost: 'lost turns, count',
  throughput: 'replies per second',
  'rss-mb': 'peak resident memory, MiB',
  cpu: 'average CPU, % of one core',
};

export type FailOperator = '>' | '>=' | '<' | '<=';

/** One parsed `--fail-on` threshold: the run fails when `metric op value` holds. */
export interface FailRule {
  readonly expr: string;
  readonly metric: FailMetric;
  readonly op: FailOperator;
  readonly value: number;
}

const FAIL_EXPR = /^\s*([a-z][a-z0-9-]*)\s*(>=|<=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$/i;

/**
 * Parses `p99>2000`, `error-rate>0.01`, `throughput<50`: a metric, an operator and a number.
 * Throws `AGENTCELL_OPTIONS_INVALID` naming the known metrics.
 */
export function parseFailRule(expr: string): FailRule {
  const match = FAIL_EXPR.exec(expr);
  const metric = match?.[1]?.toLowerCase();
  if (!match || metric === undefined || !Object.hasOwn(FAIL_METRICS, metric)) {
    throw optionsError(
      `--fail-on ${JSON.stringify(expr)}: expected <metric><op><number> such as p99>2000 or error-rate>0.01, with a metric among ${Object.keys(FAIL_METRICS).join(', ')} and an op among > >= < <=`,
    );
  }
  return {
    expr: expr.trim(),
    metric: metric as FailMetric,
    op: match[2] as FailOperator,
    value: Number(match[3]),
  };
}

/** Whether `actual` crosses the rule's threshold. */
export function crosses(rule: FailRule, actual: number): boolean {
  switch (rule.op) {
    case '>':
      return actual > rule.value;
    case '>=':
      return actual >= rule.value;
    case '<':
      return actual < rule.value;
    case '<=':
      return actual <= rule.value;
  }
}
