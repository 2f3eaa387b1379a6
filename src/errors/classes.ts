/**
 * The error classes: a base class with a stable code, one class per code, and the lookup from
 * a code back to its class.
 */
import { type AgentcellErrorCode, CATALOGUE, isCode } from './catalogue.js';

/** Safe, plain data attached to an error: never a secret, always structured-cloneable. */
export type ErrorDetails = Readonly<Record<string, unknown>>;

export interface AgentcellErrorOptions {
  readonly details?: ErrorDetails | undefined;
  readonly cause?: unknown;
}

/**
 * Base class of every agentcell error: a stable `code`, a message that says what to do, and
 * optional plain-data `details`.
 *
 * @example
 * try { await session.send('hi'); }
 * catch (error) { if (isAgentcellError(error, 'AGENTCELL_MAILBOX_FULL')) retryLater(); }
 */
export class AgentcellError extends Error {
  readonly code: AgentcellErrorCode;
  readonly details: ErrorDetails | undefined;

  constructor(code: AgentcellErrorCode, message?: string, options: AgentcellErrorOptions = {}) {
    const { hint, name } = CATALOGUE[code];
    super(message ? `${message}. ${hint}` : hint, { cause: options.cause });
    this.name = name;
    this.code = code;
    this.details = options.details;
  }

  /** HTTP status the gateway maps this error to. */
  get status(): number {
    return CATALOGUE[this.code].status;
  }

  /** Whether code and message may be shown to a remote caller. */
  get isPublic(): boolean {
    return CATALOGUE[this.code].public;
  }
}

export type ErrorClass<C extends AgentcellErrorCode> = new (
  message?: string,
  options?: AgentcellErrorOptions,
) => AgentcellError & { readonly code: C };

function errorClass<C extends AgentcellErrorCode>(code: C): ErrorClass<C> {
  return class extends AgentcellError {
    declare readonly code: C;
    constructor(message?: string, options?: AgentcellErrorOptions) {
      super(code, message, options);
    }
  };
}

export class ConfigInvalidError extends errorClass('AGENTCELL_CONFIG_INVALID') {}
export class OptionsInvalidError extends errorClass('AGENTCELL_OPTIONS_INVALID') {}
export class BlueprintInvalidError extends errorClass('AGENTCELL_BLUEPRINT_INVALID') {}
export class ToolNotFoundError extends errorClass('AGENTCELL_TOOL_NOT_FOUND') {}
export class ToolInvalidError extends errorClass('AGENTCELL_TOOL_INVALID') {}
export class ToolFailedError extends errorClass('AGENTCELL_TOOL_FAILED') {}
export class ToolTimeoutError extends errorClass('AGENTCELL_TOOL_TIMEOUT') {}
export class McpUnavailableError extends errorClass('AGENTCELL_MCP_UNAVAILABLE') {}
export class McpToolFailedError extends errorClass('AGENTCELL_MCP_TOOL_FAILED') {}
export class McpResultTooLargeError extends errorClass('AGENTCELL_MCP_RESULT_TOO_LARGE') {}
export class ApprovalDeniedError extends errorClass('AGENTCELL_APPROVAL_DENIED') {}
export class ApprovalNotFoundError extends errorClass('AGENTCELL_APPROVAL_NOT_FOUND') {}
export class ApprovalAnsweredError extends errorClass('AGENTCELL_APPROVAL_ANSWERED') {}
export class ApprovalExpiredError extends errorClass('AGENTCELL_APPROVAL_EXPIRED') {}
export class ApprovalTimeoutError extends errorClass('AGENTCELL_APPROVAL_TIMEOUT') {}
export class LlmRequestFailedError extends errorClass('AGENTCELL_LLM_REQUEST_FAILED') {}
export class LlmRateLimitedError extends errorClass('AGENTCELL_LLM_RATE_LIMITED') {}
export class LlmAuthFailedError extends errorClass('AGENTCELL_LLM_AUTH_FAILED') {}
export class LlmBadResponseError extends errorClass('AGENTCELL_LLM_BAD_RESPONSE') {}
export class MaxIterationsError extends errorClass('AGENTCELL_MAX_ITERATIONS') {}
export class BudgetExceededError extends errorClass('AGENTCELL_BUDGET_EXCEEDED') {}
export class GuardrailFailedError extends errorClass('AGENTCELL_GUARDRAIL_FAILED') {}
export class OutputInvalidError extends errorClass('AGENTCELL_OUTPUT_INVALID') {}
export class HandoffFailedError extends errorClass('AGENTCELL_HANDOFF_FAILED') {}
export class HookFailedError extends errorClass('AGENTCELL_HOOK_FAILED') {}
export class InterruptedError extends errorClass('AGENTCELL_INTERRUPTED') {}
export class TurnTimeoutError extends errorClass('AGENTCELL_TURN_TIMEOUT') {}
export class SessionCrashedError extends errorClass('AGENTCELL_SESSION_CRASHED') {}
export class SessionFailedError extends errorClass('AGENTCELL_SESSION_FAILED') {}
export class SessionBusyError extends errorClass('AGENTCELL_SESSION_BUSY') {}
export class SessionReentrantError extends errorClass('AGENTCELL_SESSION_REENTRANT') {}
export class SessionClosedError extends errorClass('AGENTCELL_SESSION_CLOSED') {}
export class SessionKeyInvalidError extends errorClass('AGENTCELL_SESSION_KEY_INVALID') {}
export class HistoryConflictError extends errorClass('AGENTCELL_HISTORY_CONFLICT') {}
export class MailboxFullError extends errorClass('AGENTCELL_MAILBOX_FULL') {}
export class MessageDroppedError extends errorClass('AGENTCELL_MESSAGE_DROPPED') {}
export class MessageInvalidError extends errorClass('AGENTCELL_MESSAGE_INVALID') {}
export class IdempotencyKeyInvalidError extends errorClass('AGENTCELL_IDEMPOTENCY_KEY_INVALID') {}
export class IdempotencyConflictError extends errorClass('AGENTCELL_IDEMPOTENCY_CONFLICT') {}
export class AgentNotRegisteredError extends errorClass('AGENTCELL_AGENT_NOT_REGISTERED') {}
export class SupervisorClosedError extends errorClass('AGENTCELL_SUPERVISOR_CLOSED') {}
export class SupervisorDestroyedError extends errorClass('AGENTCELL_SUPERVISOR_DESTROYED') {}
export class CapacityExceededError extends errorClass('AGENTCELL_CAPACITY_EXCEEDED') {}
export class RpcTimeoutError extends errorClass('AGENTCELL_RPC_TIMEOUT') {}
export class StoreCorruptError extends errorClass('AGENTCELL_STORE_CORRUPT') {}
export class TenantLimitError extends errorClass('AGENTCELL_TENANT_LIMIT') {}
export class ObserverLimitError extends errorClass('AGENTCELL_OBSERVER_LIMIT') {}
export class BodyTooLargeError extends errorClass('AGENTCELL_BODY_TOO_LARGE') {}
export class GatewayClosingError extends errorClass('AGENTCELL_GATEWAY_CLOSING') {}
export class FencedError extends errorClass('AGENTCELL_FENCED') {}
export class ReplyTimeoutError extends errorClass('AGENTCELL_REPLY_TIMEOUT') {}
export class ClusterUnavailableError extends errorClass('AGENTCELL_CLUSTER_UNAVAILABLE') {}
export class DeliveryLimitError extends errorClass('AGENTCELL_DELIVERY_LIMIT') {}
export class UnauthorizedError extends errorClass('AGENTCELL_UNAUTHORIZED') {}
export class NotFoundError extends errorClass('AGENTCELL_NOT_FOUND') {}
export class InternalError extends errorClass('AGENTCELL_INTERNAL') {}

/** The class for each code; `satisfies` makes the compiler reject a code without a class. */
export const errorClasses = {
  AGENTCELL_CONFIG_INVALID: ConfigInvalidError,
  AGENTCELL_OPTIONS_INVALID: OptionsInvalidError,
  AGENTCELL_BLUEPRINT_INVALID: BlueprintInvalidError,
  AGENTCELL_TOOL_NOT_FOUND: ToolNotFoundError,
  AGENTCELL_TOOL_INVALID: ToolInvalidError,
  AGENTCELL_TOOL_FAILED: ToolFailedError,
  AGENTCELL_TOOL_TIMEOUT: ToolTimeoutError,
  AGENTCELL_MCP_UNAVAILABLE: McpUnavailableError,
  AGENTCELL_MCP_TOOL_FAILED: McpToolFailedError,
  AGENTCELL_MCP_RESULT_TOO_LARGE: McpResultTooLargeError,
  AGENTCELL_APPROVAL_DENIED: ApprovalDeniedError,
  AGENTCELL_APPROVAL_NOT_FOUND: ApprovalNotFoundError,
  AGENTCELL_APPROVAL_ANSWERED: ApprovalAnsweredError,
  AGENTCELL_APPROVAL_EXPIRED: ApprovalExpiredError,
  AGENTCELL_APPROVAL_TIMEOUT: ApprovalTimeoutError,
  AGENTCELL_LLM_REQUEST_FAILED: LlmRequestFailedError,
  AGENTCELL_LLM_RATE_LIMITED: LlmRateLimitedError,
  AGENTCELL_LLM_AUTH_FAILED: LlmAuthFailedError,
  AGENTCELL_LLM_BAD_RESPONSE: LlmBadResponseError,
  AGENTCELL_MAX_ITERATIONS: MaxIterationsError,
  AGENTCELL_BUDGET_EXCEEDED: BudgetExceededError,
  AGENTCELL_GUARDRAIL_FAILED: GuardrailFailedError,
  AGENTCELL_OUTPUT_INVALID: OutputInvalidError,
  AGENTCELL_HANDOFF_FAILED: HandoffFailedError,
  AGENTCELL_HOOK_FAILED: HookFailedError,
  AGENTCELL_INTERRUPTED: InterruptedError,
  AGENTCELL_TURN_TIMEOUT: TurnTimeoutError,
  AGENTCELL_SESSION_CRASHED: SessionCrashedError,
  AGENTCELL_SESSION_FAILED: SessionFailedError,
  AGENTCELL_SESSION_BUSY: SessionBusyError,
  AGENTCELL_SESSION_REENTRANT: SessionReentrantError,
  AGENTCELL_SESSION_CLOSED: SessionClosedError,
  AGENTCELL_SESSION_KEY_INVALID: SessionKeyInvalidError,
  AGENTCELL_HISTORY_CONFLICT: HistoryConflictError,
  AGENTCELL_MAILBOX_FULL: MailboxFullError,
  AGENTCELL_MESSAGE_DROPPED: MessageDroppedError,
  AGENTCELL_MESSAGE_INVALID: MessageInvalidError,
  AGENTCELL_IDEMPOTENCY_KEY_INVALID: IdempotencyKeyInvalidError,
  AGENTCELL_IDEMPOTENCY_CONFLICT: IdempotencyConflictError,
  AGENTCELL_AGENT_NOT_REGISTERED: AgentNotRegisteredError,
  AGENTCELL_SUPERVISOR_CLOSED: SupervisorClosedError,
  AGENTCELL_SUPERVISOR_DESTROYED: SupervisorDestroyedError,
  AGENTCELL_CAPACITY_EXCEEDED: CapacityExceededError,
  AGENTCELL_RPC_TIMEOUT: RpcTimeoutError,
  AGENTCELL_STORE_CORRUPT: StoreCorruptError,
  AGENTCELL_TENANT_LIMIT: TenantLimitError,
  AGENTCELL_OBSERVER_LIMIT: ObserverLimitError,
  AGENTCELL_BODY_TOO_LARGE: BodyTooLargeError,
  AGENTCELL_GATEWAY_CLOSING: GatewayClosingError,
  AGENTCELL_FENCED: FencedError,
  AGENTCELL_REPLY_TIMEOUT: ReplyTimeoutError,
  AGENTCELL_CLUSTER_UNAVAILABLE: ClusterUnavailableError,
  AGENTCELL_DELIVERY_LIMIT: DeliveryLimitError,
  AGENTCELL_UNAUTHORIZED: UnauthorizedError,
  AGENTCELL_NOT_FOUND: NotFoundError,
  AGENTCELL_INTERNAL: InternalError,
} as const satisfies { [C in AgentcellErrorCode]: ErrorClass<C> };

/**
 * Whether `error` is an agentcell error (optionally of one code). Checks the code, not the
 * prototype, so it also holds for errors rebuilt on another thread.
 *
 * @example
 * if (isAgentcellError(error, 'AGENTCELL_INTERRUPTED')) return;
 */
export function isAgentcellError<C extends AgentcellErrorCode>(
  error: unknown,
  code?: C,
): error is AgentcellError & { readonly code: C } {
  if (typeof error !== 'object' || error === null) return false;
  const actual = (error as { code?: unknown }).code;
  return isCode(actual) && (code === undefined || actual === code);
}

/** For exhaustive switches over unions: the compiler proves this is never reached. */
export function unreachable(value: never): never {
  throw new InternalError(`unreachable case ${JSON.stringify(value)}`);
}
