/** Which pool threads count as blocked, from their heartbeats (times given, no clock). */
import { describe, expect, it } from 'vitest';
import { ThreadWatch } from '../../src/runtime/placement/thread-watch.js';

describe('ThreadWatch', () => {
  it('a thread is not responsive before its first beat', () => {
    const watch = new ThreadWatch(250);
    expect(watch.responsive(1, 0)).toBe(false);
    expect(watch.beat(1, 0)).toBe(true);
    expect(watch.responsive(1, 10)).toBe(true);
  });

  it('a thread silent past the limit while another beats is blocked, and unblocks on its next beat', () => {
    const watch = new ThreadWatch(250);
    watch.beat(1, 0);
    watch.beat(2, 0);
    for (let at = 50; at <= 400; at += 50) expect(watch.beat(2, at)).toBe(false);
    expect(watch.responsive(1, 400)).toBe(false);
    expect(watch.responsive(2, 400)).toBe(true);
    expect(watch.blocked(400)).toEqual([1]);
    expect(watch.beat(1, 410)).toBe(true);
    expect(watch.blocked(410)).toEqual([]);
  });

  it('a host that was held up itself does not call every thread blocked', () => {
    const watch = new ThreadWatch(250);
    watch.beat(1, 0);
    watch.beat(2, 10);
    // Nothing was heard for a second: the host's own event loop was busy, beats wait unread.
    expect(watch.blocked(1_000)).toEqual([]);
    expect(watch.responsive(1, 1_000)).toBe(true);
  });

  it('forgets threads that are gone', () => {
    const watch = new ThreadWatch(250);
    watch.beat(1, 0);
    watch.beat(2, 0);
    watch.beat(2, 500);
    watch.keepOnly([2]);
    expect(watch.blocked(500)).toEqual([]);
    expect(watch.responsive(1, 500)).toBe(false);
  });
});
