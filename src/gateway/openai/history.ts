/**
 * Who owns a conversation's history when a Chat Completions client resends its transcript on
 * every request: the session's journal (`server`) or the request (`client`).
 *
 * The two transcripts are compared as dialogues: user texts and the assistant's final answers,
 * consecutive messages of one role joined by a blank line (as the trailing user messages of a
 * request become one turn), blanks at either end ignored. The journal's tool calls and results
 * are not part of it: clients never saw them.
 *
 * - `server`: the client's earlier messages must be the end of the journal's dialogue (a client
 *   may drop old messages, never change or add them), or none at all; otherwise the request is
 *   refused with `AGENTCELL_HISTORY_CONFLICT` and nothing runs. A session with an empty journal
 *   adopts the client's earlier messages as its history.
 * - `client`: the client's earlier messages are the history of the turn. When they already are
 *   the journal's dialogue the journal is kept as it is (tool calls included); otherwise the
 *   session starts a new conversation from them (edit, regenerate, another chat of one user).
 */
import type { ChatMessage } from '../../agent/messages.js';
import { HistoryConflictError } from '../../errors.js';
import type { DialogueLine } from './request.js';

export type HistoryMode = 'server' | 'client';

/** The header a request overrides the history mode with. */
export const HISTORY_HEADER = 'x-agentcell-history';

/**
 * The replacement history the turn runs on, or undefined to go on from the journal. Throws
 * `AGENTCELL_HISTORY_CONFLICT` when the journal owns the history and the client contradicts it.
 */
export function planHistory(
  mode: HistoryMode,
  earlier: readonly DialogueLine[],
  journal: readonly ChatMessage[],
): ChatMessage[] | undefined {
  const theirs = dialogue(earlier);
  const ours = dialogue(journalLines(journal));
  if (mode === 'client') return sameLines(theirs, ours) ? undefined : [...earlier];
  if (theirs.length === 0) return undefined;
  if (ours.length === 0) return [...earlier];
  const tail = ours.slice(ours.length - theirs.length);
  if (theirs.length <= ours.length && sameLines(theirs, tail)) return undefined;
  throw new HistoryConflictError(
    `the request's earlier messages (${theirs.length} after joining each run of one role) are not the end of the session's conversation (${ours.length})`,
    { details: { sent: theirs.length, journaled: ours.length } },
  );
}

/** The user texts and final answers of a journaled conversation. */
function journalLines(journal: readonly ChatMessage[]): DialogueLine[] {
  return journal.flatMap((message): DialogueLine[] => {
    if (message.role === 'user') return [{ role: 'user', content: message.content }];
    if (message.role === 'assistant' && (message.toolCalls?.length ?? 0) === 0) {
      return [{ role: 'assistant', content: message.content }];
    }
    return [];
  });
}

/** Consecutive lines of one role joined, each trimmed. */
function dialogue(lines: readonly DialogueLine[]): DialogueLine[] {
  const joined: DialogueLine[] = [];
  for (const line of lines) {
    const last = joined.at(-1);
    if (last?.role === line.role) {
      joined[joined.length - 1] = {
        role: line.role,
        content: `${last.content}\n\n${line.content}`,
      };
    } else joined.push(line);
  }
  return joined.map((line) => ({ role: line.role, content: line.content.trim() }));
}

function sameLines(a: readonly DialogueLine[], b: readonly DialogueLine[]): boolean {
  return (
    a.length === b.length &&
    a.every((line, index) => line.role === b[index]?.role && line.content === b[index]?.content)
  );
}
