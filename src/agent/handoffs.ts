/**
 * Handoffs as the model sees them: one `transfer_to_<name>` tool per target, and the call that
 * runs the target agent's own turn, refusing cycles, chains past the depth limit and names
 * nobody registered.
 */
import { HandoffFailedError, isAgentcellError } from '../errors.js';
import type { LlmToolSpec } from '../llm/model.js';
import type { ToolContext } from '../tools/tool.js';
import type { AgentCore, Handoff } from './agent-core.js';
import { handoffName } from './redact.js';
import type { ResolvedTool } from './tool-runner.js';

const HANDOFF_PREFIX = 'transfer_to_';
const DEFAULT_MAX_HANDOFF_DEPTH = 3;

/** The tools the model calls to hand the conversation over, one per handoff. */
export function handoffToolSpecs(handoffs: readonly Handoff[]): LlmToolSpec[] {
  return handoffs.map((handoff) => {
    const name = handoffName(handoff);
    return {
      name: `${HANDOFF_PREFIX}${name}`,
      description: `Hand the conversation to the agent ${name} and return its answer.`,
      parameters: {
        type: 'object',
        properties: { message: { type: 'string', description: `What to ask ${name}` } },
        required: ['message'],
      },
    };
  });
}

/** What a handoff needs from the running turn. */
export interface HandoffScope {
  readonly agent: AgentCore;
  readonly turnId: string;
  /** Agents already in this chain of handoffs, before `agent`. */
  readonly chain: readonly string[];
  /** Resolves handoffs given by name. */
  readonly agents: ((name: string) => AgentCore | undefined) | undefined;
  /**
   * Runs `target`'s own turn and resolves with its reply. The turn loop passes itself in, so
   * this module never imports it back.
   */
  runTurn(target: AgentCore, message: string, turn: HandoffTurn): Promise<string>;
}

export interface HandoffTurn {
  readonly signal: AbortSignal;
  readonly turnId: string;
  readonly handoffChain: readonly string[];
}

/** The callable behind a `transfer_to_<name>` tool, or undefined when it names no handoff. */
export function resolveHandoff(scope: HandoffScope, toolName: string): ResolvedTool | undefined {
  if (!toolName.startsWith(HANDOFF_PREFIX)) return undefined;
  const target = scope.agent.handoffs.find(
    (handoff) => `${HANDOFF_PREFIX}${handoffName(handoff)}` === toolName,
  );
  if (target === undefined) return undefined;
  return {
    tool: {
      name: toolName,
      parameters: {
        type: 'object',
        properties: { message: { type: 'string' } },
        required: ['message'],
      },
    },
    run: (args, context) =>
      handOff(
        scope,
        handoffName(target),
        typeof target === 'string' ? undefined : target,
        args,
        context,
      ),
  };
}

/** Runs the target agent's own turn (its instance belongs to this agent instance). */
async function handOff(
  scope: HandoffScope,
  name: string,
  given: AgentCore | undefined,
  args: unknown,
  context: ToolContext,
): Promise<string> {
  const chain = [...scope.chain, scope.agent.name];
  const maxDepth = scope.agent.config.execution?.maxHandoffDepth ?? DEFAULT_MAX_HANDOFF_DEPTH;
  if (chain.includes(name)) {
    throw new HandoffFailedError(
      `handing off to ${name} would form a cycle (${[...chain, name].join(' → ')})`,
    );
  }
  if (chain.length > maxDepth)
    throw new HandoffFailedError(`handoff depth ${chain.length} is over the limit of ${maxDepth}`);
  const template = given ?? scope.agents?.(name);
  if (!template)
    throw new HandoffFailedError(
      `no agent named ${JSON.stringify(name)} is registered for handoffs`,
    );
  const target = scope.agent.handoffInstance(template);
  try {
    return await scope.runTurn(target, (args as { message: string }).message, {
      signal: context.signal,
      turnId: `${scope.turnId}/${name}`,
      handoffChain: chain,
    });
  } catch (error) {
    if (isAgentcellError(error, 'AGENTCELL_INTERRUPTED') || context.signal.aborted) throw error;
    throw new HandoffFailedError(`${name} failed: ${(error as Error).message}`, { cause: error });
  }
}
