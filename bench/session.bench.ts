/**
 * What a session costs over a bare worker thread: start (first reply of a fresh session), round
 * trip (a warm turn at zero model latency) and resident memory per live idle session.
 * Baselines measured in the same run: a bare probe worker (start, postMessage echo, RSS) and
 * the same turn made in-process. Everything is measured in child processes (`runIsolated`), so
 * workers start without tsx, as they do in production, and each memory reading starts from a
 * fresh process; the mock LLM runs in a process of its own at zero latency.
 */
import { readFileSync } from 'node:fs';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { Agent } from '../src/agent/agent.js';
import { OptionsInvalidError } from '../src/errors.js';
import { Supervisor, type SupervisorOptions } from '../src/runtime/supervisor.js';
import { workerEntryUrl } from '../src/runtime/worker-entry.js';
import { runIsolated } from './_util/isolated.js';
import { formatMicros, formatNumber, type Measurement, measure } from './_util/measure.js';
import { type MockProcess, startMockProcess } from './_util/mock-process.js';

/** Sequential starts per case: they compete for the machine's cores, so never in parallel. */
const STARTS = 20;
const WARMUP_STARTS = 3;
const MEMORY_SIZES = [50, 200] as const;
/** Workers started at once in the memory runs, to avoid a start storm. */
const START_CONCURRENCY = 4;
const AGENT = 'bench';

interface WorkerMessage {
  readonly type?: string;
  /** Epoch milliseconds at which the worker's first module started running. */
  readonly bootAt?: number;
  readonly importMs?: number;
}

/** One worker started only to load a module: thread boot, then the module's import. */
interface LoadSamples {
  readonly total: number[];
  readonly boot: number[];
  readonly import: number[];
}

/** Starts of fresh sessions: to the first reply, split at the `session:start` event. */
interface SessionStarts {
  /** `send('hi')` on a fresh key → reply. */
  readonly total: number[];
  /** `send` → `session:start` (a worker bound to the session). */
  readonly toStart: number[];
  /** `session:start` → first reply. */
  readonly firstTurn: number[];
  /** The session's second message, for contrast. */
  readonly secondTurn: number[];
}

interface StartAndRoundTrip {
  readonly probe: number[];
  /** Default supervisor options (with a warm pool where the runtime has one). */
  readonly session: SessionStarts;
  /** `warmPoolSize: 0`: every start spawns its worker; undefined if the option is unknown. */
  readonly coldSession: SessionStarts | undefined;
  /** Whether the default supervisor keeps prepared workers (stats report `warmWorkers`). */
  readonly warmPool: boolean;
  /** The session worker's entry file as built (what every session start loads). */
  readonly entryLoad: LoadSamples;
  /** `dist/src/worker/session-core.js` as tsc emits it, module by module. */
  readonly coreLoad: LoadSamples;
  readonly probeWithTsx: number[];
  /** Size of the built `session-worker.cjs` and whether it is a bundle (no imports of `src/`). */
  readonly entryBytes: number;
  readonly entryBundled: boolean;
  readonly echo: Measurement;
  readonly sessionTurn: Measurement;
  readonly inProcessTurn: Measurement;
}

interface MemoryResult {
  readonly kind: 'probe' | 'session';
  /** Whether the sessions were started without a warm pool (`warmPoolSize: 0` accepted). */
  readonly cold: boolean;
  readonly n: number;
  readonly before: number;
  readonly after: number;
  readonly liveWorkers: number;
  readonly startsPerSecond: number;
  /** Mean JS heap in use in a session's worker (sessions only). */
  readonly workerHeapUsed: number | undefined;
  readonly gc: boolean;
}

interface Stats {
  readonly mean: number;
  readonly p50: number;
  readonly p95: number;
}

function stats(samples: readonly number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
  return {
    mean: sorted.reduce((sum, x) => sum + x, 0) / sorted.length,
    p50: rank(0.5),
    p95: rank(0.95),
  };
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

function nextMessage(worker: Worker, type: string): Promise<WorkerMessage> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: WorkerMessage) => {
      if (message?.type !== type) return;
      worker.off('message', onMessage).off('error', onError);
      resolve(message);
    };
    const onError = (error: Error) => {
      worker.off('message', onMessage).off('error', onError);
      reject(error);
    };
    worker.on('message', onMessage).on('error', onError);
  });
}

/** A bare worker started and answering: `ready`, then one echo round trip. */
async function startProbe(options: WorkerOptions = {}): Promise<Worker> {
  const worker = new Worker(workerEntryUrl('probe'), options);
  await nextMessage(worker, 'ready');
  worker.postMessage({ type: 'echo', value: 'hi' });
  await nextMessage(worker, 'echo');
  return worker;
}

const now = () => performance.timeOrigin + performance.now();

/**
 * Starts a worker whose only module imports `moduleUrl`, and records how long the thread took
 * to boot (until its first module ran) and then to import the module.
 */
async function loadInWorker(moduleUrl: URL, into: LoadSamples | undefined): Promise<void> {
  const code = `import { parentPort } from 'node:worker_threads';
const now = () => performance.timeOrigin + performance.now();
const bootAt = now();
await import(${JSON.stringify(moduleUrl.href)});
parentPort.postMessage({ type: 'loaded', bootAt, importMs: now() - bootAt });`;
  const spawnedAt = now();
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`));
  const loaded = await nextMessage(worker, 'loaded');
  const total = now() - spawnedAt;
  await worker.terminate();
  into?.total.push(total);
  into?.boot.push((loaded.bootAt ?? NaN) - spawnedAt);
  into?.import.push(loaded.importMs ?? NaN);
}

const loadSamples = (): LoadSamples => ({ total: [], boot: [], import: [] });

const elapsedSince = (start: number) => performance.now() - start;

/**
 * A supervisor with `extra` options if this version of the runtime knows them (`applied`), else
 * with the base options only: the runtime's options are still moving.
 */
function newSupervisor(extra: Record<string, unknown> = {}): {
  supervisor: Supervisor;
  applied: boolean;
} {
  const base: SupervisorOptions = { maxConcurrentTurns: 1024 };
  try {
    return {
      supervisor: new Supervisor({ ...base, ...extra } as SupervisorOptions),
      applied: true,
    };
  } catch (error) {
    if (!(error instanceof OptionsInvalidError)) throw error;
    return { supervisor: new Supervisor(base), applied: false };
  }
}

/** Prepared workers waiting in the supervisor's warm pool, if it has one. */
function warmWorkers(supervisor: Supervisor): number | undefined {
  const stats: { readonly warmWorkers?: number } = supervisor.stats();
  return stats.warmWorkers;
}

/** Waits (up to 5 s) until the warm pool is refilled, so its refill is charged to no later case. */
async function warmPoolRefilled(supervisor: Supervisor): Promise<void> {
  const deadline = performance.now() + 5000;
  while ((warmWorkers(supervisor) ?? 1) < 1 && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const sessionStarts = (): SessionStarts => ({
  total: [],
  toStart: [],
  firstTurn: [],
  secondTurn: [],
});

/** Times the first reply of a fresh session (and its second), then closes it. */
async function startSession(
  supervisor: Supervisor,
  key: string,
  startedAt: ReadonlyMap<string, number>,
  into: SessionStarts | undefined,
): Promise<void> {
  const start = performance.now();
  const session = supervisor.session(key, { agent: AGENT });
  await session.send('hi');
  const replied = performance.now();
  await session.send('hi again');
  const second = elapsedSince(replied);
  const started = startedAt.get(key) ?? NaN;
  into?.total.push(replied - start);
  into?.toStart.push(started - start);
  into?.firstTurn.push(replied - started);
  into?.secondTurn.push(second);
  await session.close();
}

const sessionCoreUrl = new URL('../dist/src/worker/session-core.js', import.meta.url);

/** Section 1 and 2, in one child process. */
export async function measureStartAndRoundTrip(): Promise<string> {
  const mock = await startMockProcess();
  const { supervisor } = newSupervisor();
  const cold = newSupervisor({ warmPoolSize: 0 });
  const coldSupervisor = cold.applied ? cold.supervisor : undefined;
  if (!cold.applied) await cold.supervisor.close();
  try {
    const startedAt = new Map<string, number>();
    for (const each of [supervisor, coldSupervisor]) {
      each?.register(AGENT, benchAgent(mock.url));
      each?.on('session:start', ({ key }) => startedAt.set(key, performance.now()));
    }
    const warmPool = warmWorkers(supervisor) !== undefined;
    await warmPoolRefilled(supervisor);

    const result = {
      probe: [] as number[],
      session: sessionStarts(),
      coldSession: coldSupervisor ? sessionStarts() : undefined,
      entryLoad: loadSamples(),
      coreLoad: loadSamples(),
      probeWithTsx: [] as number[],
    };
    // Cases interleaved per round, so drift on a busy machine hits them all alike.
    for (let round = -WARMUP_STARTS; round < STARTS; round++) {
      const record = round >= 0;

      const start = performance.now();
      const probe = await startProbe();
      if (record) result.probe.push(elapsedSince(start));
      await probe.terminate();

      if (coldSupervisor) {
        await startSession(
          coldSupervisor,
          `cold-${round + WARMUP_STARTS}`,
          startedAt,
          record ? result.coldSession : undefined,
        );
      }
      await startSession(
        supervisor,
        `default-${round + WARMUP_STARTS}`,
        startedAt,
        record ? result.session : undefined,
      );
      await warmPoolRefilled(supervisor);

      await loadInWorker(workerEntryUrl('session-worker'), record ? result.entryLoad : undefined);
      await loadInWorker(sessionCoreUrl, record ? result.coreLoad : undefined);

      if (round < STARTS / 2) {
        const tsxStart = performance.now();
        const withTsx = await startProbe({ execArgv: ['--import', 'tsx'] });
        if (record) result.probeWithTsx.push(elapsedSince(tsxStart));
        await withTsx.terminate();
      }
    }
    await coldSupervisor?.close();

    // The entry loads the bundle (after turning the compile cache on): the bundle is the code.
    const entryText = readFileSync(
      new URL('session-worker.bundle.cjs', workerEntryUrl('session-worker')),
      'utf8',
    );
    const built = {
      warmPool,
      entryBytes: Buffer.byteLength(entryText),
      entryBundled: !entryText.includes('../src/'),
    };
    const roundTrip = await measureRoundTrip(mock, supervisor);
    return JSON.stringify({ ...result, ...built, ...roundTrip } satisfies StartAndRoundTrip);
  } finally {
    await Promise.all([supervisor.close(), coldSupervisor?.close()]);
    await mock.stop();
  }
}

async function measureRoundTrip(
  mock: MockProcess,
  supervisor: Supervisor,
): Promise<Pick<StartAndRoundTrip, 'echo' | 'sessionTurn' | 'inProcessTurn'>> {
  const probe = await startProbe();
  let pending: (() => void) | undefined;
  probe.on('message', (message: WorkerMessage) => {
    if (message.type !== 'echo') return;
    const resolve = pending;
    pending = undefined;
    resolve?.();
  });
  const echoOnce = () =>
    new Promise<void>((resolve) => {
      pending = resolve;
      probe.postMessage({ type: 'echo', value: 'hello there' });
    });
  const echo = await measure('postMessage echo to a probe worker — baseline', echoOnce);
  await probe.terminate();

  const session = supervisor.session('round-trip', { agent: AGENT });
  const inProcess = benchAgent(mock.url);
  // Warm the mock server, both code paths and the session's worker before anything is measured.
  for (let i = 0; i < 300; i++) {
    await session.send('warm-up');
    await inProcess.chat('warm-up');
  }
  const sessionTurn = await measure(
    'session.send() turn (worker)',
    () => session.send('hello there'),
    { durationMs: 3000 },
  );
  const inProcessTurn = await measure(
    'agent.chat() turn (in-process)',
    () => inProcess.chat('hello there'),
    { durationMs: 3000 },
  );
  return { echo, sessionTurn, inProcessTurn };
}

async function pool<T>(
  count: number,
  concurrency: number,
  task: (index: number) => Promise<T>,
): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const index = next++;
        results[index] = await task(index);
      }
    }),
  );
  return results;
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** RSS once the workers' last activity is over and the main thread's heap is collected. */
async function settledRss(): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 250));
  globalThis.gc?.();
  await tick();
  await tick();
  return process.memoryUsage.rss();
}

/** Section 3: RSS of `n` live idle probe workers or sessions, each in a fresh child process. */
export async function measureMemory(kind: string, size: string): Promise<string> {
  const n = Number(size);
  if (kind === 'probe') {
    // One start first, so one-time costs (loading worker code in this thread) are in the baseline.
    await (await startProbe()).terminate();
    const before = await settledRss();
    const start = performance.now();
    const workers = await pool(n, START_CONCURRENCY, () => startProbe());
    const startsPerSecond = (n * 1000) / elapsedSince(start);
    const after = await settledRss();
    await Promise.all(workers.map((worker) => worker.terminate()));
    return JSON.stringify({
      kind: 'probe',
      cold: true,
      n,
      before,
      after,
      liveWorkers: workers.length,
      startsPerSecond,
      workerHeapUsed: undefined,
      gc: globalThis.gc !== undefined,
    } satisfies MemoryResult);
  }
  const mock = await startMockProcess();
  // No warm pool: a prepared spare worker would be noise in the reading.
  const { supervisor, applied } = newSupervisor({ warmPoolSize: 0 });
  try {
    supervisor.register(AGENT, benchAgent(mock.url));
    const warm = supervisor.session('warm-up', { agent: AGENT });
    await warm.send('hi');
    await warm.close();
    const before = await settledRss();
    const start = performance.now();
    const sessions = await pool(n, START_CONCURRENCY, async (i) => {
      const session = supervisor.session(`memory-${i}`, { agent: AGENT });
      await session.send('hi');
      return session;
    });
    const startsPerSecond = (n * 1000) / elapsedSince(start);
    const after = await settledRss();
    // Read after the RSS reading, so these calls into the workers do not disturb it.
    const heaps = await Promise.all(
      sessions.map(async (s) => (await s.stats()).heapUsedBytes ?? NaN),
    );
    return JSON.stringify({
      kind: 'session',
      cold: applied,
      n,
      before,
      after,
      liveWorkers: supervisor.stats().liveWorkers,
      startsPerSecond,
      workerHeapUsed: heaps.reduce((sum, x) => sum + x, 0) / heaps.length,
      gc: globalThis.gc !== undefined,
    } satisfies MemoryResult);
  } finally {
    await supervisor.close();
    await mock.stop();
  }
}

const ms = (value: number) => `${value.toFixed(1)} ms`;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const times = (value: number) => `${value.toFixed(2)}×`;

interface StartStats {
  readonly total: Stats;
  readonly toStart: Stats;
  readonly firstTurn: Stats;
  readonly secondTurn: Stats;
}

const startStats = (s: SessionStarts): StartStats => ({
  total: stats(s.total),
  toStart: stats(s.toStart),
  firstTurn: stats(s.firstTurn),
  secondTurn: stats(s.secondTurn),
});

function startSection(r: StartAndRoundTrip): string {
  const probe = stats(r.probe);
  const withTsx = stats(r.probeWithTsx);
  const entry = {
    total: stats(r.entryLoad.total),
    boot: stats(r.entryLoad.boot),
    import: stats(r.entryLoad.import),
  };
  const core = {
    total: stats(r.coreLoad.total),
    boot: stats(r.coreLoad.boot),
    import: stats(r.coreLoad.import),
  };
  const cases: { label: string; short: string; s: StartStats }[] = [];
  if (r.coldSession) {
    cases.push({
      label: 'session start, cold (`warmPoolSize: 0`: spawns its worker)',
      short: 'cold',
      s: startStats(r.coldSession),
    });
  }
  cases.push({
    label: r.warmPool
      ? 'session start, default options (takes a prepared worker from the warm pool)'
      : 'session start, default options (spawns its worker)',
    short: r.warmPool ? 'warm pool' : 'default',
    s: startStats(r.session),
  });
  const coldCase = r.warmPool ? cases.find((c) => c.short === 'cold') : cases[0];
  const warmCase = r.warmPool ? cases.find((c) => c.short === 'warm pool') : undefined;
  const base = coldCase?.s.total ?? probe;
  const row = (name: string, s: Stats, ratio: string) =>
    `| ${name} | ${ms(s.mean)} | ${ms(s.p50)} | ${ms(s.p95)} | ${ratio} |`;
  const vs = (s: Stats, of: Stats) => times(s.mean / of.mean);
  const entryKind = `${r.entryBundled ? 'bundled' : 'not bundled'}, ${mib(r.entryBytes)}`;

  const lines = [
    `### Start (${STARTS} sequential starts each, after ${WARMUP_STARTS} unrecorded; cases interleaved)`,
    '',
    '| case | mean | p50 | p95 | mean vs baseline |',
    '|---|---:|---:|---:|---:|',
    row('`new Worker(probe)` → ready → 1 echo — baseline', probe, '1.00×'),
    ...cases.flatMap((c) => [
      row(`${c.label}: fresh key, \`send('hi')\` → reply`, c.s.total, vs(c.s.total, probe)),
      `| ratio ${c.short} / raw | ${times(c.s.total.mean / probe.mean)} | ${times(c.s.total.p50 / probe.p50)} | ${times(c.s.total.p95 / probe.p95)} | |`,
    ]),
    '',
    `Where a session start goes (same run; the load rows are separate workers that only import a module; last column vs the ${coldCase ? `${coldCase.short} ` : ''}session start):`,
    '',
    '| step | mean | p50 | p95 | vs session start |',
    '|---|---:|---:|---:|---:|',
    ...cases.flatMap((c) => [
      row(
        `${c.short}: send → \`session:start\` (a worker bound to the session)`,
        c.s.toStart,
        vs(c.s.toStart, base),
      ),
      row(
        `${c.short}: \`session:start\` → first reply (first turn in that worker)`,
        c.s.firstTurn,
        vs(c.s.firstTurn, base),
      ),
      row(
        `${c.short}: second turn of the same session (for contrast)`,
        c.s.secondTurn,
        vs(c.s.secondTurn, base),
      ),
    ]),
    row(
      `load \`dist/workers/session-worker.cjs\` as built (${entryKind})`,
      entry.total,
      vs(entry.total, base),
    ),
    row('… thread boot, until the first module runs', entry.boot, vs(entry.boot, base)),
    row('… `import()` of the entry', entry.import, vs(entry.import, base)),
    row(
      'load `dist/src/worker/session-core.js` (tsc output, module by module)',
      core.total,
      vs(core.total, base),
    ),
    row('… thread boot, until the first module runs', core.boot, vs(core.boot, base)),
    row('… `import()` of the session core', core.import, vs(core.import, base)),
    row(
      `probe worker inheriting \`--import tsx\` (${r.probeWithTsx.length} starts; why this bench runs in a child process)`,
      withTsx,
      `${vs(withTsx, probe)} the probe`,
    ),
    '',
  ];
  const summary: string[] = [];
  if (coldCase) {
    const parts = [
      { name: 'thread boot', ms: entry.boot.mean },
      { name: 'loading the worker code', ms: entry.import.mean },
      {
        name: 'prepare/activate RPCs',
        ms: Math.max(0, coldCase.s.toStart.mean - entry.total.mean),
      },
      { name: 'the first turn in a fresh worker', ms: coldCase.s.firstTurn.mean },
    ];
    const largest = parts.reduce((a, b) => (b.ms > a.ms ? b : a));
    lines.push(`Cold start ≈ ${parts.map((part) => `${ms(part.ms)} ${part.name}`).join(' + ')}.`);
    summary.push(
      `a fresh session answers its first message in ${ms(coldCase.s.total.mean)} cold (${vs(coldCase.s.total, probe)} a bare worker start; largest part: ${largest.name})`,
    );
  }
  if (warmCase) {
    lines.push(
      `From the warm pool: ${ms(warmCase.s.toStart.mean)} to bind a prepared worker, then ${ms(warmCase.s.firstTurn.mean)} for its first turn (which shares the cores with the pool's refill).`,
    );
    summary.push(
      `${ms(warmCase.s.total.mean)} with a prepared worker from the warm pool (${vs(warmCase.s.total, probe)})`,
    );
  }
  lines.push('', `What this means: ${summary.join(', and ')}.`);
  return lines.join('\n');
}

function roundTripSection(r: StartAndRoundTrip): string {
  const rows = [r.echo, r.sessionTurn, r.inProcessTurn];
  const overhead = r.sessionTurn.meanMicros - r.inProcessTurn.meanMicros;
  return [
    '### Round trip (warm, zero model latency)',
    '',
    '| case | ops/s | mean | vs echo | vs in-process |',
    '|---|---:|---:|---:|---:|',
    ...rows.map(
      (row) =>
        `| ${row.name} | ${formatNumber(row.opsPerSecond)} | ${formatMicros(row.meanMicros)} | ${times(row.opsPerSecond / r.echo.opsPerSecond)} | ${times(row.opsPerSecond / r.inProcessTurn.opsPerSecond)} |`,
    ),
    '',
    `What this means: a turn through the session's worker costs ${formatMicros(overhead)} more than the same turn in-process (${times(r.sessionTurn.meanMicros / r.inProcessTurn.meanMicros)} the time, ${formatNumber(overhead / r.echo.meanMicros)} bare postMessage round trips' worth); against a model that takes 500 ms to answer that is ${((overhead / 1000 / 500) * 100).toFixed(1)}%.`,
  ].join('\n');
}

function memorySection(results: readonly MemoryResult[]): string {
  const lines = [
    `### Memory: RSS per live idle worker (${START_CONCURRENCY} started at a time, a fresh process per reading)`,
    '',
    '| N | bare probe worker: ΔRSS / N | session (1 turn answered, idle): ΔRSS / N | session / probe | session worker JS heap used | probe starts/s | session starts/s |',
    '|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const summary: string[] = [];
  /** Largest (session − probe) / probe over the sizes measured. */
  let extraOverThread = 0;
  for (const n of MEMORY_SIZES) {
    const probe = results.find((r) => r.kind === 'probe' && r.n === n);
    const session = results.find((r) => r.kind === 'session' && r.n === n);
    if (!probe || !session) continue;
    const probePer = (probe.after - probe.before) / n;
    const sessionPer = (session.after - session.before) / n;
    const live = session.liveWorkers === n ? '' : ` (only ${session.liveWorkers} live workers)`;
    lines.push(
      `| ${n} | ${mib(probePer)} | ${mib(sessionPer)}${live} | ${times(sessionPer / probePer)} | ${mib(session.workerHeapUsed ?? NaN)} | ${formatNumber(probe.startsPerSecond)} | ${formatNumber(session.startsPerSecond)} |`,
    );
    extraOverThread = Math.max(extraOverThread, (sessionPer - probePer) / probePer);
    summary.push(
      `at N = ${n} a session holds ${mib(sessionPer)} (${times(sessionPer / probePer)} a bare thread's ${mib(probePer)})`,
    );
  }
  const last = results.find((r) => r.kind === 'session' && r.n === MEMORY_SIZES.at(-1));
  lines.push(
    '',
    [
      results.every((r) => r.gc)
        ? 'Main-thread heap collected (`--expose-gc`) before each reading; workers are not.'
        : 'No `gc()` available: readings include uncollected garbage.',
      results.every((r) => r.cold)
        ? 'Sessions run with `warmPoolSize: 0`, so no prepared spare worker is in the reading.'
        : '',
      last ? `${last.n} idle sessions: ${mib(last.after - last.before)} in all.` : '',
    ]
      .filter(Boolean)
      .join(' '),
    '',
    `What this means: ${summary.join('; ')}; ${extraOverThread > 1 ? "the session's code and heap add more than the thread itself costs" : 'most of it is the thread itself'}.`,
  );
  return lines.join('\n');
}

export default async function sessionBench(): Promise<string> {
  const startAndRoundTrip = JSON.parse(
    await runIsolated(import.meta.url, 'measureStartAndRoundTrip'),
  ) as StartAndRoundTrip;
  const memory: MemoryResult[] = [];
  for (const n of MEMORY_SIZES) {
    for (const kind of ['probe', 'session']) {
      memory.push(
        JSON.parse(
          await runIsolated(import.meta.url, 'measureMemory', [kind, String(n)]),
        ) as MemoryResult,
      );
    }
  }
  return [
    'Measured in child processes whose workers start without tsx (as in production); mock LLM in its own process, zero latency.',
    '',
    startSection(startAndRoundTrip),
    '',
    roundTripSection(startAndRoundTrip),
    '',
    memorySection(memory),
  ].join('\n');
}
