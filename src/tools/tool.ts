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
import { z } from 'zod';
import type { JsonSchema } from '../agent/config.js';
import { freezeData, isJsonValue } from '../agent/data.js';
import { ToolInvalidError } from '../errors.js';

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

export interface ToolDefinition<Args = Record<string, unknown>> {
  readonly name: string;
  readonly description: string;
  /** JSON Schema of the arguments, or a zod schema converted to one. Default: no arguments. */
  readonly parameters?: JsonSchema | z.ZodType<Args>;
  /** The implementation, for `function` and `host` tools. */
  readonly run?: (args: Args, context: ToolContext) => unknown;
  /** One instance per agent instance (per session), for tools that keep state. */
  readonly factory?: () => { run: (args: Args, context: ToolContext) => unknown };
  /** Run in the supervisor's thread and call it back from workers. */
  readonly host?: boolean;
}

const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const NO_ARGUMENTS: JsonSchema = freezeData({ type: 'object', properties: {} });

/**
 * Defines a tool.
 *
 * @example
 * const weather = defineTool({
 *   name: 'weather',
 *   description: 'Current weather for a city',
 *   parameters: z.object({ city: z.string() }),
 *   run: async ({ city }) => ({ city, celsius: 21 }),
 * });
 */
export function defineTool<Args = Record<string, unknown>>(definition: ToolDefinition<Args>): Tool {
  const problems: string[] = [];
  const { name, description, run, factory, host } = definition;
  if (typeof name !== 'string' || !TOOL_NAME.test(name)) {
    problems.push('name: use 1 to 64 letters, digits, "_" or "-"');
  }
  if (typeof description !== 'string') problems.push('description: expected a string');
  const implementations = [run, factory].filter((impl) => impl !== undefined);
  if (implementations.length !== 1 || implementations.some((impl) => typeof impl !== 'function')) {
    problems.push('run/factory: give exactly one implementation function');
  }
  if (host && factory) problems.push('host: a host tool takes run, not factory');
  const parameters = toJsonSchema(definition.parameters, problems);
  if (problems.length > 0) {
    throw new ToolInvalidError(`invalid tool ${JSON.stringify(name)}: ${problems.join('; ')}`, {
      details: { problems },
    });
  }
  const kind: ToolKind = host ? 'host' : factory ? 'factory' : 'function';
  return Object.freeze({
    name,
    description,
    parameters,
    kind,
    run: run as ToolRun | undefined,
    factory: factory as (() => ToolInstance) | undefined,
  });
}

function toJsonSchema(parameters: ToolDefinition<unknown>['parameters'], problems: string[]) {
  if (parameters === undefined) return NO_ARGUMENTS;
  if (parameters instanceof z.ZodType) {
    const { $schema: _ignored, ...schema } = z.toJSONSchema(parameters, { target: 'draft-7' });
    return freezeData(schema);
  }
  if (
    typeof parameters !== 'object' ||
    parameters === null ||
    Object.getPrototypeOf(parameters) !== Object.prototype ||
    !isJsonValue(parameters)
  ) {
    problems.push('parameters: expected a JSON Schema object or a zod schema');
    return NO_ARGUMENTS;
  }
  return freezeData(structuredClone(parameters));
}

/** Whether a value is a tool made by {@link defineTool} (or shaped like one). */
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
