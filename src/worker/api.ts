/**
 * The one typed contract of the session-worker boundary: what the host may call in a worker
 * (`SessionWorkerApi`), what a worker may call back in the host (`HostApi`), and the messages a
 * worker posts on its event port. Both sides import these types; neither hand-writes commands.
 */

import type { MessagePort } from 'node:worker_threads';
import type { TurnInput, TurnPause } from '../agent/approval.js';
import type { ApprovalRequest, HookContext, ValidatorContext } from '../agent/extensions.js';
import type { TurnEvent, TurnResult } from '../agent/turn-events.js';
import type { ErrorWire } from '../errors.js';
import type { ToolRegistryEntry } from '../tools/registry.js';
import type { ToolContext, ToolDescriptor } from '../tools/tool.js';
import type { ModelCallMessage } from './model-protocol.js';

/**
 * One agent as a thread gets it: its blueprint with every secret value redacted (the host
 * validated it, so the thread decodes without validating), and the opaque reference of its
 * model endpoint on the host's model service.
 */
export interface ThreadAgent {
  /** The blueprint, encoded with the shared codec; apiKey and auth values are redacted. */
  readonly blueprint: string;
  /** The endpoint's reference on the host's model service: the credentials stay there. */
  readonly model: string;
}

/** What a worker needs to build an agent: everything but the session. */
export interface AgentInit extends ThreadAgent {
  /** Where this thread finds each tool: modules it imports, host tools it calls back. */
  readonly tools: readonly ToolRegistryEntry[];
  /** The agents this one may hand off to, by name. */
  readonly handoffs: Readonly<Record<string, ThreadAgent>>;
  /** Hook and validator names the host can run. */
  readonly hooks: readonly string[];
  readonly validators: readonly string[];
}

/** A worker is prepared for an agent before it is given a session (warm pool). */
export interface PrepareInit extends AgentInit {
  /** A port on which the host exposes {@link HostApi} with comlink. */
  readonly host: MessagePort;
  /**
   * The worker posts batches of {@link WorkerMessage}s and model calls here, in order; the host
   * answers the model calls on the same port.
   */
  readonly events: MessagePort;
}

export interface WorkerStats {
  readonly threadId: number;
  readonly heapUsedBytes: number;
  readonly heapLimitBytes: number;
  readonly historyLength: number;
}

export interface SessionWorkerApi {
  /** Builds the agent template: blueprint decoded, tools loaded, host port connected. */
  prepare(init: PrepareInit): Promise<{ readonly threadId: number }>;
  /** Binds the worker to a session: a clone of the template with its journal restored. */
  activate(sessionKey: string, journal: string): void;
  /** Starts a turn (or the rest of a paused one); its events and its end arrive on the event port. */
  startTurn(turnId: string, input: TurnInput): void;
  /** Interrupts the turn if it is still running; false if it is not. */
  interrupt(turnId: string, reason: string): boolean;
  /** Hands a message to the running turn at its next LLM step; false if it cannot take it. */
  steer(turnId: string, steerId: string, message: string): boolean;
  stats(): WorkerStats;
}

/** Calls from a worker back into the host thread. */
export interface HostApi {
  callTool(name: string, args: unknown, context: Omit<ToolContext, 'signal'>): Promise<unknown>;
  runHook(name: string, context: HookContext): Promise<void>;
  validate(
    name: string,
    reply: string,
    context: Omit<ValidatorContext, 'config'>,
  ): Promise<boolean | string>;
  /** The approver's answer; undefined leaves the call to a person. */
  approve(request: ApprovalRequest): Promise<boolean | undefined>;
  /** The MCP tools of the session's agent, listed on the host with the session's credentials. */
  mcpTools(sessionKey: string): Promise<ToolDescriptor[]>;
  /** Calls an MCP tool on the host; the result is the text the model is told. */
  callMcpTool(name: string, args: unknown, context: Omit<ToolContext, 'signal'>): Promise<string>;
}

/** How a turn ended: its result, a pause for a person, or its error in wire form. */
export type TurnOutcome =
  | { readonly ok: true; readonly result: TurnResult; readonly paused?: undefined }
  | { readonly ok: true; readonly paused: TurnPause; readonly result?: undefined }
  | { readonly ok: false; readonly error: ErrorWire };

/** Posted after a turn's last event. */
export type TurnEnd = TurnOutcome & {
  readonly type: 'turn-end';
  readonly turnId: string;
  /** Steered messages the turn took (the others must be run as turns of their own). */
  readonly steered: readonly string[];
  /** Time the worker's event loop was busy during the turn: its CPU time, near enough. */
  readonly cpuMs: number;
};

export type WorkerMessage = TurnEvent | TurnEnd;

/** What a worker posts on its event port: batches of these, in the order they were made. */
export type WorkerOutput = WorkerMessage | ModelCallMessage;
