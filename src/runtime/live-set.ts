/**
 * The sessions that hold a live worker, least recently used first, under a ceiling. A session
 * that needs a worker takes a slot; at the ceiling a prepared worker of another agent is given
 * back, or the least recently used idle session is passivated, to make room; when every live
 * session is busy the activation waits (bounded) for a slot instead of starting a worker the
 * machine cannot hold. Making room and taking the slot happen under one lock, so activations
 * arriving together cannot all see the same free slot.
 */
import { Mutex } from 'async-mutex';
import type { Clock, ClockTimer } from '../clock.js';
import { CapacityExceededError } from '../errors.js';
import type { CapacityGuard } from './capacity.js';
import { type Deferred, deferred } from './deferred.js';

/** What the live set needs from a session to make room. */
export interface LiveMember {
  readonly key: string;
  readonly agent?: string;
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
  /**
   * Workers held outside the set (the warm pool, ready or being prepared) that count against
   * the ceiling for an activation of `forAgent` (a ready worker of its own agent is the one it
   * will take, so it is not counted against it).
   */
  readonly reserved: (forAgent: string | undefined) => number;
  /** Gives back one prepared worker of another agent; false if there is none. */
  readonly evictReserved?: (forAgent: string | undefined) => Promise<boolean>;
}

/**
 * One activation's hold on its slot. A session passivating while its next message already
 * activates it again holds two in a row: only the matching lease releases a slot.
 */
export type Lease = symbol;

export class LiveSet {
  readonly #options: LiveSetOptions;
  readonly #members = new Map<string, { member: LiveMember; lease: Lease }>();
  readonly #lock = new Mutex();
  readonly #waiting: {
    readonly member: LiveMember;
    readonly granted: Deferred<Lease>;
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
    const held = this.#members.get(key);
    if (!held) return;
    this.#members.delete(key);
    this.#members.set(key, held);
  }
  /** Least recently used first. */
  members(): LiveMember[] {
    return [...this.#members.values()].map((held) => held.member);
  }

  #admit(member: LiveMember): Lease {
    const lease = Symbol(member.key);
    this.#members.delete(member.key);
    this.#members.set(member.key, { member, lease });
    return lease;
  }

  /** Takes a slot for `member`, making room or waiting as needed. */
  async acquire(member: LiveMember): Promise<Lease> {
    const now = await this.#lock.runExclusive(async () => {
      if (this.#members.has(member.key)) return this.#admit(member);
      if (this.#waiting.length === 0 && (await this.#makeRoom(member))) return this.#admit(member);
      return undefined;
    });
    if (now) return now;
    const entry = {
      member,
      granted: deferred<Lease>(),
      timer: undefined as ClockTimer | undefined,
    };
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
    this.kick();
    return entry.granted.promise;
  }

  /** Gives a slot back (only if `lease` still holds it) and lets a waiting activation in. */
  release(key: string, lease?: Lease): void {
    const held = this.#members.get(key);
    if (!held || (lease !== undefined && held.lease !== lease)) return;
    this.#members.delete(key);
    this.kick();
  }

  /** Asks for room for waiting activations (after a turn ended, say). */
  kick(): void {
    if (this.#waiting.length > 0) void this.#grantWaiting();
  }

  #grantWaiting(): Promise<void> {
    return this.#lock.runExclusive(async () => {
      while (this.#waiting.length > 0 && (await this.#makeRoom(this.#waiting[0]?.member))) {
        const entry = this.#waiting.shift();
        if (!entry) return;
        if (entry.timer !== undefined) this.#options.clock.clearTimeout(entry.timer);
        entry.granted.resolve(this.#admit(entry.member));
      }
    });
  }

  /** True when one more worker fits: under the ceiling, or after giving back or passivating one. */
  async #makeRoom(forMember: LiveMember | undefined): Promise<boolean> {
    const agent = forMember?.agent;
    if (this.#fits(agent)) return true;
    if ((await this.#options.evictReserved?.(agent)) && this.#fits(agent)) return true;
    for (const [key, held] of [...this.#members]) {
      if (!held.member.canPassivate()) continue;
      if (await held.member.passivate('capacity')) {
        if (this.#members.get(key) === held) this.#members.delete(key);
        if (this.#fits(agent)) return true;
      }
    }
    return false;
  }

  #fits(agent: string | undefined): boolean {
    const used = this.#members.size + this.#options.reserved(agent);
    return used < this.#options.maxLive && this.#options.guard.headroom() > 0;
  }
}
