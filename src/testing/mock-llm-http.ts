/**
 * The HTTP plumbing of the mock LLM: one exchange (request, response, pending timer), reading
 * bodies, and errors in the OpenAI error shape.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MockLlmRequest } from './mock-llm-recorder.js';

/** One request and its response while the mock answers it. */
export interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Set once the body has been read and the request recorded. */
  record: MockLlmRequest | undefined;
  /** The next write of a paced response; cleared when the connection closes. */
  timer: NodeJS.Timeout | undefined;
}

const MAX_BODY_BYTES = 32 * 1024 * 1024;

export const JSON_HEADERS = { 'content-type': 'application/json' } as const;
export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
} as const;

const ERRORS = {
  unauthorized: { status: 401, type: 'invalid_request_error', code: 'invalid_api_key' },
  notFound: { status: 404, type: 'invalid_request_error', code: 'not_found' },
  badRequest: { status: 400, type: 'invalid_request_error', code: 'invalid_request' },
  tooLarge: { status: 413, type: 'invalid_request_error', code: 'request_too_large' },
  rateLimited: { status: 429, type: 'requests', code: 'rate_limit_exceeded' },
  serverError: { status: 500, type: 'server_error', code: 'internal_error' },
} as const;

export type ErrorKind = keyof typeof ERRORS;

/** Answers with an error as OpenAI shapes it: `{ error: { message, type, param, code } }`. */
export function sendError(
  res: ServerResponse,
  kind: ErrorKind,
  message: string,
  extraHeaders?: Record<string, string>,
): void {
  const { status, type, code } = ERRORS[kind];
  res.writeHead(status, { ...JSON_HEADERS, ...extraHeaders });
  res.end(JSON.stringify({ error: { message, type, param: null, code } }));
}

/** Header names lowercase, repeated headers joined with `, `. */
export function lowercaseHeaders(req: IncomingMessage): Record<string, string | undefined> {
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

/** The body as text, or undefined when it is larger than the mock accepts. */
export function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () =>
      resolve(size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks).toString()),
    );
    req.on('error', reject);
  });
}

export function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}
