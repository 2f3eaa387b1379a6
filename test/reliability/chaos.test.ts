/**
 * Chaos under load. Two loads run on real worker threads while a seeded fault injector works
 * against them:
 *
 * 1. 1,000 sessions under pooled placement (a bounded pool of 2 threads: a dedicated worker
 *    costs ~190 ms of CPU to start here, so 1,000 of them would not fit the time budget) plus
 *    24 sessions under dedicated placement behind a live ceiling of 8 (LRU and idle
 *    passivation, warm pool), all through one Supervisor on a FileStore;
 * 2. 50 sessions of two tenants (overlapping keys) through the HTTP gateway, JSON and SSE:
 *    one tenant's sessions on dedicated workers behind a live ceiling of 8, the other's pooled.
 *
 * Faults: messages carry markers the mock LLM turns into 429s, 500s, malformed and stalled
 * streams, or tool calls that throw, hang (until an interrupt or the turn timeout), block
 * their thread ignoring interrupts, call process.exit() or exhaust their heap
 * (resourceLimits); meanwhile the injector kills random worker threads (a kill switch in
 * every thread: live dedicated workers by `session.threadId`, any registered thread, pool
 * threads included), interrupts hanging and random busy turns, and passivates idle sessions.
 * Every message carries its session key and a sequence number, and the mock echoes it.
 *
 * Asserted from the callers' records and the journals: every accepted message got exactly one
 * outcome (a reply or a typed AGENTCELL_* error); no reply was delivered twice or to another
 * session; every completed turn is in its session's journal exactly once, in order; the host
 * lives; after close no worker is live, and handles and RSS are back to the baseline.
 * `AGENTCELL_SEED=<n>` replays a run's choices (timing still varies).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Agent } from '../../src/agent/agent.js';
import type { JournalRecord } from '../../src/agent/journal.js';
import type { ChatMessage } from '../../src/agent/messages.js';
import { errorCatalogue } from '../../src/errors.js';
import { createGateway } from '../../src/gateway/gateway.js';
import type { Session } from '../../src/runtime/session.js';
import { FileStore } from '../../src/runtime/stores/file.js';
import { MemoryStore } from '../../src/runtime/stores/memory.js';
import { Supervisor } from '../../src/runtime/supervisor.js';
import { type MockLlm, type MockLlmRequest, startMockLlm } from '../../src/testing/mock-llm.js';
import { lastUserText, type MockRule } from '../../src/testing/mock-llm-script.js';
import type { Tool } from '../../src/tools/tool.js';
import { agentFor, listen } from '../support/harness.js';
import {
  codeOf,
  eventually,
  forceGc,
  HttpClient,
  handleCounts,
  handlesAbove,
  installKillSwitch,
  isTypedCode,
  MiB,
  parseSse,
  printSeedOnFailure,
  Rng,
  reliabilityRegistry,
  suiteSeed,
} from './helpers.js';

const SEED = suiteSeed(0xc4a05);
const originalTerminate = Worker.prototype.terminate;
// Published before any worker of this file starts.
const killSwitch = installKillSwitch();

/**
 * RSS may stay this much above the baseline after everything closed (allocator arenas, JIT code,
 * and the host's heap: every session's model I/O now runs on the host thread, whose heap grows
 * to the load's high-water mark and stays committed after GC; measured after the loads alone:
 * heapTotal 115 MiB against 62 before, heapUsed +23 MiB, RSS +104 MiB).
 */
const RSS_TOLERANCE_MIB = 200;
/**
 * Generous on purpose: this suite shares two cores with other test files, and a pooled turn
 * that times out gets its whole pool thread terminated once its interrupt grace is over.
 */
const TURN_TIMEOUT_MS = 6_000;
const INTERRUPT_GRACE_MS = 1_000;

type Fault =
  | 'plain'
  | 'echo'
  | 'throw'
  | 'hang'
  | 'exit'
  | 'block'
  | 'heap'
  | 'llm429once'
  | 'llm500once'
  | 'llm429'
  | 'llm500'
  | 'malformed'
  | 'stall';

const MARKERS: Readonly<Record<Fault, string>> = {
  plain: 'plain',
  echo: 'tool=echo',
  throw: 'tool=throw',
  hang: 'tool=hang',
  exit: 'tool=exit',
  block: 'tool=block',
  heap: 'tool=heap',
  llm429once: '[[mock:429x1]]',
  llm500once: '[[mock:500x1]]',
  llm429: '[[mock:429]]',
  llm500: '[[mock:500]]',
  malformed: '[[mock:malformed]]',
  stall: '[[mock:stall]]',
};

const RULES: MockRule[] = [
  ...(['echo', 'throw', 'hang', 'exit', 'block'] as const).map((mode) => ({
    match: `tool=${mode}`,
    steps: [{ toolCalls: [{ name: 'chaos', arguments: { mode } }] }],
  })),
  { match: 'tool=heap', steps: [{ toolCalls: [{ name: 'exhaust_heap', arguments: {} }] }] },
];

/** Codes any message may end with when the injector (or a neighbour's fault) hits its turn. */
const COLLATERAL = new Set([
  'AGENTCELL_SESSION_CRASHED',
  'AGENTCELL_SESSION_FAILED',
  'AGENTCELL_INTERRUPTED',
  'AGENTCELL_TURN_TIMEOUT',
]);

/** Codes a message with this fault ends with when nothing else hits it. */
const OWN_ERRORS: Readonly<Record<Fault, readonly string[]>> = {
  plain: [],
  echo: [],
  throw: [],
  llm429once: [],
  llm500once: [],
  llm429: ['AGENTCELL_LLM_RATE_LIMITED'],
  llm500: ['AGENTCELL_LLM_REQUEST_FAILED'],
  malformed: ['AGENTCELL_LLM_BAD_RESPONSE'],
  stall: ['AGENTCELL_TURN_TIMEOUT'],
  hang: ['AGENTCELL_TURN_TIMEOUT'],
  block: ['AGENTCELL_TURN_TIMEOUT'],
  exit: ['AGENTCELL_SESSION_CRASHED'],
  heap: ['AGENTCELL_SESSION_CRASHED'],
};

/** The reply a message with this fault must get, if it gets one; undefined: it never does. */
function expectedReply(fault: Fault, message: string, key: string): RegExp | string | undefined {
  switch (fault) {
    case 'plain':
    case 'llm429once':
    case 'llm500once':
      return `echo: ${message}`;
    case 'echo':
      return `tool results: session=${key}`;
    case 'throw':
      return /^tool results: error AGENTCELL_TOOL_FAILED: /;
    default:
      return undefined;
  }
}

type Outcome =
  | { readonly kind: 'reply'; readonly text: string; readonly turnId: string }
  | { readonly kind: 'error'; readonly code: string; readonly message: string };

interface Sent {
  /** The supervisor key of the session. */
  readonly key: string;
  readonly seq: number;
  readonly fault: Fault;
  readonly message: string;
  /** Messages of the same session that settled before this one was sent. */
  readonly after: readonly number[];
  outcome: Outcome | undefined;
  settlements: number;
}

function settle(sent: Sent, outcome: Outcome): void {
  sent.settlements++;
  sent.outcome ??= outcome;
}

function errorOutcome(error: unknown): Outcome {
  return {
    kind: 'error',
    code: codeOf(error),
    message: String((error as { message?: unknown } | undefined)?.message),
  };
}

/** Runs `task` over `items`, at most `limit` at once. */
async function runLimited<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const item = items[next++] as T;
        await task(item);
      }
    }),
  );
}

/** What each message of a load does: its fault, and whether the injector interrupts it. */
interface Plan {
  readonly faults: readonly Fault[];
  /** For hanging faults: interrupt the turn this long after the model first sees it. */
  readonly interruptAfterMs: readonly (number | undefined)[];
}

const HANGING: ReadonlySet<Fault> = new Set(['hang', 'stall', 'block']);

/**
 * Picks each message's fault: weighted draws, plus exact counts of the rare, costly ones; and
 * for about two thirds of the hanging ones, when the injector interrupts them. Everything is
 * drawn up front, so the plan depends on the seed only, never on timing.
 */
function planFaults(
  rng: Rng,
  count: number,
  weights: Readonly<Partial<Record<Fault, number>>>,
  exact: Readonly<Partial<Record<Fault, number>>>,
): Plan {
  const faults = Array.from({ length: count }, () =>
    rng.weighted(weights as Readonly<Record<Fault, number>>),
  );
  for (const [fault, times] of Object.entries(exact) as [Fault, number][]) {
    for (let placed = 0; placed < times; ) {
      const index = rng.int(count);
      if (faults[index] !== 'plain') continue;
      faults[index] = fault;
      placed++;
    }
  }
  const interruptAfterMs = faults.map((fault) =>
    HANGING.has(fault) && rng.chance(2 / 3) ? 100 + rng.int(900) : undefined,
  );
  return { faults, interruptAfterMs };
}

function slicePlan(plan: Plan, start: number, length: number): Plan {
  return {
    faults: plan.faults.slice(start, start + length),
    interruptAfterMs: plan.interruptAfterMs.slice(start, start + length),
  };
}

/**
 * Interrupts a message's turn `delayMs` after the mock LLM first sees that message: by then
 * the turn is running on its worker, so the interrupt is aimed at it and not at a neighbour.
 */
function targetedInterrupts(llm: MockLlm): {
  when(message: string, delayMs: number, interrupt: () => Promise<unknown>): void;
  readonly fired: number;
  pending(): Promise<unknown>[];
  stop(): void;
} {
  const planned = new Map<string, { delayMs: number; interrupt: () => Promise<unknown> }>();
  const timers = new Set<NodeJS.Timeout>();
  const running = new Set<Promise<unknown>>();
  let fired = 0;
  const onRequest = (request: MockLlmRequest) => {
    const text = request.body ? lastUserText(request.body.messages) : '';
    const target = planned.get(text);
    if (!target) return;
    planned.delete(text);
    const timer = setTimeout(() => {
      timers.delete(timer);
      fired++;
      const done = target.interrupt().catch(() => {});
      running.add(done);
      void done.finally(() => running.delete(done));
    }, target.delayMs);
    timers.add(timer);
  };
  llm.events.on('request', onRequest);
  return {
    when: (message, delayMs, interrupt) => planned.set(message, { delayMs, interrupt }),
    get fired() {
      return fired;
    },
    pending: () => [...running],
    stop: () => {
      llm.events.off('request', onRequest);
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
  };
}

/** The end of a streamed turn as the gateway sends it. */
interface SseEnd {
  readonly reply?: string;
  readonly turnId?: string;
  readonly code?: string;
  readonly message?: string;
}

/** A JSON answer of the message route. */
interface JsonEnd {
  readonly reply?: string;
  readonly turnId?: string;
  readonly error?: { readonly code?: string; readonly message?: string };
}

interface Tally {
  readonly faults: Record<string, number>;
  readonly outcomes: Record<string, number>;
}

function tally(sent: readonly Sent[]): Tally {
  const faults: Record<string, number> = {};
  const outcomes: Record<string, number> = {};
  for (const each of sent) {
    faults[each.fault] = (faults[each.fault] ?? 0) + 1;
    const name = each.outcome?.kind === 'reply' ? 'reply' : (each.outcome?.code ?? 'NONE');
    outcomes[name] = (outcomes[name] ?? 0) + 1;
  }
  return { faults, outcomes };
}

/** Checks one message's outcome against its fault; returns a problem or undefined. */
function checkOutcome(sent: Sent, shownKey: string): string | undefined {
  const where = `${sent.key} #${sent.seq} (${sent.fault})`;
  if (sent.settlements !== 1) return `${where}: settled ${sent.settlements} times`;
  const outcome = sent.outcome;
  if (!outcome) return `${where}: no outcome`;
  if (outcome.kind === 'error') {
    if (!isTypedCode(outcome.code)) return `${where}: untyped error ${outcome.code}`;
    if (!COLLATERAL.has(outcome.code) && !OWN_ERRORS[sent.fault].includes(outcome.code)) {
      return `${where}: unexpected ${outcome.code}: ${outcome.message}`;
    }
    return undefined;
  }
  const expected = expectedReply(sent.fault, sent.message, shownKey);
  if (expected === undefined) return `${where}: got a reply, expected an error: ${outcome.text}`;
  const matches =
    typeof expected === 'string' ? outcome.text === expected : expected.test(outcome.text);
  return matches ? undefined : `${where}: wrong reply ${JSON.stringify(outcome.text)}`;
}

function userText(record: JournalRecord): string | undefined {
  const first: ChatMessage | undefined = record.messages[0];
  return first?.role === 'user' ? first.content : undefined;
}

function finalText(record: JournalRecord): string | undefined {
  const last = record.messages.at(-1);
  return last?.role === 'assistant' ? (last.content ?? undefined) : undefined;
}

/**
 * Checks a session's journal against what its callers were told: exactly the answered
 * messages, each once, in an order consistent with how they were sent.
 */
function checkJournal(
  key: string,
  records: readonly JournalRecord[],
  sent: readonly Sent[],
  strictOrder: boolean,
): string[] {
  const problems: string[] = [];
  const answered = sent.filter((each) => each.outcome?.kind === 'reply');
  const turnIds = records.map((record) => record.turnId);
  if (new Set(turnIds).size !== turnIds.length) problems.push(`${key}: a turn journaled twice`);
  const bySeq = new Map(sent.map((each) => [each.message, each]));
  const journaled = records.map((record) => bySeq.get(userText(record) ?? ''));
  if (journaled.some((each) => each === undefined)) {
    problems.push(`${key}: a journal record answers no message of this session`);
  }
  for (const [index, record] of records.entries()) {
    const each = journaled[index];
    if (each?.outcome?.kind !== 'reply') {
      problems.push(
        `${key}: ${each?.message} is journaled but its caller got ${each?.outcome?.kind === 'error' ? each.outcome.code : 'nothing'}`,
      );
      continue;
    }
    if (each.outcome.turnId !== record.turnId)
      problems.push(`${key}: ${each.message} journaled under another turn`);
    if (finalText(record) !== each.outcome.text)
      problems.push(`${key}: ${each.message} journaled with another reply`);
  }
  if (records.length !== answered.length) {
    problems.push(`${key}: ${records.length} journal records for ${answered.length} replies`);
  }
  const position = new Map(journaled.map((each, index) => [each?.seq, index]));
  for (const each of answered) {
    if (!position.has(each.seq)) continue;
    const mine = position.get(each.seq) ?? 0;
    const before = strictOrder
      ? answered.filter((other) => other.seq < each.seq)
      : answered.filter((other) => each.after.includes(other.seq));
    for (const other of before) {
      if ((position.get(other.seq) ?? -1) > mine) {
        problems.push(`${key}: #${other.seq} journaled after #${each.seq}`);
      }
    }
  }
  return problems;
}

/** {@link checkJournal} for each of `keys`, as a new FileStore on `dir` reads their journals. */
async function journalProblemsIn(
  dir: string,
  keys: readonly string[],
  sent: readonly Sent[],
  strictOrder: boolean,
): Promise<string[]> {
  const store = new FileStore({ dir });
  const problems: string[] = [];
  for (const key of keys) {
    const mine = sent.filter((each) => each.key === key);
    problems.push(...checkJournal(key, await store.read(key), mine, strictOrder));
  }
  await store.close();
  return problems;
}

let mock: MockLlm;
let baselineHandles: Record<string, number>;
let baselineRss = 0;
/** Sampled while the loads run: the highest RSS, and proof the host's event loop kept turning. */
const host = { peakRss: 0, beats: 0, maxLagMs: 0 };
let heartbeat: NodeJS.Timeout | undefined;
const dirs: string[] = [];
const supervisors: Supervisor[] = [];

async function tempDir(name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `agentcell-chaos-${name}-`));
  dirs.push(dir);
  return dir;
}

function chaosAgent(name: string, tools: readonly Tool[]): Agent {
  return agentFor(mock, {
    name,
    apiKey: 'sk-chaos',
    tools: [...tools],
    execution: { maxRetries: 2 },
  });
}

/** What the injector did. */
interface Injected {
  killRequests: number;
  interrupts: number;
  passivations: number;
  httpInterrupts: number;
}

beforeAll(async () => {
  // A first supervisor round trip loads what every later one shares (modules, JIT code), so the
  // baseline is taken after it.
  const warm = await startMockLlm();
  const { registry, tools } = await reliabilityRegistry(['killswitch']);
  const warmup = new Supervisor({ tools: registry, warmPoolSize: 0, poolThreads: 1 });
  warmup.register('dedicated', agentFor(warm, { name: 'd', tools }));
  warmup.register('pooled', agentFor(warm, { name: 'p', tools }), {
    placement: 'pooled',
  });
  await warmup.session('warm-d', { agent: 'dedicated' }).send('hello');
  await warmup.session('warm-p', { agent: 'pooled' }).send('hello');
  await warmup.close();
  await warm.close();
  // Ports of the warm-up's workers close a loop iteration or two after their threads.
  await eventually(() => !('MessagePort' in handleCounts()), 5_000);
  forceGc();
  baselineHandles = handleCounts();
  baselineRss = process.memoryUsage().rss;
  mock = await startMockLlm({ rules: RULES });
  let last = performance.now();
  heartbeat = setInterval(() => {
    const now = performance.now();
    host.maxLagMs = Math.max(host.maxLagMs, now - last - 250);
    last = now;
    host.beats++;
    host.peakRss = Math.max(host.peakRss, process.memoryUsage().rss);
  }, 250);
}, 60_000);

afterAll(async () => {
  clearInterval(heartbeat);
  await Promise.all(supervisors.map((supervisor) => supervisor.destroy('test cleanup')));
  await mock?.close();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('chaos under load', () => {
  it('1,000 pooled and 24 dedicated sessions through the supervisor: exactly one outcome per message, journals exact, under seeded faults', async () => {
    printSeedOnFailure(SEED, 'supervisor chaos');
    const traffic = new Rng(SEED);
    const chaos = new Rng(SEED ^ 0x9e3779b9);
    const dir = await tempDir('supervisor');
    const { registry, tools } = await reliabilityRegistry(['chaos', 'exhaust_heap', 'killswitch']);
    const supervisor = new Supervisor({
      tools: registry,
      store: new FileStore({ dir }),
      poolThreads: 2,
      poolTurnsPerThread: 32,
      maxConcurrentTurns: 64,
      maxLiveSessions: 8,
      warmPoolSize: 1,
      idleTimeoutMs: 4_000,
      turnTimeoutMs: TURN_TIMEOUT_MS,
      interruptGraceMs: INTERRUPT_GRACE_MS,
      resourceLimits: { maxOldGenerationSizeMb: 128 },
      restart: { maxRestarts: 20, windowMs: 60_000, backoffMs: 5, maxBackoffMs: 50 },
    });
    supervisors.push(supervisor);
    supervisor.register('pooled', chaosAgent('pooled', tools), { placement: 'pooled' });
    supervisor.register('dedicated', chaosAgent('dedicated', tools));

    const turnEnds = new Map<string, number>();
    let okTurnEnds = 0;
    let crashes = 0;
    let starts = 0;
    const passivatedBy: Record<string, number> = {};
    supervisor.on('turn:end', ({ turnId, outcome }) => {
      turnEnds.set(turnId, (turnEnds.get(turnId) ?? 0) + 1);
      if (outcome === 'ok') okTurnEnds++;
    });
    supervisor.on('session:crash', () => crashes++);
    supervisor.on('session:start', ({ threadId }) => {
      if (threadId >= 0) starts++;
    });
    supervisor.on('session:passivate', ({ reason }) => {
      passivatedBy[reason] = (passivatedBy[reason] ?? 0) + 1;
    });

    const POOLED = 1_000;
    const DEDICATED = 24;
    const pooledKeys = Array.from({ length: POOLED }, (_, i) => `chaos:p-${i}`);
    const dedicatedKeys = Array.from({ length: DEDICATED }, (_, i) => `chaos:d-${i}`);
    const pooledPlan = planFaults(
      traffic,
      POOLED * 3,
      {
        plain: 64,
        echo: 8,
        throw: 5,
        llm429once: 5,
        llm500once: 5,
        llm429: 2,
        llm500: 2,
        malformed: 2,
        stall: 1,
        hang: 2,
      },
      { exit: 3 },
    );
    const dedicatedPlan = planFaults(
      traffic,
      DEDICATED * 5,
      {
        plain: 55,
        echo: 10,
        throw: 6,
        llm429once: 6,
        llm500once: 5,
        llm500: 3,
        malformed: 3,
        stall: 3,
        hang: 5,
      },
      { exit: 4, heap: 2, block: 2 },
    );

    const sent: Sent[] = [];
    const sessions = new Map<string, Session>();
    const interrupter = targetedInterrupts(mock);
    const talk = async (key: string, agent: string, plan: Plan): Promise<void> => {
      const session = supervisor.session(key, { agent });
      sessions.set(key, session);
      const mine: Sent[] = [];
      const send = (seq: number): Promise<void> => {
        const fault = plan.faults[seq] as Fault;
        const each: Sent = {
          key,
          seq,
          fault,
          message: `${key} #${seq} ${MARKERS[fault]}`,
          after: mine.filter((other) => other.outcome).map((other) => other.seq),
          outcome: undefined,
          settlements: 0,
        };
        mine.push(each);
        sent.push(each);
        const delay = plan.interruptAfterMs[seq];
        if (delay !== undefined) {
          interrupter.when(each.message, delay, () => session.interrupt('chaos: stop hanging'));
        }
        return session.send(each.message).then(
          (reply) => settle(each, { kind: 'reply', text: reply.text, turnId: reply.turnId }),
          (error: unknown) => settle(each, errorOutcome(error)),
        );
      };
      // Two pipelined (the second waits in the mailbox), then the rest pipelined.
      await Promise.all([send(0), send(1)]);
      await Promise.all(plan.faults.slice(2).map((_, i) => send(i + 2)));
    };

    const injected: Injected = {
      killRequests: 0,
      interrupts: 0,
      passivations: 0,
      httpInterrupts: 0,
    };
    const injector = setInterval(() => {
      const keys = [...sessions.keys()];
      if (keys.length === 0) return;
      const action = chaos.weighted({
        killDedicated: 6,
        killAny: 2,
        passivate: 30,
        interrupt: 12,
        none: 50,
      });
      if (action === 'killDedicated') {
        const live = dedicatedKeys.flatMap((key) => {
          const threadId = sessions.get(key)?.threadId;
          return threadId === undefined ? [] : [threadId];
        });
        if (live.length > 0 && killSwitch.kill(chaos.pick(live))) injected.killRequests++;
      } else if (action === 'killAny') {
        const threads = killSwitch.registered();
        if (threads.length > 0 && killSwitch.kill(chaos.pick(threads))) injected.killRequests++;
      } else if (action === 'passivate') {
        const session = sessions.get(chaos.pick(keys));
        void session?.passivate().then((done) => {
          if (done) injected.passivations++;
        });
      } else if (action === 'interrupt') {
        const busy = keys.filter((key) => sessions.get(key)?.busy);
        if (busy.length === 0) return;
        void sessions
          .get(chaos.pick(busy))
          ?.interrupt('chaos')
          .then((done) => {
            if (done) injected.interrupts++;
          });
      }
    }, 100);

    const started = performance.now();
    try {
      await Promise.all([
        runLimited(pooledKeys, 150, (key) => {
          const index = pooledKeys.indexOf(key);
          return talk(key, 'pooled', slicePlan(pooledPlan, index * 3, 3));
        }),
        runLimited(dedicatedKeys, 8, (key) => {
          const index = dedicatedKeys.indexOf(key);
          return talk(key, 'dedicated', slicePlan(dedicatedPlan, index * 5, 5));
        }),
      ]);
    } finally {
      clearInterval(injector);
      interrupter.stop();
    }
    const trafficMs = performance.now() - started;
    await supervisor.close();
    expect(supervisor.stats().liveWorkers).toBe(0);

    // Every message: exactly one outcome, typed, and the reply of its own session.
    expect(sent).toHaveLength(POOLED * 3 + DEDICATED * 5);
    const problems = sent.flatMap((each) => checkOutcome(each, each.key) ?? []);
    expect(problems).toEqual([]);
    const replies = sent.flatMap((each) => (each.outcome?.kind === 'reply' ? [each.outcome] : []));
    expect(new Set(replies.map((reply) => reply.turnId)).size).toBe(replies.length);
    expect(okTurnEnds).toBe(replies.length);
    expect([...turnEnds.values()].every((count) => count === 1)).toBe(true);

    // The journals, read back by a new store: every answered turn once, in order, nothing else.
    const journalProblems = await journalProblemsIn(
      dir,
      [...pooledKeys, ...dedicatedKeys],
      sent,
      true,
    );
    expect(journalProblems).toEqual([]);

    const figures = tally(sent);
    console.info(
      `supervisor chaos (seed ${SEED}): ${sent.length} messages in ${Math.round(trafficMs)} ms; faults ${JSON.stringify(figures.faults)}; outcomes ${JSON.stringify(figures.outcomes)}; injected ${JSON.stringify({ ...injected, targetedInterrupts: interrupter.fired })}, threads killed ${killSwitch.killed()}; crashes ${crashes}, worker starts ${starts}, passivations ${JSON.stringify(passivatedBy)}`,
    );
    // The load really was under fire, and most of it still got through.
    expect(killSwitch.killed()).toBeGreaterThan(0);
    expect(injected.passivations + (passivatedBy['capacity'] ?? 0)).toBeGreaterThan(0);
    expect(figures.outcomes['reply'] ?? 0).toBeGreaterThan(sent.length * 0.4);
  }, 180_000);

  it('50 sessions of two tenants through the HTTP gateway (JSON and SSE): one typed outcome per request, journals exact, under seeded faults', async () => {
    printSeedOnFailure(SEED, 'gateway chaos');
    const traffic = new Rng(SEED + 1);
    const chaos = new Rng((SEED + 1) ^ 0x9e3779b9);
    const dir = await tempDir('gateway');
    const { registry, tools } = await reliabilityRegistry(['chaos', 'killswitch']);
    const supervisor = new Supervisor({
      tools: registry,
      store: new FileStore({ dir }),
      poolThreads: 1,
      maxLiveSessions: 8,
      warmPoolSize: 2,
      idleTimeoutMs: 4_000,
      turnTimeoutMs: TURN_TIMEOUT_MS,
      interruptGraceMs: INTERRUPT_GRACE_MS,
      resourceLimits: { maxOldGenerationSizeMb: 128 },
      restart: { maxRestarts: 20, windowMs: 60_000, backoffMs: 5, maxBackoffMs: 50 },
    });
    supervisors.push(supervisor);
    supervisor.register('dedicated', chaosAgent('dedicated', tools));
    supervisor.register('pooled', chaosAgent('pooled', tools), { placement: 'pooled' });
    const TOKENS = {
      acme: 'acme-chaos-token-0123456789',
      globex: 'globex-chaos-token-0123456789',
    } as const;
    const AGENT_OF = { acme: 'dedicated', globex: 'pooled' } as const;
    const hidden: unknown[] = [];
    const gateway = createGateway(supervisor, {
      tenants: { [TOKENS.acme]: { id: 'acme' }, [TOKENS.globex]: { id: 'globex' } },
      onError: (error) => hidden.push(error),
    });
    const server = await listen(gateway.handler);
    const client = new HttpClient(server.url);
    const authorization = (tenant: 'acme' | 'globex') => ({
      authorization: `Bearer ${TOKENS[tenant]}`,
      'content-type': 'application/json',
    });

    const PER_TENANT = 25;
    // Both tenants use the same keys: the gateway must keep them apart.
    const targets = (['acme', 'globex'] as const).flatMap((tenant) =>
      Array.from({ length: PER_TENANT }, (_, i) => ({ tenant, key: `user-${i}` })),
    );
    const plan = planFaults(
      traffic,
      targets.length * 3,
      {
        plain: 60,
        echo: 10,
        throw: 5,
        llm429once: 5,
        llm500: 5,
        malformed: 3,
        stall: 3,
        hang: 4,
      },
      { exit: 4 },
    );
    const sent: Sent[] = [];
    const protocolProblems: string[] = [];
    const interrupter = targetedInterrupts(mock);
    const interruptOverHttp = (tenant: 'acme' | 'globex', key: string) =>
      client.request('POST', `/v1/sessions/${encodeURIComponent(key)}/interrupt`, {
        headers: authorization(tenant),
        body: JSON.stringify({ reason: 'chaos' }),
      });
    const talk = async (
      { tenant, key }: { tenant: 'acme' | 'globex'; key: string },
      mine: Plan,
    ): Promise<void> => {
      const namespaced = `${tenant}:${key}`;
      const records: Sent[] = [];
      const send = async (seq: number, sse: boolean): Promise<void> => {
        const fault = mine.faults[seq] as Fault;
        const each: Sent = {
          key: namespaced,
          seq,
          fault,
          message: `${tenant}/${key} #${seq} ${MARKERS[fault]}`,
          after: records.filter((other) => other.outcome).map((other) => other.seq),
          outcome: undefined,
          settlements: 0,
        };
        records.push(each);
        sent.push(each);
        const delay = mine.interruptAfterMs[seq];
        if (delay !== undefined) {
          interrupter.when(each.message, delay, () => interruptOverHttp(tenant, key));
        }
        const answer = await client.request(
          'POST',
          `/v1/sessions/${encodeURIComponent(key)}/messages`,
          {
            headers: { ...authorization(tenant), ...(sse && { accept: 'text/event-stream' }) },
            body: JSON.stringify({ message: each.message, agent: AGENT_OF[tenant] }),
          },
        );
        if (
          answer.status === 200 &&
          String(answer.headers['content-type']).startsWith('text/event-stream')
        ) {
          const frames = parseSse(answer.text);
          const terminal = frames.filter(
            (frame) => frame.event === 'done' || frame.event === 'error',
          );
          if (terminal.length !== 1 || frames.at(-1) !== terminal[0]) {
            protocolProblems.push(
              `${namespaced} #${seq}: SSE ended with ${JSON.stringify(terminal.map((frame) => frame.event))}`,
            );
          }
          for (const frame of frames) {
            const shown = (frame.data as { sessionKey?: unknown }).sessionKey;
            if (shown !== undefined && shown !== key) {
              protocolProblems.push(
                `${namespaced} #${seq}: an SSE frame named session ${String(shown)}`,
              );
            }
          }
          const last = frames.at(-1);
          const data = (last?.data ?? {}) as SseEnd;
          if (last?.event === 'done') {
            settle(each, { kind: 'reply', text: data.reply ?? '', turnId: data.turnId ?? '' });
          } else {
            settle(each, { kind: 'error', code: String(data.code), message: String(data.message) });
          }
          return;
        }
        const body = answer.json as JsonEnd | undefined;
        if (answer.status === 200 && typeof body?.reply === 'string') {
          settle(each, { kind: 'reply', text: body.reply, turnId: body.turnId ?? '' });
          return;
        }
        const code = body?.error?.code;
        if (isTypedCode(code) && errorCatalogue[code].status !== answer.status) {
          protocolProblems.push(
            `${namespaced} #${seq}: ${code} answered with status ${answer.status}`,
          );
        }
        settle(each, { kind: 'error', code: String(code), message: String(body?.error?.message) });
      };
      await Promise.all([send(0, false), send(1, true)]);
      await send(2, false);
    };

    const injected: Injected = {
      killRequests: 0,
      interrupts: 0,
      passivations: 0,
      httpInterrupts: 0,
    };
    const pending = new Set<Promise<unknown>>();
    const track = (promise: Promise<unknown>) => {
      const tracked = promise.catch(() => {}).finally(() => pending.delete(tracked));
      pending.add(tracked);
    };
    const injector = setInterval(() => {
      const target = chaos.pick(targets);
      const session = supervisor.peek(`${target.tenant}:${target.key}`);
      const action = chaos.weighted({ kill: 8, interrupt: 12, passivate: 20, none: 60 });
      if (action === 'kill') {
        const live = targets.flatMap(({ tenant, key }) => {
          const threadId = supervisor.peek(`${tenant}:${key}`)?.threadId;
          return threadId === undefined ? [] : [threadId];
        });
        if (live.length > 0 && killSwitch.kill(chaos.pick(live))) injected.killRequests++;
      } else if (action === 'passivate') {
        if (session) track(session.passivate().then((done) => done && injected.passivations++));
      } else if (action === 'interrupt' && session?.busy) {
        track(
          interruptOverHttp(target.tenant, target.key).then((answer) => {
            if ((answer.json as { interrupted?: boolean } | undefined)?.interrupted) {
              injected.httpInterrupts++;
            }
          }),
        );
      }
    }, 100);

    const started = performance.now();
    try {
      await runLimited(targets, 12, (target) => {
        const index = targets.indexOf(target);
        return talk(target, slicePlan(plan, index * 3, 3));
      });
    } finally {
      clearInterval(injector);
      interrupter.stop();
    }
    await Promise.all([...pending, ...interrupter.pending()]);
    const trafficMs = performance.now() - started;
    await gateway.close();
    client.close();
    await server.close();
    await supervisor.close();
    expect(supervisor.stats().liveWorkers).toBe(0);

    expect(sent).toHaveLength(targets.length * 3);
    expect(protocolProblems).toEqual([]);
    const problems = sent.flatMap((each) => checkOutcome(each, each.key) ?? []);
    expect(problems).toEqual([]);
    const replies = sent.flatMap((each) => (each.outcome?.kind === 'reply' ? [each.outcome] : []));
    expect(new Set(replies.map((reply) => reply.turnId)).size).toBe(replies.length);
    // Nothing was hidden behind a generic 500.
    expect(hidden).toEqual([]);

    const namespaced = targets.map(({ tenant, key }) => `${tenant}:${key}`);
    const journalProblems = await journalProblemsIn(dir, namespaced, sent, false);
    expect(journalProblems).toEqual([]);

    const figures = tally(sent);
    console.info(
      `gateway chaos (seed ${SEED}): ${sent.length} requests in ${Math.round(trafficMs)} ms; faults ${JSON.stringify(figures.faults)}; outcomes ${JSON.stringify(figures.outcomes)}; injected ${JSON.stringify({ ...injected, targetedInterrupts: interrupter.fired })}, threads killed so far ${killSwitch.killed()}`,
    );
    expect(figures.outcomes['reply'] ?? 0).toBeGreaterThan(sent.length * 0.4);
  }, 150_000);

  it('after the loads: the host lives, no worker is live, handles and RSS are back to the baseline', async () => {
    clearInterval(heartbeat);
    // The host's event loop turned all along (a beat every 250 ms) and is still here.
    expect(host.beats).toBeGreaterThan(20);
    expect(process.exitCode).toBeUndefined();
    await mock.close();
    for (const supervisor of supervisors) expect(supervisor.stats().liveWorkers).toBe(0);
    const settled = await eventually(
      () => Object.keys(handlesAbove(baselineHandles)).length === 0,
      10_000,
    );
    expect(settled ? {} : handlesAbove(baselineHandles)).toEqual({});
    forceGc();
    const rss = process.memoryUsage().rss;
    console.info(
      `resources: RSS ${Math.round(baselineRss / MiB)} MiB before the loads, peak ${Math.round(host.peakRss / MiB)} MiB, ${Math.round(rss / MiB)} MiB after (tolerance +${RSS_TOLERANCE_MIB} MiB); handles ${JSON.stringify(handleCounts())} (baseline ${JSON.stringify(baselineHandles)}); host heartbeats ${host.beats}, worst event-loop lag ${Math.round(host.maxLagMs)} ms`,
    );
    expect((rss - baselineRss) / MiB).toBeLessThan(RSS_TOLERANCE_MIB);
  }, 60_000);
});

describe('a streamed reply and the journal', () => {
  it('stream() never hands out the final reply of a turn that then fails to be journaled', async () => {
    // A store whose appends fail: the turn completes in its worker, but cannot be journaled.
    class FailingStore extends MemoryStore {
      override async append(): Promise<void> {
        throw new Error('the disk is full');
      }
    }
    const llm = await startMockLlm();
    const supervisor = new Supervisor({ store: new FailingStore(), warmPoolSize: 0 });
    supervisors.push(supervisor);
    supervisor.register('cell', agentFor(llm, { apiKey: 'sk-chaos' }));
    const seen: string[] = [];
    let failure: unknown;
    try {
      for await (const event of supervisor
        .session('stream:unjournaled', { agent: 'cell' })
        .stream('hello')) {
        seen.push(event.type);
      }
    } catch (error) {
      failure = error;
    }
    await supervisor.close();
    await llm.close();
    // The caller is told the turn failed (typed) ...
    expect(codeOf(failure)).toBe('AGENTCELL_INTERNAL');
    // ... and must not also have been handed its reply: exactly one outcome.
    expect(seen).not.toContain('final');
  }, 60_000);
});

describe('a pooled thread that ignores interrupts', () => {
  it('fails every turn on it with a typed error, and is terminated once (not once per timed-out turn)', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
    process.on('warning', onWarning);
    // Every Worker.terminate() call, by thread (piscina's threads are node:worker_threads Workers).
    const terminations = new Map<number, number>();
    const terminate = vi.spyOn(Worker.prototype, 'terminate');
    terminate.mockImplementation(function (this: Worker) {
      terminations.set(this.threadId, (terminations.get(this.threadId) ?? 0) + 1);
      return originalTerminate.call(this);
    });
    const llm = await startMockLlm({
      rules: [
        {
          match: 'tool=block',
          steps: [{ toolCalls: [{ name: 'chaos', arguments: { mode: 'block' } }] }],
        },
      ],
    });
    const { registry, tools } = await reliabilityRegistry(['chaos']);
    const supervisor = new Supervisor({
      tools: registry,
      placement: 'pooled',
      poolThreads: 1,
      turnTimeoutMs: 1_500,
      interruptGraceMs: 200,
    });
    supervisors.push(supervisor);
    supervisor.register('cell', agentFor(llm, { apiKey: 'sk-chaos', tools }));
    let counted: number[] = [];
    try {
      // One turn blocks the only pool thread; the others share it.
      const outcomes = await Promise.allSettled(
        Array.from({ length: 16 }, (_, i) =>
          supervisor
            .session(`escalate:${i}`, { agent: 'cell' })
            .send(i === 0 ? 'tool=block' : `hello ${i}`),
        ),
      );
      counted = [...terminations.values()];
      const codes = outcomes.map((outcome) =>
        outcome.status === 'fulfilled' ? 'reply' : codeOf(outcome.reason),
      );
      expect(codes.every((code) => code === 'reply' || isTypedCode(code))).toBe(true);
      expect(codes[0]).toBe('AGENTCELL_TURN_TIMEOUT');
    } finally {
      terminate.mockRestore();
      await supervisor.close();
      await llm.close();
      process.off('warning', onWarning);
    }
    // Each timed-out turn on the thread escalates to Worker.terminate() on it; every call adds
    // an 'exit' listener (a MaxListenersExceededWarning past ten).
    expect(counted.length).toBeGreaterThan(0);
    expect(Math.max(...counted)).toBe(1);
    expect(warnings.filter((warning) => warning.startsWith('MaxListenersExceededWarning'))).toEqual(
      [],
    );
  }, 60_000);
});
