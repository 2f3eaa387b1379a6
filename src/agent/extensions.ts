/**
 * Behaviour an agent config refers to by name (hooks, guardrail validators) or that the caller
 * injects (approver, handoff targets). Configs carry names, never functions, so they stay
 * plain data that clones and blueprints can copy.
 */

export type HookPoint =
  | 'beforeLlmCall'
  | 'afterLlmCall'
  | 'beforeToolCall'
  | 'afterToolCall'
  | 'onTurnEnd';

export interface HookContext {
  readonly point: HookPoint;
  readonly agentName: string;
  /** The agent's config with secrets redacted: every feature config, including carried-only ones. */
  readonly config: Readonly<Record<string, unknown>>;
  readonly sessionKey: string;
  readonly turnId: string;
  /** LLM call number within the turn (0-based). */
  readonly iteration: number;
  readonly tool?: { readonly callId: string; readonly name: string; readonly arguments: string };
  readonly toolResult?: string;
  readonly reply?: string;
  readonly outcome?: 'ok' | 'error';
  readonly errorCode?: string;
}

/** A hook; throwing fails the turn with `AGENTCELL_HOOK_FAILED`. */
export type Hook = (context: HookContext) => void | Promise<void>;

export interface ValidatorContext {
  readonly agentName: string;
  readonly sessionKey: string;
  readonly turnId: string;
  /** The agent's config with secrets redacted. */
  readonly config: Readonly<Record<string, unknown>>;
}

/**
 * A guardrail on the final reply: `true` passes; a string (or `false`) fails it, and the string
 * is the feedback the model gets for its retry.
 */
export type Validator = (
  reply: string,
  context: ValidatorContext,
) => boolean | string | Promise<boolean | string>;

export interface ApprovalRequest {
  readonly agentName: string;
  readonly sessionKey: string;
  readonly turnId: string;
  readonly tool: string;
  readonly arguments: unknown;
}

/**
 * Decides whether a tool that needs approval may run. `undefined` leaves the call to a person:
 * in a supervisor's session the turn pauses until someone answers; elsewhere it is denied.
 */
export type Approver = (
  request: ApprovalRequest,
) => boolean | undefined | Promise<boolean | undefined>;
