import { InterruptedError } from '../errors.js';

/** Never aborted: what `signal` returns between turns. */
const IDLE_SIGNAL = new AbortController().signal;

/**
 * Cooperative cancellation of an agent's turns. Every turn gets its own AbortController, and an
 * interrupt aims at the turn that is running when it is made (or at a named turn id), so a
 * stale interrupt can never kill a later turn. An interrupt made while no turn runs is a no-op.
 *
 * @example
 * const signal = agent.interrupts.beginTurn('t1');
 * agent.interrupts.interrupt('user pressed stop'); // aborts `signal`
 * agent.interrupts.check();                        // throws AGENTCELL_INTERRUPTED
 * agent.interrupts.endTurn('t1');
 */
export class InterruptController {
  #turnId: string | undefined;
  #controller: AbortController | undefined;

  /** Starts a turn and returns the signal that its LLM requests and tools must honour. */
  beginTurn(turnId: string): AbortSignal {
    this.#turnId = turnId;
    this.#controller = new AbortController();
    return this.#controller.signal;
  }

  /** Ends the turn; a later interrupt will not reach it. Ignores ids of other turns. */
  endTurn(turnId: string): void {
    if (this.#turnId !== turnId) return;
    this.#turnId = undefined;
    this.#controller = undefined;
  }

  /**
   * Interrupts the running turn (only if it is `turnId`, when given). Returns whether a turn
   * was interrupted.
   */
  interrupt(reason = 'interrupted', turnId?: string): boolean {
    const controller = this.#controller;
    if (!controller || controller.signal.aborted) return false;
    if (turnId !== undefined && turnId !== this.#turnId) return false;
    controller.abort(
      new InterruptedError(`turn ${this.#turnId} interrupted: ${reason}`, { details: { reason } }),
    );
    return true;
  }

  /** The running turn's id, if any. */
  get turnId(): string | undefined {
    return this.#turnId;
  }

  /** The running turn's signal; a never-aborted signal between turns. */
  get signal(): AbortSignal {
    return this.#controller?.signal ?? IDLE_SIGNAL;
  }

  get isInterrupted(): boolean {
    return this.signal.aborted;
  }

  /** The reason given to `interrupt()` for the running turn. */
  get reason(): string | undefined {
    if (!this.isInterrupted) return undefined;
    const cause: unknown = this.signal.reason;
    const details = (cause as { details?: { reason?: unknown } } | undefined)?.details;
    return typeof details?.reason === 'string' ? details.reason : undefined;
  }

  /** Throws `AGENTCELL_INTERRUPTED` if the running turn was interrupted. */
  check(): void {
    if (this.isInterrupted) throw this.signal.reason;
  }
}
