/**
 * A `POST /v1/responses` body read as a turn: the agent (`model`), the new user text, the items
 * the client adds before it, and what binds the session (`conversation`, `previous_response_id`,
 * or the fields the Chat Completions route reads keys from). Sampling parameters, `instructions`
 * and client `tools` are accepted and ignored: the agent's own config decides, and its tools run
 * inside the session.
 */
import { z } from 'zod';
import { MessageInvalidError } from '../../errors.js';
import { parseBody } from '../http.js';
import type { DialogueLine } from './request.js';
import type { SourceFields } from './session-source.js';

export interface ResponseTurnRequest {
  /** The agent's name. */
  readonly model: string;
  readonly stream: boolean;
  /** Keep the response for `GET /v1/responses/:id` and `previous_response_id`. */
  readonly store: boolean;
  /** The turn's message: the trailing user messages of `input`, joined by a blank line. */
  readonly message: string;
  /** Items of `input` before them: new to the conversation, added ahead of the turn. */
  readonly earlier: readonly DialogueLine[];
  readonly conversation: string | undefined;
  readonly previousResponseId: string | undefined;
  /** The body fields a session key may come from. */
  readonly fields: SourceFields;
}

const part = z.looseObject({ type: z.string(), text: z.string().optional() });

const itemSchema = z.looseObject({
  type: z.string().optional(),
  role: z.string().optional(),
  content: z.union([z.string(), z.array(part)]).optional(),
});

const keyField = z.string().max(1_024).nullish();
const idField = z.string().trim().min(1, 'expected a non-empty id').max(1_024);

const responseRequestSchema = z.looseObject({
  model: z.string().min(1, 'name an agent (GET /v1/models lists them)'),
  input: z.union([z.string(), z.array(itemSchema).min(1, 'expected at least one input item')]),
  stream: z.boolean().nullish(),
  store: z.boolean().nullish(),
  background: z.literal(false, 'background responses are not served').nullish(),
  conversation: z.union([idField, z.looseObject({ id: idField })]).nullish(),
  previous_response_id: idField.nullish(),
  session_id: keyField,
  prompt_cache_key: keyField,
  user: keyField,
});

/** The text parts an input item may hold: what a user writes, and what an answer said. */
const TEXT_PARTS = new Set(['input_text', 'output_text', 'text']);

/** Reads the body of `POST /v1/responses`; `AGENTCELL_MESSAGE_INVALID` says what is wrong. */
export function readResponseRequest(body: unknown): ResponseTurnRequest {
  const parsed = parseBody(
    responseRequestSchema,
    body,
    'a response takes { model, input: string | [{ role, content }, ...], stream?, previous_response_id?, conversation? }',
  );
  const lines = typeof parsed.input === 'string' ? [userLine(parsed.input)] : items(parsed.input);
  let first = lines.length;
  while (first > 0 && lines[first - 1]?.role === 'user') first--;
  if (first === lines.length) {
    throw new MessageInvalidError('body.input: the last message must be from the user');
  }
  const message = lines
    .slice(first)
    .map((line) => line.content)
    .join('\n\n');
  if (message.trim() === '') throw new MessageInvalidError('body.input: the user message is empty');
  if (parsed.conversation != null && parsed.previous_response_id != null) {
    throw new MessageInvalidError(
      'send either conversation or previous_response_id, not both: each names the conversation',
    );
  }
  const conversation = parsed.conversation;
  return {
    model: parsed.model,
    stream: parsed.stream === true,
    store: parsed.store !== false,
    message,
    earlier: lines.slice(0, first),
    conversation: typeof conversation === 'string' ? conversation : conversation?.id,
    previousResponseId: parsed.previous_response_id ?? undefined,
    fields: {
      session_id: parsed.session_id,
      prompt_cache_key: parsed.prompt_cache_key,
      user: parsed.user,
    },
  };
}

function userLine(content: string): DialogueLine {
  return { role: 'user', content };
}

function items(input: readonly z.infer<typeof itemSchema>[]): DialogueLine[] {
  const lines: DialogueLine[] = [];
  input.forEach((item, index) => {
    const at = `body.input[${index}]`;
    if (item.type !== undefined && item.type !== 'message') {
      throw new MessageInvalidError(
        `${at}: items of type ${JSON.stringify(item.type).slice(0, 40)} are not taken; the agent runs its tools itself, so send messages only`,
      );
    }
    const { role } = item;
    // The agent's own instructions stand: a client's system prompt does not replace them.
    if (role === 'system' || role === 'developer') return;
    if (role !== 'user' && role !== 'assistant') {
      throw new MessageInvalidError(
        `${at}: expected role "user" or "assistant", got ${JSON.stringify(role ?? null).slice(0, 40)}`,
      );
    }
    lines.push({ role, content: textOf(item.content, at) });
  });
  return lines;
}

/** Text content as one string: text parts joined by a newline; other parts are refused. */
function textOf(content: z.infer<typeof itemSchema>['content'], at: string): string {
  if (typeof content === 'string') return content;
  if (content === undefined) throw new MessageInvalidError(`${at}: the message has no content`);
  return content
    .map((each, index) => {
      if (!TEXT_PARTS.has(each.type) || typeof each.text !== 'string') {
        throw new MessageInvalidError(
          `${at}.content[${index}]: only text parts are taken, not ${JSON.stringify(each.type).slice(0, 40)}`,
        );
      }
      return each.text;
    })
    .join('\n');
}
