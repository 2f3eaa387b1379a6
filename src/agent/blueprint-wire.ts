/**
 * A blueprint's text form, both ways, without validation: what a host sends its own session
 * threads. The host validated the agent when it was registered, so a thread trusts its parent
 * and decodes without zod (`blueprint.ts` is the validating reader for text from outside).
 *
 * JSON Schemas travel as JSON text inside the superjson document: a schema may legitimately
 * describe a property named `constructor`, a key superjson refuses (prototype-pollution guard).
 */
import { codec, encode } from '../codec.js';
import type { ToolDescriptor } from '../tools/tool.js';
import type { AgentSpec, JsonSchema } from './config.js';
import { freezeData } from './data.js';

export const BLUEPRINT_VERSION = 1;

export interface Blueprint {
  readonly version: typeof BLUEPRINT_VERSION;
  readonly spec: AgentSpec;
  readonly tools: readonly ToolDescriptor[];
  /** Names of the agents this one may hand off to. */
  readonly handoffs: readonly string[];
}

export interface WireBlueprint extends Omit<Blueprint, 'spec' | 'tools'> {
  readonly spec: Omit<AgentSpec, 'output'> & { readonly output?: Record<string, unknown> };
  readonly tools: readonly (Omit<ToolDescriptor, 'parameters'> & { readonly parameters: string })[];
}

/** The blueprint with its JSON Schemas as text, ready for the codec. */
export function toWire(blueprint: Blueprint): WireBlueprint {
  const { output } = blueprint.spec;
  return {
    ...blueprint,
    spec: {
      ...blueprint.spec,
      ...(output && {
        output: { ...output, ...(output.schema && { schema: JSON.stringify(output.schema) }) },
      }),
    },
    tools: blueprint.tools.map((tool) => ({
      ...tool,
      parameters: JSON.stringify(tool.parameters),
    })),
  };
}

/** Encodes a blueprint the host trusts, for one of its own threads. */
export function encodeTrustedBlueprint(blueprint: Blueprint): string {
  return encode(toWire(blueprint));
}

/** Decodes what {@link encodeTrustedBlueprint} wrote. Only for text from the host itself. */
export function decodeTrustedBlueprint(text: string): Blueprint {
  const wire = codec.parse<WireBlueprint>(text);
  const output = wire.spec.output as { schema?: unknown } | undefined;
  const spec = {
    ...wire.spec,
    ...(output &&
      typeof output.schema === 'string' && {
        output: { ...output, schema: JSON.parse(output.schema) as JsonSchema },
      }),
  } as AgentSpec;
  return freezeData({
    ...wire,
    spec,
    tools: wire.tools.map((tool) => ({
      ...tool,
      parameters: JSON.parse(tool.parameters) as JsonSchema,
    })),
  });
}
