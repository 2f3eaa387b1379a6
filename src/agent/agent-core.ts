/**
 * The live part of an agent, built from a config that is already trusted: history, usage,
 * caches, locks, the interrupt controller, per-instance tool and handoff instances, and the
 * model client its turns call. `Agent` (the public class) adds validation and the in-process
 * conveniences on top; a session thread builds this directly from a blueprint its host
 * validated, so the thread never loads the validators, the SDK or a secret.
 */
import { Mutex } from 'async-mutex';
import { ConfigInvalidError } from '../errors.js';
import type { ModelClient } from '../llm/model.js';
import type { Tool, ToolInstance } from '../tools/tool.js';
import { copyByContract } from './clone-contract.js';
import type { AgentSpec } from './config.js';
import { InterruptController } from './interrupt.js';
import { addUsage, type ChatMessage, type Usage, ZERO_USAGE } from './messages.js';
import { ResponseCache } from './response-cache.js';

/** Another agent this one may hand a conversation to: the agent itself, or a registered name. */
export type Handoff = AgentCore | string;

/** Where an agent's model calls go: a client, or a function that makes one for its config. */
export type ModelSource = ModelClient | ((spec: AgentSpec) => ModelClient);

/** A config already validated (or trusted): building an agent from it skips validation. */
export class AgentParts {
  readonly spec: AgentSpec;
  readonly tools: readonly Tool[];
  readonly handoffs: readonly Handoff[];
  readonly model: ModelSource | undefined;
  constructor(
    spec: AgentSpec,
    tools: readonly Tool[],
    handoffs: readonly Handoff[],
    model?: ModelSource,
  ) {
    this.spec = spec;
    this.tools = tools;
    this.handoffs = handoffs;
    this.model = model;
  }
}

export class AgentCore {
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
  readonly #handoffInstances = new Map<string, AgentCore>();
  readonly #modelSource: ModelSource | undefined;
  #model: ModelClient | undefined;

  constructor(parts: AgentParts) {
    this.config = parts.spec;
    this.tools = parts.tools;
    this.handoffs = parts.handoffs;
    this.#modelSource = parts.model;
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
   * A new agent of the same class with the same configuration and fresh runtime state: empty
   * history, zero usage, empty caches, new locks and a new interrupt controller. Feature
   * configs are deep copies; handoffs are kept.
   */
  clone(): this {
    return this.cloneWith(this.handoffs);
  }

  /** A clone with other handoffs: what `cloneForChannel()` builds on. */
  protected cloneWith(handoffs: readonly Handoff[]): this {
    const Class = this.constructor as new (parts: AgentParts) => this;
    return new Class(
      new AgentParts(
        copyByContract(this.config),
        Object.freeze([...this.tools]),
        handoffs,
        this.#modelSource,
      ),
    );
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

  /** The instance of a handoff target that belongs to this agent instance (a clone, made once). */
  handoffInstance(target: AgentCore): AgentCore {
    let instance = this.#handoffInstances.get(target.name);
    if (!instance) {
      instance = target.clone();
      this.#handoffInstances.set(target.name, instance);
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

  /** The client this agent's model calls go through, made on first use. */
  llm(): ModelClient {
    if (!this.#model) {
      const source = this.#modelSource ?? this.defaultModel();
      this.#model = typeof source === 'function' ? source(this.config) : source;
    }
    return this.#model;
  }

  /** Where model calls go when nothing was given: `Agent` answers with the host's service. */
  protected defaultModel(): ModelSource {
    throw new ConfigInvalidError(
      `agent ${JSON.stringify(this.name)} has no model client; build it with one`,
    );
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
}
