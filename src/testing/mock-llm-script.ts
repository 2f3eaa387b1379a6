/**
 * The deterministic "brain" of the mock LLM: which reply, tool calls or fault a chat
 * completion request gets. Kept free of HTTP so the rules are easy to reason about and test.
 */

import { estimateTokens } from '../agent/tokens.js';

/** One part of a multi-part message content (only `text` parts carry text). */
export interface ChatContentPart {
  readonly type: string;
  readonly text?: string;
  readonly [key: string]: unknown;
}

/** A tool call as it appears on the wire in an assistant message. */
export interface ChatCompletionWireToolCall {
  readonly id: string;
  readonly type: 'function';
  readonly function: { readonly name: string; readonly arguments: string };
}

/** A message of a chat completion request, in OpenAI wire shape. */
export interface ChatCompletionMessage {
  readonly role: 'system' | 'developer' | 'user' | 'assistant' | 'tool' | (string & {});
  readonly content?: string | readonly ChatContentPart[] | null;
  readonly name?: string;
  readonly tool_calls?: readonly ChatCompletionWireToolCall[];
  readonly tool_call_id?: string;
  readonly [key: string]: unknown;
}

/** A tool definition offered to the model, in OpenAI wire shape. */
export interface ChatCompletionTool {
  readonly type: 'function' | (string & {});
  readonly function: {
    readonly name: string;
    readonly description?: string;
    readonly parameters?: unknown;
  };
}

/** The body of `POST /v1/chat/completions` as the mock understands it; other fields are kept. */
export interface ChatCompletionRequest {
  readonly model: string;
  readonly messages: readonly ChatCompletionMessage[];
  readonly tools?: readonly ChatCompletionTool[];
  readonly tool_choice?: unknown;
  readonly parallel_tool_calls?: boolean;
  readonly stream?: boolean;
  readonly stream_options?: { readonly include_usage?: boolean } | null;
  readonly temperature?: number;
  readonly max_tokens?: number;
  readonly max_completion_tokens?: number;
  readonly [key: string]: unknown;
}

/** The failure modes the mock can inject. */
export type MockFaultKind = '429' | '500' | 'stall' | 'malformed';

/**
 * A fault. Without `times` it fires on every request that reaches it; with `times` only the
 * first N requests with the same last user message fail, so a client's retry then succeeds.
 */
export interface MockFault {
  readonly kind: MockFaultKind;
  readonly times?: number;
}

/** A tool call a rule asks the model to make. */
export interface MockToolCall {
  readonly name: string;
  /** JSON-serialized into `function.arguments` unless it is already a string. */
  readonly arguments: unknown;
}

/** What the model does at one step of a turn. */
export type MockStep =
  | { readonly reply: string }
  | { readonly toolCalls: readonly MockToolCall[] }
  | { readonly fault: MockFault };

/**
 * A scripted behaviour. Step N answers the model call that sees N assistant messages after
 * the last user message, so step 0 is the first call of a turn and step 1 follows the first
 * tool round. A fault step guards the step after it instead of taking a slot of its own, so
 * `[{ fault: { kind: '429', times: 1 } }, { toolCalls }, { reply }]` fails once, then calls
 * the tools, then replies.
 *
 * @example
 * const rule: MockRule = {
 *   match: /weather/i,
 *   steps: [{ toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] }, { reply: 'Sunny.' }],
 * };
 */
export interface MockRule {
  /** Tested against the last user message: a string matches as a substring. */
  readonly match?: string | RegExp;
  readonly steps: readonly MockStep[];
}

/** A tool call ready for the wire (arguments already serialized). */
export interface PlannedToolCall {
  readonly name: string;
  readonly arguments: string;
}

/** The mock's decision for one request. */
export type MockPlan =
  | { readonly kind: 'reply'; readonly text: string }
  | { readonly kind: 'toolCalls'; readonly calls: readonly PlannedToolCall[] }
  | { readonly kind: 'fault'; readonly fault: MockFaultKind };

/** A plan answered with a completion (a fault is answered otherwise). */
export type Action = Exclude<MockPlan, { kind: 'fault' }>;

interface CompiledStep {
  readonly guards: readonly MockFault[];
  /** Undefined when only faults were left at the end: the default reply answers then. */
  readonly action: Action | undefined;
}

/** Rules with fault steps folded into the step they guard; built once per `setRules`. */
export interface CompiledRule {
  readonly match: string | RegExp | undefined;
  readonly steps: readonly CompiledStep[];
}

const FAULT_MARKER = /\[\[mock:(429|500|stall|malformed)(?:x(\d+))?\]\]/;
const FAULT_SPEC = /^(429|500|stall|malformed)(?:x(\d+))?$/;

export function compileRules(rules: readonly MockRule[]): CompiledRule[] {
  return rules.map((rule) => ({ match: rule.match, steps: compileSteps(rule.steps) }));
}

function compileSteps(steps: readonly MockStep[]): CompiledStep[] {
  const out: CompiledStep[] = [];
  let guards: MockFault[] = [];
  for (const step of steps) {
    if ('fault' in step) {
      guards.push(step.fault);
      continue;
    }
    out.push({ guards, action: toAction(step) });
    guards = [];
  }
  if (guards.length > 0) out.push({ guards, action: undefined });
  return out;
}

function toAction(step: Exclude<MockStep, { fault: MockFault }>): Action {
  if ('reply' in step) return { kind: 'reply', text: step.reply };
  return {
    kind: 'toolCalls',
    calls: step.toolCalls.map((call) => ({
      name: call.name,
      arguments:
        typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments),
    })),
  };
}

/** Counts how often each counted fault fired, so `times` can let later requests through. */
export class FaultCounters {
  #byMarker = new Map<string, number>();
  #byFault = new WeakMap<MockFault, Map<string, number>>();

  /** True while the fault keyed by `key` has fired fewer than `times` times (and counts it). */
  takeMarker(key: string, times: number | undefined): boolean {
    if (times === undefined) return true;
    const seen = this.#byMarker.get(key) ?? 0;
    this.#byMarker.set(key, seen + 1);
    return seen < times;
  }

  takeFault(fault: MockFault, text: string): boolean {
    if (fault.times === undefined) return true;
    let counts = this.#byFault.get(fault);
    if (counts === undefined) {
      counts = new Map();
      this.#byFault.set(fault, counts);
    }
    const seen = counts.get(text) ?? 0;
    counts.set(text, seen + 1);
    return seen < fault.times;
  }

  clear(): void {
    this.#byMarker = new Map();
    this.#byFault = new WeakMap();
  }
}

/** Flattens string or multi-part content to its text. */
export function contentText(content: ChatCompletionMessage['content']): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const part of content) if (typeof part.text === 'string') text += part.text;
  return text;
}

function lastUserIndex(messages: readonly ChatCompletionMessage[]): number {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i]?.role === 'user') return i;
  return -1;
}

export function lastUserText(messages: readonly ChatCompletionMessage[]): string {
  const index = lastUserIndex(messages);
  return index < 0 ? '' : contentText(messages[index]?.content);
}

/** The number of assistant messages after the last user message: which step of the turn. */
export function stepIndex(messages: readonly ChatCompletionMessage[]): number {
  let count = 0;
  for (let i = lastUserIndex(messages) + 1; i < messages.length; i++) {
    if (messages[i]?.role === 'assistant') count++;
  }
  return count;
}

/** `echo: <last user message>`, or the trailing tool results when the model is called back. */
export function defaultReply(messages: readonly ChatCompletionMessage[]): string {
  const results: string[] = [];
  for (let i = messages.length - 1; i >= 0 && messages[i]?.role === 'tool'; i--) {
    results.unshift(contentText(messages[i]?.content));
  }
  if (results.length > 0) return `tool results: ${results.join('; ')}`;
  return `echo: ${lastUserText(messages)}`;
}

/** Parses an `x-mock-fault` header value such as `500` or `429x2`. */
export function parseFaultSpec(spec: string): MockFault | undefined {
  const m = FAULT_SPEC.exec(spec.trim());
  return m ? toFault(m[1], m[2]) : undefined;
}

function toFault(kind: string | undefined, times: string | undefined): MockFault {
  const fault = { kind: kind as MockFaultKind };
  return times === undefined ? fault : { ...fault, times: Number(times) };
}

function markerFault(text: string, counters: FaultCounters): MockFaultKind | undefined {
  const m = FAULT_MARKER.exec(text);
  if (!m) return undefined;
  const fault = toFault(m[1], m[2]);
  // The key holds the whole message so that different conversations each get their N failures.
  return counters.takeMarker(`${m[0]}\u0000${text}`, fault.times) ? fault.kind : undefined;
}

function matches(match: string | RegExp | undefined, text: string): boolean {
  if (match === undefined) return true;
  // search() ignores lastIndex, so a /g rule cannot flip between matching and not.
  return typeof match === 'string' ? text.includes(match) : text.search(match) !== -1;
}

function scriptedPlan(
  rule: CompiledRule,
  messages: readonly ChatCompletionMessage[],
  text: string,
  counters: FaultCounters,
): MockPlan {
  const index = stepIndex(messages);
  const step = rule.steps[index];
  if (step === undefined) {
    const last = rule.steps[rule.steps.length - 1]?.action;
    return last?.kind === 'reply' ? last : { kind: 'reply', text: defaultReply(messages) };
  }
  for (const guard of step.guards) {
    if (counters.takeFault(guard, text)) return { kind: 'fault', fault: guard.kind };
  }
  return step.action ?? { kind: 'reply', text: defaultReply(messages) };
}

/**
 * Decides the response to one request: a header fault wins over a marker in the last user
 * message, which wins over the first matching rule, which wins over the default echo.
 */
export function planResponse(
  request: ChatCompletionRequest,
  rules: readonly CompiledRule[],
  counters: FaultCounters,
  headerFault: string | undefined,
): MockPlan {
  const text = lastUserText(request.messages);
  if (headerFault !== undefined) {
    const fault = parseFaultSpec(headerFault);
    if (fault && counters.takeMarker(`header:${headerFault}\u0000${text}`, fault.times)) {
      return { kind: 'fault', fault: fault.kind };
    }
  }
  const marked = markerFault(text, counters);
  if (marked !== undefined) return { kind: 'fault', fault: marked };
  for (const rule of rules) {
    if (matches(rule.match, text)) return scriptedPlan(rule, request.messages, text, counters);
  }
  return { kind: 'reply', text: defaultReply(request.messages) };
}

export function promptTokens(messages: readonly ChatCompletionMessage[]): number {
  let chars = 0;
  for (const message of messages) chars += contentText(message.content).length;
  return estimateTokens(chars);
}

export function completionTokens(plan: Action): number {
  if (plan.kind === 'reply') return estimateTokens(plan.text.length);
  let chars = 0;
  for (const call of plan.calls) chars += call.name.length + call.arguments.length;
  return estimateTokens(chars);
}

/** Narrows a parsed JSON body to a chat completion request, or explains what is wrong. */
export function validateRequest(body: unknown): ChatCompletionRequest | string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return 'The request body must be a JSON object.';
  }
  // Destructuring reads the fields without a cast to the very type being checked.
  const { model, messages }: { model?: unknown; messages?: unknown } = body;
  if (typeof model !== 'string') return "'model' is a required string.";
  if (!Array.isArray(messages)) return "'messages' is a required array.";
  for (const message of messages) {
    if (typeof message !== 'object' || message === null || typeof message.role !== 'string') {
      return "Every message needs a string 'role'.";
    }
  }
  return body as ChatCompletionRequest;
}
