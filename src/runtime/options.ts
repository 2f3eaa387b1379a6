/** Supervisor options: one schema with its defaults, validated once at construction. */
import type { TracerProvider } from '@opentelemetry/api';
import { z } from 'zod';
import { describeIssues } from '../agent/config.js';
import type { Approver, Hook, Validator } from '../agent/extensions.js';
import type { Clock } from '../clock.js';
import { systemClock } from '../clock.js';
import { OptionsInvalidError } from '../errors.js';
import { mcpOptionsSchema } from '../tools/mcp/options.js';
import { ToolRegistry } from '../tools/registry.js';
import type { JournalStore } from './stores/store.js';

const isFunction = (value: unknown) => typeof value === 'function';

export const BUSY_POLICIES = ['enqueue', 'reject', 'interrupt', 'steer', 'coalesce'] as const;
export type BusyPolicy = (typeof BUSY_POLICIES)[number];

const positiveInt = z.number().int().positive();

/** Heap limits of a worker thread (best effort: see Node's `resourceLimits`). */
export const resourceLimitsSchema = z.strictObject({
  maxOldGenerationSizeMb: positiveInt.optional(),
  maxYoungGenerationSizeMb: positiveInt.optional(),
  codeRangeSizeMb: positiveInt.optional(),
  stackSizeMb: positiveInt.optional(),
});

export const budgetSchema = z.strictObject({
  /** Tokens a session may spend in all; past it, turns fail with AGENTCELL_BUDGET_EXCEEDED. */
  maxTokens: positiveInt.optional(),
  maxCostUsd: z.number().nonnegative().optional(),
  /** CPU a single turn may use in its worker; past it the worker is terminated. */
  maxTurnCpuMs: positiveInt.optional(),
});
export type SessionBudget = z.infer<typeof budgetSchema>;

export const resetPolicySchema = z.strictObject({
  /** Start a new conversation when the last activity is at least this old. */
  idleMs: positiveInt.optional(),
  /** Start a new conversation once a day, at this hour (UTC, 0–23). */
  dailyAtHour: z.number().int().min(0).max(23).optional(),
});
export type ResetPolicy = z.infer<typeof resetPolicySchema>;

export const PLACEMENTS = ['dedicated', 'pooled'] as const;
export type Placement = (typeof PLACEMENTS)[number];

const supervisorOptionsSchema = z.strictObject({
  /** Tools workers may use: modules they import, host tools they call back. */
  tools: z.instanceof(ToolRegistry).default(() => new ToolRegistry()),
  /** Hooks named in agents' `hooks` configs; they run in the supervisor's thread. */
  hooks: z.record(z.string(), z.custom<Hook>(isFunction)).default({}),
  /** Guardrail validators named in agents' `guardrails` configs; run in the supervisor's thread. */
  validators: z.record(z.string(), z.custom<Validator>(isFunction)).default({}),
  /**
   * MCP connections (they live here, on the host): the per-session credentials resolver and
   * the bounds of the connection pool.
   */
  mcp: mcpOptionsSchema,
  /**
   * Decides tool calls that need approval, first: `true` or `false` is final; `undefined` (or
   * no approver) leaves the call to a person, and the turn pauses until one answers.
   */
  approver: z.custom<Approver>(isFunction).optional(),
  store: z
    .custom<JournalStore>(
      (value) =>
        typeof value === 'object' && value !== null && 'append' in value && 'read' in value,
      'expected a JournalStore',
    )
    .optional(),
  clock: z
    .custom<Clock>(
      (value) => typeof value === 'object' && value !== null && 'now' in value,
      'expected a Clock',
    )
    .default(systemClock),
  /** Turns running at once across all sessions. @default 64 */
  maxConcurrentTurns: positiveInt.default(64),
  /** Messages that may wait in one session's mailbox. @default 256 */
  maxQueuedPerSession: z.number().int().nonnegative().default(256),
  overflow: z.enum(['rejectNewest', 'dropOldest']).default('rejectNewest'),
  busyPolicy: z.enum(BUSY_POLICIES).default('enqueue'),
  /** A turn running longer is interrupted, then its worker terminated. @default 120000 */
  turnTimeoutMs: positiveInt.default(120_000),
  /** Time an interrupted turn gets to end before its worker is terminated. @default 2000 */
  interruptGraceMs: positiveInt.default(2_000),
  /** Deadline of a call into a worker. @default 10000 */
  rpcTimeoutMs: positiveInt.default(10_000),
  /** Deadline for a worker to start and restore its session. @default 30000 */
  startTimeoutMs: positiveInt.default(30_000),
  /**
   * How long a message's idempotency key answers repeats of it with its first outcome, per
   * session (see SendOptions.idempotencyKey). @default 86400000 (24 hours)
   */
  idempotencyWindowMs: positiveInt.default(24 * 60 * 60 * 1000),
  /** Largest message accepted, in UTF-8 bytes. @default 262144 */
  maxMessageBytes: positiveInt.default(256 * 1024),
  restart: z
    .strictObject({
      maxRestarts: z.number().int().nonnegative().default(5),
      windowMs: positiveInt.default(60_000),
      backoffMs: z.number().int().nonnegative().default(100),
      maxBackoffMs: z.number().int().nonnegative().default(5_000),
    })
    .prefault({}),
  /** Heap limits of each session worker (best effort: see Node's `resourceLimits`). */
  resourceLimits: resourceLimitsSchema.optional(),
  budget: budgetSchema.optional(),
  /**
   * Release a session's worker after this long without activity (a message accepted or a
   * turn ended); its next message activates it again from the journal. 0 keeps workers.
   * @default 300000
   */
  idleTimeoutMs: z.number().int().nonnegative().default(300_000),
  /**
   * Most sessions with a live worker; least recently used idle ones are passivated past it.
   * Capped by the machine's own ceiling (memory maps and memory), whatever is asked.
   * @default the machine ceiling
   */
  maxLiveSessions: positiveInt.optional(),
  /** How long an activation may wait for a live slot before AGENTCELL_CAPACITY_EXCEEDED. @default 30000 */
  activationTimeoutMs: positiveInt.default(30_000),
  /**
   * Prepared workers kept per registered agent (dedicated placement); 0 turns the warm pool
   * off. While sessions arrive faster than that covers, the pool grows by their arrival rate,
   * up to `warmPoolMax`, and shrinks back once they fade. @default 1
   */
  warmPoolSize: z.number().int().nonnegative().default(1),
  /** Most prepared workers an agent's arrival rate may raise its warm pool to. @default 8 */
  warmPoolMax: z.number().int().nonnegative().default(8),
  /** Where turns run: a worker per session (`dedicated`) or a shared pool (`pooled`). */
  placement: z.enum(PLACEMENTS).default('dedicated'),
  /** Threads of the pool for pooled placement. @default the number of cores */
  poolThreads: positiveInt.optional(),
  /** Turns one pool thread runs at once (they mostly wait on the model). @default 32 */
  poolTurnsPerThread: positiveInt.optional(),
  /**
   * OpenTelemetry traces: one per turn (`invoke_agent`, `chat`, `execute_tool` spans). Without
   * an SDK registered (or a `tracerProvider` given) every span is a no-op.
   */
  tracing: z
    .strictObject({
      /** @default the global tracer provider */
      tracerProvider: z
        .custom<TracerProvider>(
          (value) =>
            typeof value === 'object' &&
            value !== null &&
            typeof (value as { getTracer?: unknown }).getTracer === 'function',
          'expected an OpenTelemetry TracerProvider',
        )
        .optional(),
      /** `sha256`: spans carry a hash of the session key, not the key. @default 'key' */
      conversationId: z.enum(['key', 'sha256']).default('key'),
      /** Message text, tool arguments and results on spans (personal data). @default false */
      recordContent: z.boolean().default(false),
    })
    .prefault({}),
  /** Inputs of the live-worker ceiling (see CapacityOptions); mostly for tests and tuning. */
  capacity: z
    .strictObject({
      mapsPerWorker: positiveInt.optional(),
      reserveMaps: z.number().int().nonnegative().optional(),
      bytesPerWorker: positiveInt.optional(),
      reserveBytes: z.number().int().nonnegative().optional(),
      maxMapCount: positiveInt.optional(),
    })
    .optional(),
});

/**
 * Every Supervisor option but `cluster`, which takes a placement rather than data (see
 * `SupervisorOptions`): what a cluster node builds its own Supervisor with.
 */
export type LocalSupervisorOptions = z.input<typeof supervisorOptionsSchema>;
export type ResolvedSupervisorOptions = z.output<typeof supervisorOptionsSchema>;

/** `value` checked against `schema`, or one OPTIONS_INVALID listing every failing path. */
export function parseWith<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what: string,
  root: string,
): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const lines = describeIssues(result.error.issues, root);
    throw new OptionsInvalidError(`invalid ${what}:\n  ${lines.join('\n  ')}\n`, {
      details: { paths: lines },
    });
  }
  return result.data;
}

export function parseSupervisorOptions(options: unknown): ResolvedSupervisorOptions {
  return parseWith(supervisorOptionsSchema, options ?? {}, 'supervisor options', 'options');
}

/** A session budget, checked (a budget may come from another process: a cluster message). */
export function parseBudget(budget: unknown): SessionBudget {
  return parseWith(budgetSchema, budget, 'budget', 'budget');
}

export const sessionOptionsSchema = z.strictObject({
  /** The registered agent this session clones. */
  agent: z.string().min(1),
  busyPolicy: z.enum(BUSY_POLICIES).optional(),
  budget: budgetSchema.optional(),
});
export type SessionOptions = z.input<typeof sessionOptionsSchema>;

export function parseSessionOptions(options: unknown): z.output<typeof sessionOptionsSchema> {
  return parseWith(sessionOptionsSchema, options, 'session options', 'options');
}

export const registerOptionsSchema = z.strictObject({
  busyPolicy: z.enum(BUSY_POLICIES).optional(),
  reset: resetPolicySchema.optional(),
  warmPoolSize: z.number().int().nonnegative().optional(),
  placement: z.enum(PLACEMENTS).optional(),
});
export type RegisterOptions = z.input<typeof registerOptionsSchema>;

export function parseRegisterOptions(options: unknown): z.output<typeof registerOptionsSchema> {
  return parseWith(registerOptionsSchema, options ?? {}, 'register options', 'options');
}
