/**
 * The one quantile definition (nearest rank): the dashboard, the load-test report and its
 * summary all read percentiles through it, so the same data gives the same p50 everywhere.
 * Plain code with no imports: the dashboard page bundles it too.
 */

/**
 * The value at quantile `q` (0–1) of an ascending list: the smallest value with at least
 * `q` of the list at or below it. `undefined` for an empty list.
 *
 * @example
 * quantile([1, 2, 3, 4], 0.5); // 2
 */
export function quantile(sorted: readonly number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.ceil(Math.min(1, Math.max(0, q)) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}
