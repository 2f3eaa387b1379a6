/**
 * When a session was last active (a message accepted or a turn ended): what its idle timeout
 * counts from, and what its reset policy compares with the clock.
 */
import { randomUUID } from 'node:crypto';
import type { JournalRecord } from '../agent/journal.js';
import { type ChatMessage, ZERO_USAGE } from '../agent/messages.js';
import type { ClockTimer } from '../clock.js';
import { shouldReset } from './reset-policy.js';
import type { SessionHost } from './session-host.js';

export class SessionActivity {
  readonly #host: SessionHost;
  readonly #agent: string;
  readonly #onIdle: () => void;
  #timer: ClockTimer | undefined;
  #last: number | undefined;
  #resetDue = false;

  /** `onIdle`: called once the idle timeout passed since the last activity. */
  constructor(host: SessionHost, agent: string, onIdle: () => void) {
    this.#host = host;
    this.#agent = agent;
    this.#onIdle = onIdle;
  }

  /** A message was accepted: a reset may be due, and the session is not idle. */
  noteMessage(): void {
    const now = this.#host.clock.now();
    const policy = this.#host.resetPolicy(this.#agent);
    if (policy && this.#last !== undefined && shouldReset(policy, this.#last, now)) {
      this.#resetDue = true;
    }
    this.#last = now;
    this.stopIdleTimer();
  }

  /** A turn ended. */
  noteTurnEnd(): void {
    this.#last = this.#host.clock.now();
  }

  /** The journal record a new conversation starts at, carrying the history it starts from. */
  resetMarker(history: readonly ChatMessage[]): JournalRecord {
    return {
      turnId: `reset-${randomUUID()}`,
      messages: history,
      usage: ZERO_USAGE,
      at: this.#host.clock.now(),
      agent: this.#agent,
      reset: true,
    };
  }

  /** Whether the next turn starts a new conversation; answering true clears it. */
  takeReset(): boolean {
    const due = this.#resetDue;
    this.#resetDue = false;
    return due;
  }

  /** Counts the idle timeout from now (a session without a worker has nothing to release). */
  startIdleTimer(hasWorker: boolean): void {
    this.stopIdleTimer();
    const ms = this.#host.idleTimeoutMs;
    if (ms <= 0 || !hasWorker) return;
    this.#timer = this.#host.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#onIdle();
    }, ms);
  }

  stopIdleTimer(): void {
    if (this.#timer === undefined) return;
    this.#host.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
