/** The options of the mock LLM: one schema with its defaults, checked when it starts. */
import { z } from 'zod';
import { describeIssues } from '../agent/config.js';
import { OptionsInvalidError } from '../errors.js';
import type { MockLatency } from './mock-llm-pacing.js';
import type { MockRule } from './mock-llm-script.js';

export interface MockLlmOptions {
  /** Defaults to 127.0.0.1. */
  readonly host?: string;
  /** Defaults to 0 (a free port). */
  readonly port?: number;
  /** When set, requests without `Authorization: Bearer <apiKey>` get a 401. */
  readonly apiKey?: string;
  /** Listed by `GET /v1/models`; defaults to `['mock-model']`. Any model is accepted. */
  readonly models?: readonly string[];
  readonly rules?: readonly MockRule[];
  readonly latency?: MockLatency;
}

/** What an option left out means. */
export const MOCK_LLM_DEFAULTS = {
  host: '127.0.0.1',
  port: 0,
  models: ['mock-model'],
} as const;

const latencySchema = z.strictObject({
  firstTokenMs: z.number().nonnegative().optional(),
  tokensPerSecond: z.number().nonnegative().optional(),
});

const ruleSchema = z.custom<MockRule>(
  (value) =>
    typeof value === 'object' &&
    value !== null &&
    Array.isArray((value as { steps?: unknown }).steps),
  'expected a rule with a steps array',
);

const mockLlmOptionsSchema = z.strictObject({
  host: z.string().min(1).default(MOCK_LLM_DEFAULTS.host),
  port: z.number().int().min(0).max(65_535).default(MOCK_LLM_DEFAULTS.port),
  apiKey: z.string().optional(),
  models: z.array(z.string().min(1)).readonly().default(MOCK_LLM_DEFAULTS.models),
  rules: z.array(ruleSchema).readonly().default([]),
  latency: latencySchema.default({}),
});

export type ResolvedMockLlmOptions = z.output<typeof mockLlmOptionsSchema>;

function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const lines = describeIssues(result.error.issues, what);
    throw new OptionsInvalidError(`invalid mock LLM ${what}:\n  ${lines.join('\n  ')}\n`, {
      details: { paths: lines },
    });
  }
  return result.data;
}

/** The options checked and completed; throws `AGENTCELL_OPTIONS_INVALID` listing every bad one. */
export function parseMockLlmOptions(options: MockLlmOptions | undefined): ResolvedMockLlmOptions {
  return parse(mockLlmOptionsSchema, options ?? {}, 'options');
}

/** A latency checked; throws `AGENTCELL_OPTIONS_INVALID` when it is not one. */
export function parseMockLatency(latency: MockLatency): MockLatency {
  return parse(latencySchema, latency, 'latency');
}
