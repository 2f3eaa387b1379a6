/**
 * The stream of each chat's running turn, kept so a client that lost its connection can read
 * it again: `useChat` resumes by asking for the whole stream from its start (it replays, it
 * does not continue from a cursor), then reads on live until the turn ends.
 *
 * Each reader has its own queue and writes at its own pace: a slow or stalled client holds
 * back only itself, never the turn or the other readers. What a turn keeps for replays is
 * bounded; a turn that streams more than that can still be read live, but not resumed.
 */
import type { ServerResponse } from 'node:http';
import { writeOrWait } from '../sse.js';

/** Most bytes of one turn's stream kept for replays (1 MiB: far more than a reply's text). */
export const MAX_REPLAY_BYTES = 1024 * 1024;

interface Reader {
  readonly queue: string[];
  /** Set while the reader waits for frames; called when some arrive or the turn ends. */
  wake: () => void;
}

const idle = () => {};

/** One turn's stream: its frames so far, and the clients reading it. */
export class TurnRelay {
  readonly #frames: string[] = [];
  readonly #readers = new Set<Reader>();
  readonly #maxBytes: number;
  #bytes = 0;
  #replayable = true;
  #ended = false;

  constructor(maxBytes = MAX_REPLAY_BYTES) {
    this.#maxBytes = maxBytes;
  }

  /** Whether a client that connects now gets the stream from its start. */
  get replayable(): boolean {
    return this.#replayable && !this.#ended;
  }

  push(frame: string): void {
    if (this.#ended) return;
    if (this.#replayable) {
      this.#bytes += Buffer.byteLength(frame);
      if (this.#bytes > this.#maxBytes) {
        this.#replayable = false;
        this.#frames.length = 0;
      } else this.#frames.push(frame);
    }
    for (const reader of this.#readers) {
      reader.queue.push(frame);
      reader.wake();
    }
  }

  /** No more frames: readers end once they have written theirs. */
  end(): void {
    this.#ended = true;
    this.#frames.length = 0;
    for (const reader of this.#readers) reader.wake();
  }

  /**
   * Writes the stream to `res` (whose headers are sent) from its start, then live; ends `res`
   * when the turn's stream has ended. Resolves then, or as soon as the client goes away.
   */
  async pipe(res: ServerResponse, heartbeatMs: number): Promise<void> {
    const reader: Reader = { queue: [...this.#frames], wake: idle };
    this.#readers.add(reader);
    const onClose = () => reader.wake();
    res.on('close', onClose);
    const heartbeat =
      heartbeatMs > 0
        ? setInterval(() => void writeOrWait(res, ': keep-alive\n\n'), heartbeatMs)
        : undefined;
    heartbeat?.unref();
    try {
      let next = 0;
      while (!res.destroyed) {
        const frame = reader.queue[next];
        if (frame !== undefined) {
          next++;
          await writeOrWait(res, frame);
          continue;
        }
        if (this.#ended) break;
        reader.queue.length = next = 0;
        await new Promise<void>((resolve) => {
          reader.wake = resolve;
        });
        reader.wake = idle;
      }
    } finally {
      clearInterval(heartbeat);
      this.#readers.delete(reader);
      res.off('close', onClose);
      if (!res.writableEnded) res.end();
    }
  }
}

/** The running turn's stream of each chat, by its supervisor key. */
export class ChatStreams {
  readonly #running = new Map<string, TurnRelay>();

  /** A new stream for the chat's newest turn; a resume reads this one from now on. */
  open(key: string): TurnRelay {
    const relay = new TurnRelay();
    this.#running.set(key, relay);
    return relay;
  }

  /** Ends `relay`, and forgets it unless a newer turn of the chat took its place. */
  close(key: string, relay: TurnRelay): void {
    relay.end();
    if (this.#running.get(key) === relay) this.#running.delete(key);
  }

  /** The stream a reconnecting client can read from its start, if the chat has one. */
  resumable(key: string): TurnRelay | undefined {
    const relay = this.#running.get(key);
    return relay?.replayable ? relay : undefined;
  }
}
