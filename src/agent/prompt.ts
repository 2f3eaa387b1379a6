/** What the model is shown: the system prompt, the user message and the windowed history. */

import type { AgentSpec } from './config.js';
import type { ChatMessage } from './messages.js';
import { estimateTokens } from './tokens.js';

/** Fills `{{name}}` placeholders; unknown placeholders are left as they are. */
export function fillTemplate(
  template: string,
  values: Readonly<Record<string, string | undefined>>,
): string {
  return template.replace(
    /\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g,
    (whole, key: string) => values[key] ?? whole,
  );
}

function templateValues(
  spec: AgentSpec,
  extra: Record<string, string> = {},
): Record<string, string | undefined> {
  return {
    ...Object.fromEntries(spec.templates?.variables ?? []),
    name: spec.name,
    role: spec.role,
    goal: spec.goal,
    backstory: spec.backstory,
    instructions: spec.instructions,
    ...extra,
  };
}

/** The system prompt: `templates.system` when set, else role, goal, backstory and instructions. */
export function systemPrompt(spec: AgentSpec): string {
  if (spec.templates?.system !== undefined)
    return fillTemplate(spec.templates.system, templateValues(spec));
  const parts = [
    spec.role && `You are ${spec.name}, ${spec.role}.`,
    spec.goal && `Your goal: ${spec.goal}`,
    spec.backstory,
    spec.instructions,
  ].filter((part): part is string => Boolean(part));
  return parts.length > 0 ? parts.join('\n\n') : `You are ${spec.name}, a helpful assistant.`;
}

/** The user message as sent to the model (`templates.prompt` with `{{message}}`). */
export function userPrompt(spec: AgentSpec, message: string): string {
  const template = spec.templates?.prompt;
  return template === undefined
    ? message
    : fillTemplate(template, templateValues(spec, { message }));
}

/** The reply as returned to the caller (`templates.response` with `{{reply}}`). */
export function replyText(spec: AgentSpec, reply: string): string {
  const template = spec.templates?.response;
  return template === undefined ? reply : fillTemplate(template, templateValues(spec, { reply }));
}

/**
 * The part of the history the model sees, per the memory config: none when memory is off;
 * else the last `historyWindow` messages, then the oldest dropped until `maxHistoryTokens`
 * fits. A window never starts inside a tool round (a tool result without its call is invalid).
 */
export function windowHistory(
  history: readonly ChatMessage[],
  spec: AgentSpec,
): readonly ChatMessage[] {
  const memory = spec.memory;
  if (memory?.enabled === false) return [];
  let start =
    memory?.historyWindow === undefined ? 0 : Math.max(0, history.length - memory.historyWindow);
  if (memory?.maxHistoryTokens !== undefined) {
    let tokens = 0;
    for (let i = history.length - 1; i >= start; i--) {
      tokens += estimateTokens(history[i]?.content ?? '');
      if (tokens > memory.maxHistoryTokens) {
        start = i + 1;
        break;
      }
    }
  }
  while (start < history.length && history[start]?.role !== 'user') start++;
  return start === 0 ? history : history.slice(start);
}
