/**
 * The worker side of pooled placement: one turn of one session as a piscina task, callable
 * without a thread in tests and exported by `workers/turn-task.ts`.
 *
 * A pool thread serves turns of many sessions, so the task carries what the turn needs
 * (blueprint, tool entries, the session's journal) and restores the conversation from the
 * journal every time. The agent itself is the one the thread keeps for the session's current
 * stay on it (`keep`: its factory-tool instances and caches last across turns, see
 * `kept-agents.ts`), or without `keep` a fresh clone of the template for this turn only.
 * Imported tool modules are per thread, so their module-level state is shared by every
 * session the thread serves (the documented limit of pooled isolation); decoded agent
 * templates are cached, keyed by what they were built from.
 *
 * The protocol, over two ports the host transfers with each task:
 * - `port`: the host posts {@link TurnTaskControl}s (cancel, interrupt, steer); the task posts one
 *   `task-start` message, then the turn's events and its `turn-end` (the same
 *   {@link WorkerMessage}s as dedicated placement), then closes the port. The `turn-end` is
 *   the authoritative outcome; the task's return value only says it finished.
 * - `hostPort`: the host exposes {@link HostApi} on it with comlink (host tools, hooks,
 *   validators, approvals). Kept apart from `port` so comlink never sees our messages.
 */

import { createHash } from 'node:crypto';
import { type MessagePort, receiveMessageOnPort, threadId } from 'node:worker_threads';
import * as Comlink from 'comlink';
import type { AgentCore } from '../agent/agent-core.js';
import type { TurnInput } from '../agent/approval.js';
import { decodeJournal, replayJournal } from '../agent/journal.js';
import { endpointOf } from '../codec.js';
import { InternalError, toWire } from '../errors.js';
import type { ModelClient } from '../llm/model.js';
import type { AgentInit, HostApi, TurnEnd, WorkerMessage, WorkerOutput } from './api.js';
import { type BuiltAgents, bindHost, buildAgents, runSessionTurn } from './hydrate.js';
import { keptAgent, releaseHistory } from './kept-agents.js';
import { ModelLink, Outbox } from './model-link.js';
import { isModelReply } from './model-protocol.js';

/** One pooled turn: structured-cloneable, with both ports in the task's transfer list. */
export interface TurnTaskInput {
  readonly agent: AgentInit;
  readonly sessionKey: string;
  /** The session's journal as it stands before this turn, encoded with the shared codec. */
  readonly journal: string;
  readonly turnId: string;
  readonly message: TurnInput;
  /** Control in, events and `turn-end` out. */
  readonly port: MessagePort;
  /** {@link HostApi}, exposed by the host with comlink. */
  readonly hostPort: MessagePort;
  /**
   * The session's stay on this thread (see `kept-agents.ts`): with it, the thread keeps the
   * session's agent for its next turns under this token; without it, the agent lasts one turn.
   */
  readonly keep?: string | undefined;
}

/**
 * What the host may post on a task's `port` while its turn runs. `cancel` says the turn was
 * handed to another thread while this task waited (its thread was blocked): a task that finds
 * it waiting when it starts runs nothing; one that hears it later stops as for an interrupt.
 */
export type TurnTaskControl =
  | { readonly type: 'cancel' }
  | { readonly type: 'interrupt'; readonly reason: string }
  | { readonly type: 'steer'; readonly id: string; readonly message: string };

/**
 * Posted first, as soon as a pool thread picks the task up: until then the task is queued in
 * the pool, and the host can drop it without terminating any thread.
 */
export interface TurnTaskStart {
  readonly type: 'task-start';
  readonly turnId: string;
  readonly threadId: number;
}

/** Everything the task posts on its `port`, in batches (arrays), in order. */
export type TurnTaskMessage = TurnTaskStart | WorkerOutput;

/** What the task returns to piscina: a receipt; the outcome travels as the `turn-end`. */
export interface TurnTaskResult {
  readonly turnId: string;
  readonly ok: boolean;
  readonly threadId: number;
}

/** Decoded templates kept per thread; a pool serves few agents, so a handful is plenty. */
const TEMPLATE_CACHE_SIZE = 16;

type Template = BuiltAgents;

/** Least recently used last; promises, so concurrent tasks of one agent build it once. */
const templates = new Map<string, Promise<Template>>();

/**
 * The host of each turn this thread is running, by session key. Cached templates outlive the
 * turn whose host built them, so their host-tool proxies look the host up per call (a tool
 * call's context names its session; a session runs one turn at a time).
 */
const hosts = new Map<string, Comlink.Remote<HostApi>>();

/** Likewise the model link of each running turn's task, by session key. */
const links = new Map<string, ModelLink>();

/** Runs one turn and posts its events, then its `turn-end`, on `input.port`. Never rejects. */
export async function runTurnTask(input: TurnTaskInput): Promise<TurnTaskResult> {
  const { port, hostPort, turnId, sessionKey } = input;
  let open = true;
  let agent: AgentCore | undefined;
  let interruptReason: string | undefined;
  const steers: { id: string; message: string }[] = [];
  const outbox = new Outbox<TurnTaskMessage>(port);
  const link = new ModelLink(port, outbox);
  const post = (message: TurnTaskStart | WorkerMessage) => {
    if (message.type === 'turn-end') open = false;
    outbox.post(message);
  };
  const onControl = (control: TurnTaskControl) => {
    if (isModelReply(control)) return; // the model link's
    if (control.type === 'interrupt' || control.type === 'cancel') {
      const reason =
        control.type === 'cancel' ? 'the turn moved to another thread' : control.reason;
      interruptReason ??= reason;
      agent?.interrupts.interrupt(reason, turnId);
    } else if (control.type === 'steer' && open) {
      steers.push({ id: control.id, message: control.message });
    }
  };
  // Control messages posted while the task waited are read now, before anything runs: a
  // cancelled task must not start its turn. Later ones arrive as events; an interrupt that
  // comes before the turn has begun is latched.
  for (let queued = receiveMessageOnPort(port); queued; queued = receiveMessageOnPort(port)) {
    if ((queued.message as TurnTaskControl).type === 'cancel') {
      port.close();
      hostPort.close();
      return { turnId, ok: false, threadId };
    }
    onControl(queued.message as TurnTaskControl);
  }
  port.on('message', onControl);
  post({ type: 'task-start', turnId, threadId });
  const host = Comlink.wrap<HostApi>(endpointOf(hostPort));
  hosts.set(sessionKey, host);
  links.set(sessionKey, link);
  let end: TurnEnd;
  try {
    const key = templateKey(input.agent);
    const template = await templateFor(key, input.agent);
    const clone =
      input.keep === undefined
        ? template.template.clone()
        : keptAgent(sessionKey, input.keep, key, () => template.template.clone());
    const { history, usage } = replayJournal(decodeJournal(input.journal));
    clone.restore(history, usage);
    const running = runSessionTurn(
      bindHost(input.agent, template, host),
      clone,
      { sessionKey, turnId, message: input.message, steering: () => steers.splice(0) },
      post,
    );
    // runSessionTurn began the turn synchronously, so a latched interrupt reaches it now.
    agent = clone;
    if (interruptReason !== undefined) clone.interrupts.interrupt(interruptReason, turnId);
    end = await running;
  } catch (error) {
    // Only building the agent or decoding the journal gets here: a turn's own failure is
    // already in its turn-end.
    end = { ok: false, error: toWire(error), type: 'turn-end', turnId, steered: [], cpuMs: 0 };
    post(end);
  } finally {
    if (agent && input.keep !== undefined) releaseHistory(agent);
    if (hosts.get(sessionKey) === host) hosts.delete(sessionKey);
    if (links.get(sessionKey) === link) links.delete(sessionKey);
    outbox.flush();
    port.close();
    hostPort.close();
  }
  return { turnId, ok: end.ok, threadId };
}

/** The agent template (and handoff targets) for `init`, from this thread's cache. */
function templateFor(key: string, init: AgentInit): Promise<Template> {
  const cached = templates.get(key);
  if (cached) {
    templates.delete(key);
    templates.set(key, cached);
    return cached;
  }
  const building = buildTemplate(init);
  templates.set(key, building);
  building.catch(() => {
    if (templates.get(key) === building) templates.delete(key);
  });
  while (templates.size > TEMPLATE_CACHE_SIZE) {
    const oldest = templates.keys().next();
    if (oldest.done) break;
    templates.delete(oldest.value);
  }
  return building;
}

/**
 * The same blueprint resolves differently with other tool entries or handoffs, so the key
 * covers all three; hashed, so the cache does not hold a second copy of each blueprint.
 */
function templateKey(init: AgentInit): string {
  return createHash('sha256')
    .update(init.blueprint)
    .update('\0')
    .update(JSON.stringify(init.tools))
    .update('\0')
    .update(JSON.stringify(Object.entries(init.handoffs).sort(([a], [b]) => (a < b ? -1 : 1))))
    .digest('base64');
}

function buildTemplate(init: AgentInit): Promise<Template> {
  return buildAgents(
    init,
    (name, args, context) => {
      const host = hosts.get(context.sessionKey);
      if (!host) {
        throw new InternalError(
          `host tool ${JSON.stringify(name)} was called outside a turn of session ${JSON.stringify(context.sessionKey)}`,
        );
      }
      return host.callTool(name, args, context);
    },
    modelFor,
  );
}

/** A template's model client: each call goes through the link of the task running its turn. */
function modelFor(ref: string): ModelClient {
  return {
    complete: (request, signal, observer, meta) => {
      const link = meta && links.get(meta.sessionKey);
      if (!link) {
        throw new InternalError(
          `a model call was made outside a turn of session ${JSON.stringify(meta?.sessionKey)}`,
        );
      }
      return link.client(ref).complete(request, signal, observer, meta);
    },
  };
}

/** How many templates this thread holds (for tests and diagnostics). */
export function cachedTemplateCount(): number {
  return templates.size;
}
