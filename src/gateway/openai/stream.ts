/**
 * One turn as a Chat Completions event stream: the role chunk, a content chunk per text delta,
 * the finish chunk, the usage chunk when asked for, then `data: [DONE]`. A failure after the
 * stream started is a `data: { error }` event and the end of the stream (no `[DONE]`), which
 * the `openai` SDKs raise as an APIError.
 */
import type { ServerResponse } from 'node:http';
import type { Usage } from '../../agent/messages.js';
import type { TurnEvent } from '../../agent/turn-events.js';
import type { Session } from '../../runtime/session.js';
import type { PublicError } from '../http.js';
import { admitted, SSE_HEADERS, settle, writeOrWait } from '../sse.js';
import {
  type CompletionIds,
  chunk,
  completionId,
  DONE_FRAME,
  dataFrame,
  errorBody,
  usageChunk,
} from './chunks.js';

export interface CompletionStreamOptions {
  readonly session: Session;
  readonly events: AsyncIterable<TurnEvent>;
  readonly model: string;
  readonly created: number;
  readonly includeUsage: boolean;
  readonly interruptOnDisconnect: boolean;
  readonly heartbeatMs: number;
  readonly toPublic: (error: unknown) => PublicError;
  /** The turn answered; called whether or not the client is still connected. */
  readonly onReply: (turnId: string, usage: Usage) => void;
  /** The turn failed; called whether or not the client is still connected. */
  readonly onFailure: (error: unknown) => void;
}

/** Streams the turn; an admission refusal is thrown before anything is written. */
export async function streamCompletion(
  res: ServerResponse,
  options: CompletionStreamOptions,
): Promise<void> {
  const { iterator, first } = await admitted(options.events);
  let turnId: string | undefined;
  let finished = false;
  let disconnected = false;
  let interrupted = false;
  const interruptIfAsked = () => {
    if (!options.interruptOnDisconnect || interrupted || finished || turnId === undefined) return;
    interrupted = true;
    // Only this caller's turn, by its id: never someone else's.
    void options.session.interrupt('the client disconnected', turnId);
  };
  const onClose = () => {
    if (res.writableEnded) return;
    disconnected = true;
    interruptIfAsked();
  };
  res.on('close', onClose);
  res.writeHead(200, SSE_HEADERS);
  res.flushHeaders();
  const heartbeat =
    options.heartbeatMs > 0
      ? setInterval(() => void writeOrWait(res, ': keep-alive\n\n'), options.heartbeatMs)
      : undefined;
  heartbeat?.unref();

  let ids: CompletionIds | undefined;
  const send = (data: unknown) => writeOrWait(res, dataFrame(data));
  const content = (text: string) =>
    ids && text !== ''
      ? send(chunk(ids, { delta: { content: text }, finish: null }, options.includeUsage))
      : undefined;
  try {
    // The text of the model call now running; what came before a tool call is already sent.
    let stepText = '';
    let final: Extract<TurnEvent, { type: 'final' }> | undefined;
    for (let step = await first; ; step = await settle(iterator.next())) {
      if (!step.ok) throw step.error;
      if (step.result.done) break;
      const event = step.result.value;
      if (ids === undefined) {
        turnId = event.turnId;
        ids = { id: completionId(event.turnId), created: options.created, model: options.model };
        const role = { role: 'assistant', content: '' } as const;
        if (disconnected) interruptIfAsked();
        await send(chunk(ids, { delta: role, finish: null }, options.includeUsage));
      }
      if (event.type === 'text') {
        stepText += event.delta;
        await content(event.delta);
      } else if (event.type === 'tool-start') stepText = '';
      else if (event.type === 'final') final = event;
    }
    finished = true;
    if (!ids || !final) throw new Error('the turn ended without a reply');
    // A reply rewritten after the model's text (a response template) sends what it added.
    if (final.reply.startsWith(stepText)) await content(final.reply.slice(stepText.length));
    options.onReply(final.turnId, final.usage);
    await send(chunk(ids, { delta: {}, finish: 'stop' }, options.includeUsage));
    if (options.includeUsage) await send(usageChunk(ids, final.usage));
    await writeOrWait(res, DONE_FRAME);
  } catch (error) {
    finished = true;
    options.onFailure(error);
    await send(errorBody(options.toPublic(error)));
  } finally {
    clearInterval(heartbeat);
    res.off('close', onClose);
    if (!res.writableEnded) res.end();
  }
}
