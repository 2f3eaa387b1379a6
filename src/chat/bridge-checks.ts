/**
 * The checks a chat bridge makes before it registers anything: its options, and that the Chat
 * SDK runs with `concurrency: 'concurrent'` (why: see bridge.ts).
 */
import { OptionsInvalidError } from '../errors.js';
import { assertTenant, CHAT_KEY_BY, type ChatKeyBy } from './session-key.js';

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function validate(options: {
  readonly tenant: string;
  readonly keyBy: ChatKeyBy;
  readonly agent: unknown;
}): void {
  assertTenant(options.tenant);
  if (!CHAT_KEY_BY.includes(options.keyBy)) {
    throw new OptionsInvalidError(
      `chat bridge keyBy ${JSON.stringify(options.keyBy)}: use ${CHAT_KEY_BY.join(', ')}`,
    );
  }
  if (typeof options.agent !== 'string' && typeof options.agent !== 'function') {
    throw new OptionsInvalidError('chat bridge agent: give an agent name or a function');
  }
}

/**
 * Throws unless the Chat SDK runs with `concurrency: 'concurrent'`. The SDK has no public
 * getter, so this reads the field its constructor sets; if a later SDK renames it, the check
 * is skipped (the documented requirement stands).
 */
export function assertConcurrent(chat: object): void {
  const strategy: unknown = Reflect.get(chat, '_concurrencyStrategy');
  if (typeof strategy === 'string' && strategy !== 'concurrent') {
    throw new OptionsInvalidError(
      `the Chat SDK runs with concurrency '${strategy}': create it with concurrency: 'concurrent', so the session mailbox orders messages and no thread lock can expire in the middle of a turn`,
    );
  }
}
