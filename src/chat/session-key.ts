/**
 * Session keys for chat conversations: `<tenant>:<platform>:<keyBy>:<ids>`, escaped so that any
 * id a platform sends makes a valid session key (1–256 printable characters, no "/", "\" or
 * "..") and no tenant can name another tenant's sessions.
 */
import { createHash } from 'node:crypto';
import { OptionsInvalidError } from '../errors.js';

/** Which conversations share a session: one per user, one per chat (channel), or one per thread. */
export type ChatKeyBy = 'user' | 'chat' | 'thread';

export const CHAT_KEY_BY: readonly ChatKeyBy[] = ['user', 'chat', 'thread'];

/** The platform ids a session key is made of (the Chat SDK's normalized ids). */
export interface ChatKeyParts {
  readonly tenant: string;
  /** The adapter name, e.g. `slack` or `telegram`. */
  readonly platform: string;
  readonly keyBy: ChatKeyBy;
  /** The Chat SDK thread id, e.g. `slack:C42:1700000000.000100`. */
  readonly threadId: string;
  /** The Chat SDK channel id, e.g. `slack:C42`. */
  readonly channelId: string;
  /** The platform user id of the message's author. */
  readonly userId: string;
}

const MAX_KEY_LENGTH = 256;
const MAX_TENANT_LENGTH = 64;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Percent-escapes what session keys forbid ("/", "\", control characters, the second "." of
 * "..") and "%" itself, so two different ids never escape to the same text. With
 * `separator`, ":" is escaped too: tenant and platform are single segments.
 */
export function escapeKeySegment(text: string, separator: boolean): string {
  let escaped = '';
  for (const char of text) {
    if (
      char === '%' ||
      char === '/' ||
      char === '\\' ||
      (separator && char === ':') ||
      CONTROL.test(char)
    ) {
      escaped += encodeURIComponent(char);
    } else {
      escaped += char;
    }
  }
  return escaped.replaceAll('..', '.%2E');
}

/** Throws unless `tenant` is 1 to 64 printable characters. */
export function assertTenant(tenant: unknown): asserts tenant is string {
  if (
    typeof tenant !== 'string' ||
    tenant.length === 0 ||
    tenant.length > MAX_TENANT_LENGTH ||
    CONTROL.test(tenant)
  ) {
    throw new OptionsInvalidError(
      `chat bridge tenant ${JSON.stringify(tenant)}: use 1 to ${MAX_TENANT_LENGTH} printable characters`,
    );
  }
}

/** `id` without its `<platform>:` prefix (Chat SDK thread and channel ids carry one). */
function withoutPlatform(id: string, platform: string): string {
  return id.startsWith(`${platform}:`) ? id.slice(platform.length + 1) : id;
}

/**
 * The session key of a chat message.
 *
 * @example
 * chatSessionKey({ tenant: 'acme', platform: 'slack', keyBy: 'thread',
 *   threadId: 'slack:C42:1700000000.000100', channelId: 'slack:C42', userId: 'U7' });
 * // 'acme:slack:thread:C42:1700000000.000100'
 */
export function chatSessionKey(parts: ChatKeyParts): string {
  const ids =
    parts.keyBy === 'thread'
      ? withoutPlatform(parts.threadId, parts.platform)
      : parts.keyBy === 'chat'
        ? withoutPlatform(parts.channelId, parts.platform)
        : parts.userId;
  const prefix = [
    escapeKeySegment(parts.tenant, true),
    escapeKeySegment(parts.platform, true),
    parts.keyBy,
  ].join(':');
  const key = `${prefix}:${escapeKeySegment(ids, false)}`;
  if (key.length <= MAX_KEY_LENGTH) return key;
  // Ids too long for a key: a digest keeps the key stable and distinct.
  const digested = `${prefix}:#${digest([ids])}`;
  if (digested.length <= MAX_KEY_LENGTH) return digested;
  return `#${digest([parts.tenant, parts.platform, parts.keyBy, ids])}`;
}

function digest(values: readonly string[]): string {
  return createHash('sha256').update(JSON.stringify(values)).digest('hex');
}
