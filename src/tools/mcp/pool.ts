/**
 * The open MCP connections of a supervisor, shared by every session that would open the same
 * one: same server config, same tenant, same credentials (and, for a `perSession` server, the
 * same session). Keys are digests, so no credential is held as a key or shown in a log line.
 * Bounded: the least recently used connection is closed past `maxConnections`, an idle one
 * after `idleTimeoutMs`, and a busy one only once its calls end.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { McpServerSpec } from './connection.js';
import {
  McpConnection as Connection,
  type McpConnection,
  type McpCredentials,
} from './connection.js';

interface Entry {
  readonly connecting: Promise<McpConnection>;
  readonly sessionKey: string | undefined;
}

/** Who a connection is for: a tenant's credentials, and the session when the server is per session. */
export interface ConnectionOwner {
  readonly tenant: string;
  readonly sessionKey: string;
  readonly credentials: McpCredentials;
}

export class McpPool {
  readonly #entries: LRUCache<string, Entry>;

  constructor(options: { readonly maxConnections: number; readonly idleTimeoutMs: number }) {
    this.#entries = new LRUCache<string, Entry>({
      max: options.maxConnections,
      ttl: options.idleTimeoutMs,
      ttlAutopurge: true,
      updateAgeOnGet: true,
      dispose: (entry) => {
        entry.connecting.then(
          (connection) => connection.release(),
          () => {},
        );
      },
    });
  }

  /** The live connection for `owner` to `spec`, opened (once, however many ask) if needed. */
  async acquire(spec: McpServerSpec, owner: ConnectionOwner): Promise<McpConnection> {
    const sessionKey = spec.perSession ? owner.sessionKey : undefined;
    const key = connectionKey(spec, owner);
    const entry = this.#entries.get(key);
    if (entry) {
      // A connect that failed was its first caller's failure (logged there): open a new one.
      const connection = await entry.connecting.catch(() => undefined);
      if (connection?.alive) return connection;
      if (this.#entries.peek(key) === entry) this.#entries.delete(key);
    }
    const connecting = Connection.open(spec, owner.credentials);
    const fresh: Entry = { connecting, sessionKey };
    this.#entries.set(key, fresh);
    connecting.catch(() => {
      if (this.#entries.peek(key) === fresh) this.#entries.delete(key);
    });
    return connecting;
  }

  /** Drops `connection` (it failed): the next call opens a new one. */
  discard(connection: McpConnection): void {
    for (const [key, entry] of this.#entries.entries()) {
      entry.connecting.then(
        (open) => {
          if (open === connection && this.#entries.peek(key) === entry) this.#entries.delete(key);
        },
        () => {},
      );
    }
    void connection.close();
  }

  /** Closes the connections opened for this session alone (`perSession` servers). */
  closeSession(sessionKey: string): void {
    for (const [key, entry] of [...this.#entries.entries()]) {
      if (entry.sessionKey === sessionKey) this.#entries.delete(key);
    }
  }

  /** Open (or opening) connections. */
  get size(): number {
    return this.#entries.size;
  }

  async close(): Promise<void> {
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    await Promise.all(
      entries.map((entry) =>
        entry.connecting.then(
          (connection) => connection.close(),
          () => {},
        ),
      ),
    );
  }
}

/** Which connection `owner` uses for `spec`, as a digest (it covers the credentials). */
export function connectionKey(spec: McpServerSpec, owner: ConnectionOwner): string {
  const sessionKey = spec.perSession ? owner.sessionKey : null;
  return createHash('sha256')
    .update(JSON.stringify([spec, owner.tenant, owner.credentials, sessionKey]))
    .digest('base64url');
}
