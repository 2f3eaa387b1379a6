/**
 * One turn of the agent loop: a message in, LLM calls and tool calls until a final answer, one
 * reply out. A function of (agent, message, signal) → events and a delta, with no assumption
 * about the thread it runs on: `agent.chat()` calls it in-process and session workers call
 * it in theirs. A turn that fails or is interrupted appends nothing to the agent's history.
 */
import { randomUUID } from 'node:crypto';
import { type AgentcellError, MaxIterationsError } from '../errors.js';
import type { CheckedToolCall, LlmRequest, LlmToolSpec, ModelResponse } from '../llm/model.js';
import type { Tool } from '../tools/tool.js';
import type { AgentCore } from './agent-core.js';
import {
  type ApprovalDecision,
  type AskedApproval,
  decideCalls,
  needsApproval,
  shownToolStart,
  type TurnCheckpoint,
  type TurnInput,
  type TurnPause,
} from './approval.js';
import { checkBudget } from './budget.js';
import type { HookContext, HookPoint } from './extensions.js';
import { type HandoffScope, handoffToolSpecs, resolveHandoff } from './handoffs.js';
import { checkHooksRegistered, runHooks } from './hooks.js';
import { addUsage, type ChatMessage, type Usage, ZERO_USAGE } from './messages.js';
import { replyText, systemPrompt, userPrompt, windowHistory } from './prompt.js';
import { redact } from './redact.js';
import {
  assertGuardrailRetry,
  checkValidatorsRegistered,
  feedbackMessages,
  guardrailFeedback,
  outputFormat,
  parseOutput,
} from './reply-checks.js';
import { type ResolvedTool, runToolCalls, turnAbortReason } from './tool-runner.js';
import type { TurnEvent, TurnEventBody, TurnResult } from './turn-events.js';
import type { TurnOptions } from './turn-options.js';

export type { TurnOptions } from './turn-options.js';

const DEFAULT_MAX_ITERATIONS = 10;

/**
 * Runs one turn on `agent`. Resolves with the reply and the delta the turn appended; rejects
 * with a typed error, and then the history is unchanged.
 *
 * @example
 * const { reply } = await runTurn(agent, 'hello', { onEvent: (e) => console.log(e.type) });
 */
export function runTurn(
  agent: AgentCore,
  message: string,
  options?: TurnOptions & { readonly pauseForApproval?: false | undefined },
): Promise<TurnResult>;
export function runTurn(
  agent: AgentCore,
  input: TurnInput,
  options: TurnOptions,
): Promise<TurnResult | TurnPause>;
export async function runTurn(
  agent: AgentCore,
  input: TurnInput,
  options: TurnOptions = {},
): Promise<TurnResult | TurnPause> {
  const turnId = options.turnId ?? randomUUID();
  const interruptSignal = agent.interrupts.beginTurn(turnId);
  const signal = options.signal
    ? AbortSignal.any([interruptSignal, options.signal])
    : interruptSignal;
  try {
    return await new Turn(agent, input, options, turnId, signal).run();
  } catch (error) {
    if (signal.aborted) throw turnAbortReason(signal);
    throw error;
  } finally {
    agent.interrupts.endTurn(turnId);
  }
}

class Turn {
  readonly #agent: AgentCore;
  readonly #message: string;
  readonly #resume: TurnCheckpoint | undefined;
  readonly #options: TurnOptions;
  readonly #turnId: string;
  readonly #signal: AbortSignal;
  readonly #sessionKey: string;
  readonly #config: Readonly<Record<string, unknown>>;
  /** Who runs this turn, as the approver, guardrails, hooks and tools are told. */
  readonly #who: Pick<HookContext, 'agentName' | 'sessionKey' | 'turnId'>;
  /** What the model sees this turn after the history. */
  readonly #conversation: ChatMessage[] = [];
  /** Guardrail retries: sent to the model, never committed. */
  readonly #transient = new Set<ChatMessage>();
  #usage: Usage = ZERO_USAGE;
  #seq = 0;
  #iteration = 0;
  #turnEndReported = false;
  #mcpTools: readonly Tool[] = [];

  constructor(
    agent: AgentCore,
    input: TurnInput,
    options: TurnOptions,
    turnId: string,
    signal: AbortSignal,
  ) {
    this.#agent = agent;
    this.#message = typeof input === 'string' ? input : input.checkpoint.message;
    this.#resume = typeof input === 'string' ? undefined : input.checkpoint;
    this.#options = options;
    this.#turnId = turnId;
    this.#signal = signal;
    this.#sessionKey = options.sessionKey ?? agent.name;
    this.#config = redact(agent.config);
    this.#who = { agentName: agent.name, sessionKey: this.#sessionKey, turnId };
  }

  async run(): Promise<TurnResult | TurnPause> {
    const spec = this.#agent.config;
    // A config that names a hook or validator nobody registered fails before any work.
    checkHooksRegistered(spec.hooks, this.#options.hooks);
    checkValidatorsRegistered(spec.guardrails, this.#options.validators);
    if (spec.mcpServers?.length && this.#options.mcpTools) {
      this.#mcpTools = await this.#options.mcpTools();
    }
    if (!this.#resume) {
      this.#emit({ type: 'turn-start', message: this.#message });
      this.#conversation.push({ role: 'user', content: userPrompt(spec, this.#message) });
    }
    let guardrailRetries = 0;
    try {
      if (this.#resume) await this.#resumeFrom(this.#resume);
      const maxIterations = spec.execution?.maxIterations ?? DEFAULT_MAX_ITERATIONS;
      for (; this.#iteration < maxIterations; this.#iteration++) {
        const response = await this.#callModel();
        if (response.toolCalls.length > 0) {
          this.#conversation.push({
            role: 'assistant',
            content: response.content,
            // The conversation keeps the calls as the model sent them, not the host's verdicts.
            toolCalls: response.toolCalls.map(({ id, name, arguments: args }) => ({
              id,
              name,
              arguments: args,
            })),
          });
          const { decisions, asked } = await decideCalls(
            spec,
            response.toolCalls,
            this.#options.approver,
            this.#who,
            this.#options.pauseForApproval === true,
          );
          if (asked.length > 0) return this.#pause(response.toolCalls, decisions, asked);
          this.#conversation.push(
            ...(await runToolCalls(this.#toolScope(decisions), response.toolCalls)),
          );
          continue;
        }
        const feedback = await guardrailFeedback(
          spec.guardrails,
          this.#options.validators,
          response.content,
          { ...this.#who, config: this.#config },
        );
        if (feedback !== undefined) {
          assertGuardrailRetry(spec.guardrails, feedback, ++guardrailRetries);
          // Sent to the model for its retry, never committed.
          const retry = feedbackMessages(response.content, feedback);
          this.#conversation.push(...retry);
          for (const message of retry) this.#transient.add(message);
          continue;
        }
        return await this.#finish(response);
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

  /** Picks a paused turn up where it stopped: runs (or denies) the calls that waited. */
  async #resumeFrom(checkpoint: TurnCheckpoint): Promise<void> {
    // The usage before the pause is the host's to add: it counts what each run spent.
    this.#conversation.push(...checkpoint.conversation);
    this.#seq = checkpoint.seq;
    this.#iteration = checkpoint.iteration;
    this.#conversation.push(
      ...(await runToolCalls(this.#toolScope(checkpoint.decisions), checkpoint.calls)),
    );
    this.#iteration++;
  }

  /** Stops the turn before the calls of this step run: nothing is committed. */
  #pause(
    calls: readonly CheckedToolCall[],
    decisions: Record<string, ApprovalDecision>,
    approvals: AskedApproval[],
  ): TurnPause {
    this.#signal.throwIfAborted();
    return {
      kind: 'paused',
      turnId: this.#turnId,
      approvals,
      checkpoint: {
        message: this.#message,
        conversation: this.#conversation.filter((m) => !this.#transient.has(m)),
        usage: this.#usage,
        iteration: this.#iteration,
        seq: this.#seq,
        calls,
        decisions,
      },
    };
  }

  async #callModel(): Promise<ModelResponse> {
    this.#signal.throwIfAborted();
    for (const steered of this.#options.steering?.() ?? []) {
      this.#conversation.push({ role: 'user', content: userPrompt(this.#agent.config, steered) });
    }
    checkBudget(this.#agent.config, this.#agent.usage.costUsd);
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
      jsonSchema: outputFormat(this.#agent.config),
    };
    const response = await this.#cachedOrCalled(request);
    await this.#runHooks('afterLlmCall', { reply: response.content });
    checkBudget(this.#agent.config, this.#agent.usage.costUsd);
    return response;
  }

  async #cachedOrCalled(request: LlmRequest): Promise<ModelResponse> {
    const caching = this.#agent.config.caching?.enabled === true;
    const key = caching ? JSON.stringify(request) : '';
    if (caching) {
      const hit = await this.#agent.cacheLock.runExclusive(() => this.#agent.cache.get(key));
      if (hit !== undefined) {
        const cached = JSON.parse(hit) as ModelResponse;
        if (cached.content) this.#emit({ type: 'text', delta: cached.content });
        return cached;
      }
    }
    const response = await this.#agent.llm().complete(
      request,
      this.#signal,
      {
        onTextDelta: (delta) => this.#emit({ type: 'text', delta }),
        onRetry: (attempt, error, delayMs) =>
          this.#emit({ type: 'retry', attempt, code: error.code, delayMs }),
      },
      { sessionKey: this.#sessionKey, turnId: this.#turnId },
    );
    await this.#account(response);
    if (caching)
      await this.#agent.cacheLock.runExclusive(() =>
        this.#agent.cache.set(key, JSON.stringify(response)),
      );
    return response;
  }

  /**
   * Counts what was spent, under the cost lock, even if the turn later fails: it was spent.
   * The model service priced the call on the host.
   */
  async #account(response: ModelResponse): Promise<void> {
    const usage = response.usage;
    this.#usage = addUsage(this.#usage, usage);
    await this.#agent.costLock.runExclusive(() => this.#agent.recordUsage(usage));
    this.#emit({ type: 'usage', usage });
  }

  #toolSpecs(): LlmToolSpec[] {
    const spec = ({ name, description, parameters }: Tool) => ({ name, description, parameters });
    return [...this.#tools().map(spec), ...handoffToolSpecs(this.#agent.handoffs)];
  }

  /** The agent's own tools, then its MCP tools (the session's own agent only). */
  #tools(): readonly Tool[] {
    return [...this.#agent.tools, ...this.#mcpTools];
  }

  async #finish(response: ModelResponse): Promise<TurnResult> {
    const content = response.content;
    const output = parseOutput(this.#agent.config, content, response.outputProblems);
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

  async #runHooks(point: HookPoint, extra: Partial<HookContext>): Promise<void> {
    const names = this.#agent.config.hooks?.[point];
    if (!names?.length) return;
    const context: HookContext = {
      point,
      ...this.#who,
      config: this.#config,
      iteration: this.#iteration,
      ...extra,
    };
    await runHooks(names, this.#options.hooks, context);
  }

  #emit(body: TurnEventBody): void {
    this.#options.onEvent?.({
      ...body,
      sessionKey: this.#sessionKey,
      turnId: this.#turnId,
      seq: this.#seq++,
    } as TurnEvent);
  }

  #toolScope(decisions: Readonly<Record<string, ApprovalDecision>>) {
    return {
      ...this.#who,
      signal: this.#signal,
      toolTimeoutMs: this.#agent.config.toolTimeout,
      parallel: this.#agent.config.parallelToolCalls !== false,
      emit: (body: TurnEventBody) => this.#emit(shownToolStart(this.#agent.config, body)),
      runHooks: (point: 'beforeToolCall' | 'afterToolCall', extra: Partial<HookContext>) =>
        this.#runHooks(point, extra),
      resolve: (name: string) => this.#resolveTool(name),
      needsApproval: (name: string) => needsApproval(this.#agent.config, name),
      decision: (callId: string) => decisions[callId],
    };
  }

  #resolveTool(name: string): ResolvedTool | undefined {
    const tool = this.#tools().find((candidate) => candidate.name === name);
    if (tool) {
      const run = tool.kind === 'factory' ? this.#agent.toolInstance(tool).run : tool.run;
      if (!run) return undefined;
      return { tool, run: run as ResolvedTool['run'] };
    }
    return resolveHandoff(this.#handoffScope(), name);
  }

  #handoffScope(): HandoffScope {
    return {
      agent: this.#agent,
      turnId: this.#turnId,
      chain: this.#options.handoffChain ?? [],
      agents: this.#options.agents,
      runTurn: async (target, message, turn) =>
        (
          await runTurn(target, message, {
            ...this.#options,
            ...turn,
            sessionKey: this.#sessionKey,
            onEvent: undefined,
            // Steered messages belong to the session's own agent: they wait for its next step.
            steering: undefined,
            // Only the session's own turn can be journaled as paused: a handoff's is denied.
            pauseForApproval: false,
            // The host lists MCP tools for the session's own agent only.
            mcpTools: undefined,
          })
        ).reply,
    };
  }
}
