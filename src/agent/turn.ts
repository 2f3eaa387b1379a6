/**
 * One turn of the agent loop: a message in, LLM calls and tool calls until a final answer, one
 * reply out. A function of (agent, message, signal) → events and a delta, with no assumption
 * about the thread it runs on: `agent.chat()` calls it in-process and session workers call
 * it in theirs. A turn that fails or is interrupted appends nothing to the agent's history.
 */
import { randomUUID } from 'node:crypto';
import {
  type AgentcellError,
  BudgetExceededError,
  GuardrailFailedError,
  HandoffFailedError,
  HookFailedError,
  isAgentcellError,
  MaxIterationsError,
  OutputInvalidError,
} from '../errors.js';
import type { LlmClient, LlmResponse, LlmToolSpec } from '../llm/client.js';
import type { ToolContext } from '../tools/tool.js';
import { type Agent, handoffName, redact } from './agent.js';
import type { Approver, Hook, HookContext, HookPoint, Validator } from './extensions.js';
import { addUsage, type ChatMessage, type Usage, ZERO_USAGE } from './messages.js';
import { replyText, systemPrompt, userPrompt, windowHistory } from './prompt.js';
import { type ResolvedTool, runToolCalls, schemaProblems, turnAbortReason } from './tool-runner.js';
import type { TurnEvent, TurnEventBody, TurnResult } from './turn-events.js';

export interface TurnOptions {
  /** Aborts the turn from outside (in addition to the agent's interrupt controller). */
  readonly signal?: AbortSignal | undefined;
  /** Tags events and tool contexts. @default the agent's name */
  readonly sessionKey?: string | undefined;
  readonly turnId?: string | undefined;
  readonly onEvent?: ((event: TurnEvent) => void) | undefined;
  /** Implementations of the hook names in the `hooks` config. */
  readonly hooks?: Readonly<Record<string, Hook>> | undefined;
  /** Implementations of the validator names in the `guardrails` config. */
  readonly validators?: Readonly<Record<string, Validator>> | undefined;
  /** Asked before a tool listed in the `approval` config runs; none means denied. */
  readonly approver?: Approver | undefined;
  /** Resolves handoffs given by name. */
  readonly agents?: ((name: string) => Agent | undefined) | undefined;
  /** Messages that arrived during the turn, taken at each LLM step (busy policy `steer`). */
  readonly steering?: (() => readonly string[]) | undefined;
  /** @internal agents already in this chain of handoffs, to stop cycles. */
  readonly handoffChain?: readonly string[] | undefined;
}

const DEFAULT_MAX_ITERATIONS = 10;
const DEFAULT_MAX_HANDOFF_DEPTH = 3;
const HANDOFF_PREFIX = 'transfer_to_';

/**
 * Runs one turn on `agent`. Resolves with the reply and the delta the turn appended; rejects
 * with a typed error, and then the history is unchanged.
 *
 * @example
 * const { reply } = await runTurn(agent, 'hello', { onEvent: (e) => console.log(e.type) });
 */
export async function runTurn(
  agent: Agent,
  message: string,
  options: TurnOptions = {},
): Promise<TurnResult> {
  const turnId = options.turnId ?? randomUUID();
  const interruptSignal = agent.interrupts.beginTurn(turnId);
  const signal = options.signal
    ? AbortSignal.any([interruptSignal, options.signal])
    : interruptSignal;
  try {
    return await new Turn(agent, message, options, turnId, signal).run();
  } catch (error) {
    if (signal.aborted) throw turnAbortReason(signal);
    throw error;
  } finally {
    agent.interrupts.endTurn(turnId);
  }
}

class Turn {
  readonly #agent: Agent;
  readonly #message: string;
  readonly #options: TurnOptions;
  readonly #turnId: string;
  readonly #signal: AbortSignal;
  readonly #sessionKey: string;
  readonly #config: Readonly<Record<string, unknown>>;
  /** What the model sees this turn after the history. */
  readonly #conversation: ChatMessage[] = [];
  /** Guardrail retries: sent to the model, never committed. */
  readonly #transient = new Set<ChatMessage>();
  #usage: Usage = ZERO_USAGE;
  #seq = 0;
  #iteration = 0;
  #turnEndReported = false;

  constructor(
    agent: Agent,
    message: string,
    options: TurnOptions,
    turnId: string,
    signal: AbortSignal,
  ) {
    this.#agent = agent;
    this.#message = message;
    this.#options = options;
    this.#turnId = turnId;
    this.#signal = signal;
    this.#sessionKey = options.sessionKey ?? agent.name;
    this.#config = redact(agent.config);
  }

  async run(): Promise<TurnResult> {
    const spec = this.#agent.config;
    this.#checkNamesRegistered();
    this.#emit({ type: 'turn-start', message: this.#message });
    this.#conversation.push({ role: 'user', content: userPrompt(spec, this.#message) });
    let guardrailRetries = 0;
    try {
      const maxIterations = spec.execution?.maxIterations ?? DEFAULT_MAX_ITERATIONS;
      for (; this.#iteration < maxIterations; this.#iteration++) {
        const response = await this.#callModel();
        if (response.toolCalls.length > 0) {
          this.#conversation.push({
            role: 'assistant',
            content: response.content,
            toolCalls: response.toolCalls,
          });
          this.#conversation.push(...(await runToolCalls(this.#toolScope(), response.toolCalls)));
          continue;
        }
        const feedback = await this.#guardrailFeedback(response.content);
        if (feedback !== undefined) {
          guardrailRetries++;
          const { maxRetries = 2, onFail = 'retry' } = spec.guardrails ?? {};
          if (onFail === 'raise' || guardrailRetries > maxRetries) {
            throw new GuardrailFailedError(`the reply failed its guardrails: ${feedback}`, {
              details: { feedback, retries: guardrailRetries - 1 },
            });
          }
          this.#retryWithFeedback(response.content, feedback);
          continue;
        }
        return await this.#finish(response.content);
      }
      throw new MaxIterationsError(`no final answer after ${maxIterations} LLM calls`);
    } catch (error) {
      const failure = this.#signal.aborted ? turnAbortReason(this.#signal) : error;
      if (!this.#turnEndReported) {
        await this.#runHooks('onTurnEnd', {
          outcome: 'error',
          errorCode: (failure as AgentcellError).code,
        }).catch(() => {});
      }
      throw failure;
    }
  }

  /** A config that names a hook or validator nobody registered fails before any work. */
  #checkNamesRegistered(): void {
    const { hooks, guardrails } = this.#agent.config;
    for (const [point, names] of Object.entries(hooks ?? {})) {
      for (const name of names ?? []) {
        if (!this.#options.hooks?.[name]) {
          throw new HookFailedError(
            `hooks.${point} names ${JSON.stringify(name)}, which is not registered`,
          );
        }
      }
    }
    for (const name of guardrails?.validators ?? []) {
      if (!this.#options.validators?.[name]) {
        throw new GuardrailFailedError(
          `guardrails.validators names ${JSON.stringify(name)}, which is not registered`,
        );
      }
    }
  }

  async #callModel(): Promise<LlmResponse> {
    this.#signal.throwIfAborted();
    for (const steered of this.#options.steering?.() ?? []) {
      this.#conversation.push({ role: 'user', content: userPrompt(this.#agent.config, steered) });
    }
    this.#checkBudget();
    await this.#runHooks('beforeLlmCall', {});
    const request = {
      model: this.#agent.config.llm ?? '',
      messages: [
        { role: 'system' as const, content: systemPrompt(this.#agent.config) },
        ...windowHistory(this.#agent.history, this.#agent.config),
        ...this.#conversation,
      ],
      tools: this.#toolSpecs(),
      parallelToolCalls: this.#agent.config.parallelToolCalls,
      jsonSchema: this.#jsonSchema(),
    };
    const response = await this.#cachedOrCalled(request);
    await this.#runHooks('afterLlmCall', { reply: response.content });
    this.#checkBudget();
    return response;
  }

  async #cachedOrCalled(request: Parameters<LlmClient['complete']>[0]): Promise<LlmResponse> {
    const caching = this.#agent.config.caching?.enabled === true;
    const key = caching ? JSON.stringify(request) : '';
    if (caching) {
      const hit = await this.#agent.cacheLock.runExclusive(() => this.#agent.cache.get(key));
      if (hit !== undefined) {
        const cached = JSON.parse(hit) as LlmResponse;
        if (cached.content) this.#emit({ type: 'text', delta: cached.content });
        return cached;
      }
    }
    const response = await this.#agent.llm().complete(request, this.#signal, {
      onTextDelta: (delta) => this.#emit({ type: 'text', delta }),
      onRetry: (attempt, error, delayMs) =>
        this.#emit({ type: 'retry', attempt, code: error.code, delayMs }),
    });
    await this.#account(response);
    if (caching)
      await this.#agent.cacheLock.runExclusive(() =>
        this.#agent.cache.set(key, JSON.stringify(response)),
      );
    return response;
  }

  /** Counts what was spent, under the cost lock, even if the turn later fails: it was spent. */
  async #account(response: LlmResponse): Promise<void> {
    const pricing = this.#agent.config.execution?.pricing;
    const costUsd = pricing
      ? (response.inputTokens * pricing.inputPerMillion +
          response.outputTokens * pricing.outputPerMillion) /
        1e6
      : 0;
    const usage: Usage = {
      inputTokens: response.inputTokens,
      outputTokens: response.outputTokens,
      totalTokens: response.inputTokens + response.outputTokens,
      costUsd,
      llmCalls: 1,
    };
    this.#usage = addUsage(this.#usage, usage);
    await this.#agent.costLock.runExclusive(() => this.#agent.recordUsage(usage));
    this.#emit({ type: 'usage', usage });
  }

  #checkBudget(): void {
    const maxBudget = this.#agent.config.execution?.maxBudget;
    if (maxBudget === undefined) return;
    const spent = this.#agent.usage.costUsd;
    if (spent > maxBudget || (spent === maxBudget && maxBudget === 0)) {
      throw new BudgetExceededError(
        `spent $${spent.toFixed(6)} of a $${maxBudget} budget (execution.maxBudget)`,
        {
          details: { spentUsd: spent, maxBudgetUsd: maxBudget },
        },
      );
    }
  }

  #toolSpecs(): LlmToolSpec[] {
    const tools: LlmToolSpec[] = this.#agent.tools.map(({ name, description, parameters }) => ({
      name,
      description,
      parameters,
    }));
    for (const handoff of this.#agent.handoffs) {
      const name = handoffName(handoff);
      tools.push({
        name: `${HANDOFF_PREFIX}${name}`,
        description: `Hand the conversation to the agent ${name} and return its answer.`,
        parameters: {
          type: 'object',
          properties: { message: { type: 'string', description: `What to ask ${name}` } },
          required: ['message'],
        },
      });
    }
    return tools;
  }

  #jsonSchema() {
    const output = this.#agent.config.output;
    if (!output?.schema) return undefined;
    return { name: output.name ?? 'output', schema: output.schema, strict: output.strict ?? false };
  }

  async #guardrailFeedback(reply: string): Promise<string | undefined> {
    const guardrails = this.#agent.config.guardrails;
    if (!guardrails) return undefined;
    for (const pattern of guardrails.blockPatterns ?? []) {
      if (new RegExp(pattern.source, pattern.flags).test(reply))
        return `the reply matches the blocked pattern ${pattern}`;
    }
    const context = {
      agentName: this.#agent.name,
      sessionKey: this.#sessionKey,
      turnId: this.#turnId,
      config: this.#config,
    };
    for (const name of guardrails.validators ?? []) {
      const verdict = await this.#options.validators?.[name]?.(reply, context);
      if (verdict !== true) return typeof verdict === 'string' ? verdict : `rejected by ${name}`;
    }
    return undefined;
  }

  #retryWithFeedback(reply: string, feedback: string): void {
    const rejected: ChatMessage = { role: 'assistant', content: reply };
    const correction: ChatMessage = {
      role: 'user',
      content: `Your previous reply was rejected: ${feedback}. Answer again, fixing that.`,
    };
    this.#conversation.push(rejected, correction);
    this.#transient.add(rejected).add(correction);
  }

  async #finish(content: string): Promise<TurnResult> {
    const output = this.#parseOutput(content);
    const reply = replyText(this.#agent.config, content);
    // onTurnEnd runs once per turn: a failure after this point is not reported again.
    this.#turnEndReported = true;
    await this.#runHooks('onTurnEnd', { outcome: 'ok', reply });
    this.#signal.throwIfAborted();
    const messages = [
      ...this.#conversation.filter((m) => !this.#transient.has(m)),
      { role: 'assistant' as const, content },
    ];
    this.#agent.commitTurn(messages);
    this.#emit({
      type: 'final',
      reply,
      ...(output !== undefined && { output }),
      usage: this.#usage,
    });
    return {
      turnId: this.#turnId,
      reply,
      ...(output !== undefined && { output }),
      delta: { turnId: this.#turnId, messages, usage: this.#usage },
    };
  }

  #parseOutput(content: string): unknown {
    const schema = this.#agent.config.output?.schema;
    if (!schema) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(content);
    } catch {
      throw new OutputInvalidError('the reply is not JSON', {
        details: { reply: content.slice(0, 200) },
      });
    }
    const problems = schemaProblems(schema, parsed);
    if (problems)
      throw new OutputInvalidError(`the reply does not match output.schema: ${problems}`);
    return parsed;
  }

  async #runHooks(point: HookPoint, extra: Partial<HookContext>): Promise<void> {
    const names = this.#agent.config.hooks?.[point];
    if (!names?.length) return;
    const context: HookContext = {
      point,
      agentName: this.#agent.name,
      config: this.#config,
      sessionKey: this.#sessionKey,
      turnId: this.#turnId,
      iteration: this.#iteration,
      ...extra,
    };
    for (const name of names) {
      try {
        await this.#options.hooks?.[name]?.(context);
      } catch (error) {
        throw new HookFailedError(
          `hook ${JSON.stringify(name)} (${point}) threw: ${(error as Error)?.message}`,
          {
            cause: error,
          },
        );
      }
    }
  }

  #emit(body: TurnEventBody): void {
    this.#options.onEvent?.({
      ...body,
      sessionKey: this.#sessionKey,
      turnId: this.#turnId,
      seq: this.#seq++,
    } as TurnEvent);
  }

  #toolScope() {
    const approvalTools = this.#agent.config.approval?.tools;
    return {
      agentName: this.#agent.name,
      sessionKey: this.#sessionKey,
      turnId: this.#turnId,
      signal: this.#signal,
      toolTimeoutMs: this.#agent.config.toolTimeout,
      parallel: this.#agent.config.parallelToolCalls !== false,
      emit: (body: TurnEventBody) => this.#emit(body),
      runHooks: (point: 'beforeToolCall' | 'afterToolCall', extra: Partial<HookContext>) =>
        this.#runHooks(point, extra),
      resolve: (name: string) => this.#resolveTool(name),
      needsApproval: (name: string) =>
        approvalTools === 'all' || (approvalTools?.includes(name) ?? false),
      approve: async (name: string, args: unknown) =>
        (await this.#options.approver?.({
          agentName: this.#agent.name,
          sessionKey: this.#sessionKey,
          turnId: this.#turnId,
          tool: name,
          arguments: args,
        })) === true,
    };
  }

  #resolveTool(name: string): ResolvedTool | undefined {
    const tool = this.#agent.tools.find((candidate) => candidate.name === name);
    if (tool) {
      const run = tool.kind === 'factory' ? this.#agent.toolInstance(tool).run : tool.run;
      if (!run) return undefined;
      return { tool, run: run as ResolvedTool['run'] };
    }
    if (!name.startsWith(HANDOFF_PREFIX)) return undefined;
    const target = this.#agent.handoffs.find(
      (handoff) => `${HANDOFF_PREFIX}${handoffName(handoff)}` === name,
    );
    if (target === undefined) return undefined;
    return {
      tool: {
        name,
        parameters: {
          type: 'object',
          properties: { message: { type: 'string' } },
          required: ['message'],
        },
      },
      run: (args, context) =>
        this.#handOff(
          handoffName(target),
          typeof target === 'string' ? undefined : target,
          args,
          context,
        ),
    };
  }

  /** Runs the target agent's own turn (its instance belongs to this agent instance). */
  async #handOff(
    name: string,
    given: Agent | undefined,
    args: unknown,
    context: ToolContext,
  ): Promise<string> {
    const chain = [...(this.#options.handoffChain ?? []), this.#agent.name];
    const maxDepth = this.#agent.config.execution?.maxHandoffDepth ?? DEFAULT_MAX_HANDOFF_DEPTH;
    if (chain.includes(name)) {
      throw new HandoffFailedError(
        `handing off to ${name} would form a cycle (${[...chain, name].join(' → ')})`,
      );
    }
    if (chain.length > maxDepth)
      throw new HandoffFailedError(
        `handoff depth ${chain.length} is over the limit of ${maxDepth}`,
      );
    const template = given ?? this.#options.agents?.(name);
    if (!template)
      throw new HandoffFailedError(
        `no agent named ${JSON.stringify(name)} is registered for handoffs`,
      );
    const target = this.#agent.handoffInstance(template);
    try {
      const result = await runTurn(target, (args as { message: string }).message, {
        ...this.#options,
        signal: context.signal,
        sessionKey: this.#sessionKey,
        turnId: `${this.#turnId}/${name}`,
        handoffChain: chain,
        onEvent: undefined,
        // Steered messages belong to the session's own agent: they wait for its next step.
        steering: undefined,
      });
      return result.reply;
    } catch (error) {
      if (isAgentcellError(error, 'AGENTCELL_INTERRUPTED') || context.signal.aborted) throw error;
      throw new HandoffFailedError(`${name} failed: ${(error as Error).message}`, { cause: error });
    }
  }
}
