/**
 * The sessions that hold a live worker, least recently used first, under a ceiling. A session
 * that needs a worker takes a slot; at the ceiling the least recently used idle session is
 * passivated to make room, and when every live session is busy the activation waits (bounded)
 * for a slot instead of starting a worker the machine cannot hold.
 */
import type { Clock, ClockTimer } from '../clock.js';
import { CapacityExceededError } from '../errors.js';
import type { CapacityGuard } from './capacity.js';
import { type Deferred, deferred } from './deferred.js';

/** What the live set needs from a session to make room. */
export interface LiveMember {
  readonly key: string;
  /** Idle, nothing queued: its worker can go without anyone waiting on it. */
  canPassivate(): boolean;
  /** Stops the worker (the journal is already safe); releases the slot. */
  passivate(reason: 'idle' | 'capacity'): Promise<boolean>;
}

export interface LiveSetOptions {
  /** Most live workers (already capped by the machine ceiling). */
  readonly maxLive: number;
  readonly guard: CapacityGuard;
  readonly clock: Clock;
  /** How long an activation may wait for a slot before failing. */
  readonly waitTimeoutMs: number;
  /** Workers held outside the set (the warm pool) count against the ceiling too. */
  readonly reserved: () => number;
}

export class LiveSet {
  readonly #options: LiveSetOptions;
  readonly #members = new Map<string, LiveMember>();
  readonly #waiting: {
    readonly member: LiveMember;
    readonly granted: Deferred<void>;
    timer: ClockTimer | undefined;
  }[] = [];

  constructor(options: LiveSetOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#members.size;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  get maxLive(): number {
    return this.#options.maxLive;
  }

  has(key: string): boolean {
    return this.#members.has(key);
  }

  /** Marks activity: the member becomes the most recently used. */
  touch(key: string): void {
    const member = this.#members.get(key);
    if (!member) return;
    this.#members.delete(key);
    this.#members.set(key, member);
  }

  /** Least recently used first. */
  members(): LiveMember[] {
    return [...this.#members.values()];
  }

  /** Takes a slot for `member`, making room or waiting as needed. */
  async acquire(member: LiveMember): Promise<void> {
    if (this.#members.has(member.key)) return this.touch(member.key);
    if (this.#waiting.length === 0 && (await this.#makeRoom())) {
      this.#members.set(member.key, member);
      return;
    }
    const entry = { member, granted: deferred<void>(), timer: undefined as ClockTimer | undefined };
    entry.timer = this.#options.clock.setTimeout(() => {
      const index = this.#waiting.indexOf(entry);
      if (index < 0) return;
      this.#waiting.splice(index, 1);
      entry.granted.reject(
        new CapacityExceededError(
          `session ${JSON.stringify(member.key)} waited ${this.#options.waitTimeoutMs} ms for one of ${this.#options.maxLive} live worker slots`,
          { details: { maxLive: this.#options.maxLive, live: this.#members.size } },
        ),
      );
    }, this.#options.waitTimeoutMs);
    this.#waiting.push(entry);
    return entry.granted.promise;
  }

  /** Gives a member's slot back and lets the first waiting activation in. */
  release(key: string): void {
    if (!this.#members.delete(key)) return;
    void this.#grantWaiting();
  }

  /** Asks idle members to make room for waiting activations (after a turn ended, say). */
  kick(): void {
    if (this.#waiting.length > 0) void this.#grantWaiting();
  }

  async #grantWaiting(): Promise<void> {
    while (this.#waiting.length > 0 && (await this.#makeRoom())) {
      const entry = this.#waiting.shift();
      if (!entry) return;
      if (entry.timer !== undefined) this.#options.clock.clearTimeout(entry.timer);
      this.#members.set(entry.member.key, entry.member);
      entry.granted.resolve();
    }
  }

  /** True when one more worker fits: under the ceiling, or after passivating the LRU idle member. */
  async #makeRoom(): Promise<boolean> {
    if (this.#fits()) return true;
    for (const member of this.#members.values()) {
      if (!member.canPassivate()) continue;
      if (await member.passivate('capacity')) {
        this.#members.delete(member.key);
        if (this.#fits()) return true;
      }
    }
    return false;
  }

  #fits(): boolean {
    const used = this.#members.size + this.#options.reserved();
    return used < this.#options.maxLive && this.#options.guard.headroom() > 0;
  }
}
