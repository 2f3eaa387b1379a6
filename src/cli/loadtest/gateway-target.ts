/**
 * A running gateway as a load target: `POST /v1/sessions/:key/messages` with
 * `Accept: text/event-stream`, each turn read as SSE until `event: done` (a reply) or
 * `event: error` (`{ code, message }`); or, with the `chat-completions` route, a streamed
 * `POST /v1/chat/completions` per turn (see chat-completions.ts).
 */
import { chatCompletionEvent, chatCompletionRequest } from './chat-completions.js';
import { type SseEvent, SseParser } from './sse.js';
import type { LoadTarget, SendHooks, SendOutcome } from './target.js';

/** Which of the gateway's routes a load test drives. */
export type GatewayRoute = 'messages' | 'chat-completions';

/** `{ code, message }` from an `error` event or `{ error: { code, message } }` from a JSON body. */
function typedError(value: unknown): { code: string; message: string } | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const inner: unknown = 'error' in value ? value.error : value;
  if (typeof inner !== 'object' || inner === null) return undefined;
  const { code, message } = inner as { code?: unknown; message?: unknown };
  if (typeof code !== 'string' || code === '') return undefined;
  return { code, message: typeof message === 'string' ? message : '' };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The code of a fetch failure's cause (`ECONNREFUSED`, …), if it has one. */
function causeCode(error: unknown): string | undefined {
  const cause: unknown = error instanceof Error ? error.cause : undefined;
  if (typeof cause !== 'object' || cause === null || !('code' in cause)) return undefined;
  return typeof cause.code === 'string' ? cause.code : undefined;
}

/** A body that could not be read counts as empty: the outcome says what was missing. */
function textOf(response: Response): Promise<string> {
  return response.text().catch(() => '');
}

export class GatewayTarget implements LoadTarget {
  readonly description: string;
  readonly #base: string;
  readonly #token: string | undefined;
  readonly #route: GatewayRoute;
  readonly #model: string;
  /** Aborts every request still open when the run ends. */
  readonly #abort = new AbortController();

  constructor(url: string, token?: string, route: GatewayRoute = 'messages', model = '') {
    this.#base = url.replace(/\/+$/, '');
    this.#token = token;
    this.#route = route;
    this.#model = model;
    this.description =
      route === 'messages'
        ? `gateway at ${this.#base}`
        : `gateway at ${this.#base} (chat completions, model ${model})`;
  }

  #request(
    key: string,
    message: string,
  ): { path: string; headers: Record<string, string>; body: string } {
    if (this.#route === 'chat-completions') return chatCompletionRequest(key, message, this.#model);
    return {
      path: `/v1/sessions/${encodeURIComponent(key)}/messages`,
      headers: {},
      body: JSON.stringify({ message }),
    };
  }

  get #lastEvent(): string {
    return this.#route === 'messages' ? 'done or error' : '[DONE] or an error';
  }

  /** What one event of the stream decides: the outcome, or undefined while the turn goes on. */
  #decide(event: SseEvent, hooks: SendHooks): SendOutcome | undefined {
    if (this.#route === 'chat-completions') return chatCompletionEvent(event, hooks, typedError);
    if (event.event === 'text') hooks.onText();
    else if (event.event === 'done') return { kind: 'reply' };
    else if (event.event === 'error') {
      const typed = typedError(parseJson(event.data));
      return typed
        ? { kind: 'error', ...typed }
        : { kind: 'broken', reason: `an error event without a code: ${event.data}` };
    }
    return undefined;
  }

  async send(key: string, message: string, hooks: SendHooks): Promise<SendOutcome> {
    const request = this.#request(key, message);
    const headers: Record<string, string> = {
      ...request.headers,
      'content-type': 'application/json',
      accept: 'text/event-stream',
    };
    if (this.#token !== undefined) headers['authorization'] = `Bearer ${this.#token}`;
    let response: Response;
    try {
      response = await fetch(`${this.#base}${request.path}`, {
        method: 'POST',
        headers,
        body: request.body,
        signal: this.#abort.signal,
      });
    } catch (error) {
      const code = causeCode(error);
      // Refused: nothing reached the gateway, so nothing was accepted (and nothing lost).
      if (code === 'ECONNREFUSED' || code === 'ENOTFOUND') {
        return { kind: 'error', code: `CONNECTION_${code}`, message: String(error) };
      }
      return { kind: 'broken', reason: `the request failed: ${code ?? String(error)}` };
    }
    if (!response.ok) {
      const text = await textOf(response);
      const typed = typedError(parseJson(text));
      return typed
        ? { kind: 'error', ...typed }
        : { kind: 'error', code: `HTTP_${response.status}`, message: text.slice(0, 200) };
    }
    if (!(response.headers.get('content-type') ?? '').includes('text/event-stream')) {
      const body = parseJson(await textOf(response));
      if (typeof body === 'object' && body !== null && 'reply' in body) return { kind: 'reply' };
      return { kind: 'broken', reason: 'a 200 answer that is neither SSE nor a reply' };
    }
    return this.#readStream(response, hooks);
  }

  async #readStream(response: Response, hooks: SendHooks): Promise<SendOutcome> {
    const body = response.body;
    if (!body) return { kind: 'broken', reason: 'an empty event stream' };
    const reader = body.getReader();
    const decoder = new TextDecoder();
    const parser = new SseParser();
    try {
      while (true) {
        const { done, value } = await reader.read();
        const events = parser.push(
          done ? decoder.decode() : decoder.decode(value, { stream: true }),
        );
        for (const event of events) {
          const outcome = this.#decide(event, hooks);
          if (outcome) return outcome;
        }
        if (done) return { kind: 'broken', reason: `the stream ended without ${this.#lastEvent}` };
      }
    } catch (error) {
      return { kind: 'broken', reason: `the stream broke: ${causeCode(error) ?? String(error)}` };
    } finally {
      reader.releaseLock();
      // The turn is decided; whatever is left of the stream is of no interest.
      void body.cancel().catch(() => {});
    }
  }

  liveWorkers(): undefined {
    return undefined;
  }

  workers(): undefined {
    return undefined;
  }

  async close(): Promise<void> {
    this.#abort.abort();
  }
}
