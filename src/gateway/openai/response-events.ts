/**
 * One turn as an Open Responses event stream: `response.created`, `response.in_progress`, then
 * the one output message (`output_item.added`, `content_part.added`, an `output_text.delta` per
 * text delta, `output_text.done`, `content_part.done`, `output_item.done`) and
 * `response.completed` carrying the whole response; a failure is `response.failed` carrying the
 * response with its `error`. Each event is `event: <type>` with the same `type` in its data and
 * a `sequence_number` counting from 0, so a client can tell a gap; the stream ends with
 * `data: [DONE]`, which the `openai` SDKs read as the end.
 */
import type { ServerResponse } from 'node:http';
import type { Usage } from '../../agent/messages.js';
import type { TurnEvent } from '../../agent/turn-events.js';
import type { Session } from '../../runtime/session.js';
import type { PublicError } from '../http.js';
import { admitted, SSE_HEADERS, settle, sseFrame, writeOrWait } from '../sse.js';
import { watchTurnConnection } from '../turn-connection.js';
import { DONE_FRAME } from './chunks.js';
import {
  newMessageId,
  outputMessage,
  outputText,
  type ResponseBody,
  type ResponseFields,
  responseObject,
} from './response-object.js';

export interface ResponseStreamOptions {
  readonly session: Session;
  readonly events: AsyncIterable<TurnEvent>;
  /** The response as it starts: status, output and usage are filled in here. */
  readonly response: Omit<ResponseFields, 'status' | 'output' | 'usage' | 'error'>;
  readonly interruptOnDisconnect: boolean;
  readonly heartbeatMs: number;
  readonly toPublic: (error: unknown) => PublicError;
  /** The turn answered with `body`; called whether or not the client is still connected. */
  readonly onComplete: (body: ResponseBody, turnId: string, usage: Usage) => void;
  /** The turn failed; called whether or not the client is still connected. */
  readonly onFailure: (error: unknown) => void;
}

/** Streams the turn; an admission refusal is thrown before anything is written. */
export async function streamResponse(
  res: ServerResponse,
  options: ResponseStreamOptions,
): Promise<void> {
  const { iterator, first } = await admitted(options.events);
  const connection = watchTurnConnection(res, options.session, options);
  res.writeHead(200, SSE_HEADERS);
  res.flushHeaders();

  let sequence = 0;
  const emit = (type: string, fields: object) =>
    writeOrWait(res, sseFrame(type, { type, sequence_number: sequence++, ...fields }));
  const snapshot = (fields: Pick<ResponseFields, 'status' | 'output'> & Partial<ResponseFields>) =>
    responseObject({ ...options.response, ...fields });
  const itemId = newMessageId();
  const at = { item_id: itemId, output_index: 0, content_index: 0 };
  // All the text sent so far: with tools, what the model wrote before calling one too.
  let text = '';
  let opened = false;
  const open = async () => {
    if (opened) return;
    opened = true;
    await emit('response.output_item.added', {
      output_index: 0,
      item: outputMessage(itemId, undefined),
    });
    await emit('response.content_part.added', { ...at, part: outputText('') });
  };
  const delta = async (piece: string) => {
    if (piece === '') return;
    await open();
    text += piece;
    await emit('response.output_text.delta', { ...at, delta: piece, logprobs: [] });
  };

  try {
    const starting = snapshot({ status: 'in_progress', output: [] });
    await emit('response.created', { response: starting });
    await emit('response.in_progress', { response: starting });
    // The text of the model call now running; what came before a tool call is already sent.
    let stepText = '';
    let final: Extract<TurnEvent, { type: 'final' }> | undefined;
    for (let step = await first; ; step = await settle(iterator.next())) {
      if (!step.ok) throw step.error;
      if (step.result.done) break;
      const event = step.result.value;
      connection.seen(event.turnId);
      if (event.type === 'text') {
        stepText += event.delta;
        await delta(event.delta);
      } else if (event.type === 'tool-start') stepText = '';
      else if (event.type === 'final') final = event;
    }
    connection.finished();
    if (!final) throw new Error('the turn ended without a reply');
    // A reply rewritten after the model's text (a response template) sends what it added.
    if (final.reply.startsWith(stepText)) await delta(final.reply.slice(stepText.length));
    await open();
    const item = outputMessage(itemId, text);
    const body = snapshot({ status: 'completed', output: [item], usage: final.usage });
    options.onComplete(body, final.turnId, final.usage);
    await emit('response.output_text.done', { ...at, text, logprobs: [] });
    await emit('response.content_part.done', { ...at, part: outputText(text) });
    await emit('response.output_item.done', { output_index: 0, item });
    await emit('response.completed', { response: body });
  } catch (error) {
    connection.finished();
    options.onFailure(error);
    const { code, message } = options.toPublic(error);
    const failed = snapshot({ status: 'failed', output: [], error: { code, message } });
    await emit('response.failed', { response: failed });
  } finally {
    connection.close();
    await writeOrWait(res, DONE_FRAME);
    if (!res.writableEnded) res.end();
  }
}
