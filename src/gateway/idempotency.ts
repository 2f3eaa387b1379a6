/**
 * The `Idempotency-Key` request header of every route that submits a message: the name of the
 * IETF draft (draft-ietf-httpapi-idempotency-key-header) and of Stripe, which the openai SDK
 * also sends once a client names it (see the README). The session answers a repeat; the
 * gateway only reads and checks the header.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { assertIdempotencyKey } from '../runtime/idempotency.js';

export const IDEMPOTENCY_HEADER = 'idempotency-key';

/** Send options carrying a request's idempotency key, if it has one. */
export interface IdempotencyOptions {
  readonly idempotencyKey?: string;
  readonly idempotencyFingerprint?: string;
}

/**
 * The idempotency options of `req`: none without the header; a present but malformed one
 * (empty, too long, not printable ASCII) is `AGENTCELL_IDEMPOTENCY_KEY_INVALID`, a 400, before
 * anything runs. With `body`, a repeat must carry the same request body (the route derives
 * the message and its history from all of it), not merely the same message; how the answer is
 * delivered (`stream`, `stream_options`) is not part of it.
 */
export function idempotencyOf(req: IncomingMessage, body?: unknown): IdempotencyOptions {
  const value = req.headers[IDEMPOTENCY_HEADER];
  if (value === undefined) return {};
  // Node joins a repeated header with ', ', which the key check then refuses for its space.
  const key = Array.isArray(value) ? value.join(', ') : value;
  assertIdempotencyKey(key);
  if (body === undefined) return { idempotencyKey: key };
  const fingerprint = createHash('sha256')
    .update(`${req.url?.split('?')[0] ?? ''}\n${JSON.stringify(whatIsAsked(body))}`)
    .digest('base64url');
  return { idempotencyKey: key, idempotencyFingerprint: fingerprint };
}

/** The body less the fields that only choose how the answer is delivered. */
function whatIsAsked(body: unknown): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return body;
  const { stream: _stream, stream_options: _options, ...asked } = body as Record<string, unknown>;
  return asked;
}
