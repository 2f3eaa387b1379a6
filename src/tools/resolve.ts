/**
 * A blueprint's tools with their implementations from the registry of the thread that runs
 * the agent: the blueprint names tools, the registry says what they are here.
 */
import { BlueprintInvalidError } from '../errors.js';
import type { ToolRegistry } from './registry.js';
import type { Tool, ToolDescriptor } from './tool.js';

/**
 * The tools of a blueprint with their implementations from the registry of this thread.
 * Throws `AGENTCELL_BLUEPRINT_INVALID` for a tool that is unknown, not loaded, or of another
 * kind, and when the blueprint names tools but no registry was given.
 */
export function resolveTools(
  blueprint: { readonly tools: readonly ToolDescriptor[] },
  registry?: ToolRegistry,
): Tool[] {
  if (!registry) {
    if (blueprint.tools.length > 0) throw invalid(toolsWithoutRegistry(blueprint));
    return [];
  }
  const problems: string[] = [];
  const tools = blueprint.tools.map((descriptor, index): Tool => {
    const path = `blueprint.tools.${index}`;
    if (!registry.has(descriptor.name)) {
      problems.push(`${path}.name: no tool named ${JSON.stringify(descriptor.name)} is registered`);
      return descriptor;
    }
    let implementation: Tool;
    try {
      implementation = registry.get(descriptor.name);
    } catch (error) {
      problems.push(`${path}.name: ${(error as Error).message}`);
      return descriptor;
    }
    if (implementation.kind !== descriptor.kind) {
      problems.push(
        `${path}.kind: the blueprint says ${descriptor.kind}, the registered tool is ${implementation.kind}`,
      );
    }
    return Object.freeze({
      ...descriptor,
      run: implementation.run,
      factory: implementation.factory,
    });
  });
  if (problems.length > 0) throw invalid(problems);
  return tools;
}

function toolsWithoutRegistry(blueprint: { readonly tools: readonly ToolDescriptor[] }): string[] {
  return blueprint.tools.map(
    (tool, index) =>
      `blueprint.tools.${index}.name: the blueprint names tool ${JSON.stringify(tool.name)}; pass the { registry } that holds its implementation`,
  );
}

function invalid(problems: readonly string[]): BlueprintInvalidError {
  return new BlueprintInvalidError(`invalid blueprint:\n  ${problems.join('\n  ')}\n`, {
    details: { paths: [...problems] },
  });
}
