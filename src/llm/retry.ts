/**
 * When the model client tries again: which failures are worth a retry, how long to wait (the
 * server's Retry-After, else full jitter over a capped exponential backoff), and the wait itself
 * on the injected clock.
 */
import type { Clock } from '../clock.js';
import type { AgentcellError } from '../errors.js';

/** The longest wait between two attempts, whatever the backoff or the server asks for. */
export const MAX_RETRY_DELAY_MS = 60_000;

export function isRetryable(error: AgentcellError): boolean {
  if (error.code === 'AGENTCELL_LLM_RATE_LIMITED') return true;
  if (error.code !== 'AGENTCELL_LLM_REQUEST_FAILED') return false;
  const status = (error.details as { status?: number } | undefined)?.status;
  return status === undefined || status === 408 || status === 409 || status >= 500;
}

export interface RetryDelayInput {
  /** 0 for the first retry. */
  readonly attempt: number;
  readonly baseDelayMs: number;
  /** The failed response's headers, when there was a response. */
  readonly headers: Headers | undefined;
  /** Now, in epoch ms, for a Retry-After given as an HTTP-date. */
  readonly now: number;
  /** Uniform in [0, 1). */
  readonly random: () => number;
}

/**
 * The server's wait when it named one, else full jitter: a uniform share of the capped
 * exponential backoff, so callers that failed together (one 429 met by hundreds of sessions)
 * do not come back together.
 */
export function retryDelay(input: RetryDelayInput): number {
  const asked = input.headers && serverDelay(input.headers, input.now);
  if (asked !== undefined) return Math.min(asked, MAX_RETRY_DELAY_MS);
  const backoff = Math.min(input.baseDelayMs * 2 ** input.attempt, MAX_RETRY_DELAY_MS);
  return Math.round(input.random() * backoff);
}

const DELTA_SECONDS = /^\d+(?:\.\d+)?$/;

/**
 * `retry-after-ms`, else `Retry-After` as delta-seconds or an HTTP-date. A Retry-After that
 * asks for no wait at all (0, or a date already past) is left to the jittered backoff: every
 * caller told "now" at once would retry in lockstep.
 */
function serverDelay(headers: Headers, now: number): number | undefined {
  const ms = Number.parseFloat(headers.get('retry-after-ms') ?? '');
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const value = headers.get('retry-after')?.trim();
  if (!value) return undefined;
  const wait = DELTA_SECONDS.test(value) ? Number(value) * 1000 : Date.parse(value) - now;
  return Number.isFinite(wait) && wait > 0 ? wait : undefined;
}

/**
 * Waits `ms` on `clock`. Rejects with the signal's reason as soon as it aborts, clearing the
 * timer, so an interrupt never waits out a backoff.
 */
export function sleep(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clock.clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = clock.setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    // The system clock's timers do not hold the process open, but a caller is awaiting this
    // wait: like the request it stands in for, it must keep a script alive until it settles.
    if ('ref' in timer) timer.ref();
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
