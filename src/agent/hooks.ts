/** The hooks a config names, run in order at each point of a turn. */
import { HookFailedError } from '../errors.js';
import type { AgentSpec } from './config.js';
import type { Hook, HookContext } from './extensions.js';

type Registered = Readonly<Record<string, Hook>> | undefined;

/** A config that names a hook nobody registered fails before any work. */
export function checkHooksRegistered(hooks: AgentSpec['hooks'], registered: Registered): void {
  for (const [point, names] of Object.entries(hooks ?? {})) {
    for (const name of names ?? []) {
      if (!registered?.[name]) {
        throw new HookFailedError(
          `hooks.${point} names ${JSON.stringify(name)}, which is not registered`,
        );
      }
    }
  }
}

/** Runs `names` in order; one that throws fails the turn with `AGENTCELL_HOOK_FAILED`. */
export async function runHooks(
  names: readonly string[],
  registered: Registered,
  context: HookContext,
): Promise<void> {
  for (const name of names) {
    try {
      await registered?.[name]?.(context);
    } catch (error) {
      throw new HookFailedError(
        `hook ${JSON.stringify(name)} (${context.point}) threw: ${(error as Error)?.message}`,
        { cause: error },
      );
    }
  }
}
