/** What a Supervisor is built with: the options of one process, and optionally its cluster. */
import type { LocalSupervisorOptions } from './options.js';
import type { RemotePlacement } from './remote-placement.js';

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
