/**
 * A cluster node's shard hand-overs and fences, logged once through the one logger (its
 * sessions' own lifecycle is logged by the Supervisor that runs them). Redis failures are
 * logged where they are absorbed.
 */
import type { EventEmitter } from 'node:events';
import { log } from '../log.js';
import type { ClusterNodeEvents } from './node-options.js';

/** Logs the events of `node` from now on. */
export function logClusterLifecycle(node: EventEmitter<ClusterNodeEvents>, nodeId: string): void {
  const logger = log('cluster');
  node.on('shard:acquire', ({ shard, epoch, claimed }) => {
    logger.info({ nodeId, shard, epoch, claimed }, 'shard taken over');
  });
  node.on('shard:release', ({ shard, epoch }) => {
    logger.info({ nodeId, shard, epoch }, 'shard drained and handed over');
  });
  node.on('shard:lose', ({ shard, epoch, reason }) => {
    logger.warn({ nodeId, shard, epoch, reason }, 'shard lost');
  });
  node.on('message:fenced', ({ key, requestId, shard, epoch }) => {
    logger.warn(
      { nodeId, sessionKey: key, requestId, shard, epoch },
      'write fenced: another node owns the shard now',
    );
  });
}
