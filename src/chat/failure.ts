/**
 * What a chat may see of a failed turn: the code and message of errors the catalogue marks
 * public, one generic line for everything else, so no stack, path or secret reaches a channel.
 */
import { type AgentcellErrorCode, errorCatalogue, isAgentcellError } from '../errors.js';

/** A failed turn as the chat bridge reports it. */
export interface ChatTurnFailure {
  readonly code: AgentcellErrorCode;
  /** The error's message when it is public (the session key replaced), else a generic one. */
  readonly message: string;
  /** Whether code and message come from a public error. */
  readonly public: boolean;
  /** The session key, when one was computed. */
  readonly key: string | undefined;
}

const MAX_MESSAGE_CHARS = 300;
const GENERIC = 'Something went wrong while answering; please try again later.';

export function toChatFailure(error: unknown, key: string | undefined): ChatTurnFailure {
  if (!isAgentcellError(error) || !errorCatalogue[error.code].public) {
    return { code: 'AGENTCELL_INTERNAL', message: GENERIC, public: false, key };
  }
  // The key names the tenant's namespace; the chat only needs to know it was its conversation.
  const text = key ? error.message.replaceAll(key, 'this conversation') : error.message;
  const message =
    text.length > MAX_MESSAGE_CHARS ? `${text.slice(0, MAX_MESSAGE_CHARS - 1)}…` : text;
  return { code: error.code, message, public: true, key };
}

/** The default text posted for a failed turn. */
export function defaultFailureText(failure: ChatTurnFailure): string {
  return failure.public
    ? `⚠️ ${failure.code}: ${failure.message}`
    : `⚠️ ${failure.message} (${failure.code})`;
}
