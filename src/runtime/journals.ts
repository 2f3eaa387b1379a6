/**
 * Where a supervisor's journals are read, listed and deleted: its store, or, in a cluster, the
 * cluster (where a delete also closes the session on the node that runs it, in its order).
 */
import type { JournalRecord } from '../agent/journal.js';
import type { RemoteNode } from './remote-placement.js';
import type { JournalStore } from './stores/store.js';

export interface Journals {
  read(key: string): Promise<readonly JournalRecord[]>;
  keys(): Promise<readonly string[]>;
  delete(key: string): Promise<void>;
}

export function journalsOfStore(store: JournalStore): Journals {
  return {
    read: (key) => store.read(key),
    keys: () => store.keys(),
    delete: (key) => store.delete(key),
  };
}

export function journalsOfCluster(node: RemoteNode): Journals {
  return {
    read: (key) => node.journal(key),
    keys: () => node.journalKeys(),
    delete: (key) => node.deleteSession(key),
  };
}
