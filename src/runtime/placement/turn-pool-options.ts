/** Options of the turn pool: one schema, one table of defaults, checked once at construction. */
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { parseWith, resourceLimitsSchema } from '../options.js';

/** Defaults of the options that have a fixed one. */
export const TURN_POOL_DEFAULTS = {
  /** A turn mostly waits on its model, so a thread can serve many at once. */
  turnsPerThread: 32,
  idleTimeoutMs: 60_000,
  /** A few missed beats (one every 50 ms), well above a GC pause or a busy machine's hiccup. */
  blockedAfterMs: 250,
} as const;

const count = z.number().int().nonnegative();

const turnPoolOptionsSchema = z
  .strictObject({
    /** Threads of the pool. @default os.availableParallelism() */
    maxThreads: z.number().int().positive().optional(),
    /** Turns one thread runs at once; CPU-heavy tools want fewer. @default 32 */
    turnsPerThread: z.number().int().positive().default(TURN_POOL_DEFAULTS.turnsPerThread),
    /** Threads kept even when idle (started with the pool). @default maxThreads */
    minThreads: count.optional(),
    /** How long a thread above `minThreads` may idle before it exits. @default 60000 */
    idleTimeoutMs: count.default(TURN_POOL_DEFAULTS.idleTimeoutMs),
    /**
     * Turns that may wait for a thread; past it a turn fails with AGENTCELL_CAPACITY_EXCEEDED.
     * At least 1: a pool without a queue would refuse turns while a thread starts. @default unbounded (the supervisor's admission already bounds turns in flight)
     */
    maxQueue: z.number().int().positive().optional(),
    /**
     * How long a thread may go without a heartbeat before it counts as blocked: no turn is
     * placed on it, and a turn waiting on it moves to another thread. @default 250
     */
    blockedAfterMs: z.number().int().positive().default(TURN_POOL_DEFAULTS.blockedAfterMs),
    /** Heap limits of each pool thread (best effort: see Node's `resourceLimits`). */
    resourceLimits: resourceLimitsSchema.optional(),
    /**
     * Errors of pool threads that no task owns, such as a timer a tool left behind throwing
     * after its turn. piscina emits them as `'error'`, which would kill the process if nobody
     * listened. @default a warning line of the `placement` logger
     */
    onError: z
      .custom<(error: Error) => void>((value) => typeof value === 'function', 'expected a function')
      .optional(),
  })
  .transform((options, context) => {
    const maxThreads = options.maxThreads ?? availableParallelism();
    const minThreads = options.minThreads ?? maxThreads;
    if (minThreads > maxThreads) {
      context.addIssue({
        code: 'custom',
        path: ['minThreads'],
        message: `${minThreads} is over maxThreads (${maxThreads})`,
      });
      return z.NEVER;
    }
    return { ...options, maxThreads, minThreads };
  });

export type TurnPoolOptions = z.input<typeof turnPoolOptionsSchema>;
export type ResolvedTurnPoolOptions = z.output<typeof turnPoolOptionsSchema>;

/** The options with their defaults, or AGENTCELL_OPTIONS_INVALID listing every failing path. */
export function parseTurnPoolOptions(options: unknown): ResolvedTurnPoolOptions {
  return parseWith(turnPoolOptionsSchema, options ?? {}, 'turn pool options', 'options');
}
