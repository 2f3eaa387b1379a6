/**
 * The SSE frames of one streamed completion, made one at a time: the message (or each tool
 * call) opens with a frame of its own, then text or arguments follow ~4 characters per frame.
 */
import type { Action } from './mock-llm-script.js';

/** Characters per frame: about one token. */
const CHUNK_CHARS = 4;

/** The first delta of an assistant message that has text. */
export const OPENING_DELTA = '{"role":"assistant","content":"","refusal":null}';

/** Produces the SSE frames of one streamed completion lazily, so a stream holds O(1) strings. */
export class FrameSource {
  readonly #head: string;
  readonly #tail: string;
  readonly #plan: Action;
  readonly #ids: readonly string[];
  #call = 0;
  /** -1: the frame that opens the message (or the current tool call) is next. */
  #offset = -1;

  constructor(head: string, tail: string, plan: Action, ids: readonly string[]) {
    this.#head = head;
    this.#tail = tail;
    this.#plan = plan;
    this.#ids = ids;
  }

  get done(): boolean {
    if (this.#plan.kind === 'reply') return this.#offset >= this.#plan.text.length;
    return this.#call >= this.#plan.calls.length;
  }

  next(): string {
    return `${this.#head}${this.#plan.kind === 'reply' ? this.#textDelta(this.#plan.text) : this.#toolDelta(this.#plan.calls)}${this.#tail}`;
  }

  #textDelta(text: string): string {
    if (this.#offset < 0) {
      this.#offset = 0;
      return OPENING_DELTA;
    }
    return `{"content":${JSON.stringify(this.#piece(text))}}`;
  }

  #toolDelta(calls: Extract<Action, { kind: 'toolCalls' }>['calls']): string {
    const call = calls[this.#call];
    if (call === undefined) return '{}';
    const index = this.#call;
    if (this.#offset < 0) {
      this.#offset = 0;
      const role = index === 0 ? '"role":"assistant","content":null,' : '';
      if (call.arguments.length === 0) this.#nextCall();
      return `{${role}"tool_calls":[{"index":${index},"id":"${this.#ids[index]}","type":"function","function":{"name":${JSON.stringify(call.name)},"arguments":""}}]}`;
    }
    const piece = this.#piece(call.arguments);
    if (this.#offset >= call.arguments.length) this.#nextCall();
    return `{"tool_calls":[{"index":${index},"function":{"arguments":${JSON.stringify(piece)}}}]}`;
  }

  #nextCall(): void {
    this.#call++;
    this.#offset = -1;
  }

  /** The next ~4 characters, never splitting a surrogate pair. */
  #piece(text: string): string {
    let end = Math.min(this.#offset + CHUNK_CHARS, text.length);
    const last = text.charCodeAt(end - 1);
    if (last >= 0xd800 && last <= 0xdbff && end < text.length) end++;
    const piece = text.slice(this.#offset, end);
    this.#offset = end;
    return piece;
  }
}
