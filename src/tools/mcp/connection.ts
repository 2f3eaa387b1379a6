/**
 * One live MCP client: a stdio server process or a streamable HTTP endpoint, connected with
 * one set of credentials, through the official SDK. It keeps the server's tool list, which the
 * SDK refreshes when the server says it changed, and knows when the server went away, so the
 * pool can replace it on the next call.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { CallToolResult, Tool as McpTool } from '@modelcontextprotocol/sdk/types.js';
import type { AgentSpec } from '../../agent/config.js';
import { McpUnavailableError } from '../../errors.js';
import { errorFields, log } from '../../log.js';

/** An MCP server as an agent's (validated) config names it. */
export type McpServerSpec = NonNullable<AgentSpec['mcpServers']>[number];

/** What a session's credentials add to a server's config: headers (HTTP) or environment (stdio). */
export interface McpCredentials {
  readonly headers?: Readonly<Record<string, string>> | undefined;
  readonly env?: Readonly<Record<string, string>> | undefined;
}

const CLIENT_INFO = { name: 'agentcell', version: '0.1.0' };

/**
 * The SDK's client side, imported on the first connection: a host whose agents name no MCP
 * server never pays for it (~28 MiB of RSS and ~0.5 s of import on a busy 2-core machine).
 */
let sdk: Promise<typeof import('./sdk.js')> | undefined;
const loadSdk = () => {
  sdk ??= import('./sdk.js');
  return sdk;
};
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export class McpConnection {
  readonly server: string;
  readonly #client: Client;
  #tools: Promise<readonly McpTool[]> | undefined;
  #closed = false;
  /** Calls running now: an evicted connection closes only once they are done. */
  #inFlight = 0;
  #closeWhenIdle = false;

  private constructor(server: string, client: Client) {
    this.server = server;
    this.#client = client;
  }

  /** Connects (and initializes) within the server's connect timeout; `AGENTCELL_MCP_UNAVAILABLE` if it cannot. */
  static async open(spec: McpServerSpec, credentials: McpCredentials): Promise<McpConnection> {
    const { Client } = await loadSdk();
    let connection: McpConnection | undefined;
    const client = new Client(CLIENT_INFO, {
      listChanged: {
        tools: {
          // Forget the list at once rather than refresh it in the background: the next turn
          // lists again, so it can never be offered the list from before the change.
          autoRefresh: false,
          debounceMs: 0,
          onChanged: () => {
            if (connection) connection.#tools = undefined;
          },
        },
      },
    });
    connection = new McpConnection(spec.name, client);
    client.onclose = () => {
      if (connection) connection.#closed = true;
    };
    const transport = transportOf(spec, credentials, await loadSdk());
    try {
      await client.connect(transport, {
        timeout: spec.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      });
    } catch (error) {
      // The connect failure is what counts (thrown, and logged by the MCP host once).
      await client.close().catch(() => {});
      throw new McpUnavailableError(
        `MCP server ${spec.name} could not be reached: ${(error as Error).message}`,
        { cause: error },
      );
    }
    return connection;
  }

  /** Whether the server is still there (a crashed process or a closed session is not). */
  get alive(): boolean {
    return !this.#closed;
  }

  /** The server's tools, listed once and kept until the server says they changed. */
  tools(timeoutMs: number): Promise<readonly McpTool[]> {
    this.#tools ??= this.#listTools(timeoutMs);
    const listing = this.#tools;
    // The failure reaches every caller of this listing; here it only lets the next one retry.
    listing.catch(() => {
      if (this.#tools === listing) this.#tools = undefined;
    });
    return listing;
  }

  async #listTools(timeoutMs: number): Promise<readonly McpTool[]> {
    const tools: McpTool[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.#client.listTools(cursor ? { cursor } : undefined, {
        timeout: timeoutMs,
      });
      tools.push(...page.tools);
      cursor = page.nextCursor;
    } while (cursor);
    return tools;
  }

  /** Calls a tool by its MCP name; the signal cancels it on the server too. */
  async call(name: string, args: unknown, signal: AbortSignal): Promise<CallToolResult> {
    this.#inFlight++;
    try {
      return (await this.#client.callTool(
        { name, arguments: args as Record<string, unknown> },
        undefined,
        // The caller's signal is the deadline; the SDK's own 60 s default must not cut it short.
        { signal, timeout: 2 ** 31 - 1 },
      )) as CallToolResult;
    } finally {
      this.#inFlight--;
      if (this.#closeWhenIdle && this.#inFlight === 0) void this.close();
    }
  }

  /** Closes now, or once the calls running on it end. */
  release(): void {
    if (this.#inFlight === 0) void this.close();
    else this.#closeWhenIdle = true;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#client.close().catch((error: unknown) => {
      log('mcp').debug({ ...errorFields(error), server: this.server }, 'mcp close failed');
    });
  }
}

function transportOf(
  spec: McpServerSpec,
  credentials: McpCredentials,
  {
    StdioClientTransport,
    StreamableHTTPClientTransport,
    getDefaultEnvironment,
  }: typeof import('./sdk.js'),
): Transport {
  if (spec.url !== undefined) {
    return new StreamableHTTPClientTransport(new URL(spec.url), {
      requestInit: { headers: { ...spec.headers, ...credentials.headers } },
    });
  }
  const transport = new StdioClientTransport({
    command: spec.command ?? '',
    args: [...(spec.args ?? [])],
    env: { ...getDefaultEnvironment(), ...spec.env, ...credentials.env },
    ...(spec.cwd !== undefined && { cwd: spec.cwd }),
    stderr: 'pipe',
  });
  // Read, or a chatty server blocks on a full pipe; kept at debug level, as servers print freely.
  transport.stderr?.on('data', (chunk: Buffer) => {
    log('mcp').debug(
      { server: spec.name, stderr: chunk.toString('utf8', 0, 500) },
      'mcp server stderr',
    );
  });
  return transport;
}
