/**
 * The table of every error code: its class name, the hint appended to its messages, the HTTP
 * status the gateway answers with, and whether a remote caller may see it.
 */

export interface ErrorSpec {
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

export const CATALOGUE = {
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
  AGENTCELL_MCP_UNAVAILABLE: {
    name: 'McpUnavailableError',
    hint: "Check the MCP server's command or URL and that it is running; the next call connects again.",
    status: 502,
    public: true,
  },
  AGENTCELL_MCP_TOOL_FAILED: {
    name: 'McpToolFailedError',
    hint: 'The MCP server answered the call with an error or a result that is not valid MCP; see the message.',
    status: 502,
    public: true,
  },
  AGENTCELL_MCP_RESULT_TOO_LARGE: {
    name: 'McpResultTooLargeError',
    hint: "Ask the tool for less (a narrower query, a page), or raise the supervisor's mcp.maxResultBytes.",
    status: 502,
    public: true,
  },
  AGENTCELL_APPROVAL_DENIED: {
    name: 'ApprovalDeniedError',
    hint: 'The approver refused this tool call; change approval.tools or the approver.',
    status: 403,
    public: true,
  },
  AGENTCELL_APPROVAL_NOT_FOUND: {
    name: 'ApprovalNotFoundError',
    hint: 'No approval with this id waits in this session; list the pending ones with session.approvals() or GET /v1/sessions/:key.',
    status: 404,
    public: true,
  },
  AGENTCELL_APPROVAL_ANSWERED: {
    name: 'ApprovalAnsweredError',
    hint: 'Each approval is answered once; the first answer stands.',
    status: 409,
    public: true,
  },
  AGENTCELL_APPROVAL_EXPIRED: {
    name: 'ApprovalExpiredError',
    hint: 'The approval timed out (approval.timeoutMs) before this answer came; the turn went on without it.',
    status: 410,
    public: true,
  },
  AGENTCELL_APPROVAL_TIMEOUT: {
    name: 'ApprovalTimeoutError',
    hint: 'Nobody answered within approval.timeoutMs; raise it, or set approval.onTimeout to "deny" to let the model go on.',
    status: 504,
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
  AGENTCELL_HISTORY_CONFLICT: {
    name: 'HistoryConflictError',
    hint: "The session keeps this conversation and the request tells it differently; send only the new user message, or send X-Agentcell-History: client to make the request's messages the history.",
    status: 409,
    public: true,
  },
  AGENTCELL_IDEMPOTENCY_KEY_INVALID: {
    name: 'IdempotencyKeyInvalidError',
    hint: 'Send an idempotency key of 1 to 255 printable ASCII characters (a UUID is a good one), or none.',
    status: 400,
    public: true,
  },
  AGENTCELL_IDEMPOTENCY_CONFLICT: {
    name: 'IdempotencyConflictError',
    hint: 'This idempotency key was used with a different message to this session within the idempotency window; send a new key for a new message, or repeat the first message exactly to get its outcome.',
    status: 422,
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
  AGENTCELL_OBSERVER_LIMIT: {
    name: 'ObserverLimitError',
    hint: 'The session has as many observers as observers.maxPerSession allows; close another observer of it, or raise observers.maxPerSession.',
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
    hint: "The cluster's Redis did not answer, so the message may not have been accepted; send it again with the same idempotency key (then it runs at most once), and check the redis URL and that Redis runs.",
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

/** Whether `value` is one of the codes of the table (own keys only: never `__proto__` or `toString`). */
export function isCode(value: unknown): value is AgentcellErrorCode {
  return typeof value === 'string' && Object.hasOwn(CATALOGUE, value);
}
