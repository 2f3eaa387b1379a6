/** Session keys for chat conversations: always valid, namespaced by tenant, never colliding. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ChatKeyParts, chatSessionKey, escapeKeySegment } from '../../src/chat/index.js';
import { assertSessionKey } from '../../src/runtime/session-key.js';

const base: ChatKeyParts = {
  tenant: 'acme',
  platform: 'slack',
  keyBy: 'thread',
  threadId: 'slack:C42:1700000000.000100',
  channelId: 'slack:C42',
  userId: 'U7',
};

describe('chat session keys', () => {
  it('reads <tenant>:<platform>:<keyBy>:<ids> for each keyBy', () => {
    expect(chatSessionKey(base)).toBe('acme:slack:thread:C42:1700000000.000100');
    expect(chatSessionKey({ ...base, keyBy: 'chat' })).toBe('acme:slack:chat:C42');
    expect(chatSessionKey({ ...base, keyBy: 'user' })).toBe('acme:slack:user:U7');
  });

  it('escapes what session keys forbid, and the separator in tenant and platform', () => {
    const key = chatSessionKey({
      ...base,
      tenant: 'a:b/c',
      keyBy: 'user',
      userId: '../..\\evil\u0000id%',
    });
    expect(key).toBe('a%3Ab%2Fc:slack:user:.%2E%2F.%2E%5Cevil%00id%25');
    expect(() => assertSessionKey(key)).not.toThrow();
  });

  it('keeps an escaped segment distinct from the text it escapes to', () => {
    expect(escapeKeySegment('a/b', false)).not.toBe(escapeKeySegment('a%2Fb', false));
    expect(escapeKeySegment('a..b', false)).not.toBe(escapeKeySegment('a.%2Eb', false));
  });

  it('digests ids too long for a key', () => {
    const key = chatSessionKey({ ...base, keyBy: 'user', userId: 'x'.repeat(400) });
    expect(key).toMatch(/^acme:slack:user:#[0-9a-f]{64}$/);
    expect(() => assertSessionKey(key)).not.toThrow();
    const slashes = chatSessionKey({ ...base, tenant: '/'.repeat(64), platform: ':'.repeat(30) });
    expect(slashes).toMatch(/^#[0-9a-f]{64}$/);
  });

  it('makes a valid key from any ids, and different ids or tenants make different keys', () => {
    const parts = fc.record({
      tenant: fc.string({ unit: 'binary', minLength: 1, maxLength: 64 }),
      userId: fc.string({ unit: 'binary', maxLength: 120 }),
    });
    fc.assert(
      fc.property(parts, parts, (a, b) => {
        const keyA = chatSessionKey({ ...base, keyBy: 'user', ...a });
        const keyB = chatSessionKey({ ...base, keyBy: 'user', ...b });
        assertSessionKey(keyA);
        expect(keyA === keyB).toBe(a.tenant === b.tenant && a.userId === b.userId);
      }),
    );
  });
});
