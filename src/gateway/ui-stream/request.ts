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
  /**
   * Answers the client gave to approval requests (`addToolApprovalResponse`): the tool parts
   * of its last message, an assistant one, in state `approval-responded`. With any, the
   * request continues the paused turn instead of sending a message.
   */
  readonly approvals: readonly UiApprovalResponse[];
}

export interface UiApprovalResponse {
  readonly approvalId: string;
  readonly toolCallId: string;
  readonly approved: boolean;
  readonly reason?: string | undefined;
}

const approvalPartSchema = z.looseObject({
  state: z.literal('approval-responded'),
  toolCallId: z.string().min(1),
  approval: z.looseObject({
    id: z.string().min(1).max(200),
    approved: z.boolean(),
    reason: z.string().max(1000).optional(),
  }),
});

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
    approvals: messages.at(-1)?.role === 'assistant' ? approvalsOf(messages.at(-1)?.parts) : [],
  };
}

/** The approval answers among the parts of the client's last (assistant) message. */
function approvalsOf(parts: readonly z.infer<typeof partSchema>[] = []): UiApprovalResponse[] {
  return parts.flatMap((part, at) => {
    if ((part as { state?: unknown }).state !== 'approval-responded') return [];
    const parsed = approvalPartSchema.safeParse(part);
    if (!parsed.success) {
      throw new MessageInvalidError(
        `body.messages[-1].parts[${at}]: an approval response takes { toolCallId, approval: { id, approved, reason? } }`,
      );
    }
    const { toolCallId, approval } = parsed.data;
    return [
      { approvalId: approval.id, toolCallId, approved: approval.approved, reason: approval.reason },
    ];
  });
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
