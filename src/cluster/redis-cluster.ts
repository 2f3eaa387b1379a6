/**
 * The cluster option of a Supervisor, on Redis: `redisCluster(options)` is what
 * `new Supervisor({ cluster })` takes. The Supervisor attaches to it once; it then stands on a
 * {@link ClusterNode} of its own, which runs the sessions of the shards it owns on a local
 * Supervisor built with the user's options, and through which every session of the user's
 * Supervisor reaches the node that owns it.
 *
 * @example
 * import { Supervisor } from 'agentcell';
 * import { redisCluster } from 'agentcell/cluster';
 * const supervisor = new Supervisor({ cluster: redisCluster({ redis: 'redis://10.0.0.5:6379' }) });
 * supervisor.register('support', agent);
 * await supervisor.start();
 */
import type { Agent } from '../agent/agent.js';
import type { Blueprint } from '../agent/blueprint.js';
import type { JournalRecord } from '../agent/journal.js';
import { OptionsInvalidError } from '../errors.js';
import { errorFields, log } from '../log.js';
import type { ApprovalAnswer, PendingApprovalView } from '../runtime/approval-desk.js';
import { SUPERVISOR_EVENT_NAMES } from '../runtime/events.js';
import type { RegisterOptions } from '../runtime/options.js';
import type {
  NodeSupervisor,
  RemoteNode,
  RemotePlacement,
  RemoteSendOptions,
} from '../runtime/remote-placement.js';
import type { Reply } from '../runtime/session-types.js';
import type { SupervisorStats } from '../runtime/supervisor-stats.js';
import { ClusterNode } from './node.js';
import { type ClusterNodeOptions, parseNodeOptions } from './node-options.js';

/** Options of {@link redisCluster}: a ClusterNode's, less the local Supervisor's (yours). */
export type RedisClusterOptions = Omit<ClusterNodeOptions, 'supervisor'>;

/**
 * Joins a Supervisor to a cluster on Redis. Throws `AGENTCELL_OPTIONS_INVALID` for bad options
 * (unknown keys included); connects on the Supervisor's `start()` or first message.
 * One per Supervisor: each is one node of the cluster.
 */
export function redisCluster(options: RedisClusterOptions): RemotePlacement {
  if (isObject(options) && 'supervisor' in options) {
    throw new OptionsInvalidError(
      'cluster: leave supervisor out of redisCluster(); the node runs its sessions with the options of the Supervisor it serves',
    );
  }
  parseNodeOptions(options);
  let attached = false;
  return {
    attach(supervisor: NodeSupervisor): RemoteNode {
      if (attached) {
        throw new OptionsInvalidError(
          'cluster: this redisCluster() already serves a Supervisor; call redisCluster() once per Supervisor (each is one node)',
        );
      }
      attached = true;
      return new SupervisorNode(
        new ClusterNode({ ...options, supervisor: supervisor.options }),
        supervisor,
      );
    },
  };
}

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null;
}

/** A ClusterNode as the Supervisor it serves sees it. */
class SupervisorNode implements RemoteNode {
  readonly #node: ClusterNode;
  #started: Promise<void> | undefined;

  constructor(node: ClusterNode, outer: NodeSupervisor) {
    this.#node = node;
    // The sessions run on the node's own Supervisor; the user listens on theirs.
    for (const name of SUPERVISOR_EVENT_NAMES) {
      node.supervisor.on(name, (...payload: unknown[]) =>
        (outer.emit as (event: string, ...rest: unknown[]) => void)(name, ...payload),
      );
    }
  }

  /**
   * The Supervisor checked the agent already; what can still fail here is a node that is no
   * longer open (its start failed): its messages fail with that start's error, so the
   * registration is only reported.
   */
  register(name: string, agent: Agent | Blueprint, options: RegisterOptions): void {
    try {
      this.#node.register(name, agent, options);
    } catch (error) {
      log('cluster').warn(
        { ...errorFields(error), agent: name, nodeId: this.#node.nodeId },
        'an agent could not be registered on the cluster node',
      );
    }
  }

  start(): Promise<void> {
    this.#started ??= this.#node.start();
    return this.#started;
  }

  async send(key: string, message: string, options: RemoteSendOptions): Promise<Reply> {
    await this.start();
    return this.#node.send(key, message, options);
  }

  async interrupt(key: string, reason: string): Promise<boolean> {
    await this.start();
    return this.#node.interrupt(key, reason);
  }

  async approve(
    key: string,
    agent: string,
    approvalId: string,
    answer: ApprovalAnswer,
  ): Promise<void> {
    await this.start();
    await this.#node.approve(key, approvalId, answer, agent);
  }

  async approvals(key: string, agent: string): Promise<PendingApprovalView[]> {
    await this.start();
    return this.#node.approvals(key, agent);
  }

  async journal(key: string): Promise<readonly JournalRecord[]> {
    await this.start();
    return this.#node.journal(key);
  }

  async journalKeys(): Promise<readonly string[]> {
    await this.start();
    return this.#node.journalKeys();
  }

  async deleteSession(key: string): Promise<void> {
    await this.start();
    await this.#node.deleteSession(key);
  }

  stats(): SupervisorStats {
    return this.#node.supervisor.stats();
  }

  describe(): { readonly nodeId: string; readonly shards: number } {
    return { nodeId: this.#node.nodeId, shards: this.#node.shards };
  }

  close(): Promise<void> {
    return this.#node.close();
  }

  destroy(reason: string): Promise<void> {
    return this.#node.destroy(reason);
  }
}
