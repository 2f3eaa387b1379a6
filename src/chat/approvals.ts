/**
 * Approvals in a chat: a turn that waits for a person posts a card with Approve and Deny
 * buttons (on platforms without buttons the card's fallback text shows the command), and a
 * click or a reply `approve <id>` / `deny <id> [reason]` in the conversation answers it. The
 * answer goes to the session the clicking or replying user's message maps to, so nobody
 * outside that conversation (another thread, another tenant's bridge) can answer it.
 */
import { Actions, Button, Card, type CardElement, CardText } from 'chat';
import type { TurnEvent } from '../agent/turn-events.js';

// Short: Telegram carries the action id and the approval id in 64 bytes of callback data.
export const APPROVE_ACTION = 'ac:y';
export const DENY_ACTION = 'ac:n';

export type ApprovalEvent = Extract<TurnEvent, { type: 'approval-required' }>;

/** A person's answer typed as a reply. */
export interface ApprovalCommand {
  readonly approvalId: string;
  readonly approved: boolean;
  readonly reason?: string | undefined;
}

const COMMAND = /^(approve|deny)\s+([0-9a-f-]{8,64})(?:\s+([\s\S]+))?$/i;

/** The answer `text` gives, if it is an approval command. */
export function approvalCommand(text: string): ApprovalCommand | undefined {
  const match = COMMAND.exec(text.trim());
  if (!match?.[1] || !match[2]) return undefined;
  const reason = match[3]?.trim();
  return {
    approvalId: match[2].toLowerCase(),
    approved: match[1].toLowerCase() === 'approve',
    ...(reason && { reason: reason.slice(0, 1000) }),
  };
}

/** The card asking for an approval: the tool, its (redacted) arguments, two buttons. */
export function approvalCard(event: ApprovalEvent): CardElement {
  return Card({
    title: `Approve ${event.name}?`,
    children: [
      CardText(callText(event)),
      CardText(commandText(event)),
      Actions([
        Button({ id: APPROVE_ACTION, label: 'Approve', style: 'primary', value: event.approvalId }),
        Button({ id: DENY_ACTION, label: 'Deny', style: 'danger', value: event.approvalId }),
      ]),
    ],
  });
}

/** The same request as plain text, where a card cannot be posted. */
export function approvalText(event: ApprovalEvent): string {
  return `Approve ${event.name}? ${callText(event)}\n${commandText(event)}`;
}

function callText(event: ApprovalEvent): string {
  const args = JSON.stringify(event.arguments) ?? '';
  return `\`${event.name}\` ${args.length > 500 ? `${args.slice(0, 499)}…` : args}`;
}

function commandText(event: ApprovalEvent): string {
  return `Reply \`approve ${event.approvalId}\` or \`deny ${event.approvalId} <reason>\`.`;
}

/** What is posted once an answer is recorded. */
export function answeredText(command: ApprovalCommand, who: string): string {
  const verdict = command.approved ? '✅ Approved' : '🚫 Denied';
  return `${verdict} by ${who}${command.reason ? `: ${command.reason}` : ''}`;
}

/** The turn's events without its approval requests, each handed to `ask` (awaited) instead. */
export async function* askInChat(
  events: AsyncIterable<TurnEvent>,
  ask: (event: ApprovalEvent) => Promise<void>,
): AsyncGenerator<TurnEvent> {
  for await (const event of events) {
    if (event.type === 'approval-required') await ask(event);
    else yield event;
  }
}
