import type { Piscina } from 'piscina';

/** Exit codes kept: a failed task's runner asks right after its thread exits. */
const REMEMBERED_EXITS = 64;

/**
 * The exit codes of a piscina pool's threads. piscina fails an exiting thread's tasks with the
 * code in the message text only; this listens to each thread's own 'exit'. piscina's listener
 * was added first, but its rejections reach their handlers only after the emit, by which time
 * the code is here.
 */
export class ThreadExits {
  /** Thread id → exit code, oldest first. */
  readonly #codes = new Map<number, number>();

  constructor(piscina: Piscina) {
    piscina.on('workerCreate', (created: { readonly id: number }) => {
      // Read now: a Worker's threadId reads -1 once it has exited.
      const threadId = created.id;
      const thread = piscina.threads.find((each) => each.threadId === threadId);
      thread?.once('exit', (code: number) => this.#remember(threadId, code));
    });
  }

  /** How a thread that exited lately exited; undefined for a live or long gone one. */
  codeOf(threadId: number): number | undefined {
    return this.#codes.get(threadId);
  }

  #remember(threadId: number, code: number): void {
    this.#codes.set(threadId, code);
    if (this.#codes.size > REMEMBERED_EXITS) {
      const oldest = this.#codes.keys().next();
      if (!oldest.done) this.#codes.delete(oldest.value);
    }
  }
}
