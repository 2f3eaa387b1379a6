/**
 * A session's MCP tools as this thread sees them: descriptors listed by the host, each called
 * back there by name. The MCP client, its connections and the session's credentials stay on
 * the host; the thread loads none of it.
 */
import type * as Comlink from 'comlink';
import type { Tool, ToolContext } from '../tools/tool.js';
import type { HostApi } from './api.js';

export async function mcpToolsOf(
  host: Comlink.Remote<HostApi>,
  sessionKey: string,
): Promise<Tool[]> {
  const descriptors = await host.mcpTools(sessionKey);
  return descriptors.map((descriptor) =>
    Object.freeze({
      ...descriptor,
      kind: 'host' as const,
      // The host applies the tool timeout to the call it makes; the turn's own race covers the rest.
      run: (args: unknown, { signal: _signal, ...context }: ToolContext) =>
        host.callMcpTool(descriptor.name, args, context),
    }),
  );
}
