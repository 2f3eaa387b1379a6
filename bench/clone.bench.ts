/**
 * What a clone costs, for an agent with 20 tools and every feature config set, against
 * `structuredClone` of its plain config as the baseline.
 */
import { Agent } from '../src/agent/agent.js';
import { decodeBlueprint, encodeBlueprint, toBlueprint } from '../src/agent/blueprint.js';
import { defineTool } from '../src/tools/define-tool.js';
import { ToolRegistry } from '../src/tools/registry.js';
import { measure, ratioTable } from './_util/measure.js';

function fullAgent(): { agent: Agent; registry: ToolRegistry } {
  const tools = Array.from({ length: 20 }, (_, i) =>
    defineTool({
      name: `tool_${i}`,
      description: `Tool number ${i}: looks things up and returns a short answer.`,
      parameters: {
        type: 'object',
        properties: {
          query: { type: 'string', description: 'what to look up' },
          limit: { type: 'integer', minimum: 1, maximum: 100 },
          filters: { type: 'array', items: { type: 'string' } },
        },
        required: ['query'],
      },
      run: () => i,
    }),
  );
  const registry = new ToolRegistry();
  for (const tool of tools) registry.register(tool);
  const agent = new Agent({
    name: 'support',
    role: 'Support engineer',
    goal: 'Resolve the customer issue',
    backstory: 'Ten years of answering tickets.',
    instructions: 'Answer briefly and cite the docs.',
    llm: 'gpt-4o-mini',
    baseUrl: 'https://llm.example.test/v1',
    apiKey: 'sk-bench',
    auth: { headers: { 'x-team': 'bench' }, organization: 'org' },
    tools,
    memory: { enabled: true, historyWindow: 40, maxHistoryTokens: 8000, userId: 'u1' },
    knowledge: { sources: ['docs/a.md', 'docs/b.md'], topK: 5, chunkSize: 800, embedder: 'e' },
    planning: { enabled: true, llm: 'gpt-4o', maxSteps: 5, reasoning: true },
    reflection: { enabled: true, minIterations: 1, maxIterations: 3, prompt: 'Check yourself.' },
    guardrails: {
      validators: ['no-pii', 'polite'],
      blockPatterns: [/secret/i],
      maxRetries: 2,
      onFail: 'retry',
    },
    web: {
      search: true,
      fetch: true,
      provider: 'duck',
      maxResults: 5,
      allowedDomains: ['example.com'],
    },
    context: { maxTokens: 16000, strategy: 'summarize', compactAt: 0.8 },
    autonomy: { enabled: true, level: 'auto', maxSteps: 10 },
    output: {
      format: 'json',
      schema: { type: 'object', properties: { answer: { type: 'string' } } },
      strict: true,
    },
    execution: {
      maxIterations: 10,
      maxRetries: 2,
      retryBaseDelayMs: 100,
      maxBudget: 5,
      maxHandoffDepth: 3,
      pricing: { inputPerMillion: 0.15, outputPerMillion: 0.6 },
    },
    templates: { system: 'You are {{name}}.', variables: new Map([['team', 'support']]) },
    caching: { enabled: true, ttlMs: 60_000, maxEntries: 100 },
    hooks: { beforeLlmCall: ['trace'], afterToolCall: ['audit'], onTurnEnd: ['metrics'] },
    skills: { names: ['search'], dirs: ['skills'] },
    approval: { tools: ['tool_3'], timeoutMs: 30_000 },
    learn: { enabled: true, store: 'memory', since: new Date('2026-01-01') },
    sandbox: {
      enabled: true,
      image: 'node:20',
      network: false,
      memoryMb: 512,
      timeoutMs: 10_000,
      allowedCommands: new Set(['ls']),
    },
    toolTimeout: 30_000,
    parallelToolCalls: true,
    cliBackend: { command: 'claude', args: ['--print'], timeoutMs: 60_000 },
  });
  return { agent, registry };
}

export default async function cloneBench(): Promise<string> {
  const { agent, registry } = fullAgent();
  const blueprint = toBlueprint(agent);
  const text = encodeBlueprint(blueprint);
  const rows = [
    await measure('structuredClone(agent.config) — baseline', () => structuredClone(agent.config)),
    await measure('structuredClone(blueprint)', () => structuredClone(blueprint)),
    await measure('agent.clone()', () => agent.clone()),
    await measure('agent.cloneForChannel()', () => agent.cloneForChannel()),
    await measure('encodeBlueprint + decodeBlueprint', () =>
      decodeBlueprint(encodeBlueprint(toBlueprint(agent)), { registry }),
    ),
    await measure('Agent.fromBlueprint (decoded)', () =>
      Agent.fromBlueprint(blueprint, { registry }),
    ),
  ];
  return `Agent with 20 tools and all 17 feature configs; encoded blueprint ${text.length.toLocaleString('en-US')} bytes.\n\n${ratioTable(rows)}`;
}
