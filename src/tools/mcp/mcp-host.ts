/**
 * MCP tools on the host: what a session's agent may call, listed and called with that
 * session's own credentials over a pooled connection. Session threads only see descriptors
 * and call back by name, so no credential enters a thread, and hundreds of sessions share a
 * few server processes instead of starting one each.
 */
import { McpError } from '@modelcontextprotocol/sdk/types.js';
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
import { McpPool } from './pool.js';
import { resultText } from './result-text.js';
import { mcpToolName } from './tool-names.js';

/** JSON-RPC code the SDK uses when the connection closed under a pending request. */
const CONNECTION_CLOSED = -32000;

export class McpHost {
  readonly #options: ResolvedMcpOptions;
  readonly #pool: McpPool;

  constructor(options: ResolvedMcpOptions) {
    this.#options = options;
    this.#pool = new McpPool(options);
  }

  /**
   * The MCP tools of a session's agent, as descriptors of host tools. A server that cannot be
   * reached now is left out of this turn (and logged); the next turn asks again.
   */
  async tools(spec: AgentSpec, sessionKey: string): Promise<ToolDescriptor[]> {
    const lists = await Promise.all(
      (spec.mcpServers ?? []).map(async (server) => {
        try {
          const connection = await this.#connect(server, sessionKey);
          return (await this.#serverTools(server, connection)).map(({ name, tool }) => ({
            name,
            description: tool.description ?? '',
            parameters: inputSchemaOf(tool.inputSchema),
            kind: 'host' as const,
          }));
        } catch (error) {
          log('mcp').warn(
            { server: server.name, sessionKey, ...errorFields(error) },
            'mcp tools unavailable for this turn',
          );
          return [];
        }
      }),
    );
    return lists.flat();
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
    const server = spec.mcpServers?.find((candidate) => name.startsWith(`${candidate.name}__`));
    if (!server) throw new ToolNotFoundError(`the agent has no MCP tool named ${name}`);
    const connection = await this.#connect(server, sessionKey);
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
      (error instanceof McpError ? error.code !== CONNECTION_CLOSED : isValidationError(error));
    if (answered) {
      return new McpToolFailedError(`${name} failed: ${message}`, { cause: error });
    }
    this.#pool.discard(connection);
    return new McpUnavailableError(
      `MCP server ${connection.server} went away during the call of ${name} (${message})`,
      { cause: error },
    );
  }

  async #connect(server: McpServerSpec, sessionKey: string): Promise<McpConnection> {
    const tenant = (this.#options.tenantOf ?? defaultTenantOf)(sessionKey);
    const credentials = await this.#credentials(server, sessionKey, tenant);
    return this.#pool.acquire(server, { tenant, sessionKey, credentials });
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

  async #serverTools(server: McpServerSpec, connection: McpConnection) {
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

/** A result the SDK refused as off the MCP schema: the server answered, but wrongly. */
function isValidationError(error: unknown): boolean {
  return error instanceof Error && (error.name === 'ZodError' || error.name === '$ZodError');
}

/** The tool's input schema as the model service checks it (draft-07, no `$schema` of 2020-12). */
function inputSchemaOf(schema: { readonly [key: string]: unknown }): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = schema;
  return { type: 'object', ...rest };
}
