/** What a caller may give one turn besides its message: hooks, validators, approver, limits. */

import type { Tool } from '../tools/tool.js';
import type { AgentCore } from './agent-core.js';
import type { Approver, Hook, Validator } from './extensions.js';
import type { TurnEvent } from './turn-events.js';

export interface TurnOptions {
  /** Aborts the turn from outside (in addition to the agent's interrupt controller). */
  readonly signal?: AbortSignal | undefined;
  /** Tags events and tool contexts. @default the agent's name */
  readonly sessionKey?: string | undefined;
  readonly turnId?: string | undefined;
  readonly onEvent?: ((event: TurnEvent) => void) | undefined;
  /** Implementations of the hook names in the `hooks` config. */
  readonly hooks?: Readonly<Record<string, Hook>> | undefined;
  /** Implementations of the validator names in the `guardrails` config. */
  readonly validators?: Readonly<Record<string, Validator>> | undefined;
  /**
   * Asked before a tool listed in the `approval` config runs; none, or an `undefined` answer,
   * means denied, or a pause when `pauseForApproval` is set.
   */
  readonly approver?: Approver | undefined;
  /**
   * Calls left to a person stop the turn: it returns a {@link TurnPause} instead of a reply,
   * and {@link TurnResume} runs the rest once every call is decided. Only a host that
   * journals the pause and collects the answers sets it (a supervisor's session).
   */
  readonly pauseForApproval?: boolean | undefined;
  /** Resolves handoffs given by name. */
  readonly agents?: ((name: string) => AgentCore | undefined) | undefined;
  /** Messages that arrived during the turn, taken at each LLM step (busy policy `steer`). */
  readonly steering?: (() => readonly string[]) | undefined;
  /**
   * The agent's MCP tools for this turn, asked once at its start when the config names MCP
   * servers: they live on the host, which lists them with the session's own credentials.
   */
  readonly mcpTools?: (() => Promise<readonly Tool[]>) | undefined;
  /** @internal agents already in this chain of handoffs, to stop cycles. */
  readonly handoffChain?: readonly string[] | undefined;
}
