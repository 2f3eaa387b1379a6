/**
 * Defining a tool: its name, description, the JSON Schema of its arguments (given as JSON
 * Schema, or as a zod schema converted here) and its implementation. Host-side only: session
 * threads receive tools already defined and never load zod.
 */
import { z } from 'zod';
import type { JsonSchema } from '../agent/config.js';
import { freezeData, isJsonValue } from '../agent/data.js';
import { ToolInvalidError } from '../errors.js';
import type { Tool, ToolContext, ToolInstance, ToolKind, ToolRun } from './tool.js';

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
