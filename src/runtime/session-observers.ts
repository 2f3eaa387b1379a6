/**
 * Who watches a session's turns besides their callers: every event of every turn, whichever
 * caller or channel sent the message, and how each failed turn ended. Observers are told once
 * when the session closes; they never hold a turn up: an observer that throws is logged once
 * and removed.
 */
import type { TurnEvent, TurnEventTags } from '../agent/turn-events.js';
import type { AgentcellError } from '../errors.js';
import { errorFields, log } from '../log.js';

/** A turn failed (interrupted, timed out, crashed, ...): no `final` event will come. */
export interface TurnFailedEvent extends TurnEventTags {
  readonly type: 'turn-failed';
  /** The error the turn's callers got (not necessarily public: map it before showing it). */
  readonly error: AgentcellError;
}

export type ObservedEvent = TurnEvent | TurnFailedEvent;

export interface SessionObserver {
  /** Each event of each turn as its callers hear it (`final` once journaled), or `turn-failed`. */
  readonly onEvent: (event: ObservedEvent) => void;
  /** The session closed or was destroyed: nothing more comes, and the observer is removed. */
  readonly onClose?: (() => void) | undefined;
}

export class SessionObservers {
  readonly #key: string;
  readonly #observers = new Set<SessionObserver>();
  /** The last event heard, to number a `turn-failed` after it (one turn runs at a time). */
  #last: { turnId: string; seq: number } | undefined;

  constructor(key: string) {
    this.#key = key;
  }

  get size(): number {
    return this.#observers.size;
  }

  add(observer: SessionObserver): () => void {
    // A wrapper per call, so one observer object added twice is removed once per unsubscribe.
    const entry: SessionObserver = { ...observer };
    this.#observers.add(entry);
    return () => {
      this.#observers.delete(entry);
    };
  }

  emit(event: ObservedEvent): void {
    this.#last = { turnId: event.turnId, seq: event.seq };
    for (const observer of this.#observers) {
      if (!this.#call(() => observer.onEvent(event))) this.#observers.delete(observer);
    }
  }

  failed(turnId: string, error: AgentcellError): void {
    const seq = this.#last?.turnId === turnId ? this.#last.seq + 1 : 0;
    this.emit({ type: 'turn-failed', sessionKey: this.#key, turnId, seq, error });
  }

  close(): void {
    const observers = [...this.#observers];
    this.#observers.clear();
    for (const observer of observers) this.#call(() => observer.onClose?.());
  }

  /** Whether `fn` returned normally. */
  #call(fn: () => void): boolean {
    try {
      fn();
      return true;
    } catch (error) {
      log('runtime').warn(
        { ...errorFields(error), sessionKey: this.#key },
        'an observer threw and was removed',
      );
      return false;
    }
  }
}
