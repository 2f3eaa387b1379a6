/**
 * The supervisor's MCP host, tied to its sessions' lifecycle: a session's own connections
 * (`perSession` servers) close when it passivates or closes, as its worker does.
 */
import type { EventEmitter } from 'node:events';
import { McpHost } from '../tools/mcp/mcp-host.js';
import type { ResolvedMcpOptions } from '../tools/mcp/options.js';
import type { SupervisorEvents } from './events.js';

export function startMcpHost(
  options: ResolvedMcpOptions,
  events: EventEmitter<SupervisorEvents>,
): McpHost {
  const mcp = new McpHost(options);
  const release = ({ key }: { readonly key: string }) => mcp.closeSession(key);
  events.on('session:passivate', release);
  events.on('session:close', release);
  return mcp;
}
