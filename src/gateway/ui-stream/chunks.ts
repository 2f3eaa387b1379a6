/**
 * A turn's events as the AI SDK's UI message stream (v1) chunks, the protocol `useChat` reads
 * through `DefaultChatTransport`. The client validates every chunk against a union of
 * schemas, so each one carries exactly the fields of its type.
 *
 * A step is one model call: it holds the call's text and the tools the call asked for, with
 * their results, and the client stitches its parts by the step markers. A turn reports a
 * call's `usage` when the call has returned and before its tools run, so the next text or
 * usage after it belongs to the next call.
 */
import type { Usage } from '../../agent/messages.js';
import type { TurnEvent } from '../../agent/turn-events.js';
import { SSE_HEADERS } from '../sse.js';

/** Headers of a UI message stream: an event stream the client recognises by its version. */
export const UI_STREAM_HEADERS = {
  ...SSE_HEADERS,
  'x-vercel-ai-ui-message-stream': 'v1',
} as const;

/** agentcell's own facts about the turn, as data parts kept in the message. */
export interface AgentcellSessionData {
  /** The chat's session key, as the tenant names it. */
  readonly key: string;
  readonly agent: string;
}

export type UiChunk =
  | { readonly type: 'start'; readonly messageId?: string }
  | { readonly type: 'start-step' }
  | { readonly type: 'finish-step' }
  | { readonly type: 'text-start'; readonly id: string }
  | { readonly type: 'text-delta'; readonly id: string; readonly delta: string }
  | { readonly type: 'text-end'; readonly id: string }
  | {
      readonly type: 'tool-input-available';
      readonly toolCallId: string;
      readonly toolName: string;
      readonly input: unknown;
    }
  | { readonly type: 'tool-output-available'; readonly toolCallId: string; readonly output: string }
  | { readonly type: 'tool-output-error'; readonly toolCallId: string; readonly errorText: string }
  | {
      readonly type: 'tool-approval-request';
      readonly approvalId: string;
      readonly toolCallId: string;
    }
  | { readonly type: 'tool-output-denied'; readonly toolCallId: string }
  | {
      readonly type: 'data-agentcell-session';
      readonly id: string;
      readonly data: AgentcellSessionData;
    }
  | { readonly type: 'data-agentcell-turn'; readonly id: string; readonly data: { turnId: string } }
  | { readonly type: 'data-agentcell-usage'; readonly id: string; readonly data: Usage }
  | { readonly type: 'error'; readonly errorText: string }
  | { readonly type: 'finish'; readonly finishReason: 'stop' | 'error' | 'tool-calls' };

/** One chunk as an SSE frame; JSON never contains a raw newline, so `data` is one line. */
export function uiFrame(chunk: UiChunk): string {
  return `data: ${JSON.stringify(chunk)}\n\n`;
}

export const DONE_FRAME = 'data: [DONE]\n\n';

/** The arguments as the model sent them: parsed when they are JSON, as sent otherwise. */
function toolInput(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Turns one turn's events, in order, into its chunks. */
export class UiMessageChunks {
  readonly #session: AgentcellSessionData;
  #started = false;
  #inStep = false;
  /** The model call of the open step has returned (its usage came). */
  #callDone = false;
  /** Id of the open text part. */
  #textId: string | undefined;
  #texts = 0;
  /** The text of the open step: a reply the turn rewrote afterwards is compared with it. */
  #stepText = '';

  /** Calls the client was shown before this stream (asked for approval): not shown again. */
  readonly #shown: ReadonlySet<string>;

  constructor(session: AgentcellSessionData, shown: ReadonlySet<string> = new Set()) {
    this.#session = session;
    this.#shown = shown;
  }

  /** The chunks `event` adds (a `final` event is given to {@link finish} instead). */
  next(event: TurnEvent): UiChunk[] {
    const out = this.#start(event.turnId);
    switch (event.type) {
      case 'text':
        if (event.delta === '') break;
        if (this.#callDone) this.#nextStep(out);
        this.#openText(out);
        this.#stepText += event.delta;
        out.push({ type: 'text-delta', id: this.#textId ?? '', delta: event.delta });
        break;
      case 'usage':
        if (this.#callDone) this.#nextStep(out);
        this.#callDone = true;
        break;
      case 'approval-required':
        this.#closeText(out);
        out.push(
          {
            type: 'tool-input-available',
            toolCallId: event.callId,
            toolName: event.name,
            input: event.arguments,
          },
          { type: 'tool-approval-request', approvalId: event.approvalId, toolCallId: event.callId },
        );
        break;
      case 'tool-start':
        this.#closeText(out);
        if (this.#shown.has(event.callId)) break;
        out.push({
          type: 'tool-input-available',
          toolCallId: event.callId,
          toolName: event.name,
          input: toolInput(event.arguments),
        });
        break;
      case 'tool-end':
        if (event.error?.code === 'AGENTCELL_APPROVAL_DENIED') {
          out.push({ type: 'tool-output-denied', toolCallId: event.callId });
          break;
        }
        out.push(
          event.ok
            ? { type: 'tool-output-available', toolCallId: event.callId, output: event.result }
            : {
                type: 'tool-output-error',
                toolCallId: event.callId,
                errorText: event.error?.message ?? event.result,
              },
        );
        break;
      default:
        break;
    }
    return out;
  }

  /** The end of a turn that answered `reply`. */
  finish(turnId: string, reply: string, usage: Usage): UiChunk[] {
    const out = this.#start(turnId);
    // A reply rewritten after the model's text (a response template) sends what it added.
    if (reply.startsWith(this.#stepText) && reply.length > this.#stepText.length) {
      this.#openText(out);
      out.push({
        type: 'text-delta',
        id: this.#textId ?? '',
        delta: reply.slice(this.#stepText.length),
      });
    }
    this.#closeStep(out);
    out.push({ type: 'data-agentcell-usage', id: 'agentcell-usage', data: usage });
    out.push({ type: 'finish', finishReason: 'stop' });
    return out;
  }

  /** The end of this stream while the turn waits for approval; its rest comes in the next. */
  paused(): UiChunk[] {
    const out: UiChunk[] = [];
    this.#closeStep(out);
    out.push({ type: 'finish', finishReason: 'tool-calls' });
    return out;
  }

  /** The end of a turn that failed with `errorText` (what the caller may see of it). */
  fail(errorText: string): UiChunk[] {
    const out: UiChunk[] = this.#started ? [] : [{ type: 'start' }];
    this.#started = true;
    this.#closeStep(out);
    out.push({ type: 'error', errorText }, { type: 'finish', finishReason: 'error' });
    return out;
  }

  /** The opening chunks, before the turn's first event: the message is named by its turn. */
  #start(turnId: string): UiChunk[] {
    if (this.#started) return [];
    this.#started = true;
    this.#inStep = true;
    return [
      { type: 'start', messageId: turnId },
      { type: 'data-agentcell-session', id: 'agentcell-session', data: this.#session },
      { type: 'data-agentcell-turn', id: 'agentcell-turn', data: { turnId } },
      { type: 'start-step' },
    ];
  }

  #nextStep(out: UiChunk[]): void {
    this.#closeStep(out);
    out.push({ type: 'start-step' });
    this.#inStep = true;
  }

  #closeStep(out: UiChunk[]): void {
    this.#closeText(out);
    if (this.#inStep) out.push({ type: 'finish-step' });
    this.#inStep = false;
    this.#callDone = false;
    this.#stepText = '';
  }

  #openText(out: UiChunk[]): void {
    if (this.#textId !== undefined) return;
    this.#textId = `text-${this.#texts++}`;
    out.push({ type: 'text-start', id: this.#textId });
  }

  #closeText(out: UiChunk[]): void {
    if (this.#textId === undefined) return;
    out.push({ type: 'text-end', id: this.#textId });
    this.#textId = undefined;
  }
}
