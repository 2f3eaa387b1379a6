/**
 * The mock MCP server: a real MCP server over stdio (the official SDK's) with one tool,
 * `lookup`, that answers at once. What `agentcell loadtest --mcp-tool-calls` and `demo` give
 * their agent, so MCP calls can be part of a load test with nothing installed beside agentcell.
 *
 * Run: node mock-mcp-server.js   (its path: {@link MOCK_MCP_SERVER})
 */
import { fileURLToPath } from 'node:url';

const HERE = fileURLToPath(import.meta.url);

/**
 * The file to start with `node` (an agent's `mcpServers: [{ command: process.execPath, args:
 * [MOCK_MCP_SERVER] }]`): this one compiled; from the TypeScript sources (tests), its build
 * output, since a plain `node` cannot run TypeScript.
 *
 * @example
 * import { MOCK_MCP_SERVER } from 'agentcell/testing';
 * const agent = new Agent({
 *   name: 'cell',
 *   mcpServers: [{ name: 'mock', command: process.execPath, args: [MOCK_MCP_SERVER] }],
 * });
 */
export const MOCK_MCP_SERVER = HERE.endsWith('.ts')
  ? fileURLToPath(new URL('../../dist/src/testing/mock-mcp-server.js', import.meta.url))
  : HERE;

async function serve(): Promise<void> {
  const [{ McpServer }, { StdioServerTransport }, { z }] = await Promise.all([
    import('@modelcontextprotocol/sdk/server/mcp.js'),
    import('@modelcontextprotocol/sdk/server/stdio.js'),
    import('zod'),
  ]);
  const server = new McpServer({ name: 'agentcell-mock-mcp', version: '1.0.0' });
  server.registerTool(
    'lookup',
    {
      description: 'Looks a key up (a load test stand-in for a real MCP tool)',
      inputSchema: { key: z.string() },
    },
    ({ key }) => ({ content: [{ type: 'text', text: JSON.stringify({ key, found: true }) }] }),
  );
  await server.connect(new StdioServerTransport());
}

// Started as a program it serves; imported (for its path) it does nothing.
if (process.argv[1] === HERE) await serve();
