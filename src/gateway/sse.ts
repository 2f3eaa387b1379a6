/**
 * One turn as a server-sent event stream: `event: <type>` per turn event, then `event: done`
 * (the reply) or `event: error` (`{ code, message }`). A client that goes away does not stop
 * the turn unless asked to: the turn completes and is journaled, and its reply is in the
 * session's history.
 */
import type { ServerResponse } from 'node:http';
import type { Usage } from '../agent/messages.js';
import type { TurnEvent } from '../agent/turn-events.js';
import type { Session } from '../runtime/session.js';
import type { StreamOptions } from '../runtime/session-types.js';
import type { PublicError } from './http.js';
import { watchTurnConnection } from './turn-connection.js';

export interface StreamTurnOptions {
  readonly session: Session;
  readonly message: string;
  /** The request's idempotency key, if it sent one (a repeat streams only the final outcome). */
  readonly submit?: StreamOptions | undefined;
  /** The session key as the caller named it (events carry it instead of the namespaced one). */
  readonly key: string;
  readonly interruptOnDisconnect: boolean;
  readonly heartbeatMs: number;
  readonly toPublic: (error: unknown) => PublicError;
  /** The turn answered; called whether or not the client is still connected. */
  readonly onReply: (turnId: string, usage: Usage) => void;
  /** The turn failed; called whether or not the client is still connected. */
  readonly onFailure: (error: unknown) => void;
}

export type Step = { ok: true; result: IteratorResult<TurnEvent> } | { ok: false; error: unknown };

export function settle(next: Promise<IteratorResult<TurnEvent>>): Promise<Step> {
  return next.then(
    (result) => ({ ok: true, result }),
    (error: unknown) => ({ ok: false, error }),
  );
}

/** A turn's events, once the session took its message. */
export interface AdmittedTurn {
  readonly iterator: AsyncIterator<TurnEvent>;
  /** The first step; the loop goes on with `settle(iterator.next())`. */
  readonly first: Promise<Step>;
}

/**
 * Starts reading `events`. A refusal that comes at once (mailbox full, session busy, closed) is
 * thrown here, before the caller wrote anything, so it is answered with its proper status.
 */
export async function admitted(events: AsyncIterable<TurnEvent>): Promise<AdmittedTurn> {
  const iterator = events[Symbol.asyncIterator]();
  const first = settle(iterator.next());
  // Admission refusals reject within the same macrotask; a turn's first event comes from its
  // worker, later. Waiting one turn of the event loop tells the two apart.
  const early = await Promise.race([
    first,
    new Promise<undefined>((resolve) => setImmediate(() => resolve(undefined))),
  ]);
  if (early && !early.ok) throw early.error;
  return { iterator, first };
}

/**
 * Writes `text` unless the client is gone; waits for the socket to drain when its buffer is
 * full, so a slow client holds the stream back rather than filling memory.
 */
export async function writeOrWait(res: ServerResponse, text: string): Promise<void> {
  if (res.destroyed || res.writableEnded) return;
  if (res.write(text)) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** Headers of every event stream the gateway serves. */
export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
  'x-content-type-options': 'nosniff',
} as const;

/** The last event of a turn that answered: the reply. */
export interface TurnDone {
  readonly reply: string;
  readonly turnId: string;
  readonly usage: Usage | undefined;
  readonly output?: unknown;
}

/** One SSE frame; JSON never contains a raw newline, so `data` is always one line. */
export function sseFrame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * Streams the turn answering `message`. A refusal that comes at once (mailbox full, session
 * busy, closed) is thrown before anything is written, so the caller answers it with its
 * proper status; later failures become an `error` event. Resolves when the turn has ended.
 */
export async function streamTurn(res: ServerResponse, options: StreamTurnOptions): Promise<void> {
  const { session, key } = options;
  // A refusal that comes at once is thrown before the connection is watched or written to.
  const { iterator, first } = await admitted(session.stream(options.message, options.submit));
  const connection = watchTurnConnection(res, session, options);
  res.writeHead(200, SSE_HEADERS);
  res.flushHeaders();
  const write = async (text: string): Promise<void> => {
    if (!connection.gone) await writeOrWait(res, text);
  };
  let turnId: string | undefined;

  try {
    let final: Extract<TurnEvent, { type: 'final' }> | undefined;
    for (let step = await first; ; step = await settle(iterator.next())) {
      if (!step.ok) throw step.error;
      if (step.result.done) break;
      const event = step.result.value;
      turnId ??= event.turnId;
      connection.seen(event.turnId);
      if (event.type === 'final') {
        final = event;
        connection.finished();
      }
      await write(sseFrame(event.type, { ...event, sessionKey: key }));
    }
    connection.finished();
    const done: TurnDone = {
      reply: final?.reply ?? '',
      turnId: final?.turnId ?? turnId ?? '',
      usage: final?.usage,
      ...(final?.output !== undefined && { output: final.output }),
    };
    if (final) options.onReply(final.turnId, final.usage);
    await write(sseFrame('done', done));
  } catch (error) {
    connection.finished();
    options.onFailure(error);
    const { code, message } = options.toPublic(error);
    await write(sseFrame('error', { code, message }));
  } finally {
    connection.close();
    if (!res.writableEnded) res.end();
  }
}
