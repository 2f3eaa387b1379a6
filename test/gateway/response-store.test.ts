/**
 * The store of completed responses: per tenant, bounded with the oldest dropped first, and the
 * mark of each session's latest response that keeps a conversation from being forked.
 */
import { describe, expect, it } from 'vitest';
import { ResponseStore, type StoredResponse } from '../../src/gateway/openai/response-store.js';

const stored = (id: string, namespaced = 'acme:s', tenantId = 'acme'): StoredResponse => ({
  tenantId,
  key: namespaced.slice(namespaced.indexOf(':') + 1),
  namespaced,
  conversation: undefined,
  body: { id },
});

describe('ResponseStore', () => {
  it('answers a response to its tenant only', () => {
    const store = new ResponseStore(10);
    store.put(stored('r1'));
    expect(store.get('acme', 'r1')?.body.id).toBe('r1');
    expect(store.get('globex', 'r1')).toBeUndefined();
    expect(store.get('acme', 'r2')).toBeUndefined();
  });

  it('drops the oldest by creation, even one read since', () => {
    const store = new ResponseStore(2);
    store.put(stored('r1'));
    store.put(stored('r2'));
    store.get('acme', 'r1');
    store.put(stored('r3'));
    expect(store.size).toBe(2);
    expect(store.get('acme', 'r1')).toBeUndefined();
    expect(store.get('acme', 'r3')).toBeDefined();
  });

  it('keeps nothing with a bound of 0', () => {
    const store = new ResponseStore(0);
    store.put(stored('r1'));
    expect(store.size).toBe(0);
  });

  it('knows the latest response of each session, and undoes a mark that failed', () => {
    const store = new ResponseStore(10);
    expect(store.isLatest('acme:s', 'r1')).toBe(true);
    store.begin('acme:s', 'r1');
    store.put(stored('r1'));
    store.begin('acme:t', 't1');
    const undo = store.begin('acme:s', 'r2');
    expect(store.isLatest('acme:s', 'r1')).toBe(false);
    expect(store.isLatest('acme:s', 'r2')).toBe(true);
    expect(store.isLatest('acme:t', 't1')).toBe(true);
    undo();
    expect(store.isLatest('acme:s', 'r1')).toBe(true);
  });

  it('forgets a session’s mark with its latest response', () => {
    const store = new ResponseStore(1);
    store.begin('acme:s', 'r1');
    store.put(stored('r1'));
    store.begin('acme:s', 'r2');
    store.put(stored('r2'));
    store.put(stored('x1', 'acme:x'));
    // r2 is gone, and nothing of its session is left to continue: no mark is needed.
    expect(store.get('acme', 'r2')).toBeUndefined();
    expect(store.isLatest('acme:s', 'r1')).toBe(true);
  });
});
