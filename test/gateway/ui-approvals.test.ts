/**
 * Approvals over the AI SDK UI message stream, driven by the `ai` package's own client: the
 * turn's stream ends with `tool-approval-request` (the tool part `approval-requested`), the
 * client records the answer as `addToolApprovalResponse` does and sends the transcript again
 * (`lastAssistantMessageIsCompleteWithApprovalResponses` says it is due), and the rest of the
 * turn continues the same assistant message.
 */
import {
  DefaultChatTransport,
  lastAssistantMessageIsCompleteWithApprovalResponses,
  readUIMessageStream,
  type UIMessage,
} from 'ai';
import { describe, expect, it } from 'vitest';
import { payTool } from './helpers.js';
import { useGateway, useWorld } from './setup.js';
import { userMessage } from './ui-chat-setup.js';

const ACME = 'acme-token-0123456789abcdef';
const { pay, paid } = payTool();

const world = useWorld(({ supervisor, agent, mock }) => {
  mock.setRules(
    [
      ['approve', 1],
      ['deny', 2],
    ].map(([match, amount]) => ({
      match: String(match),
      steps: [
        { toolCalls: [{ name: 'pay', arguments: { amount, card: '4242' } }] },
        { reply: `done ${match}` },
      ],
    })),
  );
  supervisor.register(
    'payer',
    agent('payer', { tools: [pay], approval: { tools: ['pay'], redact: ['card'] } }),
  );
});
const served = useGateway(world, { tenants: { [ACME]: { id: 'acme' } }, defaultAgent: 'payer' });

function transport(): DefaultChatTransport<UIMessage> {
  return new DefaultChatTransport<UIMessage>({
    api: `${served.server.url}/v1/ui/chat`,
    headers: { authorization: `Bearer ${ACME}` },
  });
}

/** Sends the transcript; the answer is a new message, or continues `continuing`. */
async function request(
  chatId: string,
  messages: UIMessage[],
  continuing?: UIMessage,
): Promise<UIMessage> {
  const stream = await transport().sendMessages({
    chatId,
    messages,
    trigger: 'submit-message',
    messageId: continuing?.id,
    abortSignal: undefined,
  });
  let message: UIMessage | undefined;
  const errors: unknown[] = [];
  for await (const snapshot of readUIMessageStream({
    stream,
    ...(continuing && { message: continuing }),
    onError: (error) => errors.push(error),
  })) {
    message = snapshot;
  }
  if (errors.length > 0) throw errors[0];
  if (!message) throw new Error('the stream built no message');
  return message;
}

type ToolPart = Extract<UIMessage['parts'][number], { type: `tool-${string}` }>;

function payPart(message: UIMessage): ToolPart {
  const part = message.parts.find((each) => each.type === 'tool-pay');
  if (!part) throw new Error(`no tool-pay part in ${JSON.stringify(message.parts)}`);
  return part as ToolPart;
}

/** What `addToolApprovalResponse({ id, approved, reason })` does to the client's transcript. */
function respond(message: UIMessage, approved: boolean, reason?: string): UIMessage {
  return {
    ...message,
    parts: message.parts.map((part) => {
      const tool = part as ToolPart;
      if (tool.state !== 'approval-requested') return part;
      return {
        ...tool,
        state: 'approval-responded',
        approval: { id: tool.approval.id, approved, ...(reason && { reason }) },
      } as ToolPart;
    }),
  };
}

describe('approvals over the UI message stream', () => {
  it.each([
    ['approve', true, 'output-available'],
    ['deny', false, 'output-denied'],
  ] as const)(
    '%s: the stream asks, the client answers, the same message goes on',
    async (word, approved, state) => {
      const chatId = `ui-appr-${word}`;
      const user = userMessage(`${word} it`);
      const asked = await request(chatId, [user]);
      const part = payPart(asked);
      expect(part.state).toBe('approval-requested');
      expect(part.input).toEqual({ amount: approved ? 1 : 2, card: '[redacted]' });
      expect(paid).not.toContain(approved ? 1 : 2);

      const answered = respond(asked, approved, approved ? undefined : 'too much');
      const transcript = [user, answered];
      expect(lastAssistantMessageIsCompleteWithApprovalResponses({ messages: transcript })).toBe(
        true,
      );
      const rest = await request(chatId, transcript, answered);

      expect(rest.id).toBe(asked.id);
      expect(payPart(rest).state).toBe(state);
      const texts = rest.parts.flatMap((each) => (each.type === 'text' ? [each.text] : []));
      expect(texts.join('')).toBe(`done ${word}`);
      const amount = approved ? 1 : 2;
      expect(paid.filter((each) => each === amount)).toHaveLength(approved ? 1 : 0);
    },
  );

  it('answering an approval the session does not have is a typed error, as JSON', async () => {
    const user = userMessage('approve it');
    const stale = respond(
      {
        id: 'stale',
        role: 'assistant',
        parts: [
          {
            type: 'tool-pay',
            toolCallId: 'call-x',
            state: 'approval-requested',
            input: {},
            approval: { id: 'no-such-approval' },
          } as ToolPart,
        ],
      },
      true,
    );
    const response = await fetch(`${served.server.url}/v1/ui/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ACME}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'ui-appr-approve', messages: [user, stale] }),
    });
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({
      error: { code: 'AGENTCELL_APPROVAL_NOT_FOUND' },
    });
  });
});
