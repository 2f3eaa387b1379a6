/**
 * What a session has spent and how many turns it ran: read from its journal once (a session
 * activated after a restart or passivation counts what came before), then kept as turns end.
 * Session budgets are checked against it before each turn.
 */
import { addUsage, type Usage, ZERO_USAGE } from '../agent/messages.js';
import type { SessionBudget } from './options.js';
import type { JournalStore } from './stores/store.js';
import { checkSessionBudget } from './turn-watch.js';

export class SessionTally {
  readonly #key: string;
  readonly #store: JournalStore;
  #loaded = false;
  usage: Usage = ZERO_USAGE;
  turns = 0;
  failedTurns = 0;
  /** CPU of the last turn's thread, and how long the last turn's message waited. */
  lastTurnCpuMs: number | undefined;
  lastMailboxWaitMs: number | undefined;

  constructor(key: string, store: JournalStore) {
    this.#key = key;
    this.#store = store;
  }

  /** Counts the journal's turns and usage, the first time only. */
  async load(): Promise<void> {
    if (this.#loaded) return;
    this.#loaded = true;
    const records = await this.#store.read(this.#key);
    this.usage = records.reduce((sum, record) => addUsage(sum, record.usage), ZERO_USAGE);
    // A paused turn's marks are not turns: its reply is journaled as one when it completes.
    this.turns = records.filter((record) => record.approval === undefined).length;
  }

  /** Throws the typed budget error if the session has spent its budget. */
  async checkBudget(budget: SessionBudget | undefined): Promise<void> {
    if (budget?.maxTokens === undefined && budget?.maxCostUsd === undefined) return;
    await this.load();
    checkSessionBudget(this.#key, this.usage, budget);
  }

  /** A turn answered. */
  answered(usage: Usage): void {
    this.usage = addUsage(this.usage, usage);
    this.turns++;
  }

  /** What a session's stats report of it. */
  figures(): {
    readonly turns: number;
    readonly failedTurns: number;
    readonly usage: Usage;
    readonly lastTurnCpuMs: number | undefined;
    readonly lastMailboxWaitMs: number | undefined;
  } {
    const { turns, failedTurns, usage, lastTurnCpuMs, lastMailboxWaitMs } = this;
    return { turns, failedTurns, usage, lastTurnCpuMs, lastMailboxWaitMs };
  }
}
