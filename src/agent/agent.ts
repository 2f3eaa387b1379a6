import { inspect } from 'node:util';
import { Mutex } from 'async-mutex';
import { ConfigInvalidError } from '../errors.js';
import { modelEndpointOf, sharedModelService } from '../llm/model-service.js';
import type { ToolRegistry } from '../tools/registry.js';
import { resolveTools } from '../tools/resolve.js';
import { isTool, type Tool } from '../tools/tool.js';
import { AgentCore, AgentParts, type Handoff, type ModelSource } from './agent-core.js';
import type { Blueprint } from './blueprint.js';
import { copyByContract } from './clone-contract.js';
import { type AgentSpecInput, validateAgentSpec } from './config.js';
import { streamEvents } from './event-stream.js';
import { handoffName, redact } from './redact.js';
import { runTurn, type TurnOptions } from './turn.js';
import type { TurnEvent, TurnResult } from './turn-events.js';

/** Everything an agent is made of: identity, model, tools, handoffs and feature configs. */
export type { Handoff } from './agent-core.js';

export interface AgentConfig extends AgentSpecInput {
  readonly tools?: readonly Tool[];
  readonly handoffs?: readonly Handoff[];
}

/** Options of one turn: see {@link TurnOptions}. */
export type ChatOptions = Omit<TurnOptions, 'handoffChain' | 'pauseForApproval'>;

export interface FromBlueprintOptions {
  /** Where the blueprint's tools are implemented; required when the blueprint names tools. */
  readonly registry?: ToolRegistry;
}

export interface CloneForChannelOptions {
  /** Handoffs for the clone; by default a channel clone has none. */
  readonly handoffs?: readonly Handoff[];
}

/**
 * An AI agent: a validated, frozen config plus the live state of one conversation (history,
 * usage, caches, locks and an interrupt controller). Define it once; give every channel,
 * tenant or session its own clone.
 *
 * @example
 * const support = new Agent({ name: 'support', instructions: 'Be brief.', llm: 'gpt-4o-mini' });
 * const forSlack = support.cloneForChannel(); // same config, fresh state, no handoffs
 */
export class Agent extends AgentCore {
  readonly #turnLock = new Mutex();

  /** Throws `AGENTCELL_CONFIG_INVALID` listing every failing path. */
  constructor(config: AgentConfig) {
    super(config instanceof AgentParts ? config : validateAgentConfig(config));
  }

  /**
   * Like {@link clone}, safe to give to a channel: handoffs are reset to none (channels must
   * not share handoffs) unless new ones are passed.
   */
  cloneForChannel(options: CloneForChannelOptions = {}): Agent {
    const handoffs = options.handoffs ?? [];
    const problems = checkHandoffs(handoffs);
    if (problems.length > 0) throw invalid(problems);
    return this.cloneWith(Object.freeze([...handoffs]));
  }

  /**
   * Rebuilds an agent from its blueprint, with fresh live state; tool implementations come
   * from `registry` (this thread's), which only a blueprint without tools may leave out.
   * Throws `AGENTCELL_BLUEPRINT_INVALID` for unknown tools, or tools and no registry.
   *
   * @example
   * const agent = Agent.fromBlueprint(decodeBlueprint(text, { registry }), { registry });
   * const plain = Agent.fromBlueprint(decodeBlueprint(text)); // a blueprint without tools
   */
  static fromBlueprint(blueprint: Blueprint, options: FromBlueprintOptions = {}): Agent {
    const tools = Object.freeze(resolveTools(blueprint, options.registry));
    const parts = new AgentParts(
      copyByContract(blueprint.spec),
      tools,
      Object.freeze([...blueprint.handoffs]),
    );
    return new Agent(parts as unknown as AgentConfig);
  }

  /** In-process, an agent's model calls go through the process's model service. */
  protected override defaultModel(): ModelSource {
    return (spec) => {
      const models = sharedModelService();
      return models.client(models.register(modelEndpointOf(spec)));
    };
  }

  /**
   * Sends a message and resolves with the reply. Turns on one agent run one at a time, in call
   * order. Rejects with a typed error (history unchanged) if the turn fails or is interrupted.
   *
   * @example
   * const reply = await agent.chat('What is the weather in Oslo?');
   */
  async chat(message: string, options: ChatOptions = {}): Promise<string> {
    return (await this.run(message, options)).reply;
  }

  /** Like {@link chat}, resolving with the whole turn result (reply, structured output, delta). */
  run(message: string, options: ChatOptions = {}): Promise<TurnResult> {
    // In-process there is nobody to journal a pause: a call left to a person is denied.
    return this.#turnLock.runExclusive(() =>
      runTurn(this, message, { ...options, pauseForApproval: false }),
    );
  }

  /**
   * Sends a message and yields the turn's events as they happen (text deltas, tool calls,
   * usage, final). The iterator throws the turn's typed error if it fails.
   *
   * @example
   * for await (const event of agent.stream('hi')) if (event.type === 'text') process.stdout.write(event.delta);
   */
  stream(message: string, options: ChatOptions = {}): AsyncIterable<TurnEvent> {
    return streamEvents((onEvent) => this.run(message, { ...options, onEvent }));
  }

  /**
   * A redacted view: the apiKey and auth values never reach logs. An own function-valued
   * field on purpose: it makes `structuredClone(agent)` and `postMessage(agent)` throw
   * `DataCloneError` instead of silently copying live state (and the apiKey) as plain data.
   */
  readonly toJSON = (): Record<string, unknown> => ({
    ...redact(this.config),
    tools: this.tools.map((tool) => tool.name),
    handoffs: this.handoffs.map(handoffName),
  });

  [inspect.custom](): string {
    return `Agent ${inspect(this.toJSON(), { depth: 4 })}`;
  }
}

function validateAgentConfig(config: AgentConfig): AgentParts {
  if (typeof config !== 'object' || config === null) {
    throw invalid(['config: expected an object']);
  }
  const { tools = [], handoffs = [], ...rest } = config;
  const problems = [...checkTools(tools), ...checkHandoffs(handoffs)];
  const result = validateAgentSpec(rest);
  if ('problems' in result) problems.push(...result.problems);
  if (problems.length > 0 || !('spec' in result)) throw invalid(problems);
  return new AgentParts(result.spec, Object.freeze([...tools]), Object.freeze([...handoffs]));
}

function checkTools(tools: unknown): string[] {
  if (!Array.isArray(tools)) return ['config.tools: expected an array of tools'];
  const problems: string[] = [];
  const seen = new Set<string>();
  tools.forEach((tool: unknown, index) => {
    if (!isTool(tool)) {
      problems.push(`config.tools.${index}: expected a tool made by defineTool()`);
    } else if (seen.has(tool.name)) {
      problems.push(`config.tools.${index}: duplicate tool name ${JSON.stringify(tool.name)}`);
    } else {
      seen.add(tool.name);
    }
  });
  return problems;
}

function checkHandoffs(handoffs: unknown): string[] {
  if (!Array.isArray(handoffs)) return ['config.handoffs: expected an array of agents or names'];
  return handoffs.flatMap((handoff: unknown, index) =>
    handoff instanceof Agent || (typeof handoff === 'string' && handoff.length > 0)
      ? []
      : [`config.handoffs.${index}: expected an Agent or a registered agent name`],
  );
}

function invalid(problems: readonly string[]): ConfigInvalidError {
  return new ConfigInvalidError(`invalid agent config:\n  ${problems.join('\n  ')}\n`, {
    details: { paths: [...problems] },
  });
}
