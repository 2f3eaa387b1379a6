/**
 * Reading the gateway's server-sent event streams (the dashboard's, and a streamed turn's)
 * from a `fetch` response, with the one SSE parser (`eventsource-parser`). No DOM: it runs in
 * the page and in Node alike.
 */
import { createParser } from 'eventsource-parser';

/** A failure as the page shows it. */
export interface PageError {
  readonly code: string;
  readonly message: string;
}

/**
 * Reads `response`'s event stream to its end, handing each event's name (`message` when it
 * has none) and JSON data to `onFrame`. Comments and events whose data is not JSON are
 * skipped; what `onFrame` throws ends the reading.
 */
export async function readEvents(
  response: Response,
  onFrame: (event: string, data: unknown) => void,
): Promise<void> {
  if (!response.body) throw new Error('the response has no body');
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const parser = createParser({
    onEvent: ({ event, data }) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(data);
      } catch {
        return;
      }
      onFrame(event ?? 'message', parsed);
    },
  });
  for (;;) {
    const step = await reader.read();
    if (step.done) return;
    parser.feed(decoder.decode(step.value, { stream: true }));
  }
}

/** The gateway's `{ error: { code, message } }` of a refused request, or its HTTP status. */
export async function errorOf(response: Response): Promise<PageError> {
  try {
    const body = (await response.json()) as { error?: { code: unknown; message: unknown } };
    if (body?.error) return { code: String(body.error.code), message: String(body.error.message) };
  } catch {
    // Not JSON: the status has to do.
  }
  return { code: `HTTP ${response.status}`, message: response.statusText || 'request failed' };
}
