/**
 * agentcell: an isolated clone of your AI agent for every channel, tenant or session.
 *
 * @example
 * import { Agent, defineTool } from 'agentcell';
 * const agent = new Agent({ name: 'support', instructions: 'Be brief.', llm: 'gpt-4o-mini' });
 * const perChannel = agent.cloneForChannel();
 */

export type { ChatOptions } from './agent/agent.js';
export {
  Agent,
  type AgentConfig,
  type CloneForChannelOptions,
  type FromBlueprintOptions,
  type Handoff,
} from './agent/agent.js';
export type { ApprovalDecision, ApprovalMark } from './agent/approval.js';
export {
  BLUEPRINT_VERSION,
  type Blueprint,
  DEFAULT_BLUEPRINT_MAX_BYTES,
  type DecodeBlueprintOptions,
  decodeBlueprint,
  encodeBlueprint,
  toBlueprint,
} from './agent/blueprint.js';
export { CLONE_CONTRACT, type CloneRule } from './agent/clone-contract.js';
export type {
  AgentSpec,
  AgentSpecInput,
  ApprovalConfig,
  AuthConfig,
  AutonomyConfig,
  CachingConfig,
  CliBackendConfig,
  ContextConfig,
  ExecutionConfig,
  GuardrailsConfig,
  HooksConfig,
  JsonSchema,
  KnowledgeConfig,
  LearnConfig,
  MemoryConfig,
  OutputConfig,
  PlanningConfig,
  ReflectionConfig,
  SandboxConfig,
  SkillsConfig,
  TemplatesConfig,
  WebConfig,
} from './agent/config.js';
export { FEATURE_CONFIG_KEYS } from './agent/config.js';
export type {
  ApprovalRequest,
  Approver,
  Hook,
  HookContext,
  HookPoint,
  Validator,
  ValidatorContext,
} from './agent/extensions.js';
export { InterruptController } from './agent/interrupt.js';
export type { JournalRecord } from './agent/journal.js';
export type { McpServerConfig } from './agent/mcp-config.js';
export type { ChatMessage, ToolCall, Usage } from './agent/messages.js';
export { redact, redactArguments } from './agent/redact.js';
export type { TurnDelta, TurnEvent, TurnEventBody, TurnResult } from './agent/turn-events.js';
export type { Clock, ClockTimer } from './clock.js';
export {
  AgentcellError,
  type AgentcellErrorCode,
  type AgentcellErrorOptions,
  AgentNotRegisteredError,
  ApprovalAnsweredError,
  ApprovalDeniedError,
  ApprovalExpiredError,
  ApprovalNotFoundError,
  ApprovalTimeoutError,
  BlueprintInvalidError,
  BodyTooLargeError,
  BudgetExceededError,
  CapacityExceededError,
  ClusterUnavailableError,
  ConfigInvalidError,
  DeliveryLimitError,
  type ErrorDetails,
  type ErrorWire,
  errorCatalogue,
  errorClasses,
  FencedError,
  fromWire,
  GatewayClosingError,
  GuardrailFailedError,
  HandoffFailedError,
  HistoryConflictError,
  HookFailedError,
  IdempotencyConflictError,
  IdempotencyKeyInvalidError,
  InternalError,
  InterruptedError,
  isAgentcellError,
  isErrorWire,
  LlmAuthFailedError,
  LlmBadResponseError,
  LlmRateLimitedError,
  LlmRequestFailedError,
  MailboxFullError,
  MaxIterationsError,
  McpResultTooLargeError,
  McpToolFailedError,
  McpUnavailableError,
  MessageDroppedError,
  MessageInvalidError,
  NotFoundError,
  ObserverLimitError,
  OptionsInvalidError,
  OutputInvalidError,
  ReplyTimeoutError,
  RpcTimeoutError,
  SessionBusyError,
  SessionClosedError,
  SessionCrashedError,
  SessionFailedError,
  SessionKeyInvalidError,
  SessionReentrantError,
  StoreCorruptError,
  SupervisorClosedError,
  SupervisorDestroyedError,
  TenantLimitError,
  ToolFailedError,
  ToolInvalidError,
  ToolNotFoundError,
  ToolTimeoutError,
  TurnTimeoutError,
  toWire,
  UnauthorizedError,
} from './errors.js';
export {
  createGateway,
  type Gateway,
  type GatewayErrorListener,
  type GatewayOptions,
  type NextFunction,
  type TenantOptions,
} from './gateway/gateway.js';
export type { ModelCallRecord } from './llm/model-call-telemetry.js';
export {
  type CreateLoggerOptions,
  createLogger,
  type Logger,
  type LogLevel,
  setLogger,
} from './log.js';
export type { ApprovalAnswer, PendingApprovalView } from './runtime/approval-desk.js';
export type { SupervisorEvents } from './runtime/events.js';
export { SupervisorMetrics, type SupervisorMetricsOptions } from './runtime/metrics.js';
export type {
  BusyPolicy,
  Placement,
  RegisterOptions,
  ResetPolicy,
  SessionBudget,
  SessionOptions,
} from './runtime/options.js';
export type { TurnPoolStats } from './runtime/placement/turn-pool.js';
export type {
  NodeSupervisor,
  RemoteNode,
  RemotePlacement,
  RemoteSendOptions,
} from './runtime/remote-placement.js';
export { Session } from './runtime/session.js';
export type {
  ObservedEvent,
  SessionObserver,
  TurnFailedEvent,
} from './runtime/session-observers.js';
export type {
  LazyHistory,
  Reply,
  SendOptions,
  SessionStats,
  SessionStatus,
  StreamOptions,
} from './runtime/session-types.js';
export { FileStore, type FileStoreOptions } from './runtime/stores/file.js';
export { MemoryStore } from './runtime/stores/memory.js';
export type { JournalStore } from './runtime/stores/store.js';
export {
  Supervisor,
  type SupervisorOptions,
  type SupervisorStats,
  type SupervisorStatus,
} from './runtime/supervisor.js';
export {
  type ConversationIdForm,
  TRACER_NAME,
  type TracingOptions,
} from './runtime/turn-traces.js';
export { defineTool, type ToolDefinition } from './tools/define-tool.js';
export type { McpCredentials } from './tools/mcp/connection.js';
export type {
  McpCredentialsRequest,
  McpCredentialsResolver,
  McpOptions,
} from './tools/mcp/options.js';
export { type HostCall, ToolRegistry, type ToolRegistryEntry } from './tools/registry.js';
export type { Tool, ToolContext, ToolDescriptor, ToolInstance, ToolKind } from './tools/tool.js';
