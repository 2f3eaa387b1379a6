/**
 * MCP tools on the host: what a session's agent may call, listed and called with that
 * session's own credentials over a pooled connection. Session threads only see descriptors
 * and call back by name, so no credential enters a thread, and hundreds of sessions share a
 * few server processes instead of starting one each.
 */
import type { Tool as McpTool } from '@modelcontextprotocol/sdk/types.js';
import { LRUCache } from 'lru-cache';
import type { AgentSpec } from '../../agent/config.js';
import {
  isAgentcellError,
  McpToolFailedError,
  McpUnavailableError,
  ToolNotFoundError,
  ToolTimeoutError,
} from '../../errors.js';
import { errorFields, log } from '../../log.js';
import type { ToolDescriptor } from '../tool.js';
import type { McpConnection, McpCredentials, McpServerSpec } from './connection.js';
import { defaultTenantOf, type ResolvedMcpOptions } from './options.js';
import { type ConnectionOwner, connectionKey, McpPool } from './pool.js';
import { resultText } from './result-text.js';
import { mcpToolName } from './tool-names.js';

/** JSON-RPC code the SDK uses when the connection closed under a pending request. */
const CONNECTION_CLOSED = -32000;
/** How long a server that could not list its tools is left alone by turns starting. */
const LIST_RETRY_MS = 5_000;

/** A server's tool under the name the model knows it by. */
interface ListedTool {
  readonly name: string;
  readonly tool: McpTool;
}

/** What a connection key last listed, and when listing last failed. */
interface KnownTools {
  readonly tools: readonly ListedTool[];
  readonly failedAt?: number;
}

export class McpHost {
  readonly #options: ResolvedMcpOptions;
  readonly #pool: McpPool;
  /** By connection key; a fallback for turns while a server is away, so it is bounded too. */
  readonly #known = new LRUCache<string, KnownTools>({ max: 4096 });

  constructor(options: ResolvedMcpOptions) {
    this.#options = options;
    this.#pool = new McpPool(options);
  }

  /**
   * The MCP tools of a session's agent, as descriptors of host tools. A server that cannot be
   * reached now is offered with the tools it last listed for these credentials (a call then
   * fails with a typed error, and connects again), or not at all if it never listed any; it
   * is not asked again for `LIST_RETRY_MS`, so a down server does not slow every turn.
   */
  async tools(spec: AgentSpec, sessionKey: string): Promise<ToolDescriptor[]> {
    const lists = await Promise.all(
      (spec.mcpServers ?? []).map(async (server) =>
        (await this.#listed(server, sessionKey)).map(({ name, tool }) => ({
          name,
          description: tool.description ?? '',
          parameters: inputSchemaOf(tool.inputSchema),
          kind: 'host' as const,
        })),
      ),
    );
    return lists.flat();
  }

  async #listed(server: McpServerSpec, sessionKey: string): Promise<readonly ListedTool[]> {
    let key: string | undefined;
    try {
      const owner = await this.#owner(server, sessionKey);
      key = connectionKey(server, owner);
      const known = this.#known.get(key);
      if (known?.failedAt !== undefined && Date.now() - known.failedAt < LIST_RETRY_MS) {
        return known.tools;
      }
      const tools = await this.#serverTools(server, await this.#pool.acquire(server, owner));
      if (known?.failedAt !== undefined)
        log('mcp').info({ server: server.name }, 'mcp server back');
      this.#known.set(key, { tools });
      return tools;
    } catch (error) {
      const known = key === undefined ? undefined : this.#known.get(key);
      if (known?.failedAt === undefined) {
        log('mcp').warn(
          { server: server.name, sessionKey, ...errorFields(error) },
          'mcp server unavailable: its tools are offered as last listed, or not at all',
        );
      }
      if (key !== undefined)
        this.#known.set(key, { tools: known?.tools ?? [], failedAt: Date.now() });
      return known?.tools ?? [];
    }
  }

  /**
   * Calls the tool the model knows as `name` for a session and returns what the model is told.
   * Fails with a typed error: `AGENTCELL_MCP_UNAVAILABLE` (the connection is dropped and the
   * next call opens a new one), `AGENTCELL_MCP_TOOL_FAILED`, `AGENTCELL_MCP_RESULT_TOO_LARGE`,
   * `AGENTCELL_TOOL_TIMEOUT` or `AGENTCELL_TOOL_NOT_FOUND`.
   */
  async call(
    spec: AgentSpec,
    sessionKey: string,
    name: string,
    args: unknown,
    timeoutMs = this.#options.callTimeoutMs,
  ): Promise<string> {
    // The longest prefix: a server named `a_` owns `a___x`, not a server named `a`.
    const server = spec.mcpServers
      ?.filter((candidate) => name.startsWith(`${candidate.name}__`))
      .sort((a, b) => b.name.length - a.name.length)[0];
    if (!server) throw new ToolNotFoundError(`the agent has no MCP tool named ${name}`);
    const connection = await this.#pool.acquire(server, await this.#owner(server, sessionKey));
    const tool = (await this.#serverTools(server, connection)).find(
      (candidate) => candidate.name === name,
    );
    if (!tool) throw new ToolNotFoundError(`MCP server ${server.name} has no tool ${name}`);
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const result = await connection.call(tool.tool.name, args, signal);
      return resultText(result, name, this.#options.maxResultBytes);
    } catch (error) {
      throw this.#callFailure(error, connection, name, signal, timeoutMs);
    }
  }

  #callFailure(
    error: unknown,
    connection: McpConnection,
    name: string,
    signal: AbortSignal,
    timeoutMs: number,
  ): Error {
    if (isAgentcellError(error)) return error;
    if (signal.aborted) {
      return new ToolTimeoutError(`${name} did not finish within ${timeoutMs} ms`);
    }
    const message = (error as Error)?.message ?? String(error);
    const answered =
      connection.alive &&
      (isMcpError(error) ? error.code !== CONNECTION_CLOSED : isValidationError(error));
    if (answered) {
      return new McpToolFailedError(`${name} failed: ${message}`, { cause: error });
    }
    this.#pool.discard(connection);
    return new McpUnavailableError(
      `MCP server ${connection.server} went away during the call of ${name} (${message})`,
      { cause: error },
    );
  }

  async #owner(server: McpServerSpec, sessionKey: string): Promise<ConnectionOwner> {
    const tenant = (this.#options.tenantOf ?? defaultTenantOf)(sessionKey);
    return { tenant, sessionKey, credentials: await this.#credentials(server, sessionKey, tenant) };
  }

  async #credentials(
    server: McpServerSpec,
    sessionKey: string,
    tenant: string,
  ): Promise<McpCredentials> {
    const resolver = this.#options.credentials;
    if (!resolver) return {};
    try {
      return (await resolver({ sessionKey, tenant, server: server.name })) ?? {};
    } catch (error) {
      // The resolver's own message may quote a secret: it is logged by name and code only.
      log('mcp').warn(
        { server: server.name, sessionKey, err: { name: (error as Error)?.name } },
        'mcp credentials resolver failed',
      );
      throw new McpUnavailableError(
        `the credentials for MCP server ${server.name} could not be resolved`,
      );
    }
  }

  async #serverTools(
    server: McpServerSpec,
    connection: McpConnection,
  ): Promise<readonly ListedTool[]> {
    const allowed = server.tools && new Set(server.tools);
    const timeoutMs = server.connectTimeoutMs ?? 10_000;
    const tools = await connection.tools(timeoutMs).catch((error: unknown) => {
      this.#pool.discard(connection);
      throw new McpUnavailableError(
        `MCP server ${server.name} did not list its tools: ${(error as Error)?.message}`,
        { cause: error },
      );
    });
    return tools
      .filter((tool) => !allowed || allowed.has(tool.name))
      .map((tool) => ({ name: mcpToolName(server.name, tool.name), tool }));
  }

  /** Closes a session's own connections (its `perSession` servers). */
  closeSession(sessionKey: string): void {
    this.#pool.closeSession(sessionKey);
  }

  /** Open MCP connections (for metrics and tests). */
  get connectionCount(): number {
    return this.#pool.size;
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}

/**
 * A JSON-RPC error the server answered with (or the SDK's own, such as a closed connection).
 * By name, since the SDK is imported lazily (a transport's HTTP error has a `code` too).
 */
function isMcpError(error: unknown): error is Error & { readonly code: number } {
  return error instanceof Error && error.name === 'McpError';
}

/** A result the SDK refused as off the MCP schema: the server answered, but wrongly. */
function isValidationError(error: unknown): boolean {
  return error instanceof Error && (error.name === 'ZodError' || error.name === '$ZodError');
}

/** The tool's input schema as the model service checks it (draft-07, no `$schema` of 2020-12). */
function inputSchemaOf(schema: { readonly [key: string]: unknown }): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = schema;
  return { type: 'object', ...rest };
}
