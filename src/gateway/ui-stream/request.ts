/**
 * The body `DefaultChatTransport` sends (`{ id, messages, trigger, messageId, ...body }`) read
 * as a turn: the chat, the new user text, and what the client showed before it. The transport
 * merges the app's own `body` fields in, so fields this route does not know are ignored.
 */
import { z } from 'zod';
import { MessageInvalidError } from '../../errors.js';
import { parseBody } from '../http.js';

/** One user or assistant message of the client's transcript, as plain text. */
export interface UiDialogueLine {
  readonly role: 'user' | 'assistant';
  readonly content: string;
}

export type UiTrigger = 'submit-message' | 'regenerate-message';

export interface UiChatRequest {
  /** The chat id: the session key within the tenant. */
  readonly chatId: string;
  readonly trigger: UiTrigger;
  /** The turn's message: the text parts of the last user message. */
  readonly message: string;
  /** The client's messages before that one (system messages and non-text parts left out). */
  readonly earlier: readonly UiDialogueLine[];
  /** The agent the body names (`agent`, or `model`), if any. */
  readonly agent: string | undefined;
}

const partSchema = z.looseObject({ type: z.string(), text: z.unknown().optional() });

const messageSchema = z.looseObject({
  role: z.enum(['system', 'user', 'assistant']),
  parts: z.array(partSchema),
});

const agentField = z.string().min(1).max(64).optional();

const uiChatSchema = z.looseObject({
  id: z.string().min(1, 'expected the chat id'),
  messages: z.array(messageSchema).min(1, 'expected at least one message').optional(),
  // What a client sends that forwards only the newest message (prepareSendMessagesRequest).
  message: messageSchema.optional(),
  trigger: z.enum(['submit-message', 'regenerate-message']).default('submit-message'),
  messageId: z.string().nullish(),
  agent: agentField,
  model: agentField,
});

const WHAT = 'a UI chat request takes { id, messages: [{ role, parts }, ...], trigger }';

/** Reads the body of `POST /v1/ui/chat`; `AGENTCELL_MESSAGE_INVALID` says what is wrong. */
export function readUiChatRequest(body: unknown): UiChatRequest {
  const parsed = parseBody(uiChatSchema, body, WHAT);
  const messages = parsed.messages ?? (parsed.message ? [parsed.message] : undefined);
  if (!messages) throw new MessageInvalidError(`${WHAT}: body.messages: expected an array`);
  if (parsed.agent !== undefined && parsed.model !== undefined && parsed.agent !== parsed.model) {
    throw new MessageInvalidError('body.agent and body.model name different agents; send one');
  }
  const last = messages.findLastIndex((message) => message.role === 'user');
  if (last < 0) throw new MessageInvalidError('body.messages: there is no user message');
  const message = textOf(messages[last]?.parts ?? [], last, true);
  if (message.trim() === '') {
    throw new MessageInvalidError(`body.messages[${last}]: the user message has no text`);
  }
  const earlier = messages.slice(0, last).flatMap((each, index): UiDialogueLine[] => {
    if (each.role === 'system') return [];
    const content = textOf(each.parts, index, false);
    return content === '' ? [] : [{ role: each.role, content }];
  });
  return {
    chatId: parsed.id,
    trigger: parsed.trigger,
    message,
    earlier,
    agent: parsed.agent ?? parsed.model,
  };
}

/**
 * The text parts joined by a newline. The agent reads text only: a file in the new message
 * is refused rather than dropped unseen; other parts (steps, tools, data) are the client's
 * record of earlier turns and are left out.
 */
function textOf(
  parts: readonly z.infer<typeof partSchema>[],
  index: number,
  isNew: boolean,
): string {
  const texts: string[] = [];
  parts.forEach((part, at) => {
    if (part.type === 'text' && typeof part.text === 'string') texts.push(part.text);
    else if (isNew && part.type === 'file') {
      throw new MessageInvalidError(
        `body.messages[${index}].parts[${at}]: files are not taken; send the message as text parts`,
      );
    }
  });
  return texts.join('\n');
}
