/**
 * What a piscina task's failure means, as our typed errors.
 *
 * piscina (5.x) gives its failures no code, and but for `AbortError` no class of their own:
 * the queue being full, a thread being terminated or exiting are plain `Error`s told apart only
 * by their text. Text changes without notice, so they are told apart by what is known when
 * they happen instead:
 * - a task refused while it is submitted (piscina rejects inside `run()`, before it returns)
 *   was refused for the queue: `TaskQueueAtLimit`, or `NoTaskQueueAvailable` with `maxQueue: 0`;
 * - an `AbortError` (by name: piscina does not export the class), or any failure once the pool
 *   is shutting down, is the pool going away;
 * - anything else failed the thread that ran the task: an exit, a termination, an uncaught
 *   error, or one of Node's worker errors, whose `code` (`ERR_WORKER_OUT_OF_MEMORY`, ...) is kept.
 *
 * `test/runtime/pool-failures.test.ts` pins this to the installed piscina: an upgrade that
 * changes how piscina fails makes it fail.
 */
import {
  type AgentcellError,
  CapacityExceededError,
  InternalError,
  isAgentcellError,
  SessionCrashedError,
} from '../../errors.js';

/** `details.reason` of the errors a pool task fails with. */
export type PoolFailureReason = 'queue-full' | 'pool-closed' | 'thread-died';

const PENDING = Symbol('pending');

/**
 * Settles like `submit()`'s task, its failures mapped: AGENTCELL_CAPACITY_EXCEEDED when the
 * queue refused it, AGENTCELL_SESSION_CRASHED (with `details.reason`) when the pool or the
 * thread went away.
 */
export async function runPoolTask<R>(
  submit: () => Promise<R>,
  isClosing: () => boolean,
): Promise<R> {
  const task = submit();
  try {
    // A task already rejected wins this race: its reaction is queued before the sentinel's.
    await Promise.race([task, Promise.resolve(PENDING)]);
  } catch (error) {
    throw poolFailure(error, { atSubmission: true, closing: isClosing() });
  }
  try {
    return await task;
  } catch (error) {
    throw poolFailure(error, { atSubmission: false, closing: isClosing() });
  }
}

/** The typed error for what piscina rejected a task with. */
export function poolFailure(
  error: unknown,
  when: { readonly atSubmission: boolean; readonly closing: boolean },
): AgentcellError {
  const options = (reason: PoolFailureReason, extra: Record<string, unknown> = {}) => ({
    details: { reason, ...extra },
    cause: error,
  });
  if (when.closing || isAbortError(error)) {
    return new SessionCrashedError('the turn pool was shut down', options('pool-closed'));
  }
  if (when.atSubmission && error instanceof TypeError) {
    // piscina's refusal of an argument it does not take: a bug here, not a full queue.
    return new InternalError('the turn pool refused a task it was given', { cause: error });
  }
  if (when.atSubmission) {
    return new CapacityExceededError(
      "the turn pool's queue is full (maxQueue)",
      options('queue-full'),
    );
  }
  const code = (error as { code?: unknown } | undefined)?.code;
  const said = error instanceof Error ? error.message : String(error);
  return new SessionCrashedError(
    `its pool thread died: ${said}`,
    options('thread-died', typeof code === 'string' ? { errorCode: code } : {}),
  );
}

/** The reason of an error made by {@link poolFailure}, if it is one. */
export function poolFailureReason(error: unknown): PoolFailureReason | undefined {
  if (
    !isAgentcellError(error, 'AGENTCELL_SESSION_CRASHED') &&
    !isAgentcellError(error, 'AGENTCELL_CAPACITY_EXCEEDED')
  ) {
    return undefined;
  }
  const reason = error.details?.['reason'];
  return reason === 'queue-full' || reason === 'pool-closed' || reason === 'thread-died'
    ? reason
    : undefined;
}

function isAbortError(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}
