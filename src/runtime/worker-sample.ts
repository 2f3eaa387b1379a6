/**
 * The heap and event-loop utilisation of every live session worker, read in one go (each
 * session asks its worker; one that does not answer within the deadline is left out, so a
 * busy or dying worker never holds up a scrape or a dashboard).
 */
import type { Supervisor } from './supervisor.js';

export interface WorkerSample {
  readonly heapUsedBytes: number | undefined;
  /** Busy share (0–1) of the worker's event loop since the previous reading of anyone's. */
  readonly eventLoopUtilization: number | undefined;
}

/** How long a reading waits for one worker before leaving it out. */
export const WORKER_SAMPLE_TIMEOUT_MS = 1_000;

/** The live workers' figures, by session key. */
export async function sampleWorkers(
  supervisor: Supervisor,
  timeoutMs = WORKER_SAMPLE_TIMEOUT_MS,
): Promise<Map<string, WorkerSample>> {
  const live = supervisor.sessionKeys().flatMap((key) => {
    const session = supervisor.peek(key);
    return session?.threadId !== undefined && session.threadId >= 0 ? [session] : [];
  });
  const samples = await Promise.all(
    live.map(
      async (session) => [session.key, await withTimeout(session.stats(), timeoutMs)] as const,
    ),
  );
  const byKey = new Map<string, WorkerSample>();
  for (const [key, stats] of samples) if (stats) byKey.set(key, stats);
  return byKey;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, ms, undefined);
    timer.unref();
  });
  // A session logs a stats call its worker did not answer; here the sample is only left out.
  return Promise.race([promise.catch(() => undefined), late]).finally(() => clearTimeout(timer));
}
