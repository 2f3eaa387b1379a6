/**
 * Server-sent events as the load test reads the gateway's turn streams, parsed by
 * `eventsource-parser` (the one SSE parser): feed text, get back the events it completed.
 */
import { createParser, type EventSourceParser } from 'eventsource-parser';

/** One server-sent event; `event` is `message` when the stream named none. */
export interface SseEvent {
  readonly event: string;
  readonly data: string;
}

/** Splits a server-sent event stream into events, whatever the chunking. */
export class SseParser {
  readonly #completed: SseEvent[] = [];
  readonly #parser: EventSourceParser = createParser({
    onEvent: ({ event, data }) => this.#completed.push({ event: event ?? 'message', data }),
  });

  /** Feeds text; returns the events it completed. */
  push(text: string): SseEvent[] {
    this.#parser.feed(text);
    return this.#completed.splice(0);
  }
}
