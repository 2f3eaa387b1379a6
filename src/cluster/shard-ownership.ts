/**
 * Which shards this node holds, and the moves of each: a heartbeat renews the leases and
 * rebalances (rendezvous hashing over the live members); a shard that falls to this node is
 * acquired (the lease taken with a new epoch, then what its previous owner left pending claimed
 * before anything new is read); one that should move is drained (no new turn, the running ones
 * end, its sessions passivated, then the lease goes); one whose lease was lost, or whose write
 * was refused by the fence, is dropped at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { InternalError } from '../errors.js';
import { type Deferred, deferred } from '../runtime/deferred.js';
import type { Supervisor } from '../runtime/supervisor.js';
import type { ShardInbox } from './inbox.js';
import type { InboxMessage } from './inbox-message.js';
import type { ShardLeases } from './leases.js';
import type { Membership } from './membership.js';
import type { ClusterNodeEvents } from './node-options.js';
import { ownerOf } from './shards.js';

export type ShardState = 'active' | 'draining' | 'released' | 'lost';

/** One holding of a shard by this node, at one epoch. */
export interface HeldShard {
  readonly shard: number;
  readonly epoch: number;
  state: ShardState;
  /** Pending messages claimed and dispatched: new ones may be read now. */
  ready: boolean;
  /** Whether the inbox may have unread messages (new holding, a wake-up, a full batch). */
  due: boolean;
  /** Where a blocking XREAD waits from for this shard's inbox. */
  cursor: string;
  /** The last inbox entry this holding received (claimed or read). */
  received: string;
  /** Messages dispatched and not yet done. */
  readonly running: Set<Promise<void>>;
  /** Sessions this holding ran turns for (passivated when the shard goes). */
  readonly sessions: Set<string>;
  /** Resolved when the shard starts draining. */
  readonly drainStarted: Deferred<void>;
}

/** Messages read (or claimed) from one shard at a time. */
export const READ_COUNT = 64;

type Emit = <E extends keyof ClusterNodeEvents>(event: E, ...payload: ClusterNodeEvents[E]) => void;

export interface ShardOwnershipOptions {
  readonly nodeId: string;
  readonly shards: number;
  readonly heartbeatMs: number;
  readonly drainTimeoutMs: number;
  readonly membership: Membership;
  readonly leases: ShardLeases;
  readonly inbox: ShardInbox;
  /** The node's local Supervisor, which runs the sessions of the held shards. */
  readonly supervisor: Supervisor;
  /** Takes a message left pending by the previous owner, claimed while acquiring. */
  readonly onClaimed: (holding: HeldShard, message: InboxMessage) => void;
  /** Takes an entry claimed while acquiring that is not a message. */
  readonly onMalformed: (holding: HeldShard, entryId: string) => void;
  readonly emit: Emit;
  readonly report: (error: unknown, during: string) => void;
}

export class ShardOwnership {
  readonly #options: ShardOwnershipOptions;
  readonly #held = new Map<number, HeldShard>();
  readonly #acquiring = new Set<number>();
  /** Leaving the cluster: no shard is taken any more. */
  #leaving = false;
  #stopped = false;
  #tickTimer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;

  constructor(options: ShardOwnershipOptions) {
    this.#options = options;
  }

  /** The holding of `shard`, if this node holds it. */
  get(shard: number): HeldShard | undefined {
    return this.#held.get(shard);
  }

  /** Whether this node runs the sessions of `shard` now (held, active or draining). */
  runs(shard: number): HeldShard | undefined {
    const held = this.#held.get(shard);
    return held && (held.state === 'active' || held.state === 'draining') ? held : undefined;
  }

  held(): HeldShard[] {
    return [...this.#held.values()];
  }

  /** Heartbeats, renews and rebalances now, then every heartbeat until {@link stop}. */
  async start(): Promise<void> {
    await this.#tick();
    this.#scheduleTick();
  }

  /**
   * Takes no shard any more, from this call on; resolves once the tick under way (which may
   * still be taking some) has ended.
   */
  async leave(): Promise<void> {
    this.#leaving = true;
    await this.#ticking;
  }

  /** Hands every held shard over, drained. */
  async drainAll(): Promise<void> {
    await Promise.all([...this.#held.values()].map((held) => this.drain(held)));
  }

  /** Drops every held shard at once and lets its lease go. */
  async dropAll(reason: string): Promise<void> {
    this.#leaving = true;
    const held = [...this.#held.values()];
    for (const each of held) this.lose(each, reason);
    await Promise.all(
      held.map((each) =>
        this.#options.leases.release(each.shard, each.epoch).catch((error: unknown) => {
          this.#options.report(error, `releasing shard ${each.shard}`); // it runs out by itself
          return false;
        }),
      ),
    );
  }

  /** Stops the heartbeat; the tick under way ends first. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#leaving = true;
    clearTimeout(this.#tickTimer);
    await this.#ticking;
  }

  #scheduleTick(): void {
    if (this.#stopped) return;
    this.#tickTimer = setTimeout(() => {
      this.#ticking = this.#tick().finally(() => {
        this.#ticking = undefined;
        this.#scheduleTick();
      });
    }, this.#options.heartbeatMs);
  }

  /** Heartbeat, lease renewal, then placement: drain what should move, take what should come. */
  async #tick(): Promise<void> {
    const { membership, leases, nodeId } = this.#options;
    try {
      await membership.heartbeat(this.#leaving ? 'leaving' : 'active');
      const held = [...this.#held.values()];
      const renewed = await Promise.all(
        held.map((each) =>
          leases.renew(each.shard, each.epoch).catch((error: unknown) => {
            this.#options.report(error, `renewing shard ${each.shard}`);
            return undefined; // unknown: keep going; the fence protects the data meanwhile
          }),
        ),
      );
      for (const [index, each] of held.entries()) {
        if (renewed[index] === false) this.lose(each, 'its lease was taken or expired');
      }
      if (this.#leaving || this.#stopped) return;
      const members = (await membership.members())
        .filter((member) => member.state === 'active')
        .map((member) => member.id);
      const wanted: number[] = [];
      for (let shard = 0; shard < this.#options.shards; shard++) {
        const owner = ownerOf(shard, members);
        const holding = this.#held.get(shard);
        if (holding) {
          if (owner !== nodeId && holding.state === 'active') void this.drain(holding);
        } else if (owner === nodeId && !this.#acquiring.has(shard)) {
          wanted.push(shard);
        }
      }
      await Promise.all(wanted.map((shard) => this.#acquire(shard)));
    } catch (error) {
      this.#options.report(error, 'the cluster tick');
    }
  }

  /** Takes a shard, then runs what its previous owner left pending before anything new. */
  async #acquire(shard: number): Promise<void> {
    const { leases, inbox, nodeId } = this.#options;
    this.#acquiring.add(shard);
    let holding: HeldShard | undefined;
    try {
      const result = await leases.acquire(shard);
      if (!result.acquired || this.#leaving) {
        if (result.acquired) await leases.release(shard, result.epoch);
        return;
      }
      holding = {
        shard,
        epoch: result.epoch,
        state: 'active',
        ready: false,
        due: true,
        cursor: '0-0',
        received: '0-0',
        running: new Set(),
        sessions: new Set(),
        drainStarted: deferred(),
      };
      this.#held.set(shard, holding);
      await inbox.ensureGroup(shard);
      let claimed = 0;
      let start = '0-0';
      do {
        const batch = await inbox.claim(shard, holding.epoch, nodeId, start, READ_COUNT);
        if (batch.fenced) {
          this.lose(holding, 'fenced while claiming');
          return;
        }
        holding.received = batch.lastEntryId ?? holding.received;
        for (const message of batch.messages) this.#options.onClaimed(holding, message);
        for (const entryId of batch.malformed) this.#options.onMalformed(holding, entryId);
        claimed += batch.messages.length;
        start = batch.next;
      } while (start !== '0-0' && holding.state === 'active');
      if (holding.state !== 'active') return;
      holding.ready = true;
      this.#options.emit('shard:acquire', { shard, epoch: holding.epoch, claimed });
    } catch (error) {
      this.#options.report(error, `taking shard ${shard}`);
      if (holding) {
        // Half taken: let go, and take it again (with a new epoch) on a later tick.
        this.lose(holding, 'failed while taking it');
        await leases.release(shard, holding.epoch).catch((cause: unknown) => {
          this.#options.report(cause, `releasing shard ${shard}`); // it runs out by itself
        });
      }
    } finally {
      this.#acquiring.delete(shard);
    }
  }

  /**
   * Hands a shard over: no new turn starts, the running ones end (and are acked), its sessions
   * are passivated (the next owner rebuilds them from the journal), then the lease goes.
   */
  async drain(holding: HeldShard): Promise<void> {
    if (holding.state !== 'active') return;
    holding.state = 'draining';
    holding.drainStarted.resolve();
    const ended = await Promise.race([
      Promise.allSettled([...holding.running]).then(() => true),
      sleep(this.#options.drainTimeoutMs).then(() => false),
    ]);
    if (holding.state !== 'draining') return; // lost meanwhile
    // Released before the sessions stop: a turn still running past the timeout then ends
    // unacked and unjournaled (its message stays pending for the next owner), never with an
    // error its caller would take for the outcome.
    holding.state = 'released';
    if (this.#held.get(holding.shard) === holding) this.#held.delete(holding.shard);
    const stuck = new InternalError(`shard ${holding.shard} was handed over`, {
      details: { reason: 'shard-moved', shard: holding.shard, epoch: holding.epoch },
    });
    await Promise.all(
      [...holding.sessions].map((key) => {
        const session = this.#options.supervisor.peek(key);
        return ended ? session?.close() : session?.destroy(stuck);
      }),
    );
    await this.#options.leases.release(holding.shard, holding.epoch).catch((error: unknown) => {
      this.#options.report(error, `releasing shard ${holding.shard}`); // it runs out by itself
    });
    this.#options.emit('shard:release', { shard: holding.shard, epoch: holding.epoch });
  }

  /** The shard is someone else's now: stop everything of it here, at once. */
  lose(holding: HeldShard, reason: string): void {
    if (holding.state === 'lost' || holding.state === 'released') return;
    holding.state = 'lost';
    if (this.#held.get(holding.shard) === holding) this.#held.delete(holding.shard);
    this.#options.emit('shard:lose', { shard: holding.shard, epoch: holding.epoch, reason });
    // Their workers hold conversation state the new owner may already have moved past.
    const error = new InternalError(`shard ${holding.shard} moved to another node`, {
      details: { reason: 'shard-lost', shard: holding.shard, epoch: holding.epoch },
    });
    for (const key of holding.sessions) void this.#options.supervisor.peek(key)?.destroy(error);
  }
}
