/**
 * Tools: what the model may call. A tool has a descriptor (plain data that crosses threads in
 * a blueprint) and an implementation that lives in one of three places, its `kind`:
 *
 * - `function`: a `run` function, shared by every clone in-process; across a thread boundary it
 *   is found by name in the ToolRegistry of the thread that runs the agent (a module registered
 *   there, never a path from the blueprint).
 * - `factory`: a `factory` that makes one instance per agent instance, so each session has its
 *   own (state in the instance is never shared between sessions).
 * - `host`: runs in the supervisor's thread; a worker calls it back over RPC.
 */
import type { JsonSchema } from '../agent/config.js';

/** What a running tool is told about the call it serves. */
export interface ToolContext {
  /** Aborted when the turn is interrupted or the tool times out; honour it. */
  readonly signal: AbortSignal;
  readonly sessionKey: string;
  readonly turnId: string;
  readonly agentName: string;
  readonly toolCallId: string;
}

/** A tool implementation: receives validated arguments, returns anything JSON-serializable. */
export type ToolRun = (args: never, context: ToolContext) => unknown;

/** What a factory tool's factory returns: one per agent instance. */
export interface ToolInstance {
  readonly run: ToolRun;
}

export type ToolKind = 'function' | 'factory' | 'host';

/** The plain-data part of a tool: what a blueprint carries. */
export interface ToolDescriptor {
  readonly name: string;
  readonly description: string;
  /** JSON Schema (draft-07) of the arguments object. */
  readonly parameters: JsonSchema;
  readonly kind: ToolKind;
}

/** A tool with its implementation, as made by {@link defineTool}. */
export interface Tool extends ToolDescriptor {
  readonly run?: ToolRun | undefined;
  readonly factory?: (() => ToolInstance) | undefined;
}

/** Whether a value is a tool made by `defineTool` (or shaped like one). */
export function isTool(value: unknown): value is Tool {
  if (typeof value !== 'object' || value === null) return false;
  const tool = value as Partial<Tool>;
  return (
    typeof tool.name === 'string' &&
    typeof tool.description === 'string' &&
    typeof tool.parameters === 'object' &&
    (tool.kind === 'function' || tool.kind === 'factory' || tool.kind === 'host')
  );
}

/** The plain-data descriptor of a tool. */
export function describeTool(tool: ToolDescriptor): ToolDescriptor {
  return {
    name: tool.name,
    description: tool.description,
    parameters: tool.parameters,
    kind: tool.kind,
  };
}
