/**
 * `agentcell/chat`: Slack, Teams, Google Chat, Discord, Telegram and the other platforms of the
 * Chat SDK (npm `chat` and its `@chat-adapter/*` packages), each conversation in its own session.
 *
 * @example
 * import { bridgeChat } from 'agentcell/chat';
 * const chat = new Chat({ userName: 'support', adapters: { slack }, state, concurrency: 'concurrent' });
 * bridgeChat(chat, supervisor, { agent: 'support', tenant: 'acme', keyBy: 'thread' });
 */
export {
  type BridgeableChat,
  bridgeChat,
  type ChatBridge,
  type ChatBridgeErrorContext,
  type ChatBridgeOptions,
} from './bridge.js';
export { type ChatTurnFailure, defaultFailureText, toChatFailure } from './failure.js';
export {
  type ChatKeyBy,
  type ChatKeyParts,
  chatSessionKey,
  escapeKeySegment,
} from './session-key.js';
