/**
 * The parts of the official MCP SDK's client that connections use, in one module so that
 * `connection.ts` can import them all at once, lazily, on the first connection.
 */
export { Client } from '@modelcontextprotocol/sdk/client/index.js';
export {
  getDefaultEnvironment,
  StdioClientTransport,
} from '@modelcontextprotocol/sdk/client/stdio.js';
export { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
