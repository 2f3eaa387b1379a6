/**
 * Samples the process's resident set size on an interval and keeps the peak. Worker threads
 * live in the same process, so their memory is in the figure. The timer is unref'd: it never
 * keeps a benchmark alive.
 */

export interface RssSampler {
  /** Highest RSS seen so far, in bytes (sampled once at start, then every interval). */
  readonly peakBytes: number;
  readonly samples: number;
  /** Takes a last sample and stops sampling; returns the peak in bytes. */
  stop(): number;
}

export function sampleRss(intervalMs = 100): RssSampler {
  let peak = 0;
  let samples = 0;
  const sample = () => {
    const rss = process.memoryUsage.rss();
    samples++;
    if (rss > peak) peak = rss;
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  timer.unref();
  return {
    get peakBytes() {
      return peak;
    },
    get samples() {
      return samples;
    },
    stop() {
      clearInterval(timer);
      sample();
      return peak;
    },
  };
}

/** Bytes as MiB or GiB. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return 'n/a';
  const mib = bytes / 2 ** 20;
  return mib >= 1024 ? `${(mib / 1024).toFixed(2)} GiB` : `${mib.toFixed(1)} MiB`;
}
