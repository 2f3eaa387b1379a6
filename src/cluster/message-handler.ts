/**
 * One message of a held shard, from its start to its settlement: answered from the journal if
 * its turn was journaled already (by an owner that stopped before acking), answered with
 * DELIVERY_LIMIT if it stopped too many owners, else run (a turn, or a delete) on the local
 * Supervisor; then acked with its outcome, which goes to the accepting node in the same script.
 * What is not settled (the shard went, the node stops) stays pending for the next owner.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { ZERO_USAGE } from '../agent/messages.js';
import type { TurnEvent } from '../agent/turn-events.js';
import { encode } from '../codec.js';
import { DeliveryLimitError, isAgentcellError, toWire } from '../errors.js';
import { journaledReply } from '../runtime/idempotency.js';
import type { Reply } from '../runtime/session-types.js';
import { isFencedError, type RedisStore } from '../runtime/stores/redis.js';
import type { Supervisor } from '../runtime/supervisor.js';
import { pausedRequestTag, REQUEST_KNOWN_REASON } from './fenced-journal.js';
import { REPLIES_MAX_LENGTH, type ShardInbox } from './inbox.js';
import type { InboxMessage } from './inbox-message.js';
import type { ClusterKeys } from './keys.js';
import type { ClusterNodeEvents, MessageEvent } from './node-options.js';
import { ParkingLot } from './parking.js';
import { awaitPausedTurn } from './paused-turn.js';
import type { Outcome } from './replies.js';
import type { HeldShard, ShardOwnership } from './shard-ownership.js';

/** An outcome ready to ack, and whether it came from the journal (a redelivery). */
export interface Settled {
  readonly outcome: Outcome;
  readonly fromJournal: boolean;
}

/** A message left to the next owner: its turn waits for a person while its shard drains. */
const PARKED: unique symbol = Symbol('parked');

export type NodeEmit = <E extends keyof ClusterNodeEvents>(
  event: E,
  ...payload: ClusterNodeEvents[E]
) => void;

export interface MessageHandlerOptions {
  readonly maxDeliveries: number;
  readonly keys: ClusterKeys;
  /** Commands and scripts (events are forwarded on it, so they arrive before the ack). */
  readonly client: Redis;
  readonly inbox: ShardInbox;
  readonly store: RedisStore;
  readonly ownership: ShardOwnership;
  readonly supervisor: Supervisor;
  /** Whether the node is shutting down: nothing more is retried or run. */
  readonly stopped: () => boolean;
  readonly emit: NodeEmit;
  /** Logs a Redis failure the node absorbs (it retries, or leaves the work to the next owner). */
  readonly report: (error: unknown, during: string, sessionKey?: string) => void;
}

export class MessageHandler {
  readonly #options: MessageHandlerOptions;
  /** The request whose turn runs in each session now (what its journal record is tagged with). */
  readonly #requests = new Map<string, string>();

  readonly #parking: ParkingLot;

  constructor(options: MessageHandlerOptions) {
    this.#options = options;
    this.#parking = new ParkingLot(options.supervisor);
  }

  /** The request whose turn runs in session `key` now, if one does. */
  requestOf(key: string): string | undefined {
    return this.#requests.get(key);
  }

  /**
   * One message: answered from the journal if its turn was journaled already (by a previous
   * owner that died before acking), else run as a turn; then acked with its outcome. Never
   * rejects: what is not settled stays pending for whoever owns the shard next.
   */
  async handle(holding: HeldShard, message: InboxMessage, claimed: boolean): Promise<void> {
    if (holding.state !== 'active') return;
    const event = messageEvent(holding, message);
    this.#options.emit('message:start', event);
    const known = await this.#retry(holding, message.sessionKey, 'checking the journal', () =>
      this.#options.store.recordOfRequest(message.sessionKey, message.requestId),
    );
    if (known === null) return;
    let settled: Settled | undefined;
    // Only a message an owner started before it stopped can have paused.
    const paused =
      claimed && known === undefined ? await this.#pauseOf(holding, message) : undefined;
    if (paused === null) return;
    if (known !== undefined) {
      settled = { outcome: { ok: true, reply: journaledReply(known) }, fromJournal: true };
    } else if (paused !== undefined) {
      // Waiting for a person is no failed delivery: it costs no count, however many owners go.
      settled = await this.#awaitPause(holding, message, event, paused);
    } else {
      if (holding.state !== 'active') return;
      const over = claimed ? await this.#overDeliveryLimit(holding, message, event) : false;
      if (over === undefined) return;
      if (over) {
        const error = new DeliveryLimitError(
          `message ${message.requestId} to session ${JSON.stringify(message.sessionKey)} was started ${this.#options.maxDeliveries} times by nodes that stopped before answering it (maxDeliveries)`,
          { details: { requestId: message.requestId, shard: holding.shard } },
        );
        settled = { outcome: { ok: false, error: toWire(error) }, fromJournal: false };
      } else if (message.command === 'delete') {
        settled = await this.#deleteHere(holding, message, event);
      } else {
        settled = await this.#runTurn(holding, message, event);
      }
    }
    if (settled) await this.settle(holding, message, event, settled);
  }

  /** The id of the turn the message paused, if its owner journaled a pause; null: gave up. */
  async #pauseOf(holding: HeldShard, message: InboxMessage): Promise<string | undefined | null> {
    const record = await this.#retry(holding, message.sessionKey, 'checking for a pause', () =>
      this.#options.store.recordOfRequest(message.sessionKey, pausedRequestTag(message.requestId)),
    );
    if (record === null) return null;
    return record?.approval?.kind === 'pending' ? record.approval.turnId : undefined;
  }

  /** Settles a message whose turn paused under a previous owner with how that turn ends here. */
  async #awaitPause(
    holding: HeldShard,
    message: InboxMessage,
    event: MessageEvent,
    turnId: string,
  ): Promise<Settled | undefined> {
    const key = message.sessionKey;
    // Its rest, run here, is journaled as the answer to this request.
    this.#requests.set(key, message.requestId);
    const { supervisor, store } = this.#options;
    const parking = this.#parking.watch(holding, key);
    try {
      const ended = awaitPausedTurn(supervisor, store, message, turnId);
      ended.catch(() => {}); // raced: parked, it is nobody's outcome
      const outcome = await Promise.race([ended, parking.parked.then(() => undefined)]);
      if (!outcome || holding.state === 'lost' || holding.state === 'released') return undefined;
      return { outcome, fromJournal: false };
    } catch (error) {
      if (this.#abandoned(holding, event, error, 'resuming a paused turn')) return undefined;
      return { outcome: { ok: false, error: toWire(error) }, fromJournal: false };
    } finally {
      parking.stop();
      if (this.#requests.get(key) === message.requestId) this.#requests.delete(key);
    }
  }

  /**
   * Counts a take-over of a message that was left unsettled. Read fresh, a message is on its
   * first delivery and costs no count; claimed, it may be the one that stopped its last owner.
   * Undefined when the shard is not this node's any more.
   */
  async #overDeliveryLimit(
    holding: HeldShard,
    message: InboxMessage,
    event: MessageEvent,
  ): Promise<boolean | undefined> {
    const takeovers = await this.#retry(
      holding,
      message.sessionKey,
      'counting the deliveries',
      () => this.#options.inbox.attempt(holding.shard, holding.epoch, message.requestId),
    );
    if (takeovers === null) return undefined;
    if (takeovers === 'fenced') {
      this.#options.emit('message:fenced', event);
      this.#options.ownership.lose(holding, 'fenced while counting deliveries');
      return undefined;
    }
    return takeovers + 1 > this.#options.maxDeliveries;
  }

  /** Acks a message with its outcome, which goes to the accepting node in the same script. */
  async settle(
    holding: HeldShard,
    message: InboxMessage,
    event: MessageEvent,
    settled: Settled,
  ): Promise<void> {
    const payload = encode(settled.outcome);
    const acked = await this.#retry(holding, message.sessionKey, 'acking', () =>
      this.#options.inbox.ack(holding.shard, holding.epoch, message.entryId, {
        origin: message.origin,
        requestId: message.requestId,
        payload,
      }),
    );
    if (acked === 'fenced') {
      this.#options.emit('message:fenced', event);
      this.#options.ownership.lose(holding, 'fenced while acking');
    } else if (acked !== null) {
      this.#options.emit('message:settle', {
        ...event,
        outcome: settled.outcome.ok ? 'ok' : settled.outcome.error.code,
        fromJournal: settled.fromJournal,
      });
    }
  }

  /** A delete, run here in the session's order: close the session, drop its journal. */
  async #deleteHere(
    holding: HeldShard,
    message: InboxMessage,
    event: MessageEvent,
  ): Promise<Settled | undefined> {
    try {
      await this.#options.supervisor.deleteSession(message.sessionKey);
      const reply: Reply = { text: '', turnId: '', usage: ZERO_USAGE };
      return { outcome: { ok: true, reply }, fromJournal: false };
    } catch (error) {
      if (this.#abandoned(holding, event, error, 'deleting')) return undefined;
      return { outcome: { ok: false, error: toWire(error) }, fromJournal: false };
    }
  }

  /**
   * Whether a failed step leaves the message to the next owner: refused by the fence (the
   * shard is lost here), or its shard went while it ran. Its caller must not be answered.
   */
  #abandoned(holding: HeldShard, event: MessageEvent, error: unknown, during: string): boolean {
    if (isFencedError(error)) {
      this.#options.emit('message:fenced', event);
      this.#options.ownership.lose(holding, `fenced while ${during}`);
      return true;
    }
    return holding.state === 'lost' || holding.state === 'released';
  }

  /** Runs the message as a turn of the local session; undefined when it is not ours to settle. */
  async #runTurn(
    holding: HeldShard,
    message: InboxMessage,
    event: MessageEvent,
  ): Promise<Settled | undefined> {
    const key = message.sessionKey;
    this.#requests.set(key, message.requestId);
    const parking = this.#parking.watch(holding, key);
    try {
      const onEvent = message.stream ? this.#eventForwarder(message) : undefined;
      const session = this.#options.supervisor.session(key, { agent: message.agent });
      // Each turn runs under the budget of the session it was sent through.
      if (message.budget !== undefined) session.setBudget(message.budget);
      const { idempotencyKey } = message;
      const sent = session.send(message.message, { onEvent, idempotencyKey });
      const reply = await Promise.race([sent, parking.parked.then((): typeof PARKED => PARKED)]);
      if (reply === PARKED) {
        sent.catch(() => {}); // the session closes with the shard; the next owner answers
        return undefined;
      }
      return { outcome: { ok: true, reply }, fromJournal: false };
    } catch (error) {
      // Its session was stopped because the shard went, or the node is closing: the message
      // stays pending, and the next owner runs it.
      if (this.#abandoned(holding, event, error, 'journaling')) return undefined;
      if (
        this.#options.stopped() &&
        (isAgentcellError(error, 'AGENTCELL_SUPERVISOR_CLOSED') ||
          isAgentcellError(error, 'AGENTCELL_SUPERVISOR_DESTROYED'))
      ) {
        return undefined;
      }
      if (isAgentcellError(error) && error.details?.['reason'] === REQUEST_KNOWN_REASON) {
        const record = await this.#options.store
          .recordOfRequest(key, message.requestId)
          .catch((cause: unknown) => {
            this.#options.report(cause, 'reading the journaled turn of a message', key);
            return undefined;
          });
        if (record)
          return { outcome: { ok: true, reply: journaledReply(record) }, fromJournal: true };
      }
      return { outcome: { ok: false, error: toWire(error) }, fromJournal: false };
    } finally {
      parking.stop();
      if (this.#requests.get(key) === message.requestId) this.#requests.delete(key);
    }
  }

  /**
   * Forwards a streaming caller's events to its node, on the connection the ack will use, so
   * they arrive before the reply. Best effort: the reply, not the events, is the outcome.
   */
  #eventForwarder(message: InboxMessage): (event: TurnEvent) => void {
    const replies = this.#options.keys.replies(message.origin);
    return (event) => {
      if (event.type === 'final') return; // the accepting node builds it from the reply
      this.#options.client
        .xadd(
          replies,
          'MAXLEN',
          '~',
          REPLIES_MAX_LENGTH,
          '*',
          'r',
          message.requestId,
          'e',
          encode(event),
        )
        .catch((error: unknown) =>
          this.#options.report(error, 'forwarding an event', message.sessionKey),
        );
    };
  }

  /**
   * Retries a Redis operation with backoff while the shard is still this node's: giving up
   * would let the session's next message overtake this one. Null when it gave up.
   */
  async #retry<T>(
    holding: HeldShard,
    sessionKey: string,
    during: string,
    operation: () => Promise<T>,
  ): Promise<T | null> {
    for (let attempt = 0; ; attempt++) {
      if (holding.state === 'lost' || holding.state === 'released' || this.#options.stopped()) {
        return null;
      }
      try {
        return await operation();
      } catch (error) {
        this.#options.report(error, during, sessionKey);
        await sleep(Math.min(1_000, 50 * 2 ** attempt));
      }
    }
  }
}

export function messageEvent(holding: HeldShard, message: InboxMessage): MessageEvent {
  return {
    requestId: message.requestId,
    key: message.sessionKey,
    shard: holding.shard,
    epoch: holding.epoch,
  };
}
