/**
 * What workers may call back in the host thread: host tools, MCP tools, hooks, guardrail
 * validators and the approver. Each call runs marked as inside its session's turn, so a callback that sends
 * a message to its own session is refused (it would wait on itself forever).
 */
import type { AsyncLocalStorage } from 'node:async_hooks';
import type { AgentSpec } from '../agent/config.js';
import { redact } from '../agent/redact.js';
import { ToolNotFoundError } from '../errors.js';
import type { McpHost } from '../tools/mcp/mcp-host.js';
import type { HostApi } from '../worker/api.js';
import type { ResolvedSupervisorOptions } from './options.js';

export function makeHostApi(
  options: Pick<ResolvedSupervisorOptions, 'tools' | 'hooks' | 'validators' | 'approver'>,
  insideTurn: AsyncLocalStorage<string>,
  specOf: (sessionKey: string) => AgentSpec | undefined,
  mcp: McpHost,
): HostApi {
  // Host tools outlive a worker's interrupt: the worker abandons the call, the host lets it end.
  const never = new AbortController().signal;
  return {
    callTool: (name, args, context) =>
      insideTurn.run(context.sessionKey, async () => {
        const tool = options.tools.get(name);
        if (!tool.run || tool.kind !== 'host')
          throw new ToolNotFoundError(`${name} is not a host tool`);
        return tool.run(args as never, { ...context, signal: never });
      }),
    runHook: (name, context) =>
      insideTurn.run(context.sessionKey, async () => {
        await options.hooks[name]?.(context);
      }),
    validate: (name, reply, context) =>
      insideTurn.run(context.sessionKey, async () => {
        const validator = options.validators[name];
        if (!validator) return `no validator named ${name}`;
        const spec = specOf(context.sessionKey);
        return validator(reply, { ...context, config: spec ? redact(spec) : {} });
      }),
    mcpTools: async (sessionKey) => {
      const spec = specOf(sessionKey);
      return spec ? mcp.tools(spec, sessionKey) : [];
    },
    callMcpTool: (name, args, context) =>
      insideTurn.run(context.sessionKey, async () => {
        const spec = specOf(context.sessionKey);
        if (!spec) throw new ToolNotFoundError(`no agent runs session ${context.sessionKey}`);
        return mcp.call(spec, context.sessionKey, name, args, spec.toolTimeout);
      }),
    // No approver, or no answer from it, leaves the call to a person (the turn pauses).
    approve: (request) =>
      insideTurn.run(request.sessionKey, async () => {
        const answer = await options.approver?.(request);
        return typeof answer === 'boolean' ? answer : undefined;
      }),
  };
}
