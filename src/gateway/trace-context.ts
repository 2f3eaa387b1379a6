/**
 * The trace a request belongs to: a W3C `traceparent` (or whatever the embedder's registered
 * propagator reads) continues into the turn the request starts, so the turn's spans join the
 * caller's trace. The global propagator is used, as OpenTelemetry SDKs register it.
 */
import type { IncomingMessage } from 'node:http';
import { type Context, context, propagation } from '@opentelemetry/api';

/** Send options carrying the request's trace context. */
export function traceContextOf(req: IncomingMessage): { readonly traceContext: Context } {
  return { traceContext: propagation.extract(context.active(), req.headers) };
}
