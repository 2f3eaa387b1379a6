import { inspect } from 'node:util';
import { Mutex } from 'async-mutex';
import { ConfigInvalidError } from '../errors.js';
import { LlmClient } from '../llm/client.js';
import type { ToolRegistry } from '../tools/registry.js';
import { isTool, type Tool, type ToolInstance } from '../tools/tool.js';
import { type Blueprint, resolveTools } from './blueprint.js';
import { copyByContract } from './clone-contract.js';
import { type AgentSpec, type AgentSpecInput, validateAgentSpec } from './config.js';
import { streamEvents } from './event-stream.js';
import { InterruptController } from './interrupt.js';
import { addUsage, type ChatMessage, type Usage, ZERO_USAGE } from './messages.js';
import { ResponseCache } from './response-cache.js';
import { runTurn, type TurnOptions } from './turn.js';
import type { TurnEvent, TurnResult } from './turn-events.js';

/** Another agent this one may hand a conversation to: the Agent itself, or a registered name. */
export type Handoff = Agent | string;

/** Everything an agent is made of: identity, model, tools, handoffs and feature configs. */
export interface AgentConfig extends AgentSpecInput {
  readonly tools?: readonly Tool[];
  readonly handoffs?: readonly Handoff[];
}

/** Options of one turn: see {@link TurnOptions}. */
export type ChatOptions = Omit<TurnOptions, 'handoffChain'>;

export interface FromBlueprintOptions {
  /** Where the blueprint's tools are implemented; required when the blueprint names tools. */
  readonly registry?: ToolRegistry;
}

export interface CloneForChannelOptions {
  /** Handoffs for the clone; by default a channel clone has none. */
  readonly handoffs?: readonly Handoff[];
}

/** A config already validated: clones skip validation and the deep copy is all they pay. */
class ValidatedConfig {
  readonly spec: AgentSpec;
  readonly tools: readonly Tool[];
  readonly handoffs: readonly Handoff[];
  constructor(spec: AgentSpec, tools: readonly Tool[], handoffs: readonly Handoff[]) {
    this.spec = spec;
    this.tools = tools;
    this.handoffs = handoffs;
  }
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
export class Agent {
  /** The validated data part of the config, deep-frozen. */
  readonly config: AgentSpec;
  /** This agent's own list of tools; the tool objects are shared with clones in-process. */
  readonly tools: readonly Tool[];
  readonly handoffs: readonly Handoff[];
  /** Interrupts this agent's running turn, and only this agent's. */
  readonly interrupts = new InterruptController();
  /** Held while the response cache is read or written. */
  readonly cacheLock = new Mutex();
  /** Held while usage and cost counters are updated. */
  readonly costLock = new Mutex();
  readonly cache: ResponseCache<string>;
  #history: ChatMessage[] = [];
  #usage: Usage = ZERO_USAGE;
  readonly #toolInstances = new Map<string, ToolInstance>();
  readonly #handoffInstances = new Map<string, Agent>();
  readonly #turnLock = new Mutex();
  #llm: LlmClient | undefined;

  /** Throws `AGENTCELL_CONFIG_INVALID` listing every failing path. */
  constructor(config: AgentConfig) {
    const valid = config instanceof ValidatedConfig ? config : validateAgentConfig(config);
    this.config = valid.spec;
    this.tools = valid.tools;
    this.handoffs = valid.handoffs;
    const caching = this.config.caching;
    this.cache = new ResponseCache({
      ...(caching?.ttlMs !== undefined && { ttlMs: caching.ttlMs }),
      ...(caching?.maxEntries !== undefined && { maxEntries: caching.maxEntries }),
    });
  }

  get name(): string {
    return this.config.name;
  }

  /** The conversation so far (not including the system prompt). */
  get history(): readonly ChatMessage[] {
    return this.#history;
  }

  /** Cumulative usage and cost of this agent instance. */
  get usage(): Usage {
    return this.#usage;
  }

  /**
   * A new agent with the same configuration and fresh runtime state: empty history, zero
   * usage, empty caches, new locks and a new interrupt controller. Feature configs are deep
   * copies; handoffs are kept.
   */
  clone(): Agent {
    return this.#cloneWith(this.handoffs);
  }

  /**
   * Like {@link clone}, safe to give to a channel: handoffs are reset to none (channels must
   * not share handoffs) unless new ones are passed.
   */
  cloneForChannel(options: CloneForChannelOptions = {}): Agent {
    const handoffs = options.handoffs ?? [];
    const problems = checkHandoffs(handoffs);
    if (problems.length > 0) throw invalid(problems);
    return this.#cloneWith(Object.freeze([...handoffs]));
  }

  #cloneWith(handoffs: readonly Handoff[]): Agent {
    const valid = new ValidatedConfig(
      copyByContract(this.config),
      Object.freeze([...this.tools]),
      handoffs,
    );
    return new Agent(valid as unknown as AgentConfig);
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
    const valid = new ValidatedConfig(
      copyByContract(blueprint.spec),
      tools,
      Object.freeze([...blueprint.handoffs]),
    );
    return new Agent(valid as unknown as AgentConfig);
  }

  /** The instance of a factory tool that belongs to this agent, made on first use. */
  toolInstance(tool: Tool): ToolInstance {
    let instance = this.#toolInstances.get(tool.name);
    if (!instance) {
      if (!tool.factory) throw new ConfigInvalidError(`tool ${tool.name} has no factory`);
      instance = tool.factory();
      this.#toolInstances.set(tool.name, instance);
    }
    return instance;
  }

  /**
   * Appends a completed turn's messages. The turn loop calls this once the turn succeeded; a
   * failed or interrupted turn appends nothing.
   */
  commitTurn(messages: readonly ChatMessage[]): void {
    this.#history.push(...messages);
  }

  /** Adds what an LLM call cost. Callers hold {@link costLock}. */
  recordUsage(usage: Usage): void {
    this.#usage = addUsage(this.#usage, usage);
  }

  /** This agent's model client, made on first use (one per agent instance). */
  llm(): LlmClient {
    this.#llm ??= new LlmClient({
      baseUrl: this.config.baseUrl,
      apiKey: this.config.apiKey,
      headers: this.config.auth?.headers,
      organization: this.config.auth?.organization,
      project: this.config.auth?.project,
      maxRetries: this.config.execution?.maxRetries,
      retryBaseDelayMs: this.config.execution?.retryBaseDelayMs,
    });
    return this.#llm;
  }

  /** The instance of a handoff target that belongs to this agent instance (a clone, made once). */
  handoffInstance(target: Agent): Agent {
    let instance = this.#handoffInstances.get(target.name);
    if (!instance) {
      instance = target.clone();
      this.#handoffInstances.set(target.name, instance);
    }
    return instance;
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
    return this.#turnLock.runExclusive(() => runTurn(this, message, options));
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

  /** Replaces the conversation with a restored one (journal replay). */
  restore(history: readonly ChatMessage[], usage: Usage): void {
    this.#history = [...history];
    this.#usage = usage;
  }

  /** Starts a new conversation: history, usage and caches are emptied. */
  reset(): void {
    this.#history = [];
    this.#usage = ZERO_USAGE;
    this.cache.clear();
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

/** The name a handoff is known by (for blueprints and tool names). */
export function handoffName(handoff: Handoff): string {
  return typeof handoff === 'string' ? handoff : handoff.name;
}

const REDACTED = '[redacted]';

/** The config with secret values replaced, safe for logs, events and HTTP responses. */
export function redact(spec: AgentSpec): Record<string, unknown> {
  const view: Record<string, unknown> = { ...spec };
  if (spec.apiKey !== undefined) view['apiKey'] = REDACTED;
  if (spec.auth !== undefined) {
    view['auth'] = {
      ...spec.auth,
      ...(spec.auth.organization !== undefined && { organization: REDACTED }),
      ...(spec.auth.project !== undefined && { project: REDACTED }),
      ...(spec.auth.headers && {
        headers: Object.fromEntries(Object.keys(spec.auth.headers).map((k) => [k, REDACTED])),
      }),
    };
  }
  if (spec.cliBackend?.env) {
    view['cliBackend'] = {
      ...spec.cliBackend,
      env: Object.fromEntries(Object.keys(spec.cliBackend.env).map((k) => [k, REDACTED])),
    };
  }
  return view;
}

function validateAgentConfig(config: AgentConfig): ValidatedConfig {
  if (typeof config !== 'object' || config === null) {
    throw invalid(['config: expected an object']);
  }
  const { tools = [], handoffs = [], ...rest } = config;
  const problems = [...checkTools(tools), ...checkHandoffs(handoffs)];
  const result = validateAgentSpec(rest);
  if ('problems' in result) problems.push(...result.problems);
  if (problems.length > 0 || !('spec' in result)) throw invalid(problems);
  return new ValidatedConfig(result.spec, Object.freeze([...tools]), Object.freeze([...handoffs]));
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
