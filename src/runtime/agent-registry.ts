/**
 * The agents a supervisor knows, by name: each kept as its blueprint, encoded once at
 * registration (every session start reuses the encoding), with its register options.
 */
import { Agent } from '../agent/agent.js';
import {
  type Blueprint,
  decodeBlueprint,
  encodeBlueprint,
  toBlueprint,
} from '../agent/blueprint.js';
import {
  AgentNotRegisteredError,
  BlueprintInvalidError,
  OptionsInvalidError,
  ToolNotFoundError,
} from '../errors.js';
import type { ModelService } from '../llm/model-service.js';
import type { ToolRegistry } from '../tools/registry.js';
import type { ThreadAgent } from '../worker/api.js';
import { parseRegisterOptions, type RegisterOptions } from './options.js';
import { threadAgentOf } from './thread-agent.js';

export interface Registered {
  readonly name: string;
  readonly blueprint: Blueprint;
  /** What a session thread gets: the blueprint without secrets, and its model's reference. */
  readonly thread: ThreadAgent;
  readonly options: ReturnType<typeof parseRegisterOptions>;
}

export class AgentRegistry {
  readonly #tools: ToolRegistry;
  readonly #models: ModelService;
  readonly #agents = new Map<string, Registered>();

  /**
   * `tools`: the supervisor's; an agent's host tools are registered there as it is added.
   * `models`: where each agent's model endpoint (and its credentials) is kept.
   */
  constructor(tools: ToolRegistry, models: ModelService) {
    this.#tools = tools;
    this.#models = models;
  }

  get size(): number {
    return this.#agents.size;
  }

  names(): string[] {
    return [...this.#agents.keys()];
  }

  has(name: string): boolean {
    return this.#agents.has(name);
  }

  get(name: string): Registered | undefined {
    return this.#agents.get(name);
  }

  /**
   * Adds (or replaces) an agent. Throws `AGENTCELL_OPTIONS_INVALID` for a bad name or options,
   * `AGENTCELL_TOOL_NOT_FOUND` for a tool workers cannot load, and the blueprint's own error
   * for a bad blueprint: all before anything is registered.
   */
  add(name: string, agent: Agent | Blueprint, options: RegisterOptions): Registered {
    if (typeof name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
      throw new OptionsInvalidError(
        `agent name ${JSON.stringify(name)}: use 1 to 64 letters, digits, "_" or "-"`,
      );
    }
    const parsed = parseRegisterOptions(options);
    if (agent instanceof Agent) {
      for (const tool of agent.tools) {
        if (this.#tools.has(tool.name)) continue;
        if (tool.kind === 'host') this.#tools.register(tool);
        else {
          throw new ToolNotFoundError(
            `agent ${name} uses tool ${tool.name}, which workers cannot load: register its module with tools.registerModule(${JSON.stringify(tool.name)}, url) or define it with host: true`,
          );
        }
      }
    }
    const blueprint = agent instanceof Agent ? toBlueprint(agent) : agent;
    const encoded = encodeBlueprint(blueprint);
    // Decoded once here so a bad blueprint fails at registration, not in every worker.
    decodeBlueprint(encoded, { registry: this.#tools });
    const registered = {
      name,
      blueprint,
      thread: threadAgentOf(blueprint, this.#models),
      options: parsed,
    };
    this.#agents.set(name, registered);
    return registered;
  }

  /** The agent named `name`; throws `AGENTCELL_AGENT_NOT_REGISTERED` if there is none. */
  named(name: string): Registered {
    const registered = this.#agents.get(name);
    if (!registered) throw new AgentNotRegisteredError(`no agent named ${JSON.stringify(name)}`);
    return registered;
  }

  /** Whether every agent `blueprint` hands off to is registered. */
  handoffsRegistered(blueprint: Blueprint): boolean {
    return blueprint.handoffs.every((name) => this.#agents.has(name));
  }

  /** Throws `AGENTCELL_AGENT_NOT_REGISTERED` unless every agent `registered` hands off to is here. */
  assertHandoffs(registered: Registered): void {
    for (const name of registered.blueprint.handoffs) {
      if (!this.#agents.has(name)) {
        throw new AgentNotRegisteredError(
          `agent ${registered.name} hands off to ${name}, which is not registered`,
        );
      }
    }
  }

  /** What a thread gets of the agents `agentName` hands off to, by name. */
  handoffAgents(agentName: string): Record<string, ThreadAgent> {
    const registered = this.named(agentName);
    const handoffs: Record<string, ThreadAgent> = {};
    for (const name of registered.blueprint.handoffs) {
      const target = this.#agents.get(name);
      if (!target)
        throw new BlueprintInvalidError(
          `agent ${agentName} hands off to ${name}, which is not registered`,
        );
      handoffs[name] = target.thread;
    }
    return handoffs;
  }
}
