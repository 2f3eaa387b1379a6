/**
 * The history a UI chat's turn runs on. The session's journal is the history; the client's
 * transcript only says which message a regenerate is for, and stands in for a history the
 * session does not have.
 */
import type { ChatMessage } from '../../agent/messages.js';
import type { UiChatRequest } from './request.js';

/** The replacement history the turn runs on, or undefined to go on from the journal. */
export function historyFor(
  request: Pick<UiChatRequest, 'trigger' | 'message' | 'earlier'>,
  journal: readonly ChatMessage[],
): ChatMessage[] | undefined {
  if (request.trigger === 'regenerate-message') {
    const at = regeneratedTurn(request, journal);
    if (at !== undefined) return journal.slice(0, at);
  }
  if (journal.length === 0 && request.earlier.length > 0) return [...request.earlier];
  return undefined;
}

/**
 * Where the journaled turn that answered the message being regenerated starts. A client that
 * sends its transcript says which user message it is by its position; one that sends only the
 * newest message means the last. The journaled message must be that text (within the agent's
 * prompt template): when the turn to regenerate failed, nothing of it was journaled, and the
 * turn before it must stay.
 */
function regeneratedTurn(
  request: Pick<UiChatRequest, 'message' | 'earlier'>,
  journal: readonly ChatMessage[],
): number | undefined {
  const users = journal.flatMap((message, index) => (message.role === 'user' ? [index] : []));
  const before = request.earlier.filter((line) => line.role === 'user').length;
  const at = request.earlier.length > 0 ? users[before] : users.at(-1);
  if (at === undefined) return undefined;
  return journal[at]?.content.includes(request.message) ? at : undefined;
}
