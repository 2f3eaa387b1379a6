/**
 * The fence of a shard's writes: a shard owner passes `{ shard, epoch }` and a write is refused
 * unless `<prefix>shard:<shard>:epoch` still holds that epoch. Epochs only grow (a new owner
 * INCRs them when it takes the lease), so an owner that was paused or cut off past its lease can
 * never write after its successor started: a TTL lock alone could not promise that.
 */
import { FencedError, isAgentcellError, OptionsInvalidError } from '../../errors.js';

/** The shard a write belongs to and the epoch its owner holds. */
export interface Fence {
  readonly shard: number | string;
  readonly epoch: number;
}

/** The key holding a shard's fencing epoch; shared by the store and the cluster's leases. */
export function shardEpochKey(prefix: string, shard: number | string): string {
  return `${prefix}shard:${shard}:epoch`;
}

/** Whether `error` is the refusal of a write by a stale shard owner. */
export function isFencedError(error: unknown): error is FencedError {
  return isAgentcellError(error, 'AGENTCELL_FENCED');
}

/** The error a write refused by the fence is reported with. */
export function fencedError(
  what: string,
  fence: Fence,
  currentEpoch: number | undefined,
): FencedError {
  return new FencedError(
    `${what} was refused: shard ${fence.shard} is now at epoch ${currentEpoch ?? 'none'}, the writer holds epoch ${fence.epoch} (another node took the shard over)`,
    {
      details: {
        shard: fence.shard,
        epoch: fence.epoch,
        currentEpoch,
      },
    },
  );
}

export function assertFence(fence: Fence): void {
  const shardOk =
    (typeof fence?.shard === 'number' && Number.isSafeInteger(fence.shard)) ||
    (typeof fence?.shard === 'string' && fence.shard !== '');
  if (!shardOk || !Number.isSafeInteger(fence.epoch) || fence.epoch < 1) {
    throw new OptionsInvalidError(
      'fence: expected { shard: a whole number or a name, epoch: a whole number of at least 1 }',
    );
  }
}

/** The epoch a script found in the fence key ('' when there was none). */
export function epochOf(value: string): number | undefined {
  const epoch = Number(value);
  return value !== '' && Number.isSafeInteger(epoch) ? epoch : undefined;
}
