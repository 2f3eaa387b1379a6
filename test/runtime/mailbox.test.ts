/**
 * The mailbox on its own: one task at a time in order, a bound with both overflow policies,
 * clear() that settles everyone, and `first` that jumps the queue.
 */
import { describe, expect, it } from 'vitest';
import { Mailbox, type MailboxOptions } from '../../src/runtime/mailbox.js';
import { deferred, rejectionOf, track } from './helpers.js';

function mailbox(options: Partial<MailboxOptions> = {}): Mailbox {
  return new Mailbox({ capacity: 10, overflow: 'rejectNewest', name: 'unit', ...options });
}

/** A task the test finishes by hand, recording when it started. */
function controlled(name: string, started: string[]) {
  const done = deferred<string>();
  return {
    task: (waitedMs: number) => {
      expect(waitedMs).toBeGreaterThanOrEqual(0);
      started.push(name);
      return done.promise;
    },
    finish: () => done.resolve(name),
  };
}

/** Lets queued microtasks and p-queue's bookkeeping run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('Mailbox', () => {
  it('runs one task at a time, in the order they were added', async () => {
    const box = mailbox();
    const started: string[] = [];
    const a = controlled('a', started);
    const b = controlled('b', started);
    const c = controlled('c', started);
    const results = [box.add(a.task), box.add(b.task), box.add(c.task)];
    await settle();
    expect(started).toEqual(['a']);
    expect(box.isBusy).toBe(true);
    expect(box.size).toBe(2);
    c.finish(); // finishing a waiting task's work early changes nothing: c has not started
    await settle();
    expect(started).toEqual(['a']);
    a.finish();
    await settle();
    expect(started).toEqual(['a', 'b']);
    expect(box.size).toBe(1);
    b.finish();
    expect(await Promise.all(results)).toEqual(['a', 'b', 'c']);
    await box.onIdle();
    expect(box.isBusy).toBe(false);
    expect(box.size).toBe(0);
  });

  it('passes a task failure to its caller and goes on with the next', async () => {
    const box = mailbox();
    const failing = box.add(async () => {
      throw new Error('task failed');
    });
    const next = box.add(async () => 'next');
    expect((await rejectionOf(failing)).message).toBe('task failed');
    expect(await next).toBe('next');
  });

  it('rejects the newest with AGENTCELL_MAILBOX_FULL past its capacity (rejectNewest)', async () => {
    const box = mailbox({ capacity: 2 });
    const started: string[] = [];
    const running = controlled('running', started);
    const first = box.add(running.task);
    await settle();
    const waiting = [box.add(async () => 'w1'), box.add(async () => 'w2')];
    const error = await rejectionOf(box.add(async () => 'w3'));
    expect(error.code).toBe('AGENTCELL_MAILBOX_FULL');
    expect(box.size).toBe(2);
    running.finish();
    expect(await Promise.all([first, ...waiting])).toEqual(['running', 'w1', 'w2']);
  });

  it('settles the oldest waiting with AGENTCELL_MESSAGE_DROPPED and takes the newest (dropOldest)', async () => {
    const box = mailbox({ capacity: 2, overflow: 'dropOldest' });
    const started: string[] = [];
    const running = controlled('running', started);
    const first = box.add(running.task);
    await settle();
    let droppedRan = false;
    const oldest = box.add(async () => {
      droppedRan = true;
      return 'oldest';
    });
    const middle = box.add(async () => 'middle');
    const newest = box.add(async () => 'newest');
    expect((await rejectionOf(oldest)).code).toBe('AGENTCELL_MESSAGE_DROPPED');
    expect(box.size).toBe(2);
    running.finish();
    expect(await Promise.all([first, middle, newest])).toEqual(['running', 'middle', 'newest']);
    await box.onIdle();
    expect(droppedRan).toBe(false);
  });

  it('with capacity 0 accepts only what can run now', async () => {
    const box = mailbox({ capacity: 0, overflow: 'dropOldest' });
    const started: string[] = [];
    const running = controlled('running', started);
    const first = track(box.add(running.task));
    await settle();
    expect(started).toEqual(['running']);
    expect((await rejectionOf(box.add(async () => 'more'))).code).toBe('AGENTCELL_MAILBOX_FULL');
    running.finish();
    expect(await first.promise).toBe('running');
  });

  it('clear() settles every waiting task with the error, lets the running one finish, and never runs the cleared ones', async () => {
    const box = mailbox();
    const started: string[] = [];
    const running = controlled('running', started);
    const first = track(box.add(running.task));
    await settle();
    const cleared = [1, 2, 3].map((i) => box.add(async () => `cleared ${i}`));
    box.clear(new Error('cleared'));
    expect(box.size).toBe(0);
    for (const promise of cleared) expect((await rejectionOf(promise)).message).toBe('cleared');
    expect(first.settled).toBe(false);
    running.finish();
    expect(await first.promise).toBe('running');
    await box.onIdle();
    expect(started).toEqual(['running']);
  });

  it('first: true puts a task ahead of every waiting one, even when the mailbox is full', async () => {
    const box = mailbox({ capacity: 2 });
    const order: string[] = [];
    const started: string[] = [];
    const running = controlled('running', started);
    const first = box.add(running.task);
    await settle();
    const record = (name: string) => async () => {
      order.push(name);
      return name;
    };
    const waiting = [box.add(record('b')), box.add(record('c'))];
    const jumped = box.add(record('steered'), { first: true });
    expect(box.size).toBe(3);
    running.finish();
    await Promise.all([first, ...waiting, jumped]);
    expect(order).toEqual(['steered', 'b', 'c']);
  });
});
