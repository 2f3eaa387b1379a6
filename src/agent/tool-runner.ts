/**
 * Runs the tool calls of one model response: arguments refused when the model service found
 * them off the tool's JSON Schema (it checks them on the host, where the validators live),
 * approval, hooks, per-call timeout and abort. A tool's failure is told to the model as the
 * call's result; only an interrupt or a failing hook ends the turn.
 */
import {
  type AgentcellError,
  ApprovalDeniedError,
  InterruptedError,
  isAgentcellError,
  ToolFailedError,
  ToolNotFoundError,
  ToolTimeoutError,
} from '../errors.js';
import type { CheckedToolCall } from '../llm/model.js';
import type { Tool, ToolContext } from '../tools/tool.js';
import type { ApprovalDecision } from './approval.js';
import type { HookContext } from './extensions.js';
import type { ChatMessage } from './messages.js';
import type { TurnEventBody } from './turn-events.js';

/** What the tool runner needs from the running turn. */
export interface ToolRunScope {
  readonly agentName: string;
  readonly sessionKey: string;
  readonly turnId: string;
  readonly signal: AbortSignal;
  readonly toolTimeoutMs: number | undefined;
  readonly parallel: boolean;
  emit(body: TurnEventBody): void;
  runHooks(point: 'beforeToolCall' | 'afterToolCall', extra: Partial<HookContext>): Promise<void>;
  /** The callable for a tool name, or undefined when the agent has no such tool. */
  resolve(name: string): ResolvedTool | undefined;
  /** Whether the approval config covers this tool. */
  needsApproval(name: string): boolean;
  /** How the call was decided, when it needed approval. */
  decision(callId: string): ApprovalDecision | undefined;
}

export interface ResolvedTool {
  readonly tool: Pick<Tool, 'name' | 'parameters'>;
  readonly run: (args: unknown, context: ToolContext) => unknown;
}

/** Runs the calls (concurrently when `parallel`) and returns their tool messages in call order. */
export async function runToolCalls(
  scope: ToolRunScope,
  calls: readonly CheckedToolCall[],
): Promise<ChatMessage[]> {
  if (scope.parallel) return Promise.all(calls.map((call) => runToolCall(scope, call)));
  const results: ChatMessage[] = [];
  for (const call of calls) results.push(await runToolCall(scope, call));
  return results;
}

async function runToolCall(scope: ToolRunScope, call: CheckedToolCall): Promise<ChatMessage> {
  scope.emit({
    type: 'tool-start',
    callId: call.id,
    name: call.name,
    arguments: call.arguments,
    at: Date.now(),
  });
  let result: string;
  let error: AgentcellError | undefined;
  try {
    result = await invoke(scope, call);
  } catch (thrown) {
    if (scope.signal.aborted) throw turnAbortReason(scope.signal);
    if (isAgentcellError(thrown, 'AGENTCELL_HOOK_FAILED')) throw thrown;
    error = isAgentcellError(thrown) ? thrown : new ToolFailedError(String(thrown));
    result = `error ${error.code}: ${error.message}`;
  }
  scope.emit({
    type: 'tool-end',
    callId: call.id,
    name: call.name,
    ok: error === undefined,
    result,
    ...(error && { error: { code: error.code, message: error.message } }),
    at: Date.now(),
  });
  return { role: 'tool', toolCallId: call.id, name: call.name, content: result };
}

async function invoke(scope: ToolRunScope, call: CheckedToolCall): Promise<string> {
  const resolved = scope.resolve(call.name);
  if (!resolved)
    throw new ToolNotFoundError(`the agent has no tool named ${JSON.stringify(call.name)}`);
  const args = parseArguments(call);
  const problems = call.argumentProblems;
  if (problems)
    throw new ToolFailedError(`invalid arguments for ${call.name}: ${problems}`, {
      details: { invalidArguments: true },
    });
  if (scope.needsApproval(call.name)) {
    const decision = scope.decision(call.id);
    if (decision?.approved !== true) {
      const why = decision?.reason ? `: ${decision.reason}` : '';
      throw new ApprovalDeniedError(`the call of ${call.name} was not approved${why}`);
    }
  }
  const hookTool = { callId: call.id, name: call.name, arguments: call.arguments };
  await scope.runHooks('beforeToolCall', { tool: hookTool });
  const value = await runWithLimits(scope, resolved, args, call);
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? 'null');
  await scope.runHooks('afterToolCall', { tool: hookTool, toolResult: text });
  return text;
}

function parseArguments(call: CheckedToolCall): unknown {
  try {
    return JSON.parse(call.arguments || '{}');
  } catch {
    throw new ToolFailedError(`the arguments of ${call.name} are not valid JSON`, {
      details: { invalidArguments: true },
    });
  }
}

/**
 * Runs a tool under the turn's signal and its own timeout. A tool that ignores its signal is
 * abandoned when the signal fires rather than awaited: the turn must not hang on it.
 */
async function runWithLimits(
  scope: ToolRunScope,
  resolved: ResolvedTool,
  args: unknown,
  call: CheckedToolCall,
): Promise<unknown> {
  const signals = [scope.signal];
  if (scope.toolTimeoutMs !== undefined) signals.push(AbortSignal.timeout(scope.toolTimeoutMs));
  const signal = signals.length === 1 ? scope.signal : AbortSignal.any(signals);
  const context: ToolContext = {
    signal,
    sessionKey: scope.sessionKey,
    turnId: scope.turnId,
    agentName: scope.agentName,
    toolCallId: call.id,
  };
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([Promise.resolve().then(() => resolved.run(args, context)), aborted]);
  } catch (thrown) {
    if (scope.signal.aborted) throw turnAbortReason(scope.signal);
    if (signal.aborted)
      throw new ToolTimeoutError(`${call.name} did not finish within ${scope.toolTimeoutMs} ms`);
    if (isAgentcellError(thrown)) throw thrown;
    throw new ToolFailedError(
      `${call.name} threw: ${(thrown as Error)?.message ?? String(thrown)}`,
      { cause: thrown },
    );
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
    aborted.catch(() => {});
  }
}

/** The error a turn ends with when its signal fired. */
export function turnAbortReason(signal: AbortSignal): AgentcellError {
  const reason: unknown = signal.reason;
  return isAgentcellError(reason) ? reason : new InterruptedError('the turn was aborted');
}
