/**
 * Gateway options: one schema with its defaults, validated once when the gateway is created.
 * Bearer tokens are secrets: a problem with a tenant is reported by the tenant's position and
 * id, never by its token.
 */
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { OptionsInvalidError } from '../errors.js';
import {
  DEFAULT_CLIENT_HISTORY_SOURCES,
  DEFAULT_SESSION_SOURCES,
  SESSION_SOURCE,
  type SessionSource,
} from './openai/session-source.js';

export const TENANT_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** Visible ASCII without spaces, as a bearer token must be; long enough not to be guessed. */
export const TOKEN = /^[\x21-\x7e]{16,512}$/;
const BASE_PATH = /^(\/[A-Za-z0-9._~-]+)*$/;
const AGENT_NAME = /^[A-Za-z0-9_-]{1,64}$/;

const positiveInt = z.number().int().positive();

const tenantSchema = z.strictObject({
  /**
   * The tenant's id. Its sessions live under the supervisor keys `${id}:${key}`, so two
   * tenants never share a session. Several tokens may name one tenant (token rotation) if
   * they give it the same settings.
   */
  id: z.string().regex(TENANT_ID, 'use 1 to 64 letters, digits, "_" or "-"'),
  /** Agents this tenant may talk to. @default every registered agent */
  agents: z.array(z.string().regex(AGENT_NAME, 'expected a registered agent name')).optional(),
  /** Message requests of this tenant in progress at once; past it, 429. @default unlimited */
  maxConcurrentTurns: positiveInt.optional(),
  /** Open sessions this tenant may have; a message opening one more gets 429. @default unlimited */
  maxSessions: positiveInt.optional(),
});

/** One tenant: who a bearer token speaks for, and its limits. */
export type TenantOptions = z.input<typeof tenantSchema>;

const sessionSources = z
  .array(
    z
      .string()
      .regex(
        SESSION_SOURCE,
        'expected "header:<lowercase header name>" or "body:session_id|prompt_cache_key|user"',
      )
      .transform((source) => source as SessionSource),
  )
  .max(32);

const chatCompletionsSchema = z.strictObject({
  /**
   * Where `POST /v1/chat/completions` finds the session key, tried in order; the first present
   * wins (and is named in the `X-Agentcell-Session-Source` response header). A request with
   * none runs as a one-turn session that is not kept.
   * @default ['header:x-agentcell-session', 'header:x-session-id', 'body:session_id',
   *   'header:x-openwebui-chat-id', 'header:x-conversation-id', 'body:prompt_cache_key', 'body:user']
   * @example ['header:x-openwebui-chat-id', 'body:user'] // an Open WebUI-only deployment
   */
  sessionKeySources: sessionSources.default([...DEFAULT_SESSION_SOURCES]),
  /**
   * Sources whose key makes the request's messages the history of the turn (`client`); a key
   * from any other source keeps the history in the session's journal (`server`). A request
   * overrides it with `X-Agentcell-History: server|client`.
   * @default ['body:user'] (one user's chats share that key: the transcript tells them apart)
   * @example ['body:user', 'header:x-openwebui-chat-id'] // Open WebUI edits and regenerates
   */
  clientHistorySources: sessionSources.default([...DEFAULT_CLIENT_HISTORY_SOURCES]),
});

const responsesSchema = z.strictObject({
  /**
   * Completed responses kept in memory for `GET /v1/responses/:id` and `previous_response_id`,
   * the oldest dropped first; a restart forgets them all (their sessions stay). 0 keeps none.
   * @default 10000
   */
  maxStored: z.number().int().nonnegative().default(10_000),
});

const observersSchema = z.strictObject({
  /**
   * Streams of `GET /v1/sessions/:key/events` one session may have open at once; one more gets
   * 429 `AGENTCELL_OBSERVER_LIMIT`.
   * @default 16
   */
  maxPerSession: positiveInt.default(16),
  /**
   * Bytes an observer's connection may hold unsent (past what the kernel took) before the
   * observer is dropped: its stream ends with `event: end` (`reason: "slow"`), so a client that
   * stops reading never holds the turn or the other observers up, nor fills memory.
   * @default 1048576 (1 MiB)
   */
  maxBufferedBytes: positiveInt.default(1024 * 1024),
});

/** Called with every failure that answered 500, for the server log (responses never show it). */
export type GatewayErrorListener = (
  error: unknown,
  context: { readonly method: string; readonly path: string; readonly tenant?: string },
) => void;

const gatewayOptionsSchema = z.strictObject({
  /**
   * Bearer token → tenant. Every route but `/healthz` (and `/metrics`, see `metricsToken`)
   * needs `Authorization: Bearer <token>`. Tokens are 16 to 512 visible ASCII characters.
   */
  tenants: z.record(z.string(), tenantSchema),
  /** The agent a message runs on when its body names none and the session is new. */
  defaultAgent: z.string().regex(AGENT_NAME, 'expected a registered agent name').optional(),
  /** Largest request body, in bytes; a larger one gets 413 before it is read in full. @default 65536 */
  maxBodyBytes: positiveInt.default(64 * 1024),
  /** Path prefix of every route, e.g. `/agents` (no trailing slash). @default '' */
  basePath: z
    .string()
    .regex(BASE_PATH, 'expected "" or a path like "/agents" without a trailing slash')
    .default(''),
  /**
   * Interrupt a streamed (SSE) turn when its client disconnects. By default the turn runs to
   * the end and is journaled, so the reply is in the session's history.
   * @default false
   */
  interruptOnDisconnect: z.boolean().default(false),
  /** `Retry-After` (seconds) sent with every 429 and 503. @default 1 */
  retryAfterSeconds: z.number().int().nonnegative().default(1),
  /** Serve `GET /metrics` (Prometheus text). `metrics()` works either way. @default true */
  serveMetrics: z.boolean().default(true),
  /**
   * A prom-client registry to put the metrics in (yours, beside your own metrics), instead of
   * the gateway's own. Node's process metrics are then yours to collect
   * (`collectDefaultMetrics({ register })`). @default a registry of the gateway's own
   */
  metricsRegistry: z
    .custom<Registry>(
      (value) =>
        typeof value === 'object' &&
        value !== null &&
        typeof (value as { registerMetric?: unknown }).registerMetric === 'function',
      'expected a prom-client Registry',
    )
    .optional(),
  /** When set, `GET /metrics` needs `Authorization: Bearer <metricsToken>`. */
  metricsToken: z.string().regex(TOKEN, 'expected 16 to 512 visible ASCII characters').optional(),
  /** Interval of SSE keep-alive comments, in ms; 0 sends none. @default 15000 */
  heartbeatMs: z.number().int().nonnegative().default(15_000),
  /** The OpenAI-compatible `POST /v1/chat/completions`: where sessions and their history come from. */
  chatCompletions: chatCompletionsSchema.prefault({}),
  /** The Open Responses `POST /v1/responses`: what the gateway remembers of its answers. */
  responses: responsesSchema.prefault({}),
  /** Observers of a session's turns (`GET /v1/sessions/:key/events`): how many, how far behind. */
  observers: observersSchema.prefault({}),
  /** Receives the failures hidden behind a generic 500. @default logs them (`log('gateway').error`) */
  onError: z
    .custom<GatewayErrorListener>((value) => typeof value === 'function', 'expected a function')
    .optional(),
});

export type GatewayOptions = z.input<typeof gatewayOptionsSchema>;
export type ResolvedGatewayOptions = z.output<typeof gatewayOptionsSchema>;

/** Validates gateway options; throws `AGENTCELL_OPTIONS_INVALID` listing every problem. */
export function parseGatewayOptions(options: unknown): ResolvedGatewayOptions {
  const result = gatewayOptionsSchema.safeParse(options ?? {});
  const tokens =
    typeof options === 'object' && options !== null && 'tenants' in options
      ? Object.keys((options as { tenants?: object }).tenants ?? {})
      : [];
  const problems = result.success
    ? tenantProblems(result.data)
    : result.error.issues.map((issue) => describe(issue.path, issue.message, tokens));
  if (problems.length > 0) {
    throw new OptionsInvalidError(`invalid gateway options:\n  ${problems.join('\n  ')}\n`, {
      details: { paths: problems },
    });
  }
  return result.data as ResolvedGatewayOptions;
}

/** Checks across tenants that a per-field schema cannot express. */
function tenantProblems(options: ResolvedGatewayOptions): string[] {
  const problems: string[] = [];
  const entries = Object.entries(options.tenants);
  if (entries.length === 0) problems.push('options.tenants: configure at least one tenant');
  const settingsById = new Map<string, string>();
  entries.forEach(([token, tenant], index) => {
    if (!TOKEN.test(token)) {
      problems.push(
        `options.tenants[${index}] (tenant ${tenant.id}): the token must be 16 to 512 visible ASCII characters`,
      );
    }
    const settings = JSON.stringify([
      tenant.agents ?? null,
      tenant.maxConcurrentTurns ?? null,
      tenant.maxSessions ?? null,
    ]);
    const seen = settingsById.get(tenant.id);
    if (seen !== undefined && seen !== settings) {
      problems.push(
        `options.tenants[${index}] (tenant ${tenant.id}): tokens of one tenant must give it the same agents and limits`,
      );
    }
    settingsById.set(tenant.id, settings);
  });
  if (options.metricsToken !== undefined && Object.hasOwn(options.tenants, options.metricsToken)) {
    problems.push('options.metricsToken: must differ from every tenant token');
  }
  return problems;
}

/** One line per problem; a token in the path is replaced by its position (tokens are secrets). */
function describe(path: readonly PropertyKey[], message: string, tokens: string[]): string {
  const parts = path.map(String);
  if (parts[0] === 'tenants' && parts.length > 1) {
    const token = parts[1] ?? '';
    parts.splice(0, 2, `tenants[${tokens.indexOf(token)}]`);
  }
  return `${['options', ...parts].join('.')}: ${message}`;
}
