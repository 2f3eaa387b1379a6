/**
 * A thread that dies leaves what it posted last in its port's queue, and its `exit` may be
 * heard before those messages: a port delivers everything it holds before its `close` event,
 * so the host waits for that `close` (bounded) before it concludes what the thread was doing
 * (which tool was in flight) or closes its own end.
 */

/** How long a dead thread's port is given to deliver what it holds. */
export const DRAIN_MS = 1_000;

/** The `close` of a port, as a promise. */
export function portClosed(port: {
  once(event: 'close', listener: () => void): unknown;
}): Promise<void> {
  return new Promise<void>((resolve) => port.once('close', () => resolve()));
}

/** Resolves when `closed` does, or after `ms`, whichever comes first. */
export async function drained(closed: Promise<void>, ms = DRAIN_MS): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    closed,
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}
