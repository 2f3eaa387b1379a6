/**
 * `GET /v1/sessions/:key/events`: clients of the session's tenant watch its turns live, whoever
 * sent the message (any route, a chat platform, code calling `session.send`). One subscription
 * to the session feeds all of its streams, each event encoded once. Writes never wait: a client
 * that falls `maxBufferedBytes` behind is dropped, so it never holds the turn or the other
 * observers up.
 */
import type { ServerResponse } from 'node:http';
import { GatewayClosingError, ObserverLimitError } from '../errors.js';
import type { Session } from '../runtime/session.js';
import type { ObservedEvent } from '../runtime/session-observers.js';
import type { PublicError } from './http.js';
import { SSE_HEADERS, sseFrame } from './sse.js';

export interface ObserverHubOptions {
  readonly maxPerSession: number;
  readonly maxBufferedBytes: number;
  /** Interval of keep-alive comments; 0 sends none. */
  readonly heartbeatMs: number;
}

/** Why a stream ended: the `reason` of its last event, `end`. */
export type ObserverEndReason = 'slow' | 'session-closed' | 'gateway-closing';

const END_MESSAGES: Readonly<Record<ObserverEndReason, string>> = {
  slow: 'this observer fell behind (its connection held too many unsent bytes) and was dropped; reconnect, and read the session’s history for what it missed',
  'session-closed': 'the session was closed',
  'gateway-closing': 'the gateway is shutting down',
};

/**
 * How long a dropped stream may take to flush its last bytes: a client that stopped reading
 * for good would otherwise keep its socket, and what is buffered for it, forever.
 */
const DROPPED_LINGER_MS = 10_000;

interface Watcher {
  readonly res: ServerResponse;
  /** The session key as the caller named it (events carry it, not the namespaced one). */
  readonly key: string;
  readonly toPublic: (error: unknown) => PublicError;
  end(reason: ObserverEndReason): void;
}

/** One session's observers and its one subscription. */
interface Fanout {
  readonly watchers: Set<Watcher>;
  readonly stop: () => void;
}

export class ObserverHub {
  readonly #options: ObserverHubOptions;
  readonly #fanouts = new Map<Session, Fanout>();
  #dropped = 0;
  #closed = false;

  constructor(options: ObserverHubOptions) {
    this.#options = options;
  }

  /** Open observer streams, and those dropped for being slow since the gateway started. */
  figures(): { readonly open: number; readonly dropped: number } {
    let open = 0;
    for (const fanout of this.#fanouts.values()) open += fanout.watchers.size;
    return { open, dropped: this.#dropped };
  }

  /**
   * Streams `session`'s turn events on `res` until the client goes, the session closes or the
   * gateway does. Throws `AGENTCELL_OBSERVER_LIMIT` (before writing anything) when the session
   * has its most observers. Resolves when the stream has ended.
   */
  stream(
    res: ServerResponse,
    session: Session,
    key: string,
    toPublic: (error: unknown) => PublicError,
  ): Promise<void> {
    if (this.#closed) throw new GatewayClosingError('the gateway is closing');
    const fanout = this.#fanouts.get(session) ?? this.#subscribe(session);
    const { maxPerSession } = this.#options;
    if (fanout.watchers.size >= maxPerSession) {
      throw new ObserverLimitError(
        `session ${JSON.stringify(key)} already has ${maxPerSession} observers`,
      );
    }
    return new Promise<void>((resolve) => {
      let heartbeat: NodeJS.Timeout | undefined;
      const finish = () => {
        clearInterval(heartbeat);
        res.off('close', finish);
        this.#remove(session, watcher);
        resolve();
      };
      const watcher: Watcher = {
        res,
        key,
        toPublic,
        end: (reason) => {
          if (res.writableEnded || res.destroyed) return finish();
          // The last frame goes out whatever is buffered: it says why the stream ends.
          res.end(sseFrame('end', { reason, message: END_MESSAGES[reason] }));
          if (reason === 'slow') {
            this.#dropped++;
            const linger = setTimeout(() => res.destroy(), DROPPED_LINGER_MS);
            linger.unref();
            res.once('finish', () => clearTimeout(linger));
          }
          finish();
        },
      };
      fanout.watchers.add(watcher);
      res.on('close', finish);
      res.writeHead(200, SSE_HEADERS);
      res.flushHeaders();
      if (this.#options.heartbeatMs > 0) {
        heartbeat = setInterval(
          () => this.#write(watcher, ': keep-alive\n\n'),
          this.#options.heartbeatMs,
        );
        heartbeat.unref();
      }
    });
  }

  /** Ends every stream with `gateway-closing`; new ones are refused by the gateway. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const fanout of [...this.#fanouts.values()]) {
      for (const watcher of [...fanout.watchers]) watcher.end('gateway-closing');
    }
  }

  #subscribe(session: Session): Fanout {
    const watchers = new Set<Watcher>();
    const stop = session.observe({
      onEvent: (event) => this.#broadcast(watchers, event),
      onClose: () => {
        for (const watcher of [...watchers]) watcher.end('session-closed');
      },
    });
    const fanout: Fanout = { watchers, stop };
    this.#fanouts.set(session, fanout);
    return fanout;
  }

  #remove(session: Session, watcher: Watcher): void {
    const fanout = this.#fanouts.get(session);
    if (!fanout?.watchers.delete(watcher) || fanout.watchers.size > 0) return;
    fanout.stop();
    this.#fanouts.delete(session);
  }

  #broadcast(watchers: ReadonlySet<Watcher>, event: ObservedEvent): void {
    // Encoded once: the watchers of a session are all of its tenant and name it by one key.
    let frame: string | undefined;
    for (const watcher of [...watchers]) {
      frame ??= sseFrame(event.type, publicEvent(event, watcher));
      this.#write(watcher, frame);
    }
  }

  /** Writes without waiting; a client already too far behind is dropped instead. */
  #write(watcher: Watcher, text: string): void {
    const { res } = watcher;
    if (res.writableEnded || res.destroyed) return;
    // Measured before the write, so one large event to a client that keeps up is no offence.
    if (res.writableLength > this.#options.maxBufferedBytes) {
      watcher.end('slow');
      return;
    }
    res.write(text);
  }
}

/** The event as the observer sees it: under its own key, a failure as its public code and message. */
function publicEvent(event: ObservedEvent, watcher: Watcher): object {
  if (event.type !== 'turn-failed') return { ...event, sessionKey: watcher.key };
  const { code, message } = watcher.toPublic(event.error);
  const { turnId, seq } = event;
  return { type: event.type, sessionKey: watcher.key, turnId, seq, code, message };
}
