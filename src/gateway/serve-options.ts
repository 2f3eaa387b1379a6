/**
 * What `startServer` takes, and the checks on it that no schema makes (token shape and reuse),
 * shared by `startServer` and the config file of `agentcell serve`.
 */
import type { Agent } from '../agent/agent.js';
import { OptionsInvalidError } from '../errors.js';
import type { RemotePlacement as ClusterOptions } from '../runtime/remote-placement.js';
import type { JournalStore } from '../runtime/stores/store.js';
import type { SupervisorOptions } from '../runtime/supervisor.js';
import type { ToolRegistry } from '../tools/registry.js';
import type { GatewayOptions } from './gateway.js';
import { TOKEN } from './options.js';

/** One tenant: a bearer token, who it speaks for, and its limits. */
export interface ServeTenant {
  readonly id: string;
  /** A secret: never printed, never in an error message. */
  readonly token: string;
  readonly agents?: readonly string[];
  readonly maxConcurrentTurns?: number;
  readonly maxSessions?: number;
}

export interface ServerOptions {
  /** Registered under their own names. */
  readonly agents: readonly Agent[];
  /** Tools the agents' workers load (modules) or call back (host tools). */
  readonly tools?: ToolRegistry;
  readonly tenants: readonly ServeTenant[];
  /** The FileStore directory, or a store of your own (not closed by `close()`). @default './.agentcell' */
  readonly store?: string | JournalStore;
  /**
   * Serve as one node of a cluster on Redis instead of on a store: several servers behind any
   * HTTP load balancer then serve the same sessions (see `Supervisor`'s `cluster` option).
   */
  readonly cluster?: ClusterOptions;
  /** 0 picks a free port. @default 8080 */
  readonly port?: number;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** The agent a new session runs when a message names none. @default the first agent */
  readonly defaultAgent?: string;
  readonly supervisor?: Omit<SupervisorOptions, 'tools' | 'store'>;
  readonly gateway?: Omit<GatewayOptions, 'tenants' | 'defaultAgent'>;
}

/**
 * Problems no schema sees: token shape and reuse. A token is named by its tenant, never shown.
 * `positions` are the tenants' indexes in the config, when some were left out.
 */
export function tenantProblems(
  tenants: readonly ServeTenant[],
  positions: readonly number[] = [],
): string[] {
  const problems: string[] = [];
  if (tenants.length === 0 && positions.length === 0) {
    problems.push('tenants: give at least one tenant');
  }
  const seen = new Map<string, number>();
  tenants.forEach((tenant, at) => {
    const index = positions[at] ?? at;
    const where = `tenants[${index}] (${tenant.id})`;
    if (!TOKEN.test(tenant.token)) {
      problems.push(`${where}: the token must be 16 to 512 visible ASCII characters`);
    }
    const earlier = seen.get(tenant.token);
    if (earlier !== undefined) {
      problems.push(`${where}: uses the same token as tenants[${earlier}]`);
    } else {
      seen.set(tenant.token, index);
    }
  });
  return problems;
}

/** One `AGENTCELL_OPTIONS_INVALID` listing every problem. */
export function invalid(title: string, problems: readonly string[]): OptionsInvalidError {
  return new OptionsInvalidError(`${title}:\n  ${problems.join('\n  ')}\n`, {
    details: { paths: [...problems] },
  });
}
