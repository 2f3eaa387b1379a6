/** Numbers, durations and sizes as the terminal table, the progress line and the HTML page show them. */

/** `1,234`, `12.3`. */
export function formatNumber(value: number, digits = 0): string {
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** Milliseconds as `850 ms` or `1.25 s`. */
export function formatMs(ms: number): string {
  if (ms < 10) return `${formatNumber(ms, Number.isInteger(ms) ? 0 : 1)} ms`;
  if (ms < 1_000) return `${formatNumber(ms)} ms`;
  return `${formatNumber(ms / 1000, 2)} s`;
}

/** Bytes as MiB or GiB. */
export function formatBytes(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  return mib >= 1024 ? `${formatNumber(mib / 1024, 2)} GiB` : `${formatNumber(mib)} MiB`;
}
