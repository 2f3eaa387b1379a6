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
import { watchTurnConnection } from '../turn-connection.js';
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
  const connection = watchTurnConnection(res, options.session, options);
  res.writeHead(200, SSE_HEADERS);
  res.flushHeaders();

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
      connection.seen(event.turnId);
      if (ids === undefined) {
        ids = { id: completionId(event.turnId), created: options.created, model: options.model };
        const role = { role: 'assistant', content: '' } as const;
        await send(chunk(ids, { delta: role, finish: null }, options.includeUsage));
      }
      if (event.type === 'text') {
        stepText += event.delta;
        await content(event.delta);
      } else if (event.type === 'tool-start') stepText = '';
      else if (event.type === 'final') final = event;
    }
    connection.finished();
    if (!ids || !final) throw new Error('the turn ended without a reply');
    // A reply rewritten after the model's text (a response template) sends what it added.
    if (final.reply.startsWith(stepText)) await content(final.reply.slice(stepText.length));
    options.onReply(final.turnId, final.usage);
    await send(chunk(ids, { delta: {}, finish: 'stop' }, options.includeUsage));
    if (options.includeUsage) await send(usageChunk(ids, final.usage));
    await writeOrWait(res, DONE_FRAME);
  } catch (error) {
    connection.finished();
    options.onFailure(error);
    await send(errorBody(options.toPublic(error)));
  } finally {
    connection.close();
    if (!res.writableEnded) res.end();
  }
}
