/**
 * A client of `GET /v1/sessions/:key/events` that reads as frames arrive, so a test can await
 * the frame it expects (bounded) while the turn runs; and a client that never reads.
 */
import { type ClientRequest, type IncomingMessage, request } from 'node:http';
import type { SseFrame } from './helpers.js';

export interface Observer {
  readonly status: number;
  readonly headers: Headers;
  /** Frames read so far (comments skipped). */
  readonly frames: SseFrame[];
  /** Resolves once a frame matches (checking those read already first); fails after `timeoutMs`. */
  next(match: (frame: SseFrame) => boolean, timeoutMs?: number): Promise<SseFrame>;
  /** Resolves when the server ended the stream. */
  readonly ended: Promise<void>;
  close(): void;
}

/** Opens an observer stream; resolves once the response headers arrived (it is then watching). */
export async function observe(url: string, token: string, key: string): Promise<Observer> {
  const controller = new AbortController();
  const response = await fetch(`${url}/v1/sessions/${encodeURIComponent(key)}/events`, {
    headers: { authorization: `Bearer ${token}` },
    signal: controller.signal,
  });
  const frames: SseFrame[] = [];
  const waiters = new Set<() => void>();
  let buffer = '';
  const ended = (async () => {
    if (!response.body) return;
    const decoder = new TextDecoder();
    try {
      for await (const chunk of response.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const match = /^event: ([a-z-]+)\ndata: (.+)$/s.exec(block);
          if (match) frames.push({ event: match[1] ?? '', data: JSON.parse(match[2] ?? '') });
          end = buffer.indexOf('\n\n');
        }
        for (const waiter of [...waiters]) waiter();
      }
    } catch {
      // Aborted by close().
    }
    for (const waiter of [...waiters]) waiter();
  })();
  let done = false;
  void ended.then(() => {
    done = true;
  });
  return {
    status: response.status,
    headers: response.headers,
    frames,
    ended,
    close: () => controller.abort(),
    next: (match, timeoutMs = 10_000) =>
      new Promise<SseFrame>((resolve, reject) => {
        const check = () => {
          const found = frames.find(match);
          if (found || done) {
            waiters.delete(check);
            clearTimeout(timer);
            if (found) resolve(found);
            else reject(new Error('the stream ended without the frame'));
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error('no such frame in time'));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
  };
}

/** An observer that stops reading once the headers arrived; `drain()` reads the rest to the end. */
export interface StalledObserver {
  readonly request: ClientRequest;
  readonly response: IncomingMessage;
  drain(timeoutMs?: number): Promise<string>;
}

export function stalledObserver(url: string, token: string, key: string): Promise<StalledObserver> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/v1/sessions/${encodeURIComponent(key)}/events`, {
      headers: { authorization: `Bearer ${token}` },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      res.pause();
      resolve({
        request: req,
        response: res,
        drain: (timeoutMs = 10_000) =>
          new Promise<string>((done, fail) => {
            const chunks: Buffer[] = [];
            const timer = setTimeout(
              () => fail(new Error('the stream did not end in time')),
              timeoutMs,
            );
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.on('end', () => {
              clearTimeout(timer);
              done(Buffer.concat(chunks).toString('utf8'));
            });
            res.resume();
          }),
      });
    });
    req.end();
  });
}
