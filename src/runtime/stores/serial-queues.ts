/** Operations run one at a time per key, in the order they were queued; other keys run alongside. */
export class SerialQueues {
  /** The tail of each key's queue; a key leaves the map when its queue runs dry. */
  readonly #tails = new Map<string, Promise<void>>();

  /** Runs `task` after every operation queued earlier under `key`, whether they failed or not. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const result = (this.#tails.get(key) ?? Promise.resolve()).then(task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }

  /** Resolves once every queued operation has settled, those queued meanwhile included. */
  async drain(): Promise<void> {
    while (this.#tails.size > 0) await Promise.all(this.#tails.values());
  }
}
