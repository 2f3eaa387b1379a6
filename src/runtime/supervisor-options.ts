/** What a Supervisor is built with: the options of one process, and optionally its cluster. */
import { OptionsInvalidError } from '../errors.js';
import {
  type LocalSupervisorOptions,
  parseSupervisorOptions,
  type ResolvedSupervisorOptions,
} from './options.js';
import { assertRemotePlacement, type RemotePlacement } from './remote-placement.js';

export type SupervisorOptions = LocalSupervisorOptions & {
  /**
   * Run as one node of a cluster: any node accepts messages for any session, each session runs
   * on the node that owns it. Journals live in the cluster (leave `store` out).
   *
   * @example
   * import { redisCluster } from 'agentcell/cluster';
   * new Supervisor({ cluster: redisCluster({ redis: 'redis://10.0.0.5:6379' }) });
   */
  readonly cluster?: RemotePlacement | undefined;
};

/**
 * Checks a Supervisor's options. In cluster mode the Supervisor only routes: the node's own
 * Supervisor runs the turns, so this one boots no workers and keeps no store of its own.
 */
export function resolveSupervisorOptions(options: SupervisorOptions): {
  readonly cluster: RemotePlacement | undefined;
  readonly local: LocalSupervisorOptions;
  readonly resolved: ResolvedSupervisorOptions;
} {
  const { cluster, ...local } = options;
  const parsed = parseSupervisorOptions(local);
  if (cluster !== undefined) assertRemotePlacement(cluster);
  if (cluster && parsed.store !== undefined) {
    throw new OptionsInvalidError(
      'store: a cluster keeps its journals in Redis; leave store out when cluster is set',
    );
  }
  return { cluster, local, resolved: cluster ? { ...parsed, warmPoolSize: 0 } : parsed };
}
