/**
 * The data part of an agent's configuration: its schema, its types and the one function that
 * validates it. Tools and handoffs are objects, not data; they are checked in `agent.ts`.
 */
import { z } from 'zod';
import { FORBIDDEN_KEYS } from '../codec.js';
import { copyData, freezeData, isCopyableData, isJsonValue } from './data.js';
import { mcpServersSchema } from './mcp-config.js';

/** A JSON Schema object (tool parameters, structured output). */
export type JsonSchema = { readonly [key: string]: unknown };

const positiveInt = z.number().int().positive();
/** Record keys that could reach a prototype are refused: they could not cross the codec either. */
const safeKey = z
  .string()
  .refine(
    (key) => !FORBIDDEN_KEYS.has(key),
    'the keys __proto__, constructor and prototype are not allowed',
  );
const nonNegative = z.number().nonnegative();
// No `.readonly()`: zod would freeze the caller's own input, even when it fails validation.
const names = z.array(z.string().min(1));

const jsonSchema = z.custom<JsonSchema>(
  (value) =>
    typeof value === 'object' && value !== null && !Array.isArray(value) && isJsonValue(value),
  { message: 'expected a JSON Schema object (plain JSON)' },
);

/** Conversation history kept and sent to the model. */
const memorySchema = z.strictObject({
  /** Keep history at all (default true). When false every turn starts from the system prompt. */
  enabled: z.boolean().optional(),
  /** At most this many most recent messages are sent to the model. */
  historyWindow: positiveInt.optional(),
  /** Trim the oldest messages until the estimated token count (chars / 4) fits. */
  maxHistoryTokens: positiveInt.optional(),
  /** Whose memory this is, for stores that scope by user. */
  userId: z.string().optional(),
});

const knowledgeSchema = z.strictObject({
  sources: names.optional(),
  topK: positiveInt.optional(),
  chunkSize: positiveInt.optional(),
  embedder: z.string().optional(),
});

const planningSchema = z.strictObject({
  enabled: z.boolean().optional(),
  llm: z.string().optional(),
  maxSteps: positiveInt.optional(),
  reasoning: z.boolean().optional(),
});

const reflectionSchema = z.strictObject({
  enabled: z.boolean().optional(),
  minIterations: z.number().int().nonnegative().optional(),
  maxIterations: positiveInt.optional(),
  prompt: z.string().optional(),
});

/** Output validators registered by name; a failing reply is sent back with feedback. */
const guardrailsSchema = z.strictObject({
  validators: names.optional(),
  /** Replies matching any of these are refused without calling a validator. */
  blockPatterns: z.array(z.instanceof(RegExp)).optional(),
  maxRetries: z.number().int().nonnegative().optional(),
  onFail: z.enum(['retry', 'raise']).optional(),
});

const webSchema = z.strictObject({
  search: z.boolean().optional(),
  fetch: z.boolean().optional(),
  provider: z.string().optional(),
  maxResults: positiveInt.optional(),
  allowedDomains: names.optional(),
});

const contextSchema = z.strictObject({
  maxTokens: positiveInt.optional(),
  strategy: z.enum(['truncate', 'summarize']).optional(),
  compactAt: z.number().gt(0).lte(1).optional(),
});

const autonomySchema = z.strictObject({
  enabled: z.boolean().optional(),
  level: z.enum(['suggest', 'auto', 'full']).optional(),
  maxSteps: positiveInt.optional(),
});

/** Structured output: the final reply is parsed as JSON and validated against `schema`. */
const outputSchema = z.strictObject({
  format: z.enum(['text', 'json', 'markdown']).optional(),
  schema: jsonSchema.optional(),
  name: z.string().optional(),
  strict: z.boolean().optional(),
});

const executionSchema = z.strictObject({
  /** LLM calls per turn before the turn fails with AGENTCELL_MAX_ITERATIONS (default 10). */
  maxIterations: positiveInt.optional(),
  /** Retries of an LLM call answered 429/5xx or cut off (default 2). */
  maxRetries: z.number().int().nonnegative().optional(),
  /** Backoff before the first retry in ms, doubled each retry, capped at 60 s; each wait is a random share of it (default 250). */
  retryBaseDelayMs: nonNegative.optional(),
  /** Cumulative cost in USD past which a turn stops with AGENTCELL_BUDGET_EXCEEDED. */
  maxBudget: nonNegative.optional(),
  /** Nested handoffs allowed in one turn (default 3). */
  maxHandoffDepth: z.number().int().nonnegative().optional(),
  /** Prices used for cost accounting, in USD per million tokens. */
  pricing: z
    .strictObject({ inputPerMillion: nonNegative, outputPerMillion: nonNegative })
    .optional(),
});

/** `{{name}}` placeholders are filled from the agent's identity and `variables`. */
const templatesSchema = z.strictObject({
  system: z.string().optional(),
  prompt: z.string().optional(),
  response: z.string().optional(),
  variables: z.map(z.string(), z.string()).optional(),
});

const cachingSchema = z.strictObject({
  enabled: z.boolean().optional(),
  ttlMs: positiveInt.optional(),
  maxEntries: positiveInt.optional(),
});

/** Hooks registered by name, called in the order listed. */
const hooksSchema = z.strictObject({
  beforeLlmCall: names.optional(),
  afterLlmCall: names.optional(),
  beforeToolCall: names.optional(),
  afterToolCall: names.optional(),
  onTurnEnd: names.optional(),
});

const skillsSchema = z.strictObject({
  names: names.optional(),
  dirs: names.optional(),
});

/**
 * Tools that must be approved before they run: by the injected approver, or else by a person
 * (the turn pauses until an answer comes through a session, the gateway, the UI stream or chat).
 */
const approvalSchema = z.strictObject({
  tools: z.union([names, z.literal('all')]).optional(),
  /** How long a person has to answer; unset: no limit. */
  timeoutMs: positiveInt.optional(),
  /** Past `timeoutMs`: tell the model the call was denied (default), or fail the turn. */
  onTimeout: z.enum(['deny', 'fail']).optional(),
  /** Argument paths (`card.number`) hidden from whoever is asked: events, listings, chat. */
  redact: names.optional(),
});

const learnSchema = z.strictObject({
  enabled: z.boolean().optional(),
  store: z.string().optional(),
  since: z.date().optional(),
});

const sandboxSchema = z.strictObject({
  enabled: z.boolean().optional(),
  image: z.string().optional(),
  network: z.boolean().optional(),
  memoryMb: positiveInt.optional(),
  timeoutMs: positiveInt.optional(),
  allowedCommands: z.set(z.string()).optional(),
});

const authSchema = z.strictObject({
  /** Extra headers sent with every model request (e.g. a gateway's own key). */
  headers: z.record(safeKey, z.string()).optional(),
  organization: z.string().optional(),
  project: z.string().optional(),
});

const cliBackendSchema = z.strictObject({
  command: z.string().min(1),
  args: names.optional(),
  env: z.record(safeKey, z.string()).optional(),
  timeoutMs: positiveInt.optional(),
});

const metadataSchema = z.custom<Readonly<Record<string, unknown>>>(
  (value) =>
    typeof value === 'object' &&
    value !== null &&
    Object.getPrototypeOf(value) === Object.prototype &&
    isCopyableData(value),
  {
    message:
      'expected a plain object of data (strings, numbers, booleans, bigint, null, undefined, valid Dates, RegExp, URL, Map, Set, arrays, plain objects), without __proto__, constructor or prototype keys',
  },
);

/** The names of the 17 feature configs, in the order of the clone contract. */
export const FEATURE_CONFIG_KEYS = [
  'memory',
  'knowledge',
  'planning',
  'reflection',
  'guardrails',
  'web',
  'context',
  'autonomy',
  'output',
  'execution',
  'templates',
  'caching',
  'hooks',
  'skills',
  'approval',
  'learn',
  'sandbox',
] as const;

/**
 * Schema of the data part of an agent config. Unknown keys are rejected so that a typo
 * (`toolTimout`) fails loudly instead of being dropped.
 */
export const agentSpecSchema = z.strictObject({
  name: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9_-]+$/, 'use letters, digits, "_" or "-"'),
  role: z.string().optional(),
  goal: z.string().optional(),
  backstory: z.string().optional(),
  instructions: z.string().optional(),
  llm: z.string().min(1).optional(),
  baseUrl: z
    .preprocess(
      (value) => (value instanceof URL ? value.href : value),
      z.url({ protocol: /^https?$/ }),
    )
    .optional(),
  apiKey: z.string().optional(),
  auth: authSchema.optional(),
  metadata: metadataSchema.optional(),
  memory: memorySchema.optional(),
  knowledge: knowledgeSchema.optional(),
  planning: planningSchema.optional(),
  reflection: reflectionSchema.optional(),
  guardrails: guardrailsSchema.optional(),
  web: webSchema.optional(),
  context: contextSchema.optional(),
  autonomy: autonomySchema.optional(),
  output: outputSchema.optional(),
  execution: executionSchema.optional(),
  templates: templatesSchema.optional(),
  caching: cachingSchema.optional(),
  hooks: hooksSchema.optional(),
  skills: skillsSchema.optional(),
  approval: approvalSchema.optional(),
  learn: learnSchema.optional(),
  sandbox: sandboxSchema.optional(),
  toolTimeout: positiveInt.optional(),
  parallelToolCalls: z.boolean().optional(),
  cliBackend: cliBackendSchema.optional(),
  /** MCP servers whose tools become the agent's tools (they run on the host). */
  mcpServers: mcpServersSchema.optional(),
});

/** Keys of the agent config that are data (everything but `tools` and `handoffs`). */
export type AgentSpecKey = keyof typeof agentSpecSchema.shape;

/** The data part of an agent config as the user writes it (`baseUrl` may be a URL). */
export type AgentSpecInput = z.input<typeof agentSpecSchema>;

/** The validated, deep-frozen data part of an agent config. */
export type AgentSpec = DeepReadonly<z.output<typeof agentSpecSchema>>;

export type MemoryConfig = z.input<typeof memorySchema>;
export type KnowledgeConfig = z.input<typeof knowledgeSchema>;
export type PlanningConfig = z.input<typeof planningSchema>;
export type ReflectionConfig = z.input<typeof reflectionSchema>;
export type GuardrailsConfig = z.input<typeof guardrailsSchema>;
export type WebConfig = z.input<typeof webSchema>;
export type ContextConfig = z.input<typeof contextSchema>;
export type AutonomyConfig = z.input<typeof autonomySchema>;
export type OutputConfig = z.input<typeof outputSchema>;
export type ExecutionConfig = z.input<typeof executionSchema>;
export type TemplatesConfig = z.input<typeof templatesSchema>;
export type CachingConfig = z.input<typeof cachingSchema>;
export type HooksConfig = z.input<typeof hooksSchema>;
export type SkillsConfig = z.input<typeof skillsSchema>;
export type ApprovalConfig = z.input<typeof approvalSchema>;
export type LearnConfig = z.input<typeof learnSchema>;
export type SandboxConfig = z.input<typeof sandboxSchema>;
export type AuthConfig = z.input<typeof authSchema>;
export type CliBackendConfig = z.input<typeof cliBackendSchema>;

type DeepReadonly<T> = T extends (...args: never[]) => unknown
  ? T
  : T extends Map<infer K, infer V>
    ? ReadonlyMap<K, V>
    : T extends Set<infer V>
      ? ReadonlySet<V>
      : T extends Date | RegExp | URL
        ? T
        : T extends object
          ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
          : T;

/** Fields whose values are never echoed in error messages. */
const SECRET_KEYS: ReadonlySet<string> = new Set(['apiKey', 'auth', 'headers', 'env']);

/** One line per failing path, never echoing a received value. */
export function describeIssues(issues: readonly z.core.$ZodIssue[], root: string): string[] {
  return issues.map((issue) => {
    const path = [root, ...issue.path.map(String)].join('.');
    const secret = issue.path.some((part) => SECRET_KEYS.has(String(part)));
    const message = secret ? `invalid (${issue.code})` : issue.message;
    return `${path}: ${message}`;
  });
}

/**
 * Validates the data part of an agent config. Returns a deep copy, deep-frozen, or the list of
 * failing paths (secrets are never echoed).
 */
export function validateAgentSpec(
  input: unknown,
): { readonly spec: AgentSpec } | { readonly problems: string[] } {
  const result = agentSpecSchema.safeParse(input);
  if (!result.success) return { problems: describeIssues(result.error.issues, 'config') };
  return { spec: freezeData(copyData(result.data)) as AgentSpec };
}
