/**
 * A message as it waits in a shard's inbox, and how the stream entries the inbox reads become
 * messages again (an entry that does not is set apart by its id, never run).
 */
import { parseBudget, type SessionBudget } from '../runtime/options.js';
import { streamFields } from './stream-replies.js';

/** A message as it waits in a shard's inbox. */
export interface InboxMessage {
  /** The stream entry id: its place in the shard's order. */
  readonly entryId: string;
  /** Chosen by the accepting node; journaled with the turn, so a redelivery is recognised. */
  readonly requestId: string;
  readonly sessionKey: string;
  readonly agent: string;
  readonly message: string;
  /** The node whose caller waits for the reply. */
  readonly origin: string;
  readonly acceptedAt: number;
  /** Whether the caller streams: the owner then forwards the turn's events to the origin. */
  readonly stream: boolean;
  /** What the owner does when the session is busy (the policies that hold across nodes). */
  readonly busyPolicy: ClusterBusyPolicy;
  /** The budget of the session it was sent through, if it has one. */
  readonly budget?: SessionBudget | undefined;
  /** Not a message for the agent but an operation on its session, in the session's order. */
  readonly command?: 'delete' | undefined;
  /** Checked by the owner's session, so that a repeat through any node runs once. */
  readonly idempotencyKey?: string | undefined;
}

/** The busy policies a cluster applies at the owner; steer and coalesce are single-node. */
export const CLUSTER_BUSY_POLICIES = ['enqueue', 'reject', 'interrupt'] as const;
export type ClusterBusyPolicy = (typeof CLUSTER_BUSY_POLICIES)[number];

function isClusterBusyPolicy(value: string | undefined): value is ClusterBusyPolicy {
  return (CLUSTER_BUSY_POLICIES as readonly (string | undefined)[]).includes(value);
}

/** Stream entries `[id, [field, value, ...]]` as messages; the ids of the others apart. */
export function parseEntries(entries: unknown): {
  messages: InboxMessage[];
  malformed: string[];
  lastEntryId: string | undefined;
} {
  const messages: InboxMessage[] = [];
  const malformed: string[] = [];
  let lastEntryId: string | undefined;
  for (const entry of Array.isArray(entries) ? entries : []) {
    if (!Array.isArray(entry) || typeof entry[0] !== 'string') continue;
    const entryId = entry[0];
    lastEntryId = entryId;
    const fields = streamFields(entry[1]);
    const requestId = fields.get('r');
    const sessionKey = fields.get('k');
    const agent = fields.get('a');
    const message = fields.get('m');
    const origin = fields.get('o');
    const busyPolicy = fields.get('p') ?? 'enqueue';
    const budget = budgetOf(fields.get('g'));
    if (
      budget === null ||
      !isClusterBusyPolicy(busyPolicy) ||
      requestId === undefined ||
      sessionKey === undefined ||
      agent === undefined ||
      message === undefined ||
      origin === undefined
    ) {
      malformed.push(entryId);
      continue;
    }
    messages.push({
      entryId,
      requestId,
      sessionKey,
      agent,
      message,
      origin,
      acceptedAt: Number(fields.get('t') ?? 0),
      stream: fields.get('s') === '1',
      busyPolicy,
      ...(budget !== undefined && { budget }),
      ...(fields.get('c') === 'delete' && { command: 'delete' as const }),
      ...(fields.has('i') && { idempotencyKey: fields.get('i') }),
    });
  }
  return { messages, malformed, lastEntryId };
}

/** The budget a message carries: undefined for none, null when it does not parse as one. */
function budgetOf(text: string | undefined): SessionBudget | undefined | null {
  if (text === undefined) return undefined;
  try {
    return parseBudget(JSON.parse(text));
  } catch {
    return null;
  }
}
