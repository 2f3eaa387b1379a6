/**
 * fast-check arbitraries over valid agent configs: identity strings, model settings, metadata
 * of every data type the schema allows, and each feature config with random valid fields.
 */
import fc from 'fast-check';
import type { AgentConfig } from '../../src/agent/agent.js';
import type { JsonSchema } from '../../src/agent/config.js';
import type { Tool } from '../../src/tools/tool.js';

/** Keys that no blueprint may carry outside a JSON Schema; targeted tests cover them. */
const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

const text = fc.string({ unit: 'binary', maxLength: 24 });
const key = fc.string({ maxLength: 10 }).filter((k) => !FORBIDDEN.has(k));
const names = fc.array(fc.string({ minLength: 1, maxLength: 10 }), { maxLength: 3 });
const positiveInt = fc.integer({ min: 1, max: 2_000_000_000 });
const nonNegativeInt = fc.integer({ min: 0, max: 1000 });
const nonNegative = fc.double({ min: 0, max: 1e9, noNaN: true, noDefaultInfinity: true });
const validDate = fc.date({ noInvalidDate: true });

const regexp = fc
  .tuple(
    fc.constantFrom('a+', '^x$', '\\bssn\\b', '[0-9]{3}', 'a/b', '(?:x|y)*', '', '\\d+\\.\\d+'),
    fc.subarray(['g', 'i', 'm', 's', 'u', 'y']),
  )
  .map(([source, flags]) => new RegExp(source, flags.join('')));

const url = fc
  .webUrl({ withQueryParameters: true, withFragments: true })
  .map((href) => new URL(href));

/** Data values the metadata schema accepts, nested a little. */
const dataValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    text,
    fc.integer(),
    fc.double(),
    fc.bigInt(),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
    validDate,
    regexp,
    url,
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(key, tie('value'), { maxKeys: 3 }),
    fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 2 }).map((e) => new Map(e)),
    fc.array(tie('value'), { maxLength: 3 }).map((v) => new Set(v)),
  ),
})).value;

/** A JSON Schema-like object: plain JSON (as it travels as JSON text), no `__proto__` key. */
export const jsonSchemaObject: fc.Arbitrary<JsonSchema> = fc
  .dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 })
  .map((value) => JSON.parse(JSON.stringify(value)) as JsonSchema)
  .filter((value) => !JSON.stringify(value).includes('"__proto__"'));

const optional = { requiredKeys: [] as [] };

const features = {
  memory: fc.record(
    {
      enabled: fc.boolean(),
      historyWindow: positiveInt,
      maxHistoryTokens: positiveInt,
      userId: text,
    },
    optional,
  ),
  knowledge: fc.record(
    { sources: names, topK: positiveInt, chunkSize: positiveInt, embedder: text },
    optional,
  ),
  planning: fc.record(
    { enabled: fc.boolean(), llm: text, maxSteps: positiveInt, reasoning: fc.boolean() },
    optional,
  ),
  reflection: fc.record(
    {
      enabled: fc.boolean(),
      minIterations: nonNegativeInt,
      maxIterations: positiveInt,
      prompt: text,
    },
    optional,
  ),
  guardrails: fc.record(
    {
      validators: names,
      blockPatterns: fc.array(regexp, { maxLength: 3 }),
      maxRetries: nonNegativeInt,
      onFail: fc.constantFrom('retry' as const, 'raise' as const),
    },
    optional,
  ),
  web: fc.record(
    {
      search: fc.boolean(),
      fetch: fc.boolean(),
      provider: text,
      maxResults: positiveInt,
      allowedDomains: names,
    },
    optional,
  ),
  context: fc.record(
    {
      maxTokens: positiveInt,
      strategy: fc.constantFrom('truncate' as const, 'summarize' as const),
      compactAt: fc.double({ min: Number.MIN_VALUE, max: 1, noNaN: true }),
    },
    optional,
  ),
  autonomy: fc.record(
    {
      enabled: fc.boolean(),
      level: fc.constantFrom('suggest' as const, 'auto' as const, 'full' as const),
      maxSteps: positiveInt,
    },
    optional,
  ),
  output: fc.record(
    {
      format: fc.constantFrom('text' as const, 'json' as const, 'markdown' as const),
      schema: jsonSchemaObject,
      name: text,
      strict: fc.boolean(),
    },
    optional,
  ),
  execution: fc.record(
    {
      maxIterations: positiveInt,
      maxRetries: nonNegativeInt,
      retryBaseDelayMs: nonNegative,
      maxBudget: nonNegative,
      maxHandoffDepth: nonNegativeInt,
      pricing: fc.record({ inputPerMillion: nonNegative, outputPerMillion: nonNegative }),
    },
    optional,
  ),
  templates: fc.record(
    {
      system: text,
      prompt: text,
      response: text,
      variables: fc.array(fc.tuple(text, text), { maxLength: 3 }).map((e) => new Map(e)),
    },
    optional,
  ),
  caching: fc.record(
    { enabled: fc.boolean(), ttlMs: positiveInt, maxEntries: positiveInt },
    optional,
  ),
  hooks: fc.record(
    {
      beforeLlmCall: names,
      afterLlmCall: names,
      beforeToolCall: names,
      afterToolCall: names,
      onTurnEnd: names,
    },
    optional,
  ),
  skills: fc.record({ names, dirs: names }, optional),
  approval: fc.record(
    { tools: fc.oneof(names, fc.constant('all' as const)), timeoutMs: positiveInt },
    optional,
  ),
  learn: fc.record({ enabled: fc.boolean(), store: text, since: validDate }, optional),
  sandbox: fc.record(
    {
      enabled: fc.boolean(),
      image: text,
      network: fc.boolean(),
      memoryMb: positiveInt,
      timeoutMs: positiveInt,
      allowedCommands: fc.array(text, { maxLength: 4 }).map((v) => new Set(v)),
    },
    optional,
  ),
};

const headerName = fc
  .stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/)
  .filter((k) => !FORBIDDEN.has(k));

/** Arbitrary valid agent configs (tools drawn from `tools`). */
export function agentConfig(tools: readonly Tool[]): fc.Arbitrary<AgentConfig> {
  return fc.record(
    {
      name: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
      role: text,
      goal: text,
      backstory: text,
      instructions: text,
      llm: fc.string({ minLength: 1, maxLength: 20 }),
      baseUrl: fc.oneof(fc.webUrl(), url),
      apiKey: text,
      auth: fc.record(
        {
          headers: fc.dictionary(headerName, text, { maxKeys: 3 }),
          organization: text,
          project: text,
        },
        optional,
      ),
      metadata: fc.dictionary(key, dataValue, { maxKeys: 4, noNullPrototype: true }),
      ...features,
      toolTimeout: positiveInt,
      parallelToolCalls: fc.boolean(),
      cliBackend: fc.record(
        {
          command: fc.string({ minLength: 1, maxLength: 10 }),
          args: names,
          env: fc.dictionary(headerName, text, { maxKeys: 3 }),
          timeoutMs: positiveInt,
        },
        { requiredKeys: ['command'] },
      ),
      tools: fc.subarray([...tools]),
      handoffs: fc.array(fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/), { maxLength: 3 }),
    },
    { requiredKeys: ['name'] },
  );
}
