/** Turn pool options: one schema with its defaults; nothing starts when they are wrong. */
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { TurnPool } from '../../src/runtime/placement/pooled.js';
import {
  parseTurnPoolOptions,
  TURN_POOL_DEFAULTS,
} from '../../src/runtime/placement/turn-pool-options.js';

function refusal(options: unknown): { code?: string; message?: string } | undefined {
  try {
    new TurnPool(options as ConstructorParameters<typeof TurnPool>[0]);
  } catch (error) {
    return error as { code?: string; message?: string };
  }
  return undefined;
}

describe('turn pool options', () => {
  it('fills in the defaults: threads from the cores, the rest from the table', () => {
    const cores = availableParallelism();
    expect(parseTurnPoolOptions({})).toEqual({
      maxThreads: cores,
      minThreads: cores,
      ...TURN_POOL_DEFAULTS,
    });
    expect(parseTurnPoolOptions(undefined)).toMatchObject({ turnsPerThread: 32 });
    expect(parseTurnPoolOptions({ maxThreads: 4, minThreads: 1 })).toMatchObject({
      maxThreads: 4,
      minThreads: 1,
    });
  });

  it('refuses an unknown key (a typo) with AGENTCELL_OPTIONS_INVALID naming it', () => {
    const error = refusal({ maxThread: 2 });
    expect(error?.code).toBe('AGENTCELL_OPTIONS_INVALID');
    expect(error?.message).toContain('maxThread');
  });

  it.each([
    ['maxThreads', { maxThreads: 0 }],
    ['turnsPerThread', { turnsPerThread: 1.5 }],
    ['idleTimeoutMs', { idleTimeoutMs: -1 }],
    ['maxQueue', { maxQueue: 0 }],
    ['onError', { onError: 'log' }],
    ['resourceLimits.maxOldGenerationSizeMb', { resourceLimits: { maxOldGenerationSizeMb: 0 } }],
    ['minThreads', { maxThreads: 1, minThreads: 2 }],
  ])('refuses a bad %s with AGENTCELL_OPTIONS_INVALID naming its path', (path, options) => {
    const error = refusal(options);
    expect(error?.code).toBe('AGENTCELL_OPTIONS_INVALID');
    expect(error?.message).toContain(`options.${path}:`);
  });
});
