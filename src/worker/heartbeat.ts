/**
 * A pool thread's heartbeat: a beat on the thread's parent port every few milliseconds, from a
 * timer, so it stops while anything holds the thread's event loop (a tool spinning the CPU, a
 * long synchronous parse). The host places turns only on threads that beat, and moves a turn
 * that waits on a thread that stopped beating (see `runtime/placement/thread-watch.ts`).
 *
 * piscina reads every message on the parent port as its start-up message, so the host never
 * posts there; beats go the other way, and piscina re-emits them on the pool as `'message'`.
 */
import { parentPort, threadId } from 'node:worker_threads';

/** How often a pool thread beats. */
export const BEAT_MS = 50;

/** What a beat looks like on the pool's `'message'` event. */
export interface Heartbeat {
  readonly agentcellBeat: number;
}

export function isHeartbeat(message: unknown): message is Heartbeat {
  return (
    typeof message === 'object' &&
    message !== null &&
    typeof (message as { agentcellBeat?: unknown }).agentcellBeat === 'number'
  );
}

let beating = false;

/**
 * Starts this thread's beats (once). The first beat comes after one interval, by which time
 * piscina has told its host that the thread is ready. Unref'd: beats never keep a thread alive.
 */
export function startHeartbeat(): void {
  if (beating || !parentPort) return;
  beating = true;
  const port = parentPort;
  const beat: Heartbeat = { agentcellBeat: threadId };
  setInterval(() => port.postMessage(beat), BEAT_MS).unref();
}
