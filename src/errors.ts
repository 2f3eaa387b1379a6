/**
 * Every error agentcell raises, with its stable code, and the plain-data form errors take
 * across a thread boundary.
 *
 * Match on `code`, never on `instanceof`: an `Error` subclass posted between threads arrives
 * as a bare `Error`, so errors cross in {@link ErrorWire} form and are mapped back to their
 * class by code ({@link fromWire}).
 */

interface ErrorSpec {
  /** The class name, also the `name` property of every instance. */
  readonly name: string;
  /** What to do about it; appended to every message of that code. */
  readonly hint: string;
  /** HTTP status the gateway answers with. */
  readonly status: number;
  /**
   * Whether code and message may be shown to a remote caller. Errors that are not public
   * become one generic internal error at the gateway, so no stack or secret can leak.
   */
  readonly public: boolean;
}

const CATALOGUE = {
  AGENTCELL_CONFIG_INVALID: {
    name: 'ConfigInvalidError',
    hint: 'Fix the listed fields of the agent config.',
    status: 400,
    public: true,
  },
  AGENTCELL_OPTIONS_INVALID: {
    name: 'OptionsInvalidError',
    hint: 'Fix the listed options.',
    status: 400,
    public: true,
  },
  AGENTCELL_BLUEPRINT_INVALID: {
    name: 'BlueprintInvalidError',
    hint: 'Produce the blueprint with toBlueprint() and encodeBlueprint() from a valid Agent, and register every tool it names.',
    status: 400,
    public: true,
  },
  AGENTCELL_TOOL_NOT_FOUND: {
    name: 'ToolNotFoundError',
    hint: 'Register the tool by that name with the ToolRegistry (or the supervisor) before using it.',
    status: 400,
    public: true,
  },
  AGENTCELL_TOOL_INVALID: {
    name: 'ToolInvalidError',
    hint: 'Give the tool a name of letters, digits, "_" or "-", a description, a JSON Schema object for its parameters and exactly one implementation (run, module or factory).',
    status: 400,
    public: true,
  },
  AGENTCELL_TOOL_FAILED: {
    name: 'ToolFailedError',
    hint: 'See the cause; the model was told the tool failed.',
    status: 500,
    public: false,
  },
  AGENTCELL_TOOL_TIMEOUT: {
    name: 'ToolTimeoutError',
    hint: 'Make the tool honour its AbortSignal, or raise toolTimeout.',
    status: 504,
    public: true,
  },
  AGENTCELL_APPROVAL_DENIED: {
    name: 'ApprovalDeniedError',
    hint: 'The approver refused this tool call; change approval.tools or the approver.',
    status: 403,
    public: true,
  },
  AGENTCELL_LLM_REQUEST_FAILED: {
    name: 'LlmRequestFailedError',
    hint: 'Check baseUrl and that the model server is up; raise execution.maxRetries for flaky servers.',
    status: 502,
    public: true,
  },
  AGENTCELL_LLM_RATE_LIMITED: {
    name: 'LlmRateLimitedError',
    hint: 'The model server kept answering 429; slow down, or raise execution.maxRetries.',
    status: 429,
    public: true,
  },
  AGENTCELL_LLM_AUTH_FAILED: {
    name: 'LlmAuthFailedError',
    hint: 'Check the apiKey and auth headers of the agent.',
    status: 502,
    public: true,
  },
  AGENTCELL_LLM_BAD_RESPONSE: {
    name: 'LlmBadResponseError',
    hint: 'The model server answered with something that is not a Chat Completions response; check baseUrl points at an OpenAI-compatible endpoint.',
    status: 502,
    public: true,
  },
  AGENTCELL_MAX_ITERATIONS: {
    name: 'MaxIterationsError',
    hint: 'The agent did not reach a final answer; raise execution.maxIterations or simplify the task.',
    status: 422,
    public: true,
  },
  AGENTCELL_BUDGET_EXCEEDED: {
    name: 'BudgetExceededError',
    hint: 'Raise the budget (execution.maxBudget or the session budget) or start a new conversation.',
    status: 402,
    public: true,
  },
  AGENTCELL_GUARDRAIL_FAILED: {
    name: 'GuardrailFailedError',
    hint: 'The reply failed its guardrails after every retry; relax the validator or raise guardrails.maxRetries.',
    status: 422,
    public: true,
  },
  AGENTCELL_OUTPUT_INVALID: {
    name: 'OutputInvalidError',
    hint: "The model's reply does not match output.schema; adjust the schema or the instructions.",
    status: 422,
    public: true,
  },
  AGENTCELL_HANDOFF_FAILED: {
    name: 'HandoffFailedError',
    hint: 'Check that the handoff target is registered and that handoffs do not form a cycle deeper than execution.maxHandoffDepth.',
    status: 422,
    public: true,
  },
  AGENTCELL_HOOK_FAILED: {
    name: 'HookFailedError',
    hint: 'A hook threw; fix the hook or remove it from hooks.',
    status: 500,
    public: false,
  },
  AGENTCELL_INTERRUPTED: {
    name: 'InterruptedError',
    hint: 'The turn was interrupted and appended nothing; send the message again if it is still wanted.',
    status: 409,
    public: true,
  },
  AGENTCELL_TURN_TIMEOUT: {
    name: 'TurnTimeoutError',
    hint: 'The turn ran past its timeout and was stopped; raise turnTimeoutMs or make the tools honour their AbortSignal.',
    status: 504,
    public: true,
  },
  AGENTCELL_SESSION_CRASHED: {
    name: 'SessionCrashedError',
    hint: 'The session worker died during this turn; the session restarts from its journal, so send the message again.',
    status: 500,
    public: true,
  },
  AGENTCELL_SESSION_FAILED: {
    name: 'SessionFailedError',
    hint: 'The session crashed more often than its restart policy allows; fix the cause, then close and reopen the session.',
    status: 500,
    public: true,
  },
  AGENTCELL_SESSION_BUSY: {
    name: 'SessionBusyError',
    hint: "The session is in a turn and its busy policy is 'reject'; retry after the reply, or use another busy policy.",
    status: 429,
    public: true,
  },
  AGENTCELL_SESSION_REENTRANT: {
    name: 'SessionReentrantError',
    hint: 'An agent called or handed off to its own busy session, which would deadlock; address another session.',
    status: 409,
    public: true,
  },
  AGENTCELL_SESSION_CLOSED: {
    name: 'SessionClosedError',
    hint: 'The session was closed; open it again with supervisor.session(key).',
    status: 410,
    public: true,
  },
  AGENTCELL_SESSION_KEY_INVALID: {
    name: 'SessionKeyInvalidError',
    hint: 'Use 1 to 256 printable characters without "/" or "\\" or "..".',
    status: 400,
    public: true,
  },
  AGENTCELL_MAILBOX_FULL: {
    name: 'MailboxFullError',
    hint: 'Retry after the session answers, or raise maxQueuedPerSession.',
    status: 429,
    public: true,
  },
  AGENTCELL_MESSAGE_DROPPED: {
    name: 'MessageDroppedError',
    hint: "The mailbox was full and its overflow policy 'dropOldest' made room for a newer message; send it again if it is still wanted.",
    status: 429,
    public: true,
  },
  AGENTCELL_MESSAGE_INVALID: {
    name: 'MessageInvalidError',
    hint: 'Send a non-empty string message within the size limit.',
    status: 400,
    public: true,
  },
  AGENTCELL_AGENT_NOT_REGISTERED: {
    name: 'AgentNotRegisteredError',
    hint: 'Register the agent with supervisor.register(name, agent) first.',
    status: 404,
    public: true,
  },
  AGENTCELL_SUPERVISOR_CLOSED: {
    name: 'SupervisorClosedError',
    hint: 'The supervisor was closed; create a new one.',
    status: 503,
    public: true,
  },
  AGENTCELL_SUPERVISOR_DESTROYED: {
    name: 'SupervisorDestroyedError',
    hint: 'The supervisor was destroyed; create a new one.',
    status: 503,
    public: true,
  },
  AGENTCELL_CAPACITY_EXCEEDED: {
    name: 'CapacityExceededError',
    hint: 'No room for another live session; lower traffic, raise maxLiveSessions within the machine ceiling, or raise vm.max_map_count.',
    status: 503,
    public: true,
  },
  AGENTCELL_RPC_TIMEOUT: {
    name: 'RpcTimeoutError',
    hint: 'A worker did not answer in time; it is being restarted.',
    status: 504,
    public: true,
  },
  AGENTCELL_STORE_CORRUPT: {
    name: 'StoreCorruptError',
    hint: 'A stored record failed its checksum or did not parse; it was skipped and the rest kept. Restore the file from a backup if that record matters.',
    status: 500,
    public: false,
  },
  AGENTCELL_TENANT_LIMIT: {
    name: 'TenantLimitError',
    hint: 'The tenant is at one of its limits (maxConcurrentTurns, maxSessions); retry after a reply, or close a session.',
    status: 429,
    public: true,
  },
  AGENTCELL_BODY_TOO_LARGE: {
    name: 'BodyTooLargeError',
    hint: 'Send a smaller request body, or raise the gateway maxBodyBytes.',
    status: 413,
    public: true,
  },
  AGENTCELL_GATEWAY_CLOSING: {
    name: 'GatewayClosingError',
    hint: 'The gateway is shutting down and takes no new messages; retry against another instance.',
    status: 503,
    public: true,
  },
  AGENTCELL_FENCED: {
    name: 'FencedError',
    hint: 'Another node took this shard over; the write was refused so a stale owner cannot corrupt the journal. The new owner answers the message.',
    status: 503,
    public: false,
  },
  AGENTCELL_REPLY_TIMEOUT: {
    name: 'ReplyTimeoutError',
    hint: 'No node answered in time; the message is stored and may still run. Check the cluster, or raise replyTimeoutMs.',
    status: 504,
    public: true,
  },
  AGENTCELL_CLUSTER_UNAVAILABLE: {
    name: 'ClusterUnavailableError',
    hint: "The cluster's Redis did not answer, so the message was not accepted (sending it again is safe); check the redis URL and that Redis runs.",
    status: 503,
    public: true,
  },
  AGENTCELL_DELIVERY_LIMIT: {
    name: 'DeliveryLimitError',
    hint: 'Nodes stopped while running this message as many times as maxDeliveries allows, so it is not run again; look for what kills a node in its turn (a tool, the model reply), then send it again.',
    status: 500,
    public: true,
  },
  AGENTCELL_UNAUTHORIZED: {
    name: 'UnauthorizedError',
    hint: 'Send a valid bearer token in the Authorization header.',
    status: 401,
    public: true,
  },
  AGENTCELL_NOT_FOUND: {
    name: 'NotFoundError',
    hint: 'Check the path and the session key.',
    status: 404,
    public: true,
  },
  AGENTCELL_INTERNAL: {
    name: 'InternalError',
    hint: 'This is a bug or an unexpected failure; the details are in the server log.',
    status: 500,
    public: false,
  },
} as const satisfies Record<string, ErrorSpec>;

/** Every stable error code agentcell uses. */
export type AgentcellErrorCode = keyof typeof CATALOGUE;

/** Every code with its class name, hint, HTTP status and public flag (for docs and tests). */
export const errorCatalogue: Readonly<Record<AgentcellErrorCode, ErrorSpec>> = CATALOGUE;

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

type ErrorClass<C extends AgentcellErrorCode> = new (
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
export class ApprovalDeniedError extends errorClass('AGENTCELL_APPROVAL_DENIED') {}
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
export class MailboxFullError extends errorClass('AGENTCELL_MAILBOX_FULL') {}
export class MessageDroppedError extends errorClass('AGENTCELL_MESSAGE_DROPPED') {}
export class MessageInvalidError extends errorClass('AGENTCELL_MESSAGE_INVALID') {}
export class AgentNotRegisteredError extends errorClass('AGENTCELL_AGENT_NOT_REGISTERED') {}
export class SupervisorClosedError extends errorClass('AGENTCELL_SUPERVISOR_CLOSED') {}
export class SupervisorDestroyedError extends errorClass('AGENTCELL_SUPERVISOR_DESTROYED') {}
export class CapacityExceededError extends errorClass('AGENTCELL_CAPACITY_EXCEEDED') {}
export class RpcTimeoutError extends errorClass('AGENTCELL_RPC_TIMEOUT') {}
export class StoreCorruptError extends errorClass('AGENTCELL_STORE_CORRUPT') {}
export class TenantLimitError extends errorClass('AGENTCELL_TENANT_LIMIT') {}
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
  AGENTCELL_APPROVAL_DENIED: ApprovalDeniedError,
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
  AGENTCELL_MAILBOX_FULL: MailboxFullError,
  AGENTCELL_MESSAGE_DROPPED: MessageDroppedError,
  AGENTCELL_MESSAGE_INVALID: MessageInvalidError,
  AGENTCELL_AGENT_NOT_REGISTERED: AgentNotRegisteredError,
  AGENTCELL_SUPERVISOR_CLOSED: SupervisorClosedError,
  AGENTCELL_SUPERVISOR_DESTROYED: SupervisorDestroyedError,
  AGENTCELL_CAPACITY_EXCEEDED: CapacityExceededError,
  AGENTCELL_RPC_TIMEOUT: RpcTimeoutError,
  AGENTCELL_STORE_CORRUPT: StoreCorruptError,
  AGENTCELL_TENANT_LIMIT: TenantLimitError,
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

function isCode(value: unknown): value is AgentcellErrorCode {
  return typeof value === 'string' && Object.hasOwn(CATALOGUE, value);
}

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

/** The plain-data form an error takes across a thread boundary. */
export interface ErrorWire {
  readonly agentcellError: 1;
  readonly code: AgentcellErrorCode;
  readonly name: string;
  readonly message: string;
  readonly details?: ErrorDetails | undefined;
  readonly stack?: string | undefined;
}

/**
 * Encodes any thrown value for the trip to another thread. Values that are not agentcell
 * errors become `AGENTCELL_INTERNAL`, keeping their message for the server log.
 */
export function toWire(error: unknown): ErrorWire {
  if (isAgentcellError(error)) {
    return {
      agentcellError: 1,
      code: error.code,
      name: error.name,
      message: error.message,
      details: plainDetails(error.details),
      stack: error.stack,
    };
  }
  const message = error instanceof Error ? error.message : String(error);
  return {
    agentcellError: 1,
    code: 'AGENTCELL_INTERNAL',
    name: CATALOGUE.AGENTCELL_INTERNAL.name,
    message: `${message}. ${CATALOGUE.AGENTCELL_INTERNAL.hint}`,
    stack: error instanceof Error ? error.stack : undefined,
  };
}

/** Whether a value has the shape of an {@link ErrorWire}. */
export function isErrorWire(value: unknown): value is ErrorWire {
  if (typeof value !== 'object' || value === null) return false;
  const wire = value as Partial<ErrorWire>;
  return wire.agentcellError === 1 && isCode(wire.code) && typeof wire.message === 'string';
}

/** Rebuilds the error of the right class from its wire form (the message is kept as sent). */
export function fromWire(wire: ErrorWire): AgentcellError {
  const ErrorOfCode: ErrorClass<AgentcellErrorCode> = errorClasses[wire.code];
  const error = new ErrorOfCode(undefined, { details: wire.details });
  error.message = wire.message;
  if (wire.stack !== undefined) error.stack = wire.stack;
  return error;
}

/** A copy of `error` (same class, code and message) with `extra` merged into its details. */
export function withDetails<E extends AgentcellError>(error: E, extra: ErrorDetails): E {
  const wire = toWire(error);
  return fromWire({ ...wire, details: { ...wire.details, ...extra } }) as E;
}

/** Details must survive structured clone; anything that would not is dropped, not thrown. */
function plainDetails(details: ErrorDetails | undefined): ErrorDetails | undefined {
  if (details === undefined) return undefined;
  try {
    return structuredClone(details);
  } catch {
    return undefined;
  }
}

/** For exhaustive switches over unions: the compiler proves this is never reached. */
export function unreachable(value: never): never {
  throw new InternalError(`unreachable case ${JSON.stringify(value)}`);
}
