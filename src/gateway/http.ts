/**
 * HTTP plumbing of the gateway: bounded body reading, JSON answers, and the one mapping from
 * a thrown value to what a remote caller may see. Only errors marked public in the catalogue
 * show their code and message; everything else is one generic 500, so no stack or secret
 * can reach a response.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import {
  type AgentcellErrorCode,
  BodyTooLargeError,
  errorCatalogue,
  isAgentcellError,
  MessageInvalidError,
} from '../errors.js';

/** What a caller sees of an error: `{ error: { code, message } }` with `status`. */
export interface PublicError {
  readonly status: number;
  readonly code: AgentcellErrorCode;
  readonly message: string;
}

const INTERNAL: PublicError = {
  status: 500,
  code: 'AGENTCELL_INTERNAL',
  message: 'internal error',
};

/** Longest error message sent to a caller; the rest stays in the server log. */
const MAX_MESSAGE_CHARS = 2_000;

/**
 * The public face of `error`. `rewrite` turns internal names back into the caller's own
 * (a namespaced session key into the key the caller sent).
 */
export function publicError(error: unknown, rewrite: (text: string) => string): PublicError {
  if (!isAgentcellError(error)) return INTERNAL;
  const spec = errorCatalogue[error.code];
  if (!spec.public) return INTERNAL;
  const message = typeof error.message === 'string' ? error.message : spec.hint;
  return {
    status: spec.status,
    code: error.code,
    message: rewrite(message).slice(0, MAX_MESSAGE_CHARS),
  };
}

/** Whether a failure answers 500 with details hidden (the server log should have them). */
export function isHidden(error: unknown): boolean {
  return publicError(error, (text) => text) === INTERNAL;
}

const JSON_TYPE = 'application/json; charset=utf-8';

/** Sends `body` as JSON unless the response already started (then it only ends it). */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  if (res.headersSent) {
    if (!res.writableEnded) res.end();
    return;
  }
  if (status === 204) {
    res.writeHead(204, headers);
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': JSON_TYPE,
    'content-length': String(Buffer.byteLength(text)),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(text);
}

/** Thrown when the client went away while its body was read: there is no one to answer. */
export class ClientGoneError extends Error {
  constructor() {
    super('the client closed the connection');
    this.name = 'ClientGoneError';
  }
}

function tooLarge(limit: number): BodyTooLargeError {
  return new BodyTooLargeError(`the request body is over the limit of ${limit} bytes`, {
    details: { limit },
  });
}

/**
 * Reads the body, at most `limit` bytes: a declared `content-length` over it fails at once,
 * and a streamed body fails as soon as it passes it (what was read is dropped, the rest is
 * discarded unread).
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge(limit));
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onGone);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        chunks.length = 0;
        req.resume();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onGone = () => {
      cleanup();
      reject(new ClientGoneError());
    };
    const onClose = () => {
      if (!req.readableEnded) onGone();
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onGone);
    req.on('close', onClose);
  });
}

// ignoreBOM keeps a byte order mark in the text, where JSON.parse refuses it (as it always did).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The body as JSON; `undefined` when it is empty. Non-JSON content types and bodies that are
 * not valid UTF-8 are refused.
 */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const type = req.headers['content-type'];
  if (type !== undefined && !/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(type)) {
    throw new MessageInvalidError('send the body as JSON with Content-Type: application/json');
  }
  const body = await readBody(req, limit);
  if (body.length === 0) return undefined;
  let text: string;
  try {
    // Strict: a lenient decoder turns bad bytes into U+FFFD, and an altered message would run.
    text = utf8.decode(body);
  } catch {
    throw new MessageInvalidError('the request body is not valid UTF-8');
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new MessageInvalidError('the request body is not valid JSON');
  }
}

/** The token of an `Authorization: Bearer <token>` header, if there is one. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

/** Whether the client asked for a server-sent event stream. */
export function wantsEventStream(req: IncomingMessage): boolean {
  const accept = req.headers.accept;
  return typeof accept === 'string' && /(^|,)\s*text\/event-stream\s*(;|,|$)/i.test(accept);
}

/** `body` checked against `schema`; `AGENTCELL_MESSAGE_INVALID` naming every bad path, after `what`. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const problems = result.error.issues.map(
    (issue) => `${['body', ...issue.path.map(String)].join('.')}: ${issue.message}`,
  );
  throw new MessageInvalidError(`${what}: ${problems.join('; ')}`);
}
