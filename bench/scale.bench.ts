/**
 * Many sessions on one machine, against the mock LLM in its own process (100 ms to the first
 * token), for dedicated placement (a worker per session), pooled placement (every turn a task
 * on a shared piscina pool) and the in-process baseline (`agent.clone()` per session, then
 * `chat()`, no workers), all measured in the same run:
 *
 * 1. Steady state: N live sessions × 20 turns, all sessions concurrent (N = 200, then SCALE_N).
 * 2. Churn: SCALE_CHURN sessions × 3 turns under at most 256 live workers (LRU passivation),
 *    256 sessions in progress at once, and dedicated once more with arrivals bounded (32 at
 *    once), against raw `new Worker`-to-first-message throughput (probe workers, 2 at a time).
 * 3. Activation: a warm-pool start and a cold start against a bare `new Worker`, sequential.
 * 4. Memory: RSS per live idle session against a bare probe worker, same N.
 *
 * Every case runs in a fresh child process (`runIsolated`): workers start without tsx, as they
 * do in production, and every RSS figure starts from a clean process. Long cases are
 * time-boxed and say so. The output is also appended to bench/RESULTS.md.
 *
 * Environment: SCALE_N (1000), SCALE_CHURN (10000), SCALE_CHURN_CONCURRENCY (256),
 * SCALE_CHURN_BOUNDED (32), SCALE_CHURN_SECONDS (150), SCALE_STEADY_SECONDS (120),
 * SCALE_WARMUP_SECONDS (180: bringing up N dedicated sessions), SCALE_MEMORY_N (200),
 * SCALE_ACTIVATION_SAMPLES (30).
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { Agent } from '../src/agent/agent.js';
import { isAgentcellError } from '../src/errors.js';
import { MemoryStore } from '../src/runtime/stores/memory.js';
import {
  Supervisor,
  type SupervisorOptions,
  type SupervisorStats,
} from '../src/runtime/supervisor.js';
import { workerEntryUrl } from '../src/runtime/worker-entry.js';
import { type CpuShare, cpuShare, findChildProcess, formatCpuShare } from './_util/cpu-share.js';
import { runIsolated } from './_util/isolated.js';
import { formatMs, LatencyRecorder, type LatencySummary, summarize } from './_util/latency.js';
import { formatNumber, machineDescription } from './_util/measure.js';
import { startMockProcess } from './_util/mock-process.js';
import { formatBytes, sampleRss } from './_util/rss-sampler.js';

const AGENT = 'bench';
const FIRST_TOKEN_MS = 100;
const STEADY_TURNS = 20;
const CHURN_TURNS = 3;
const CHURN_MAX_LIVE = 256;
/** Threads of the turn pool under pooled placement: one per core of this machine. */
const POOL_THREADS = 2;
/** Worker starts at once while sessions are brought up (warm-up, memory): no start storm. */
const START_CONCURRENCY = 4;
/**
 * How long a case may take, after its time box, to finish the turns in flight. Past it the
 * supervisor is destroyed (every pending turn must then fail with a typed error), and a send
 * still unsettled 10 s later is counted as lost.
 */
const DRAIN_GRACE_MS = 60_000;
const BARE_CHURN_SECONDS = 10;
const GIB = 2 ** 30;

type Placement = 'in-process' | 'dedicated' | 'pooled';
const PLACEMENTS: readonly Placement[] = ['in-process', 'dedicated', 'pooled'];

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    throw new Error(`${name} must be a positive integer, not ${JSON.stringify(raw)}`);
  }
  return value;
}

function parsePlacement(text: string | undefined): Placement {
  const found = PLACEMENTS.find((placement) => placement === text);
  if (!found) throw new Error(`unknown placement ${JSON.stringify(text)}`);
  return found;
}

function benchAgent(url: string): Agent {
  return new Agent({
    name: AGENT,
    llm: 'mock-model',
    baseUrl: url,
    apiKey: 'k',
    memory: { historyWindow: 10 },
  });
}

/** The mock LLM: a child of the parent benchmark process, as this case's process is. */
const mockPid = (): number | undefined => findChildProcess(process.ppid, 'mock-llm');

/** CPU time of the whole process (every thread) since `since`, in milliseconds. */
function cpuMsSince(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
}

function collectGarbage(): void {
  const { gc } = globalThis as { gc?: () => void };
  gc?.();
  gc?.();
}

function errorCode(error: unknown): string {
  if (isAgentcellError(error)) return error.code;
  return error instanceof Error ? error.name : 'unknown';
}

function countError(into: Record<string, number>, error: unknown): void {
  const code = errorCode(error);
  into[code] = (into[code] ?? 0) + 1;
}

/**
 * After the time box and the drain grace: destroys the driver if `work` is still pending, so
 * that every pending send settles (typed errors). Returns whether it had to.
 */
async function drain(work: Promise<unknown>, driver: Driver, graceMs: number): Promise<boolean> {
  if (await settledWithin(work, graceMs)) return false;
  await driver.destroy();
  await settledWithin(work, 10_000);
  return true;
}

/** Runs `fn` over `items`, at most `limit` at once, starting none after `deadline`. */
async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
  deadline = Number.POSITIVE_INFINITY,
): Promise<number> {
  let next = 0;
  let started = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length && performance.now() < deadline) {
        const index = next++;
        started++;
        await fn(items[index] as T, index);
      }
    }),
  );
  return started;
}

/** True if `work` settled within `ms`; false if it was still pending (it keeps running). */
async function settledWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  const timer = new AbortController();
  const done = await Promise.race([
    work.then(
      () => true,
      () => true,
    ),
    sleep(ms, false, { signal: timer.signal }).catch(() => false),
  ]);
  timer.abort();
  return done;
}

/** One session as a benchmark drives it, whatever the placement. */
interface Target {
  /** Resolves with the reply's turn id (undefined in-process, where there is none). */
  send(message: string): Promise<string | undefined>;
}

interface Driver {
  open(key: string): Target;
  stats(): SupervisorStats | undefined;
  /** Turn ids journaled for a session (undefined in-process, where there is no journal). */
  journaled(key: string): Promise<readonly string[] | undefined>;
  onTurnEnd(listener: (key: string, outcome: string) => void): void;
  close(): Promise<void>;
  /** Fails every pending turn with AGENTCELL_SUPERVISOR_DESTROYED (no-op in-process). */
  destroy(): Promise<void>;
}

function inProcessDriver(url: string): Driver {
  const template = benchAgent(url);
  return {
    open() {
      const agent = template.clone();
      return {
        async send(message) {
          await agent.chat(message);
          return undefined;
        },
      };
    },
    stats: () => undefined,
    journaled: async () => undefined,
    onTurnEnd() {},
    close: async () => {},
    destroy: async () => {},
  };
}

function supervisorDriver(
  placement: 'dedicated' | 'pooled',
  url: string,
  options: SupervisorOptions,
): Driver {
  const store = new MemoryStore();
  const supervisor = new Supervisor({ ...options, store, placement });
  supervisor.register(AGENT, benchAgent(url));
  return {
    open(key) {
      const session = supervisor.session(key, { agent: AGENT });
      return { send: async (message) => (await session.send(message)).turnId };
    },
    stats: () => supervisor.stats(),
    journaled: async (key) =>
      (await store.read(key)).filter((record) => !record.reset).map((record) => record.turnId),
    onTurnEnd(listener) {
      supervisor.on('turn:end', ({ key, outcome }) => listener(key, outcome));
    },
    async close() {
      if (!(await settledWithin(supervisor.close(), 60_000))) await supervisor.destroy('bench');
      await store.close();
    },
    destroy: () => supervisor.destroy('the time box and its drain grace ran out'),
  };
}

/** Supervisor options for `concurrent` sessions in turn at once, `maxLive` live workers. */
function makeDriver(
  placement: Placement,
  url: string,
  options: { maxLive: number; concurrent: number },
): Driver {
  if (placement === 'in-process') return inProcessDriver(url);
  return supervisorDriver(placement, url, {
    maxLiveSessions: options.maxLive,
    idleTimeoutMs: 0,
    maxConcurrentTurns: options.concurrent,
    ...(placement === 'pooled'
      ? {
          poolThreads: POOL_THREADS,
          poolTurnsPerThread: Math.ceil(options.concurrent / POOL_THREADS),
        }
      : {}),
  });
}

// ---------------------------------------------------------------------------------------------
// 1. Steady state (child process)

interface SteadyResult {
  readonly placement: Placement;
  readonly n: number;
  readonly turnsPerSession: number;
  /** Sessions that got their warm-up turn started before the warm-up time box ran out. */
  readonly warmed: number;
  readonly warmupFailed: number;
  readonly warmupMs: number;
  readonly ok: number;
  readonly failed: Record<string, number>;
  /** Sends never settled, not even by destroying the supervisor after the drain grace. */
  readonly lost: number;
  /** Whether the supervisor had to be destroyed to end the case (see DRAIN_GRACE_MS). */
  readonly destroyed: boolean;
  readonly elapsedMs: number;
  readonly turnsPerSecond: number;
  readonly latency: LatencySummary;
  readonly timeBoxed: boolean;
  readonly peakRssBytes: number;
  /** CPU of the benchmark process (all threads; not the mock LLM's) per answered turn. */
  readonly cpuMsPerTurn: number;
  /** Worker starts during the measured phase (dedicated: re-activations after passivation). */
  readonly workerStarts: number | undefined;
  readonly liveWorkers: number | undefined;
  readonly maxLiveSessions: number | undefined;
  /** Cores busy during the measured phase: this process, the mock LLM, everything else. */
  readonly cpu: CpuShare;
}

export async function steadyCase(
  placementText: string,
  nText: string,
  url: string,
  timeboxText: string,
  warmupText: string,
): Promise<string> {
  const placement = parsePlacement(placementText);
  const n = Number(nText);
  const timeboxMs = Number(timeboxText) * 1000;
  const warmupBoxMs = Number(warmupText) * 1000;
  const driver = makeDriver(placement, url, { maxLive: n, concurrent: n });
  try {
    const targets = Array.from({ length: n }, (_, i) => driver.open(`steady-${i}`));

    // Warm-up, not measured: every session started and through one turn.
    let warmupFailed = 0;
    const warmStart = performance.now();
    const warmed = await forEachLimit(
      targets,
      placement === 'dedicated' ? START_CONCURRENCY : n,
      async (target) => {
        await target.send('warm-up').catch(() => warmupFailed++);
      },
      warmStart + warmupBoxMs,
    );
    const warmupMs = performance.now() - warmStart;
    await sleep(500);
    collectGarbage();

    const before = driver.stats();
    const rss = sampleRss(100);
    const latency = new LatencyRecorder();
    const failed: Record<string, number> = {};
    let ok = 0;
    let inFlight = 0;
    let timeBoxed = false;
    const cpu = process.cpuUsage();
    const share = cpuShare(mockPid());
    const start = performance.now();
    const deadline = start + timeboxMs;
    const work = Promise.all(
      targets.map(async (target, i) => {
        for (let turn = 0; turn < STEADY_TURNS; turn++) {
          if (performance.now() >= deadline) {
            timeBoxed = true;
            return;
          }
          inFlight++;
          const sent = performance.now();
          try {
            await target.send(`message ${turn} of session ${i}`);
            latency.record(performance.now() - sent);
            ok++;
          } catch (error) {
            countError(failed, error);
          } finally {
            inFlight--;
          }
        }
      }),
    );
    const drained = await settledWithin(work, timeboxMs + DRAIN_GRACE_MS);
    const elapsedMs = performance.now() - start;
    const cpuMs = cpuMsSince(cpu);
    const cores = share.stop();
    const peakRssBytes = rss.stop();
    const after = driver.stats();
    const destroyed = drained ? false : await drain(work, driver, 0);
    const result: SteadyResult = {
      placement,
      n,
      turnsPerSession: STEADY_TURNS,
      warmed,
      warmupFailed,
      warmupMs,
      ok,
      failed,
      lost: inFlight,
      destroyed,
      elapsedMs,
      turnsPerSecond: (ok * 1000) / elapsedMs,
      latency: latency.summary(),
      timeBoxed,
      peakRssBytes,
      cpuMsPerTurn: cpuMs / ok,
      workerStarts:
        before && after && placement === 'dedicated'
          ? after.workerStarts - before.workerStarts
          : undefined,
      liveWorkers: placement === 'dedicated' ? before?.liveWorkers : undefined,
      maxLiveSessions: placement === 'dedicated' ? before?.maxLiveSessions : undefined,
      cpu: cores,
    };
    return JSON.stringify(result);
  } finally {
    await driver.close();
  }
}

// ---------------------------------------------------------------------------------------------
// 2. Churn (child processes)

interface BareChurnResult {
  readonly starts: number;
  readonly elapsedMs: number;
  readonly startsPerSecond: number;
  readonly toFirstMessage: LatencySummary;
  /** CPU of the process (all threads) per worker started and terminated. */
  readonly cpuMsPerStart: number;
  /** Cores busy during the measured phase: this process, the mock LLM, everything else. */
  readonly cpu: CpuShare;
}

function nextMessage(worker: Worker, type: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: { readonly type?: string } | undefined) => {
      if (message?.type !== type) return;
      worker.off('message', onMessage).off('error', onError);
      resolve();
    };
    const onError = (error: Error) => {
      worker.off('message', onMessage).off('error', onError);
      reject(error);
    };
    worker.on('message', onMessage).on('error', onError);
  });
}

/** `new Worker(probe)` until its first message (`ready`); resolves with the worker. */
async function startProbe(into?: number[]): Promise<Worker> {
  const start = performance.now();
  const worker = new Worker(workerEntryUrl('probe'));
  await nextMessage(worker, 'ready');
  into?.push(performance.now() - start);
  return worker;
}

/** Bare probe workers started and terminated, 2 at a time, for `seconds` (after a 1 s warm-up). */
export async function bareChurnCase(secondsText: string): Promise<string> {
  const churn = async (ms: number, into?: number[]) => {
    const deadline = performance.now() + ms;
    let starts = 0;
    await Promise.all(
      [0, 1].map(async () => {
        while (performance.now() < deadline) {
          const worker = await startProbe(into);
          starts++;
          await worker.terminate();
        }
      }),
    );
    return starts;
  };
  await churn(1000);
  const samples: number[] = [];
  const cpu = process.cpuUsage();
  const share = cpuShare(mockPid());
  const start = performance.now();
  const starts = await churn(Number(secondsText) * 1000, samples);
  const elapsedMs = performance.now() - start;
  const cpuMs = cpuMsSince(cpu);
  const result: BareChurnResult = {
    starts,
    elapsedMs,
    startsPerSecond: (starts * 1000) / elapsedMs,
    toFirstMessage: summarize(samples),
    cpuMsPerStart: cpuMs / starts,
    cpu: share.stop(),
  };
  return JSON.stringify(result);
}

interface ChurnResult {
  readonly placement: Placement;
  readonly requested: number;
  readonly concurrency: number;
  /** Sessions begun (fewer than requested when the time box ran out). */
  readonly begun: number;
  /** Sessions with all their turns answered. */
  readonly completed: number;
  readonly timeBoxed: boolean;
  readonly elapsedMs: number;
  readonly sessionsPerSecond: number;
  readonly turnsOk: number;
  readonly failed: Record<string, number>;
  /** Sends never settled, not even by destroying the supervisor after the drain grace. */
  readonly lost: number;
  /** Whether the supervisor had to be destroyed to end the case (see DRAIN_GRACE_MS). */
  readonly destroyed: boolean;
  /** Sessions whose replies repeat a turn id. */
  readonly duplicated: number;
  /**
   * Sessions whose journal (or count of ok `turn:end` events) does not match the replies their
   * caller got: a turn journaled twice, a reply not journaled, a journaled turn nobody got.
   */
  readonly journalMismatches: number;
  /** Whether turn ids and the journal could be checked (not in-process). */
  readonly checked: boolean;
  readonly latency: LatencySummary;
  /** CPU of the process (all threads; not the mock LLM's) per completed session. */
  readonly cpuMsPerSession: number;
  readonly peakRssBytes: number;
  readonly peakLiveWorkers: number | undefined;
  readonly workerStarts: number | undefined;
  readonly warmHits: number | undefined;
  /** Cores busy during the measured phase: this process, the mock LLM, everything else. */
  readonly cpu: CpuShare;
}

export async function churnCase(
  placementText: string,
  countText: string,
  concurrencyText: string,
  url: string,
  timeboxText: string,
): Promise<string> {
  const placement = parsePlacement(placementText);
  const count = Number(countText);
  const concurrency = Number(concurrencyText);
  const timeboxMs = Number(timeboxText) * 1000;
  const driver = makeDriver(placement, url, { maxLive: CHURN_MAX_LIVE, concurrent: concurrency });
  const okEnds = new Map<string, number>();
  driver.onTurnEnd((key, outcome) => {
    if (outcome === 'ok') okEnds.set(key, (okEnds.get(key) ?? 0) + 1);
  });
  try {
    const replies = new Map<string, string[]>();
    const latency = new LatencyRecorder();
    const failed: Record<string, number> = {};
    let inFlight = 0;
    let completed = 0;
    let peakLive = 0;
    const liveWatch = setInterval(() => {
      const stats = driver.stats();
      if (stats) peakLive = Math.max(peakLive, stats.liveWorkers + stats.warmWorkers);
    }, 100);
    const rss = sampleRss(100);
    const keys = Array.from({ length: count }, (_, i) => `churn-${i}`);
    const cpu = process.cpuUsage();
    const share = cpuShare(mockPid());
    const start = performance.now();
    const deadline = start + timeboxMs;
    const work = forEachLimit(
      keys,
      concurrency,
      async (key) => {
        const target = driver.open(key);
        const turnIds: string[] = [];
        replies.set(key, turnIds);
        for (let turn = 0; turn < CHURN_TURNS; turn++) {
          inFlight++;
          const sent = performance.now();
          try {
            const turnId = await target.send(`message ${turn} of ${key}`);
            latency.record(performance.now() - sent);
            turnIds.push(turnId ?? `${key}#${turn}`);
          } catch (error) {
            countError(failed, error);
          } finally {
            inFlight--;
          }
        }
        if (turnIds.length === CHURN_TURNS) completed++;
      },
      deadline,
    );
    const drained = await settledWithin(work, timeboxMs + DRAIN_GRACE_MS);
    const elapsedMs = performance.now() - start;
    const cpuMs = cpuMsSince(cpu);
    const cores = share.stop();
    clearInterval(liveWatch);
    const peakRssBytes = rss.stop();
    const stats = driver.stats();
    const destroyed = drained ? false : await drain(work, driver, 0);

    let duplicated = 0;
    let journalMismatches = 0;
    let turnsOk = 0;
    const checked = placement !== 'in-process';
    for (const [key, turnIds] of replies) {
      turnsOk += turnIds.length;
      if (!checked) continue;
      const distinct = new Set(turnIds);
      if (distinct.size < turnIds.length) duplicated++;
      const journaled = (await driver.journaled(key)) ?? [];
      const inJournal = new Set(journaled);
      if (
        (okEnds.get(key) ?? 0) !== turnIds.length ||
        journaled.length !== inJournal.size ||
        journaled.length !== distinct.size ||
        [...distinct].some((turnId) => !inJournal.has(turnId))
      ) {
        journalMismatches++;
      }
    }
    const result: ChurnResult = {
      placement,
      requested: count,
      concurrency,
      begun: replies.size,
      completed,
      timeBoxed: replies.size < count,
      elapsedMs,
      sessionsPerSecond: (completed * 1000) / elapsedMs,
      turnsOk,
      failed,
      lost: inFlight,
      destroyed,
      duplicated,
      journalMismatches,
      checked,
      latency: latency.summary(),
      cpuMsPerSession: cpuMs / completed,
      peakRssBytes,
      peakLiveWorkers: stats ? peakLive : undefined,
      workerStarts: stats?.workerStarts,
      warmHits: stats?.warmHits,
      cpu: cores,
    };
    return JSON.stringify(result);
  } finally {
    await driver.close();
  }
}

// ---------------------------------------------------------------------------------------------
// 3. Activation (child process)

interface ActivationResult {
  readonly bare: LatencySummary;
  /** `session:start` activationMs (the runtime's clock: Date.now(), whole milliseconds). */
  readonly cold: LatencySummary;
  readonly warm: LatencySummary;
  /** `send()` → `session:start`, on performance.now(): the journal read and mailbox included. */
  readonly coldClient: LatencySummary;
  readonly warmClient: LatencySummary;
  /** Warm samples that found the pool empty (recorded nowhere above). */
  readonly warmMisses: number;
  /** Cores busy during the measured phase: this process, the mock LLM, everything else. */
  readonly cpu: CpuShare;
}

interface StartSeen {
  readonly at: number;
  readonly warm: boolean;
  readonly activationMs: number;
}

async function warmPoolRefilled(supervisor: Supervisor): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (supervisor.stats().warmWorkers < 1 && performance.now() < deadline) await sleep(5);
}

export async function activationCase(url: string, samplesText: string): Promise<string> {
  const samples = Number(samplesText);
  const share = cpuShare(mockPid());
  const warmSupervisor = new Supervisor({ warmPoolSize: 1, idleTimeoutMs: 0 });
  const coldSupervisor = new Supervisor({ warmPoolSize: 0, idleTimeoutMs: 0 });
  const seen = new Map<string, StartSeen>();
  for (const supervisor of [warmSupervisor, coldSupervisor]) {
    supervisor.register(AGENT, benchAgent(url));
    supervisor.on('session:start', ({ key, warm, activationMs }) =>
      seen.set(key, { at: performance.now(), warm, activationMs }),
    );
  }
  const bare: number[] = [];
  const cold: number[] = [];
  const warm: number[] = [];
  const coldClient: number[] = [];
  const warmClient: number[] = [];
  let warmMisses = 0;
  const startSession = async (supervisor: Supervisor, key: string, record: boolean) => {
    const sent = performance.now();
    const session = supervisor.session(key, { agent: AGENT });
    await session.send('hi');
    const start = seen.get(key);
    await session.close();
    if (!record || !start) return;
    if (supervisor === coldSupervisor) {
      cold.push(start.activationMs);
      coldClient.push(start.at - sent);
    } else if (start.warm) {
      warm.push(start.activationMs);
      warmClient.push(start.at - sent);
    } else {
      warmMisses++;
    }
  };
  try {
    // Interleaved, so that a change in the machine's load hits all three alike.
    for (let i = -3; i < samples; i++) {
      const record = i >= 0;
      await warmPoolRefilled(warmSupervisor);
      const worker = await startProbe(record ? bare : undefined);
      await worker.terminate();
      await startSession(coldSupervisor, `cold-${i}`, record);
      await warmPoolRefilled(warmSupervisor);
      await startSession(warmSupervisor, `warm-${i}`, record);
    }
    const result: ActivationResult = {
      bare: summarize(bare),
      cold: summarize(cold),
      warm: summarize(warm),
      coldClient: summarize(coldClient),
      warmClient: summarize(warmClient),
      warmMisses,
      cpu: share.stop(),
    };
    return JSON.stringify(result);
  } finally {
    await Promise.all([warmSupervisor.close(), coldSupervisor.close()]);
  }
}

// ---------------------------------------------------------------------------------------------
// 4. Memory (child processes)

interface MemoryResult {
  readonly kind: 'probe' | 'session';
  readonly n: number;
  readonly live: number;
  readonly rssBefore: number;
  readonly rssAfter: number;
  readonly perWorkerBytes: number;
  readonly mapsPerWorker: number;
  readonly maxLiveSessions: number | undefined;
  /** CPU the process used while every worker sat idle, per worker and second of idling. */
  readonly idleCpuMsPerWorkerSecond: number;
  /** Cores busy during the measured phase: this process, the mock LLM, everything else. */
  readonly cpu: CpuShare;
}

const IDLE_CPU_SECONDS = 5;
/**
 * How long idle workers settle before their idle CPU is measured: in the first seconds after a
 * start V8 still collects and compiles, which is start-up cost, not what idling costs.
 */
const IDLE_SETTLE_SECONDS = 20;

function mapsInUse(): number {
  try {
    return readFileSync('/proc/self/maps', 'latin1').split('\n').length - 1;
  } catch {
    return Number.NaN;
  }
}

export async function memoryCase(kindText: string, nText: string, url: string): Promise<string> {
  const kind = kindText === 'probe' ? 'probe' : 'session';
  const n = Number(nText);
  const share = cpuShare(mockPid());
  await sleep(200);
  collectGarbage();
  const rssBefore = process.memoryUsage.rss();
  const mapsBefore = mapsInUse();
  const workers: Worker[] = [];
  const supervisor =
    kind === 'session'
      ? new Supervisor({
          warmPoolSize: 0,
          maxLiveSessions: n,
          idleTimeoutMs: 0,
          maxConcurrentTurns: n,
        })
      : undefined;
  supervisor?.register(AGENT, benchAgent(url));
  try {
    const indices = Array.from({ length: n }, (_, i) => i);
    await forEachLimit(indices, START_CONCURRENCY, async (i) => {
      if (supervisor) await supervisor.session(`idle-${i}`, { agent: AGENT }).send('hi');
      else workers.push(await startProbe());
    });
    await sleep(1000);
    collectGarbage();
    await sleep(200);
    const rssAfter = process.memoryUsage.rss();
    const live = supervisor ? supervisor.stats().liveWorkers : workers.length;
    // What idle workers cost in CPU: nothing runs on purpose while this is measured.
    await sleep(IDLE_SETTLE_SECONDS * 1000);
    const idleCpu = process.cpuUsage();
    const idleStart = performance.now();
    await sleep(IDLE_CPU_SECONDS * 1000);
    const idleCpuMs = cpuMsSince(idleCpu);
    const idleSeconds = (performance.now() - idleStart) / 1000;
    const result: MemoryResult = {
      kind,
      n,
      live,
      rssBefore,
      rssAfter,
      perWorkerBytes: (rssAfter - rssBefore) / live,
      mapsPerWorker: (mapsInUse() - mapsBefore) / live,
      maxLiveSessions: supervisor?.stats().maxLiveSessions,
      idleCpuMsPerWorkerSecond: idleCpuMs / live / idleSeconds,
      cpu: share.stop(),
    };
    return JSON.stringify(result);
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
    await supervisor?.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The report (parent process)

type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; error: string };

/**
 * Runs one case in a child process. A child that dies before answering is run once more (say
 * a concurrent `npm run build` replaced dist/ under its workers); the second failure stands.
 */
async function runCase<T>(label: string, exportName: string, args: string[]): Promise<Outcome<T>> {
  let error = '';
  for (let attempt = 1; attempt <= 2; attempt++) {
    const start = performance.now();
    console.error(`[scale] ${label}${attempt > 1 ? ' (second attempt)' : ''}…`);
    try {
      const value = JSON.parse(await runIsolated(import.meta.url, exportName, args)) as T;
      console.error(
        `[scale] ${label} done in ${formatMs(performance.now() - start)}: ${JSON.stringify(value)}`,
      );
      return { ok: true, value };
    } catch (thrown) {
      error = thrown instanceof Error ? thrown.message : String(thrown);
      console.error(`[scale] ${label} failed: ${error}`);
    }
  }
  return { ok: false, error };
}

const ratio = (value: number, baseline: number): string =>
  Number.isFinite(value / baseline) ? `${(value / baseline).toFixed(2)}×` : 'n/a';

const verdict = (met: boolean, target: string, figure: string): string =>
  `- ${met ? '**met**' : '**not met**'}: ${target}: ${figure}`;

function failedText(failed: Record<string, number>): string {
  const entries = Object.entries(failed);
  return entries.length === 0 ? '0' : entries.map(([code, n]) => `${n} ${code}`).join(', ');
}

function steadySection(
  n: number,
  timeboxSeconds: number,
  warmupSeconds: number,
  results: ReadonlyMap<Placement, Outcome<SteadyResult>>,
): string {
  const base = results.get('in-process');
  const baseline = base?.ok ? base.value : undefined;
  const lines = [
    `### 1. Steady state: ${n.toLocaleString('en-US')} live sessions × ${STEADY_TURNS} turns, all concurrent`,
    '',
    '| placement | turns/s | vs in-process | p50 | p99 | p99 vs in-process | ok | failed | lost | elapsed | CPU per turn | live workers / ceiling | worker starts while measured | peak RSS | cores busy: this / mock / others |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const placement of PLACEMENTS) {
    const outcome = results.get(placement);
    if (!outcome) continue;
    if (!outcome.ok) {
      lines.push(`| ${placement} | failed: ${outcome.error} |`);
      continue;
    }
    const r = outcome.value;
    lines.push(
      `| ${placement}${r.timeBoxed ? ' (time-boxed)' : ''}${r.destroyed ? ' (destroyed after drain grace)' : ''} | ${formatNumber(r.turnsPerSecond)} | ${baseline ? ratio(r.turnsPerSecond, baseline.turnsPerSecond) : 'n/a'} | ${formatMs(r.latency.p50)} | ${formatMs(r.latency.p99)} | ${baseline ? ratio(r.latency.p99, baseline.latency.p99) : 'n/a'} | ${r.ok.toLocaleString('en-US')} | ${failedText(r.failed)} | ${r.lost} | ${formatMs(r.elapsedMs)} | ${formatMs(r.cpuMsPerTurn)} | ${r.liveWorkers === undefined ? '–' : `${r.liveWorkers} / ${r.maxLiveSessions}`} | ${r.workerStarts ?? '–'} | ${formatBytes(r.peakRssBytes)} | ${formatCpuShare(r.cpu)} |`,
    );
  }
  const warmups = PLACEMENTS.flatMap((placement) => {
    const outcome = results.get(placement);
    return outcome?.ok
      ? [
          `${placement} ${outcome.value.warmed}/${n} in ${formatMs(outcome.value.warmupMs)}${outcome.value.warmupFailed > 0 ? ` (${outcome.value.warmupFailed} failed)` : ''}`,
        ]
      : [];
  });
  lines.push(
    '',
    `Warm-up (one turn per session, not measured; dedicated sessions started ${START_CONCURRENCY} at a time, for at most ${warmupSeconds} s): ${warmups.join('; ')}. Sessions not warmed start cold inside the measured phase. Measured phase: at most ${timeboxSeconds} s of new turns, then ${DRAIN_GRACE_MS / 1000} s for the turns in flight.`,
    '',
  );
  const ideal = (n * 1000) / FIRST_TOKEN_MS;
  lines.push(
    `Ideal at ${FIRST_TOKEN_MS} ms per turn: ${formatNumber(ideal)} turns/s. Latency is send → reply as the caller sees it.`,
    '',
  );
  const dedicated = results.get('dedicated');
  if (baseline && dedicated?.ok) {
    const r = dedicated.value;
    const throughput = r.turnsPerSecond / baseline.turnsPerSecond;
    const p99 = r.latency.p99 / baseline.latency.p99;
    const complete = r.ok === n * STEADY_TURNS;
    lines.push(
      verdict(
        throughput >= 0.9 && complete,
        `N=${n} dedicated throughput ≥ 0.9× in-process`,
        `${throughput.toFixed(2)}× (${formatNumber(r.turnsPerSecond)} vs ${formatNumber(baseline.turnsPerSecond)} turns/s)${complete ? '' : `; only ${r.ok} of ${n * STEADY_TURNS} turns answered${r.timeBoxed ? ' (time-boxed)' : ''}`}`,
      ),
      verdict(
        p99 <= 1.2 && complete,
        `N=${n} dedicated p99 ≤ 1.2× in-process p99`,
        `${p99.toFixed(2)}× (${formatMs(r.latency.p99)} vs ${formatMs(baseline.latency.p99)})`,
      ),
    );
    if (r.maxLiveSessions !== undefined && r.maxLiveSessions < n) {
      lines.push(
        `- The machine ceiling caps dedicated at ${r.maxLiveSessions} live workers (< N = ${n}): sessions over it are passivated and reactivated, so this is churn, not a steady state.`,
      );
    }
  } else {
    lines.push('- **not met**: dedicated steady state: no figure (see the table).');
  }
  return lines.join('\n');
}

interface ChurnRun {
  readonly label: string;
  readonly placement: Placement;
  readonly concurrency: number;
  readonly outcome: Outcome<ChurnResult>;
}

function churnSection(
  count: number,
  timeboxSeconds: number,
  bare: Outcome<BareChurnResult>,
  runs: readonly ChurnRun[],
): string {
  const lines = [
    `### 2. Churn: ${count.toLocaleString('en-US')} sessions × ${CHURN_TURNS} turns, at most ${CHURN_MAX_LIVE} live workers`,
    '',
    `Each session is a new key, sends ${CHURN_TURNS} turns one after another, and is then left idle (\`idleTimeoutMs: 0\`: only LRU passivation at \`maxLiveSessions: ${CHURN_MAX_LIVE}\` releases workers); "at once" is how many sessions are in progress at any time. Time box: ${timeboxSeconds} s of new sessions per run, then the sessions in progress finish (sessions/s counts completed sessions over the whole elapsed time).`,
    '',
  ];
  const bareRate = bare.ok ? bare.value.startsPerSecond : Number.NaN;
  if (bare.ok) {
    const b = bare.value;
    lines.push(
      `Baseline: bare probe workers, \`new Worker\` → first message → \`terminate()\`, 2 at a time for ${BARE_CHURN_SECONDS} s: **${b.startsPerSecond.toFixed(1)} workers/s** (${b.starts} starts; start → first message p50 ${formatMs(b.toFirstMessage.p50)}, p99 ${formatMs(b.toFirstMessage.p99)}; CPU ${formatMs(b.cpuMsPerStart)} per worker; cores busy: this / mock / others ${formatCpuShare(b.cpu)}).`,
      '',
    );
  } else {
    lines.push(`Baseline (bare workers) failed: ${bare.error}`, '');
  }
  lines.push(
    '| run | at once | sessions done / begun | sessions/s | vs in-process | vs bare workers/s | turn p50 | turn p99 | CPU per session | failed turns | lost | duplicated | journal mismatches | worker starts | warm hits | peak live workers | peak RSS | elapsed | cores busy: this / mock / others |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  const base = runs.find((run) => run.placement === 'in-process')?.outcome;
  const baseRate = base?.ok ? base.value.sessionsPerSecond : Number.NaN;
  for (const run of runs) {
    if (!run.outcome.ok) {
      lines.push(`| ${run.label} | ${run.concurrency} | failed: ${run.outcome.error} |`);
      continue;
    }
    const r = run.outcome.value;
    const unchecked = r.checked ? undefined : 'n/a';
    lines.push(
      `| ${run.label}${r.timeBoxed ? ' (time-boxed)' : ''}${r.destroyed ? ' (destroyed after drain grace)' : ''} | ${r.concurrency} | ${r.completed.toLocaleString('en-US')} / ${r.begun.toLocaleString('en-US')} | ${formatNumber(r.sessionsPerSecond)} | ${ratio(r.sessionsPerSecond, baseRate)} | ${ratio(r.sessionsPerSecond, bareRate)} | ${formatMs(r.latency.p50)} | ${formatMs(r.latency.p99)} | ${formatMs(r.cpuMsPerSession)} | ${failedText(r.failed)} | ${r.lost} | ${unchecked ?? r.duplicated} | ${unchecked ?? r.journalMismatches} | ${r.workerStarts ?? '–'} | ${r.warmHits ?? '–'} | ${r.peakLiveWorkers ?? '–'} | ${formatBytes(r.peakRssBytes)} | ${formatMs(r.elapsedMs)} | ${formatCpuShare(r.cpu)} |`,
    );
  }
  lines.push('');
  for (const run of runs.filter((each) => each.placement === 'dedicated')) {
    if (!run.outcome.ok || !bare.ok) {
      lines.push(`- **not met**: ${run.label} ≥ 0.8× bare \`new Worker\` throughput: no figure.`);
      continue;
    }
    const r = run.outcome.value;
    const x = r.sessionsPerSecond / bareRate;
    lines.push(
      verdict(
        x >= 0.8,
        `${run.label} (${r.concurrency} at once) ≥ 0.8× bare \`new Worker\` throughput`,
        `${x.toFixed(2)}× (${r.sessionsPerSecond.toFixed(1)} sessions/s vs ${bareRate.toFixed(1)} workers/s${r.timeBoxed ? `; time-boxed: ${r.completed.toLocaleString('en-US')} of ${count.toLocaleString('en-US')} sessions in ${formatMs(r.elapsedMs)}` : ''})`,
      ),
    );
  }
  const pooled = runs.find((run) => run.placement === 'pooled')?.outcome;
  if (pooled?.ok && base?.ok) {
    const x = pooled.value.sessionsPerSecond / baseRate;
    lines.push(
      verdict(
        x >= 0.9,
        'pooled churn approaches in-process (read as ≥ 0.9×)',
        `${x.toFixed(2)}× (${formatNumber(pooled.value.sessionsPerSecond)} vs ${formatNumber(baseRate)} sessions/s)`,
      ),
    );
  }
  for (const run of runs) {
    if (!run.outcome.ok) continue;
    const r = run.outcome.value;
    lines.push(
      verdict(
        r.peakRssBytes < 4 * GIB,
        `${run.label} peak RSS < 4 GiB`,
        formatBytes(r.peakRssBytes),
      ),
    );
    const clean = r.lost === 0 && (!r.checked || (r.duplicated === 0 && r.journalMismatches === 0));
    lines.push(
      verdict(
        clean,
        `${run.label} zero lost or duplicated turns`,
        `${r.lost} lost, ${r.checked ? `${r.duplicated} sessions with duplicates, ${r.journalMismatches} journal mismatches` : 'duplicates not checkable in-process (no turn ids)'}; ${r.turnsOk.toLocaleString('en-US')} replies; failed turns (a typed error each, not lost): ${failedText(r.failed)}`,
      ),
    );
  }
  return lines.join('\n');
}

function activationSection(samples: number, outcome: Outcome<ActivationResult>): string {
  const lines = [
    `### 3. Activation: ${samples} sequential starts each, interleaved`,
    '',
    'A fresh session per sample: `send("hi")`, then `close()`. `activationMs` is the `session:start` figure (the runtime clock, `Date.now()`: whole milliseconds); "send → session:start" is the caller-side view on `performance.now()` (journal read and mailbox included). The warm pool is refilled before every sample.',
    '',
  ];
  if (!outcome.ok) return [...lines, `failed: ${outcome.error}`].join('\n');
  const r = outcome.value;
  lines.push(
    '| case | activationMs p50 | p99 | send → session:start p50 | p99 | vs bare worker (p50) |',
    '|---|---:|---:|---:|---:|---:|',
    `| bare \`new Worker(probe)\` → first message — baseline | ${formatMs(r.bare.p50)} | ${formatMs(r.bare.p99)} | – | – | 1.00× |`,
    `| cold start (\`warmPoolSize: 0\`) | ${formatMs(r.cold.p50)} | ${formatMs(r.cold.p99)} | ${formatMs(r.coldClient.p50)} | ${formatMs(r.coldClient.p99)} | ${ratio(r.cold.p50, r.bare.p50)} |`,
    `| warm pool (\`warmPoolSize: 1\`, ${r.warm.count} hits, ${r.warmMisses} misses) | ${formatMs(r.warm.p50)} | ${formatMs(r.warm.p99)} | ${formatMs(r.warmClient.p50)} | ${formatMs(r.warmClient.p99)} | ${ratio(r.warm.p50, r.bare.p50)} |`,
    '',
    `Cores busy during the samples: this process / mock LLM / others: ${formatCpuShare(r.cpu)}.`,
    '',
    verdict(
      r.warm.p50 <= 1,
      'warm activation ≤ 1 ms p50',
      `${formatMs(r.warm.p50)} (activationMs; send → session:start ${formatMs(r.warmClient.p50)})`,
    ),
    verdict(
      r.cold.p50 <= 1.2 * r.bare.p50,
      'cold start ≤ 1.2× bare `new Worker` to first message',
      `${ratio(r.cold.p50, r.bare.p50)} (${formatMs(r.cold.p50)} vs ${formatMs(r.bare.p50)})`,
    ),
  );
  return lines.join('\n');
}

function memorySection(
  n: number,
  probe: Outcome<MemoryResult>,
  session: Outcome<MemoryResult>,
): string {
  const lines = [
    `### 4. Memory: ${n} live idle sessions vs ${n} bare probe workers`,
    '',
    `Each in a fresh process: RSS before, then ${n} workers started ${START_CONCURRENCY} at a time (sessions: one turn each, \`warmPoolSize: 0\`), 1 s to settle, a GC of the main thread, RSS after; then ${IDLE_SETTLE_SECONDS} s to let start-up work end and ${IDLE_CPU_SECONDS} s of idling, whose CPU (the whole process) is the idle CPU per worker.`,
    '',
    '| case | live | RSS before | RSS after | per worker | vs probe | maps per worker | idle CPU per worker | cores busy: this / mock / others |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const probeBytes = probe.ok ? probe.value.perWorkerBytes : Number.NaN;
  for (const [label, outcome] of [
    ['bare probe worker — baseline', probe],
    ['live idle session (dedicated)', session],
  ] as const) {
    if (!outcome.ok) {
      lines.push(`| ${label} | failed: ${outcome.error} |`);
      continue;
    }
    const r = outcome.value;
    lines.push(
      `| ${label} | ${r.live}${r.live < n ? ` (ceiling ${r.maxLiveSessions})` : ''} | ${formatBytes(r.rssBefore)} | ${formatBytes(r.rssAfter)} | ${formatBytes(r.perWorkerBytes)} | ${ratio(r.perWorkerBytes, probeBytes)} | ${r.mapsPerWorker.toFixed(1)} | ${r.idleCpuMsPerWorkerSecond.toFixed(2)} ms/s (${((r.idleCpuMsPerWorkerSecond * r.live) / 1000).toFixed(2)} cores for ${r.live}) | ${formatCpuShare(r.cpu)} |`,
    );
  }
  lines.push('');
  if (probe.ok && session.ok) {
    const x = session.value.perWorkerBytes / probeBytes;
    lines.push(
      verdict(
        x <= 2,
        'RSS per live idle session ≤ 2× a bare probe worker',
        `${x.toFixed(2)}× (${formatBytes(session.value.perWorkerBytes)} vs ${formatBytes(probeBytes)})`,
      ),
    );
  } else {
    lines.push('- **not met**: memory per session: no figure (see the table).');
  }
  return lines.join('\n');
}

function appendResults(markdown: string): void {
  const file = new URL('./RESULTS.md', import.meta.url);
  const stamp = new Date().toISOString().replace('T', ' ').slice(0, 16);
  if (!existsSync(file)) writeFileSync(file, '# agentcell benchmark results\n');
  appendFileSync(file, `\n## scale, ${stamp} UTC\n\n${machineDescription()}\n\n${markdown}\n`);
}

export default async function scaleBench(): Promise<string> {
  const n = envInt('SCALE_N', 1000);
  const churnCount = envInt('SCALE_CHURN', 10_000);
  const churnConcurrency = envInt('SCALE_CHURN_CONCURRENCY', CHURN_MAX_LIVE);
  const churnBounded = envInt('SCALE_CHURN_BOUNDED', 32);
  const churnSeconds = envInt('SCALE_CHURN_SECONDS', 150);
  const steadySeconds = envInt('SCALE_STEADY_SECONDS', 120);
  const warmupSeconds = envInt('SCALE_WARMUP_SECONDS', 180);
  const memoryN = envInt('SCALE_MEMORY_N', 200);
  const activationSamples = envInt('SCALE_ACTIVATION_SAMPLES', 30);
  const runStart = performance.now();

  const mock = await startMockProcess({ firstTokenMs: FIRST_TOKEN_MS });
  const sections: string[] = [];
  try {
    for (const size of [...new Set([200, n])]) {
      const results = new Map<Placement, Outcome<SteadyResult>>();
      for (const placement of PLACEMENTS) {
        results.set(
          placement,
          await runCase<SteadyResult>(`steady N=${size} ${placement}`, 'steadyCase', [
            placement,
            String(size),
            mock.url,
            String(steadySeconds),
            String(warmupSeconds),
          ]),
        );
      }
      sections.push(steadySection(size, steadySeconds, warmupSeconds, results));
    }

    const bare = await runCase<BareChurnResult>('bare worker churn', 'bareChurnCase', [
      String(BARE_CHURN_SECONDS),
    ]);
    const churnPlan: readonly { label: string; placement: Placement; concurrency: number }[] = [
      { label: 'in-process — baseline', placement: 'in-process', concurrency: churnConcurrency },
      { label: 'pooled', placement: 'pooled', concurrency: churnConcurrency },
      { label: 'dedicated', placement: 'dedicated', concurrency: churnConcurrency },
      { label: 'dedicated, arrivals bounded', placement: 'dedicated', concurrency: churnBounded },
    ];
    const churnRuns: ChurnRun[] = [];
    for (const plan of churnPlan) {
      churnRuns.push({
        ...plan,
        outcome: await runCase<ChurnResult>(
          `churn ${plan.label} (${plan.concurrency} at once)`,
          'churnCase',
          [
            plan.placement,
            String(churnCount),
            String(plan.concurrency),
            mock.url,
            String(churnSeconds),
          ],
        ),
      });
    }
    sections.push(churnSection(churnCount, churnSeconds, bare, churnRuns));

    const activation = await runCase<ActivationResult>('activation', 'activationCase', [
      mock.url,
      String(activationSamples),
    ]);
    sections.push(activationSection(activationSamples, activation));

    const probeMemory = await runCase<MemoryResult>(`memory ${memoryN} probes`, 'memoryCase', [
      'probe',
      String(memoryN),
      mock.url,
    ]);
    const sessionMemory = await runCase<MemoryResult>(`memory ${memoryN} sessions`, 'memoryCase', [
      'session',
      String(memoryN),
      mock.url,
    ]);
    sections.push(memorySection(memoryN, probeMemory, sessionMemory));
  } finally {
    await mock.stop();
  }

  const header = [
    `Mock LLM in its own process, ${FIRST_TOKEN_MS} ms to the first token, whole reply at once. Every case in a fresh child process (workers without tsx). Pooled: ${POOL_THREADS} threads, turns per thread = concurrent turns / ${POOL_THREADS}. Agents keep a 10-message history window.`,
    '',
    `Run: ${formatMs(performance.now() - runStart)}. "Cores busy: this / mock / others" is the average number of cores used, during a measured phase, by the process under test (all its threads), the mock LLM, and every other process on the machine: this machine has 2 cores, so "others" above ~0.1 means the figures were measured in competition with unrelated work.`,
  ].join('\n');
  const markdown = [header, ...sections].join('\n\n');
  appendResults(markdown);
  return markdown;
}
