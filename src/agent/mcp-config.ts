/**
 * The MCP servers an agent names: data, like every other part of its config, so clones and
 * blueprints carry them. Credentials that differ per session do not belong here: the
 * supervisor's `mcp.credentials` resolver adds them on the host, per call.
 */
import { z } from 'zod';
import { FORBIDDEN_KEYS } from '../codec.js';

/**
 * Short enough that `server__tool` leaves room for the tool's own name within the 64
 * characters OpenAI allows for a function name.
 */
export const MCP_SERVER_NAME = /^[A-Za-z0-9_-]{1,24}$/;

const safeKey = z
  .string()
  .refine(
    (key) => !FORBIDDEN_KEYS.has(key),
    'the keys __proto__, constructor and prototype are not allowed',
  );
const strings = z.record(safeKey, z.string());

const mcpServerSchema = z
  .strictObject({
    /** Prefix of the server's tools as the model sees them: `name__tool`. */
    name: z.string().regex(MCP_SERVER_NAME, 'use 1 to 24 letters, digits, "_" or "-"'),
    /** stdio: the program to start (on the host, never in a session thread). */
    command: z.string().min(1).optional(),
    args: z.array(z.string()).optional(),
    /** stdio: environment of the server process (secret: redacted in every view of the config). */
    env: strings.optional(),
    cwd: z.string().min(1).optional(),
    /** Streamable HTTP: the server's endpoint. */
    url: z
      .preprocess(
        (value) => (value instanceof URL ? value.href : value),
        z.url({ protocol: /^https?$/ }),
      )
      .optional(),
    /** Streamable HTTP: headers of every request (secret: redacted in every view of the config). */
    headers: strings.optional(),
    /** Only these of the server's tools (by their MCP names) are given to the model. */
    tools: z.array(z.string().min(1)).optional(),
    /**
     * A stateful server: each session gets a connection of its own, closed when the session
     * passivates or closes. Default: sessions of one tenant with the same credentials share one.
     */
    perSession: z.boolean().optional(),
    /** How long connecting and listing tools may take, in ms. @default 10000 */
    connectTimeoutMs: z.number().int().positive().optional(),
  })
  .refine((server) => (server.command === undefined) !== (server.url === undefined), {
    message: 'give either command (stdio) or url (streamable HTTP), not both',
  });

/** The MCP servers of an agent; their names must differ. */
export const mcpServersSchema = z
  .array(mcpServerSchema)
  .refine(
    (servers) => new Set(servers.map((server) => server.name)).size === servers.length,
    'every MCP server needs a name of its own',
  );

/**
 * One MCP server of an agent: a stdio command or a streamable HTTP URL. Its tools reach the
 * model as `name__tool`; they run on the host, never in a session thread.
 *
 * @example
 * const agent = new Agent({
 *   name: 'support',
 *   mcpServers: [
 *     { name: 'files', command: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem', '/srv/docs'] },
 *     { name: 'crm', url: 'https://crm.example.com/mcp', tools: ['find_customer'] },
 *   ],
 * });
 */
export type McpServerConfig = z.input<typeof mcpServerSchema>;
