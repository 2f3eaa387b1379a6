/**
 * The few Fastify (v5) shapes the gateway's plugin uses, declared here rather than imported
 * from fastify: fastify is an optional peer, and the published types must compile for users
 * who do not have it. A Fastify instance matches these shapes, so
 * `app.register(gateway.fastifyPlugin)` type-checks where fastify is installed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The request a route handler gets: only its raw `node:http` request is read. */
export interface FastifyPluginRequest {
  readonly raw: IncomingMessage;
}

/** The reply a route handler gets: hijacked, then answered on the raw response. */
export interface FastifyPluginReply {
  readonly raw: ServerResponse;
  hijack(): unknown;
}

/** The part of the encapsulated Fastify instance that the plugin registers routes on. */
export interface FastifyPluginInstance {
  readonly prefix: string;
  removeAllContentTypeParsers(): unknown;
  addContentTypeParser(
    contentType: string,
    parser: (
      request: unknown,
      payload: IncomingMessage,
      done: (error: Error | null, body?: unknown) => void,
    ) => void,
  ): unknown;
  route(options: {
    method: string[];
    url: string;
    handler: (request: FastifyPluginRequest, reply: FastifyPluginReply) => Promise<void>;
  }): unknown;
}

/** An async Fastify plugin, as `app.register` takes it. */
export type FastifyPlugin = (instance: FastifyPluginInstance) => Promise<void>;
