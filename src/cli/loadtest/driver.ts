/**
 * The load itself: every session sends its turns (seeded messages and think times, spread over
 * the ramp, at most `concurrency` sends in flight), and every send is tracked until it settles
 * as a reply, a typed error or a lost turn.
 */
import { settlesWithin, sleep } from './deadline.js';
import type { LoadtestOptions } from './options.js';
import { makeMessage, thinkTime, turnRandom } from './random.js';
import type { Recorder } from './recorder.js';
import type { LoadTarget } from './target.js';

/** At most `limit` holders at once; the others wait in order. */
class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(limit: number) {
    this.#free = limit;
  }

  acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#free++;
  }
}

/** One send as the driver tracks it until it settles. */
interface Pending {
  overdue: boolean;
}

/** Drives sessions × turns against a target and feeds what happens to the recorder. */
export class LoadDriver {
  readonly #options: LoadtestOptions;
  readonly #target: LoadTarget;
  readonly #recorder: Recorder;
  readonly #sessionKey: (index: number) => string;
  readonly #slots: Slots;
  readonly #pending = new Set<Pending>();
  readonly #t0 = performance.now();
  #broken = 0;
  #overdue = 0;
  #closed = false;

  constructor(
    options: LoadtestOptions,
    target: LoadTarget,
    recorder: Recorder,
    sessionKey: (index: number) => string,
  ) {
    this.#options = options;
    this.#target = target;
    this.#recorder = recorder;
    this.#sessionKey = sessionKey;
    this.#slots = new Slots(options.concurrency);
  }

  /** Milliseconds since the driver was made (the run's clock). */
  now(): number {
    return performance.now() - this.#t0;
  }

  /** Sends not settled yet. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** Sends settled: replies, typed errors and broken ones. */
  get settled(): number {
    return this.#recorder.replies + this.#recorder.errors + this.#broken;
  }

  /** Sends broken, or past their turn timeout and not settled yet. */
  get unanswered(): number {
    return this.#broken + this.#overdue;
  }

  /** Runs every session to its last send and waits for each send to settle or time out. */
  async run(): Promise<void> {
    const { sessions } = this.#options;
    await Promise.all(Array.from({ length: sessions }, (_, index) => this.#runSession(index)));
  }

  /**
   * Stops tracking: sends that settle from now on are ignored. Returns the lost turns (broken
   * ones and those still unsettled); the first call records why the unsettled ones are lost.
   */
  close(): number {
    const unsettled = this.#pending.size;
    if (!this.#closed && unsettled > 0) {
      this.#recorder.lost(
        `no reply or typed error by the end of the run (waited ≥ ${this.#options.turnTimeoutMs} ms)`,
        unsettled,
      );
    }
    this.#closed = true;
    return this.#broken + unsettled;
  }

  async #runSession(index: number): Promise<void> {
    const options = this.#options;
    await sleep((options.rampS * 1000 * index) / options.sessions);
    const key = this.#sessionKey(index);
    const overlapping: Promise<void>[] = [];
    for (let turn = 0; turn < options.turns; turn++) {
      const random = turnRandom(options.seed, index, turn);
      const message = makeMessage(random, options.messageBytes, index, turn);
      const think = thinkTime(random, options.thinkMs);
      await this.#slots.acquire();
      const sentAt = this.now();
      const done = this.#dispatch(key, message);
      const last = turn === options.turns - 1;
      if (options.thinkFrom === 'reply') {
        await done;
        if (!last) await sleep(think);
      } else {
        overlapping.push(done);
        if (!last) await sleep(sentAt + think - this.now());
      }
    }
    await Promise.all(overlapping);
  }

  /** Sends one message; resolves when it settled or its turn timeout passed, freeing its slot. */
  async #dispatch(key: string, message: string): Promise<void> {
    const recorder = this.#recorder;
    const sentAt = this.now();
    let firstText: number | undefined;
    const record: Pending = { overdue: false };
    recorder.sent++;
    this.#pending.add(record);
    const onText = () => {
      firstText ??= this.now() - sentAt;
    };
    const settled = this.#target.send(key, message, { onText }).then((outcome) => {
      if (this.#closed) return;
      this.#pending.delete(record);
      if (record.overdue) {
        this.#overdue--;
        recorder.late++;
      }
      const at = this.now();
      if (outcome.kind === 'reply') recorder.reply(at, at - sentAt, firstText);
      else if (outcome.kind === 'error') recorder.error(at, outcome.code);
      else {
        this.#broken++;
        recorder.lost(outcome.reason);
      }
    });
    if (!(await settlesWithin(settled, this.#options.turnTimeoutMs))) {
      record.overdue = true;
      this.#overdue++;
    }
    this.#slots.release();
  }
}
