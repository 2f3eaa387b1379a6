/**
 * The load test's side of `POST /v1/chat/completions` (`--route chat-completions`): the request
 * for one turn (the session named by `X-Agentcell-Session`, the agent by `model`, streamed),
 * and the reading of OpenAI's chunk stream: a chunk with content is text, `data: [DONE]` the
 * reply, `data: { error }` a typed failure.
 */
import type { SseEvent } from './sse.js';
import type { SendHooks, SendOutcome } from './target.js';

/** The path, headers and body of one streamed completion of `message` in session `key`. */
export function chatCompletionRequest(
  key: string,
  message: string,
  model: string,
): { path: string; headers: Record<string, string>; body: string } {
  return {
    path: '/v1/chat/completions',
    headers: { 'x-agentcell-session': key },
    body: JSON.stringify({
      model,
      messages: [{ role: 'user', content: message }],
      stream: true,
    }),
  };
}

/**
 * What one event of a completion stream decides: the outcome, or undefined while the turn
 * goes on (text is reported through `hooks`).
 */
export function chatCompletionEvent(
  event: SseEvent,
  hooks: SendHooks,
  typedError: (value: unknown) => { code: string; message: string } | undefined,
): SendOutcome | undefined {
  if (event.data === '[DONE]') return { kind: 'reply' };
  let chunk: unknown;
  try {
    chunk = JSON.parse(event.data);
  } catch {
    return { kind: 'broken', reason: `a chunk that is not JSON: ${event.data.slice(0, 200)}` };
  }
  if (typeof chunk === 'object' && chunk !== null && 'error' in chunk) {
    const typed = typedError(chunk);
    return typed
      ? { kind: 'error', ...typed }
      : { kind: 'broken', reason: `an error chunk without a code: ${event.data.slice(0, 200)}` };
  }
  const { choices } = chunk as { choices?: { delta?: { content?: unknown } }[] };
  const content = choices?.[0]?.delta?.content;
  if (typeof content === 'string' && content !== '') hooks.onText();
  return undefined;
}
