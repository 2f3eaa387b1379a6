/**
 * A Chat Completions request body read as a turn: the agent (`model`), the new user text (the
 * trailing user messages) and the dialogue the client says came before it. Clients send many
 * sampling parameters the agent's own config decides; those are accepted and ignored, so
 * stock clients work unchanged.
 */
import { z } from 'zod';
import { MessageInvalidError } from '../../errors.js';
import { parseBody } from '../http.js';
import type { SourceFields } from './session-source.js';

/** One user or assistant message of a client's transcript, as plain text. */
export interface DialogueLine {
  readonly role: 'user' | 'assistant';
  readonly content: string;
}

export interface ChatTurnRequest {
  /** The agent's name. */
  readonly model: string;
  readonly stream: boolean;
  readonly includeUsage: boolean;
  /** The turn's message: the trailing user messages, joined by a blank line. */
  readonly message: string;
  /** What the client sent before them (system and developer messages left out). */
  readonly earlier: readonly DialogueLine[];
  /** The body fields a session key may come from. */
  readonly fields: SourceFields;
}

const part = z.looseObject({ type: z.string(), text: z.string().optional() });

const messageSchema = z.looseObject({
  role: z.string(),
  content: z.union([z.string(), z.array(part)]).nullish(),
});

const keyField = z.string().max(1_024).nullish();

const chatRequestSchema = z.looseObject({
  model: z.string().min(1, 'name an agent (GET /v1/models lists them)'),
  messages: z.array(messageSchema).min(1, 'expected at least one message'),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish(),
  n: z.literal(1, 'only one choice (n: 1) is served').nullish(),
  session_id: keyField,
  prompt_cache_key: keyField,
  user: keyField,
});

/** Reads the body of `POST /v1/chat/completions`; `AGENTCELL_MESSAGE_INVALID` says what is wrong. */
export function readChatRequest(body: unknown): ChatTurnRequest {
  const parsed = parseBody(
    chatRequestSchema,
    body,
    'a chat completion takes { model, messages: [{ role, content }, ...], stream? }',
  );
  const lines: DialogueLine[] = [];
  parsed.messages.forEach((message, index) => {
    const { role } = message;
    // The agent's own instructions stand: a client's system prompt does not replace them.
    if (role === 'system' || role === 'developer') return;
    if (role !== 'user' && role !== 'assistant') {
      throw new MessageInvalidError(
        `body.messages[${index}]: role ${JSON.stringify(role).slice(0, 40)} is not taken; the agent runs its tools itself, so send user and assistant messages only`,
      );
    }
    lines.push({ role, content: textOf(message.content, index) });
  });
  let first = lines.length;
  while (first > 0 && lines[first - 1]?.role === 'user') first--;
  if (first === lines.length) {
    throw new MessageInvalidError('body.messages: the last message must be from the user');
  }
  const message = lines
    .slice(first)
    .map((line) => line.content)
    .join('\n\n');
  if (message.trim() === '') {
    throw new MessageInvalidError('body.messages: the last user message is empty');
  }
  return {
    model: parsed.model,
    stream: parsed.stream === true,
    includeUsage: parsed.stream_options?.include_usage === true,
    message,
    earlier: lines.slice(0, first),
    fields: {
      session_id: parsed.session_id,
      prompt_cache_key: parsed.prompt_cache_key,
      user: parsed.user,
    },
  };
}

/** Text content as one string: text parts joined by a newline; other parts are refused. */
function textOf(content: z.infer<typeof messageSchema>['content'], index: number): string {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  return content
    .map((each, at) => {
      if (each.type !== 'text' || typeof each.text !== 'string') {
        throw new MessageInvalidError(
          `body.messages[${index}].content[${at}]: only text parts are taken, not ${JSON.stringify(each.type).slice(0, 40)}`,
        );
      }
      return each.text;
    })
    .join('\n');
}
