/**
 * Shared fixtures for the agent tests: a config that sets every key of the schema, the
 * secrets it carries, tools of every kind, helpers to compare object graphs, and for the
 * agent loop against the mock LLM (see test/support/harness.ts) agents with a sentinel
 * apiKey, an event recorder and readers for what the mock received.
 */
import type { Agent, AgentConfig } from '../../src/agent/agent.js';
import type { ChatMessage, Usage } from '../../src/agent/messages.js';
import type { TurnEvent } from '../../src/agent/turn-events.js';
import type { MockLlm } from '../../src/testing/index.js';
import type { ChatCompletionMessage } from '../../src/testing/mock-llm-script.js';
import { defineTool } from '../../src/tools/define-tool.js';
import type { Tool, ToolContext } from '../../src/tools/tool.js';
import { agentFor, messagesOf } from '../support/harness.js';

export const SECRETS = {
  apiKey: 'sk-test-APIKEY-0123456789',
  header: 'gw-test-HEADER-9876543210',
  cliEnv: 'cli-test-ENV-5555555555',
  mcpEnv: 'mcp-test-ENV-7777777777',
  mcpHeader: 'mcp-test-HEADER-3333333333',
} as const;

/** A tool context for calling tool implementations directly. */
export function toolContext(signal: AbortSignal = new AbortController().signal): ToolContext {
  return {
    signal,
    sessionKey: 'test:session',
    turnId: 'turn-1',
    agentName: 'support',
    toolCallId: 'call-1',
  };
}

export const lookupTool: Tool = defineTool({
  name: 'lookup',
  description: 'Looks a word up',
  parameters: {
    type: 'object',
    properties: { word: { type: 'string' } },
    required: ['word'],
  },
  run: (args: Record<string, unknown>) => ({ found: args['word'] }),
});

/** A factory tool: each agent instance must get its own counter. */
export const counterTool: Tool = defineTool({
  name: 'counter',
  description: 'Counts its calls',
  factory: () => {
    let calls = 0;
    return { run: () => ++calls };
  },
});

export const hostTool: Tool = defineTool({
  name: 'host_clock',
  description: 'Runs in the host thread',
  host: true,
  run: () => 'noon',
});

/** A fresh config that sets every key of the agent config schema, all 17 feature configs included. */
export function fullConfig(): AgentConfig {
  return {
    name: 'support',
    role: 'Support engineer',
    goal: 'Resolve the customer issue',
    backstory: 'Ten years of answering tickets.',
    instructions: 'Answer briefly and cite the docs.',
    llm: 'gpt-4o-mini',
    baseUrl: 'https://llm.example.test/v1',
    apiKey: SECRETS.apiKey,
    auth: { headers: { 'X-Gateway-Key': SECRETS.header }, organization: 'org-1', project: 'p-1' },
    metadata: {
      team: 'cx',
      createdAt: new Date('2024-05-01T10:00:00.000Z'),
      quota: 10n,
      nested: { tags: ['a', 'b'], lookup: new Map([['k', { v: 1 }]]) },
    },
    memory: { enabled: true, historyWindow: 20, maxHistoryTokens: 4000, userId: 'user-1' },
    knowledge: { sources: ['docs', 'faq'], topK: 4, chunkSize: 512, embedder: 'embed-small' },
    planning: { enabled: true, llm: 'gpt-4o', maxSteps: 5, reasoning: true },
    reflection: { enabled: true, minIterations: 0, maxIterations: 2, prompt: 'Check the answer.' },
    guardrails: {
      validators: ['no-pii'],
      blockPatterns: [/password/i, /\bssn\b/],
      maxRetries: 2,
      onFail: 'retry',
    },
    web: {
      search: true,
      fetch: false,
      provider: 'duckduckgo',
      maxResults: 5,
      allowedDomains: ['example.com'],
    },
    context: { maxTokens: 8000, strategy: 'summarize', compactAt: 0.8 },
    autonomy: { enabled: true, level: 'auto', maxSteps: 3 },
    output: {
      format: 'json',
      schema: {
        type: 'object',
        properties: { answer: { type: 'string' }, sources: { type: 'array' } },
        required: ['answer'],
      },
      name: 'reply',
      strict: true,
    },
    execution: {
      maxIterations: 8,
      maxRetries: 1,
      retryBaseDelayMs: 100,
      maxBudget: 1.5,
      maxHandoffDepth: 2,
      pricing: { inputPerMillion: 0.15, outputPerMillion: 0.6 },
    },
    templates: {
      system: 'You are {{name}} of {{company}}.',
      prompt: '{{input}}',
      response: '{{output}}',
      variables: new Map([['company', 'Acme']]),
    },
    caching: { enabled: true, ttlMs: 60_000, maxEntries: 50 },
    hooks: {
      beforeLlmCall: ['log'],
      afterLlmCall: ['log'],
      beforeToolCall: ['audit'],
      afterToolCall: ['audit'],
      onTurnEnd: ['metrics'],
    },
    skills: { names: ['sql'], dirs: ['./skills'] },
    approval: { tools: ['refund'], timeoutMs: 30_000 },
    learn: { enabled: true, store: 'memory', since: new Date('2024-01-01T00:00:00.000Z') },
    sandbox: {
      enabled: true,
      image: 'node:20',
      network: false,
      memoryMb: 256,
      timeoutMs: 10_000,
      allowedCommands: new Set(['ls', 'cat']),
    },
    toolTimeout: 30_000,
    parallelToolCalls: false,
    cliBackend: {
      command: 'claude',
      args: ['-p'],
      env: { TOKEN: SECRETS.cliEnv },
      timeoutMs: 60_000,
    },
    mcpServers: [
      {
        name: 'files',
        command: 'mcp-files',
        args: ['--root', '/srv'],
        env: { TOKEN: SECRETS.mcpEnv },
      },
      {
        name: 'crm',
        url: 'https://crm.example.test/mcp',
        headers: { authorization: `Bearer ${SECRETS.mcpHeader}` },
        tools: ['find_customer'],
        perSession: true,
      },
    ],
  };
}

export const TURN_MESSAGES: readonly ChatMessage[] = [
  { role: 'user', content: 'Where is my order?' },
  { role: 'assistant', content: 'It ships tomorrow.' },
];

export const TURN_USAGE: Usage = {
  inputTokens: 12,
  outputTokens: 7,
  totalTokens: 19,
  costUsd: 0.0001,
  llmCalls: 1,
};

/** Every object reachable from `value` (through arrays, plain objects, Map keys/values, Set values). */
export function objectsIn(value: unknown, into: Set<object> = new Set()): Set<object> {
  if (value === null || typeof value !== 'object' || into.has(value)) return into;
  into.add(value);
  if (value instanceof Map) {
    for (const [k, v] of value) {
      objectsIn(k, into);
      objectsIn(v, into);
    }
  } else if (value instanceof Set) {
    for (const v of value) objectsIn(v, into);
  } else {
    for (const v of Object.values(value)) objectsIn(v, into);
  }
  return into;
}

/** Objects that `a` and `b` share by reference, anywhere in their graphs. */
export function sharedObjects(a: unknown, b: unknown): object[] {
  const inB = objectsIn(b);
  return [...objectsIn(a)].filter((object) => inB.has(object));
}

// ---------------------------------------------------------------------------------------------
// The agent loop against the mock LLM

/** An API key that must never show up anywhere but the Authorization header. */
export const SENTINEL = 'sk-SENTINEL-123';

/** An agent named `support` talking to `mock` with the sentinel key. */
export function makeAgent(mock: MockLlm, config: Partial<AgentConfig> = {}): Agent {
  return agentFor(mock, { name: 'support', apiKey: SENTINEL, ...config });
}

export type EventOf<T extends TurnEvent['type']> = Extract<TurnEvent, { type: T }>;

export interface EventRecorder {
  readonly events: TurnEvent[];
  readonly onEvent: (event: TurnEvent) => void;
  of<T extends TurnEvent['type']>(type: T): EventOf<T>[];
}

/** Collects a turn's events; pass `onEvent` in the chat options. */
export function recordEvents(): EventRecorder {
  const events: TurnEvent[] = [];
  return {
    events,
    onEvent: (event) => {
      events.push(event);
    },
    of<T extends TurnEvent['type']>(type: T): EventOf<T>[] {
      return events.filter((event): event is EventOf<T> => event.type === type);
    },
  };
}

/** The tool messages of request `index`. */
export function toolMessagesOf(mock: MockLlm, index: number): ChatCompletionMessage[] {
  return messagesOf(mock, index).filter((message) => message.role === 'tool');
}

/** Role and text of each message, for compact comparisons. */
export function rolesAndText(
  messages: readonly ChatCompletionMessage[],
): { role: string; content: string }[] {
  return messages.map((message) => ({
    role: message.role,
    content: typeof message.content === 'string' ? message.content : '',
  }));
}
