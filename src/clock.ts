/**
 * Time as the runtime reads it: idle timeouts, restart windows, backoff and turn timeouts all
 * go through a Clock, so tests can advance time instead of waiting for it (fake timers patch
 * only the test's own thread and cannot reach a worker).
 */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): ClockTimer;
  clearTimeout(timer: ClockTimer): void;
}

/** An opaque timer handle. */
export type ClockTimer = { readonly __clockTimer: true } | NodeJS.Timeout;

/** The real clock. Its timers do not keep the process alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => {
    const timer = setTimeout(callback, ms);
    timer.unref();
    return timer;
  },
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
};
