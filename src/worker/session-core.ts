/**
 * The worker side of a session, callable without a thread (tests) and exposed by
 * `workers/session-worker.ts` over comlink. It rebuilds the agent from its blueprint — fresh
 * locks and interrupt controller — restores the journal, and runs turns, posting every event
 * and each turn's end on the event port in order.
 */
import { performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { type MessagePort, threadId } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { Agent } from '../agent/agent.js';
import { decodeBlueprint } from '../agent/blueprint.js';
import type { Hook, Validator } from '../agent/extensions.js';
import { decodeJournal, replayJournal } from '../agent/journal.js';
import { runTurn } from '../agent/turn.js';
import type { TurnEvent } from '../agent/turn-events.js';
import { endpointOf } from '../codec.js';
import { toWire } from '../errors.js';
import { ToolRegistry } from '../tools/registry.js';
import type {
  HostApi,
  SessionInit,
  SessionWorkerApi,
  TurnOutcome,
  WorkerMessage,
  WorkerStats,
} from './api.js';

interface RunningTurn {
  readonly turnId: string;
  readonly steers: { id: string; message: string }[];
  readonly taken: string[];
  /** False once the turn can take no more steered messages. */
  open: boolean;
}

export class SessionCore implements SessionWorkerApi {
  #agent: Agent | undefined;
  #sessionKey = '';
  #events: MessagePort | undefined;
  #host: Comlink.Remote<HostApi> | undefined;
  #hooks: Record<string, Hook> = {};
  #validators: Record<string, Validator> = {};
  #handoffs = new Map<string, Agent>();
  #current: RunningTurn | undefined;

  async init(init: SessionInit): Promise<{ readonly threadId: number }> {
    this.#sessionKey = init.sessionKey;
    this.#events = init.events;
    const host = Comlink.wrap<HostApi>(endpointOf(init.host));
    this.#host = host;
    const registry = await ToolRegistry.fromEntries(init.tools, (name, args, context) =>
      host.callTool(name, args, context),
    );
    const agent = Agent.fromBlueprint(decodeBlueprint(init.blueprint, { registry }), { registry });
    const { history, usage } = replayJournal(decodeJournal(init.journal));
    agent.restore(history, usage);
    this.#agent = agent;
    for (const [name, text] of Object.entries(init.handoffs)) {
      this.#handoffs.set(
        name,
        Agent.fromBlueprint(decodeBlueprint(text, { registry }), { registry }),
      );
    }
    this.#hooks = Object.fromEntries(
      init.hooks.map((name) => [name, (context) => host.runHook(name, context)]),
    );
    this.#validators = Object.fromEntries(
      init.validators.map((name) => [
        name,
        (reply, { config: _config, ...context }) => host.validate(name, reply, context),
      ]),
    );
    return { threadId };
  }

  startTurn(turnId: string, message: string): void {
    const agent = this.#agent;
    if (!agent) throw new Error('init() must be called before startTurn()');
    const turn: RunningTurn = { turnId, steers: [], taken: [], open: true };
    this.#current = turn;
    const elu = performance.eventLoopUtilization();
    const finish = (outcome: TurnOutcome) => {
      turn.open = false;
      if (this.#current === turn) this.#current = undefined;
      const cpuMs = performance.eventLoopUtilization(elu).active;
      this.#post({ ...outcome, type: 'turn-end', turnId, steered: turn.taken, cpuMs });
    };
    runTurn(agent, message, {
      turnId,
      sessionKey: this.#sessionKey,
      onEvent: (event: TurnEvent) => this.#post(event),
      hooks: this.#hooks,
      validators: this.#validators,
      approver: (request) => this.#host!.approve(request),
      agents: (name) => this.#handoffs.get(name),
      steering: () => {
        const taken = turn.steers.splice(0);
        turn.taken.push(...taken.map((steer) => steer.id));
        return taken.map((steer) => steer.message);
      },
    }).then(
      (result) => finish({ ok: true, result }),
      (error: unknown) => finish({ ok: false, error: toWire(error) }),
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

  #post(message: WorkerMessage): void {
    this.#events?.postMessage(message);
  }
}
