/** The supervisor's `mcp` options: who supplies credentials, and how many connections are kept. */
import { z } from 'zod';
import type { McpCredentials } from './connection.js';

/** What the credentials resolver is asked: which session, of which tenant, for which server. */
export interface McpCredentialsRequest {
  readonly sessionKey: string;
  readonly tenant: string;
  /** The server's name in the agent's `mcpServers`. */
  readonly server: string;
}

/**
 * Supplies a session's own credentials for an MCP server: headers for streamable HTTP,
 * environment for stdio, added over the config's own. Runs on the host for each connection
 * lookup; its result is never logged and never enters a session thread.
 *
 * @example
 * const supervisor = new Supervisor({
 *   mcp: {
 *     credentials: async ({ tenant, server }) =>
 *       server === 'crm' ? { headers: { authorization: `Bearer ${await tokenOf(tenant)}` } } : undefined,
 *   },
 * });
 */
export type McpCredentialsResolver = (
  request: McpCredentialsRequest,
) => McpCredentials | undefined | Promise<McpCredentials | undefined>;

const positiveInt = z.number().int().positive();
const isFunction = (value: unknown) => typeof value === 'function';

export const mcpOptionsSchema = z
  .strictObject({
    /** Per-session credentials (see {@link McpCredentialsResolver}). */
    credentials: z.custom<McpCredentialsResolver>(isFunction).optional(),
    /**
     * The tenant of a session key: connections are never shared across tenants.
     * @default the part of the key before its first ":" (the gateway's `tenant:key`), else ""
     */
    tenantOf: z.custom<(sessionKey: string) => string>(isFunction).optional(),
    /** Open MCP connections kept at most; the least recently used past it are closed. @default 64 */
    maxConnections: positiveInt.default(64),
    /** A connection unused this long is closed (the next call opens it again). @default 300000 */
    idleTimeoutMs: positiveInt.default(300_000),
    /** Largest tool result, in UTF-8 bytes, told to the model. @default 1048576 */
    maxResultBytes: positiveInt.default(1024 * 1024),
    /** Deadline of a call when the agent sets no `toolTimeout`, in ms. @default 60000 */
    callTimeoutMs: positiveInt.default(60_000),
  })
  .prefault({});

export type McpOptions = z.input<typeof mcpOptionsSchema>;
export type ResolvedMcpOptions = z.output<typeof mcpOptionsSchema>;

export function defaultTenantOf(sessionKey: string): string {
  const colon = sessionKey.indexOf(':');
  return colon > 0 ? sessionKey.slice(0, colon) : '';
}
