/**
 * The client end of a streamed turn, the same on every streaming route: whether the client went
 * away and, with `interruptOnDisconnect`, interrupting the turn it started once it has (by the
 * turn's id, never a later turn of the session); plus keep-alive comments, so proxies do not
 * close a stream that is quiet while a tool runs.
 */
import type { ServerResponse } from 'node:http';
import type { Session } from '../runtime/session.js';

export interface TurnConnection {
  /** The client closed the connection before the stream ended. */
  readonly gone: boolean;
  /** The turn's id, from its first event: a client gone before then interrupts it now. */
  seen(turnId: string): void;
  /** The turn has ended: a client going away no longer interrupts anything. */
  finished(): void;
  /** Stops watching and the keep-alives. */
  close(): void;
}

export interface TurnConnectionOptions {
  readonly interruptOnDisconnect: boolean;
  /** Milliseconds between keep-alive comments; 0 sends none. */
  readonly heartbeatMs: number;
}

export function watchTurnConnection(
  res: ServerResponse,
  session: Session,
  options: TurnConnectionOptions,
): TurnConnection {
  let turnId: string | undefined;
  let gone = false;
  let over = false;
  const interruptIfGone = () => {
    if (!options.interruptOnDisconnect || !gone || over || turnId === undefined) return;
    over = true;
    void session.interrupt('the client disconnected', turnId);
  };
  const onClose = () => {
    if (res.writableEnded) return;
    gone = true;
    interruptIfGone();
  };
  res.on('close', onClose);
  const heartbeat =
    options.heartbeatMs > 0
      ? setInterval(() => {
          // A comment line only: nothing to wait for when the socket is full, the next one will do.
          if (!res.destroyed && !res.writableEnded) res.write(': keep-alive\n\n');
        }, options.heartbeatMs)
      : undefined;
  heartbeat?.unref();
  return {
    get gone() {
      return gone;
    },
    seen(id) {
      if (turnId !== undefined) return;
      turnId = id;
      interruptIfGone();
    },
    finished() {
      over = true;
    },
    close() {
      over = true;
      clearInterval(heartbeat);
      res.off('close', onClose);
    },
  };
}
