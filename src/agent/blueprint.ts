/**
 * The blueprint: the cloneable part of an agent as plain, versioned data (config, identity,
 * tool descriptors, handoff names), and its text form through the shared codec. This is the
 * supported way to carry an agent across a thread boundary; live state never travels.
 */
import { z } from 'zod';
import { decodeUntrusted, encode, findUnsafeKeys } from '../codec.js';
import { BlueprintInvalidError } from '../errors.js';
import type { ToolRegistry } from '../tools/registry.js';
import { describeTool, type ToolDescriptor } from '../tools/tool.js';
import { BLUEPRINT_VERSION, type Blueprint, toWire } from './blueprint-wire.js';
import { type AgentSpec, agentSpecSchema, describeIssues, type JsonSchema } from './config.js';
import { freezeData } from './data.js';

export { BLUEPRINT_VERSION, type Blueprint } from './blueprint-wire.js';

/** Default limit on encoded blueprint size: 1 MiB. */
export const DEFAULT_BLUEPRINT_MAX_BYTES = 1024 * 1024;

/** What a blueprint is made from: an Agent, or anything with its three parts. */
export interface BlueprintSource {
  readonly config: AgentSpec;
  readonly tools: readonly ToolDescriptor[];
  readonly handoffs: readonly (string | { readonly name: string })[];
}

/**
 * The blueprint of an agent: plain data, no functions, no live state.
 *
 * @example
 * const text = encodeBlueprint(toBlueprint(agent));
 * const again = Agent.fromBlueprint(decodeBlueprint(text, { registry }), { registry });
 */
export function toBlueprint(agent: BlueprintSource): Blueprint {
  return freezeData({
    version: BLUEPRINT_VERSION,
    spec: agent.config,
    tools: agent.tools.map(describeTool),
    handoffs: agent.handoffs.map((handoff) =>
      typeof handoff === 'string' ? handoff : handoff.name,
    ),
  });
}

/** Encodes a blueprint as text with the shared codec (Date, Map, Set, BigInt, RegExp, URL survive). */
export function encodeBlueprint(blueprint: Blueprint): string {
  try {
    return encode(toWire(blueprint));
  } catch (error) {
    // Whatever was passed (a hand-made object, null), the caller gets the typed error.
    throw new BlueprintInvalidError(`cannot encode blueprint: ${(error as Error)?.message}`, {
      cause: error,
    });
  }
}

export interface DecodeBlueprintOptions {
  /** Largest encoded blueprint accepted, in bytes. @default 1 MiB */
  readonly maxBytes?: number;
  /** When given, every tool the blueprint names must be registered here. */
  readonly registry?: ToolRegistry;
}

const toolDescriptorSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  description: z.string(),
  parameters: z.string(),
  kind: z.enum(['function', 'factory', 'host']),
});

const wireBlueprintSchema = z.strictObject({
  version: z.literal(BLUEPRINT_VERSION),
  spec: agentSpecSchema.extend({ output: z.unknown().optional() }),
  tools: z.array(toolDescriptorSchema).max(1024),
  handoffs: z.array(z.string().min(1).max(64)).max(256),
});

/**
 * Decodes and validates a blueprint before anything is built from it. Throws
 * `AGENTCELL_BLUEPRINT_INVALID` listing every failing path: over the size limit, not
 * superjson, unknown version, wrong or missing fields, prototype-polluting keys, unknown tools.
 */
export function decodeBlueprint(text: unknown, options: DecodeBlueprintOptions = {}): Blueprint {
  const decoded = decodeUntrusted(text, {
    maxBytes: options.maxBytes ?? DEFAULT_BLUEPRINT_MAX_BYTES,
    root: 'blueprint',
  });
  if ('problems' in decoded) throw invalid(decoded.problems);
  const blueprint = parseWire(decoded.value);
  if (options.registry) {
    const problems = unknownTools(blueprint, options.registry);
    if (problems.length > 0) throw invalid(problems);
  }
  return blueprint;
}

function parseWire(value: unknown): Blueprint {
  const version = (value as { version?: unknown } | null)?.version;
  if (version !== BLUEPRINT_VERSION) {
    throw invalid([
      `blueprint.version: unknown blueprint version ${describeVersion(version)}; this agentcell reads version ${BLUEPRINT_VERSION}`,
    ]);
  }
  const wire = wireBlueprintSchema.safeParse(value);
  if (!wire.success) throw invalid(describeIssues(wire.error.issues, 'blueprint'));
  const problems: string[] = [];
  const tools = wire.data.tools.map((tool, index) => ({
    ...tool,
    parameters: parseSchemaText(tool.parameters, `blueprint.tools.${index}.parameters`, problems),
  }));
  const output = parseOutput(wire.data.spec.output, problems);
  if (problems.length > 0) throw invalid(problems);
  const spec = agentSpecSchema.safeParse({
    ...wire.data.spec,
    ...(output !== undefined && { output }),
  });
  if (!spec.success) throw invalid(describeIssues(spec.error.issues, 'blueprint.spec'));
  return freezeData({ ...wire.data, spec: spec.data as AgentSpec, tools });
}

function describeVersion(version: unknown): string {
  if (typeof version === 'bigint') return `${version}n`;
  return JSON.stringify(version) ?? String(version);
}

function parseOutput(output: unknown, problems: string[]): unknown {
  if (typeof output !== 'object' || output === null) return output;
  const schema = (output as { schema?: unknown }).schema;
  if (typeof schema !== 'string') return output;
  return { ...output, schema: parseSchemaText(schema, 'blueprint.spec.output.schema', problems) };
}

/** Only `__proto__` is refused inside a schema: `constructor` is a fine property name there. */
const SCHEMA_FORBIDDEN: ReadonlySet<string> = new Set(['__proto__']);

function parseSchemaText(text: string, path: string, problems: string[]): JsonSchema {
  let schema: unknown;
  try {
    schema = JSON.parse(text);
  } catch {
    problems.push(`${path}: not a JSON Schema (invalid JSON)`);
    return {};
  }
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    problems.push(`${path}: expected a JSON Schema object`);
    return {};
  }
  problems.push(...findUnsafeKeys(schema, path, SCHEMA_FORBIDDEN));
  return schema as JsonSchema;
}

function unknownTools(blueprint: Blueprint, registry: ToolRegistry): string[] {
  return blueprint.tools.flatMap((tool, index) =>
    registry.has(tool.name)
      ? []
      : [`blueprint.tools.${index}.name: no tool named ${JSON.stringify(tool.name)} is registered`],
  );
}

function invalid(problems: readonly string[]): BlueprintInvalidError {
  return new BlueprintInvalidError(`invalid blueprint:\n  ${problems.join('\n  ')}\n`, {
    details: { paths: [...problems] },
  });
}
