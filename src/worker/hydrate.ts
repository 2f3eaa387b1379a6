/**
 * Turning what a host sends into a runnable agent, shared by session workers (dedicated) and
 * turn tasks (pooled): tools from this thread's registry (modules imported here, host tools
 * called back), the agent template from its trusted blueprint, handoff targets, model clients
 * that ask the host's model service, and proxies for the hooks, validators and approver that
 * live in the host. Nothing here validates: the host did, before it sent anything.
 */
import { performance } from 'node:perf_hooks';
import type { MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { AgentCore, AgentParts } from '../agent/agent-core.js';
import type { TurnInput } from '../agent/approval.js';
import { decodeTrustedBlueprint } from '../agent/blueprint-wire.js';
import type { Hook, Validator } from '../agent/extensions.js';
import { runTurn } from '../agent/turn.js';
import type { TurnEvent } from '../agent/turn-events.js';
import { endpointOf } from '../codec.js';
import { toWire } from '../errors.js';
import type { ModelClient } from '../llm/model.js';
import { type HostCall, ToolRegistry } from '../tools/registry.js';
import { resolveTools } from '../tools/resolve.js';
import type { AgentInit, HostApi, ThreadAgent, TurnEnd, TurnOutcome } from './api.js';
import { mcpToolsOf } from './mcp-tools.js';

export interface Hydrated {
  /** Built once; every session gets a clone of it (fresh state, fresh locks). */
  readonly template: AgentCore;
  readonly handoffs: ReadonlyMap<string, AgentCore>;
  readonly hooks: Readonly<Record<string, Hook>>;
  readonly validators: Readonly<Record<string, Validator>>;
  readonly host: Comlink.Remote<HostApi>;
}

/** The agent template and its handoff targets, built once per blueprint in a thread. */
export interface BuiltAgents {
  readonly template: AgentCore;
  readonly handoffs: ReadonlyMap<string, AgentCore>;
}

/**
 * Loads the tools (host tools call back through `hostCall`) and decodes the blueprints; each
 * agent's model calls go through `modelFor(ref)`.
 */
export async function buildAgents(
  init: AgentInit,
  hostCall: HostCall,
  modelFor: (ref: string) => ModelClient,
): Promise<BuiltAgents> {
  const registry = await ToolRegistry.fromEntries(init.tools, hostCall);
  const build = (agent: ThreadAgent) => {
    const blueprint = decodeTrustedBlueprint(agent.blueprint);
    return new AgentCore(
      new AgentParts(
        blueprint.spec,
        Object.freeze(resolveTools(blueprint, registry)),
        Object.freeze([...blueprint.handoffs]),
        modelFor(agent.model),
      ),
    );
  };
  return {
    template: build(init),
    handoffs: new Map(Object.entries(init.handoffs).map(([name, agent]) => [name, build(agent)])),
  };
}

/** Binds built agents to a host: proxies for the hooks and validators that live there. */
export function bindHost(
  init: AgentInit,
  agents: BuiltAgents,
  host: Comlink.Remote<HostApi>,
): Hydrated {
  const hooks: Record<string, Hook> = Object.fromEntries(
    init.hooks.map((name) => [name, (context) => host.runHook(name, context)] as const),
  );
  const validators: Record<string, Validator> = Object.fromEntries(
    init.validators.map(
      (name) =>
        [
          name,
          (reply, { config: _config, ...context }) => host.validate(name, reply, context),
        ] as const,
    ),
  );
  return { ...agents, hooks, validators, host };
}

/** Both steps for a thread that serves one host for good (a session worker). */
export async function hydrate(
  init: AgentInit,
  hostPort: MessagePort,
  modelFor: (ref: string) => ModelClient,
): Promise<Hydrated> {
  const host = Comlink.wrap<HostApi>(endpointOf(hostPort));
  return bindHost(
    init,
    await buildAgents(init, (name, args, context) => host.callTool(name, args, context), modelFor),
    host,
  );
}

export interface SessionTurn {
  readonly sessionKey: string;
  readonly turnId: string;
  readonly message: TurnInput;
  /** Messages steered into the turn, taken at each LLM step; returns their ids and texts. */
  readonly steering?: () => readonly { readonly id: string; readonly message: string }[];
}

/**
 * Runs one turn of a session's agent and reports how it ended: every event goes to `post`
 * first, then the `turn-end` message. Never rejects.
 */
export async function runSessionTurn(
  hydrated: Hydrated,
  agent: AgentCore,
  turn: SessionTurn,
  post: (message: TurnEvent | TurnEnd) => void,
): Promise<TurnEnd> {
  const elu = performance.eventLoopUtilization();
  const taken: string[] = [];
  let outcome: TurnOutcome;
  try {
    const result = await runTurn(agent, turn.message, {
      turnId: turn.turnId,
      sessionKey: turn.sessionKey,
      onEvent: post,
      hooks: hydrated.hooks,
      validators: hydrated.validators,
      approver: (request) => hydrated.host.approve(request),
      pauseForApproval: true,
      agents: (name) => hydrated.handoffs.get(name),
      mcpTools: () => mcpToolsOf(hydrated.host, turn.sessionKey),
      steering: () => {
        const steered = turn.steering?.() ?? [];
        taken.push(...steered.map((steer) => steer.id));
        return steered.map((steer) => steer.message);
      },
    });
    outcome = 'kind' in result ? { ok: true, paused: result } : { ok: true, result };
  } catch (error) {
    outcome = { ok: false, error: toWire(error) };
  }
  const end: TurnEnd = {
    ...outcome,
    type: 'turn-end',
    turnId: turn.turnId,
    steered: taken,
    cpuMs: performance.eventLoopUtilization(elu).active,
  };
  post(end);
  return end;
}
