/**
 * The worker side of a session (dedicated placement), callable without a thread in tests and
 * exposed by `workers/session-worker.ts` over comlink. `prepare` builds the agent template
 * once (a warm worker stops here); `activate` binds the worker to one session with a clone of
 * the template (fresh locks and interrupt controller) and the session's journal.
 *
 * The thread makes no connection of its own: model calls go to the host over the event port.
 */
import { getHeapStatistics } from 'node:v8';
import { type MessagePort, threadId } from 'node:worker_threads';
import type { AgentCore } from '../agent/agent-core.js';
import type { TurnInput } from '../agent/approval.js';
import { decodeJournal, replayJournal } from '../agent/journal.js';
import type {
  PrepareInit,
  SessionWorkerApi,
  WorkerMessage,
  WorkerOutput,
  WorkerStats,
} from './api.js';
import { type Hydrated, hydrate, runSessionTurn } from './hydrate.js';
import { ModelLink, Outbox } from './model-link.js';

interface RunningTurn {
  readonly turnId: string;
  readonly steers: { id: string; message: string }[];
  /** False once the turn can take no more steered messages. */
  open: boolean;
}

export class SessionCore implements SessionWorkerApi {
  #hydrated: Hydrated | undefined;
  #agent: AgentCore | undefined;
  #sessionKey = '';
  #outbox: Outbox<WorkerOutput> | undefined;
  #current: RunningTurn | undefined;

  async prepare(init: PrepareInit): Promise<{ readonly threadId: number }> {
    const outbox = new Outbox<WorkerOutput>(init.events as MessagePort);
    const link = new ModelLink(init.events, outbox);
    this.#outbox = outbox;
    this.#hydrated = await hydrate(init, init.host, (ref) => link.client(ref));
    return { threadId };
  }

  activate(sessionKey: string, journal: string): void {
    if (!this.#hydrated) throw new Error('prepare() must be called before activate()');
    if (this.#agent) throw new Error('a session worker serves one session only');
    const agent = this.#hydrated.template.clone();
    const { history, usage } = replayJournal(decodeJournal(journal));
    agent.restore(history, usage);
    this.#sessionKey = sessionKey;
    this.#agent = agent;
  }

  startTurn(turnId: string, message: TurnInput): void {
    const hydrated = this.#hydrated;
    const agent = this.#agent;
    const outbox = this.#outbox;
    if (!hydrated || !agent || !outbox) {
      throw new Error('activate() must be called before startTurn()');
    }
    const turn: RunningTurn = { turnId, steers: [], open: true };
    this.#current = turn;
    const post = (event: WorkerMessage) => {
      if (event.type === 'turn-end') {
        turn.open = false;
        if (this.#current === turn) this.#current = undefined;
      }
      outbox.post(event);
    };
    void runSessionTurn(
      hydrated,
      agent,
      { sessionKey: this.#sessionKey, turnId, message, steering: () => turn.steers.splice(0) },
      post,
    );
  }

  interrupt(turnId: string, reason: string): boolean {
    return this.#agent?.interrupts.interrupt(reason, turnId) ?? false;
  }

  steer(turnId: string, steerId: string, message: string): boolean {
    const turn = this.#current;
    if (!turn || turn.turnId !== turnId || !turn.open) return false;
    turn.steers.push({ id: steerId, message });
    return true;
  }

  stats(): WorkerStats {
    const heap = getHeapStatistics();
    return {
      threadId,
      heapUsedBytes: heap.used_heap_size,
      heapLimitBytes: heap.heap_size_limit,
      historyLength: this.#agent?.history.length ?? 0,
    };
  }
}
