/**
 * Soak test (not run in CI): steady load with session churn against an embedded supervisor and
 * the bundled mock LLM, for a long time, watching for growth. Sessions are created, talk,
 * are passivated, come back, and are closed and deleted, on dedicated workers (behind a live
 * ceiling, with a warm pool and idle passivation) and on the shared pool, with a few failing
 * turns mixed in (model 500s, tool crashes). Every `--interval` seconds it prints RSS, heap,
 * live workers and open handles.
 *
 * At the end it fits a least-squares line, after the warm-up, to the low-water mark of each
 * `--window` (RSS and handles swing with every worker started and stopped; a leak raises the
 * floor, churn does not) and to the heap after a full GC, and fails (exit 1) when any of them
 * grows faster than allowed, when a caller got an untyped error, or when the supervisor does
 * not let go of every worker.
 *
 *   npm run soak                       # 30 minutes
 *   npm run soak -- --minutes 2        # a quick check
 *   npm run soak -- --help
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Agent } from '../src/agent/agent.js';
import { mulberry32 } from '../src/cli/loadtest/random.js';
import { errorCatalogue } from '../src/errors.js';
import { FileStore } from '../src/runtime/stores/file.js';
import { Supervisor } from '../src/runtime/supervisor.js';
import { startMockLlm } from '../src/testing/mock-llm.js';
import { ToolRegistry } from '../src/tools/registry.js';

const HELP = `npm run soak -- [options]

  --minutes <n>          how long to run (default 30)
  --interval <s>         seconds between printed samples (default 30)
  --warmup <s>           seconds ignored by the fit (default: 20% of the run, 45 to 300)
  --window <s>           seconds per low-water mark of RSS and handles (default: a quarter of
                         the fitted time, 10 to 30)
  --concurrency <n>      simulated users at once (default 24)
  --keys <n>             session keys per placement that churn (default 300)
  --max-rss-slope <n>    MiB per minute of RSS growth allowed after the warm-up (default 5)
  --max-heap-slope <n>   MiB per minute of heap growth allowed (default 2)
  --max-handle-slope <n> open handles per minute of growth allowed (default 2)
  --seed <n>             seed of the load's choices (default 1)
`;

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    interval: { type: 'string', default: '30' },
    warmup: { type: 'string' },
    window: { type: 'string' },
    concurrency: { type: 'string', default: '24' },
    keys: { type: 'string', default: '300' },
    'max-rss-slope': { type: 'string', default: '5' },
    'max-heap-slope': { type: 'string', default: '2' },
    'max-handle-slope': { type: 'string', default: '2' },
    seed: { type: 'string', default: '1' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

function positive(name: string, raw: string | undefined): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    process.stderr.write(`--${name} must be a positive number, got ${raw}\n${HELP}`);
    process.exit(2);
  }
  return value;
}

const MINUTES = positive('minutes', values.minutes);
const INTERVAL_S = positive('interval', values.interval);
const WARMUP_S =
  values.warmup === undefined
    ? Math.min(300, Math.max(45, MINUTES * 60 * 0.2))
    : positive('warmup', values.warmup);
const WINDOW_S =
  values.window === undefined
    ? Math.min(30, Math.max(10, (MINUTES * 60 - WARMUP_S) / 4))
    : positive('window', values.window);
const CONCURRENCY = Math.floor(positive('concurrency', values.concurrency));
const KEYS = Math.floor(positive('keys', values.keys));
const MAX_RSS_SLOPE = positive('max-rss-slope', values['max-rss-slope']);
const MAX_HEAP_SLOPE = positive('max-heap-slope', values['max-heap-slope']);
const MAX_HANDLE_SLOPE = positive('max-handle-slope', values['max-handle-slope']);
const SEED = Math.floor(positive('seed', values.seed));
/** Samples for the fit are taken this often (printed ones every INTERVAL_S). */
const SAMPLE_S = Math.min(2, INTERVAL_S);
/** Most messages go to a few hot sessions (live ones); the rest churn through the key space. */
const HOT_KEYS = 12;
const HOT_SHARE = 0.7;
const MiB = 1024 * 1024;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

interface Sample {
  readonly minutes: number;
  readonly rssMiB: number;
  readonly heapMiB: number;
  readonly handles: number;
  readonly liveWorkers: number;
}

function handleCount(): { total: number; ports: number; workers: number } {
  const all = process.getActiveResourcesInfo();
  return {
    total: all.length,
    ports: all.filter((name) => name === 'MessagePort').length,
    workers: all.filter((name) => name.includes('Worker')).length,
  };
}

/** Least-squares slope of y over x. */
function slope(points: readonly (readonly [number, number])[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const meanX = points.reduce((sum, [x]) => sum + x, 0) / n;
  const meanY = points.reduce((sum, [, y]) => sum + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - meanX) * (y - meanY);
    den += (x - meanX) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

const pad = (value: string | number, width: number) => String(value).padStart(width);

async function main(): Promise<number> {
  const random = mulberry32(SEED);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const dir = await mkdtemp(join(tmpdir(), 'agentcell-soak-'));
  const mock = await startMockLlm({
    latency: { firstTokenMs: 5, tokensPerSecond: 2_000 },
    rules: [
      { match: /^crash/, steps: [{ toolCalls: [{ name: 'crash', arguments: { how: 'exit' } }] }] },
    ],
  });
  const tools = new ToolRegistry().registerModule(
    'crash',
    new URL('../test/fixtures/tools/crash-tool.js', import.meta.url),
  );
  await tools.load();
  const supervisor = new Supervisor({
    tools,
    store: new FileStore({ dir }),
    maxLiveSessions: 24,
    warmPoolSize: 2,
    idleTimeoutMs: 5_000,
    poolThreads: 2,
    turnTimeoutMs: 30_000,
    restart: { maxRestarts: 50, windowMs: 60_000, backoffMs: 10 },
  });
  const agent = (name: string) =>
    new Agent({
      name,
      llm: 'mock-model',
      baseUrl: mock.url,
      apiKey: 'sk-soak',
      tools: [tools.get('crash')],
      memory: { historyWindow: 20 },
      execution: { retryBaseDelayMs: 1, maxRetries: 1 },
    });
  supervisor.register('dedicated', agent('dedicated'));
  supervisor.register('pooled', agent('pooled'), { placement: 'pooled' });

  const counts = {
    ok: 0,
    typedErrors: 0,
    untyped: 0,
    created: 0,
    deleted: 0,
    passivated: 0,
  };
  const byCode: Record<string, number> = {};
  const untypedExamples: string[] = [];
  const record = async (promise: Promise<unknown>) => {
    try {
      await promise;
      counts.ok++;
    } catch (error) {
      const code = (error as { code?: unknown } | undefined)?.code;
      if (typeof code === 'string' && Object.hasOwn(errorCatalogue, code)) {
        counts.typedErrors++;
        byCode[code] = (byCode[code] ?? 0) + 1;
      } else {
        counts.untyped++;
        if (untypedExamples.length < 5) untypedExamples.push(String(error));
      }
    }
  };

  const busy = new Set<string>();
  const user = async (deadline: number) => {
    while (Date.now() < deadline) {
      const placement = random() < 0.5 ? 'dedicated' : 'pooled';
      const index =
        random() < HOT_SHARE ? Math.floor(random() * HOT_KEYS) : Math.floor(random() * KEYS);
      const key = `soak:${placement}:${index}`;
      if (busy.has(key)) continue;
      busy.add(key);
      try {
        const existed = supervisor.peek(key) !== undefined;
        const session = supervisor.session(key, { agent: placement });
        if (!existed) counts.created++;
        const action = random();
        if (action < 0.08) {
          await supervisor.deleteSession(key);
          counts.deleted++;
        } else if (action < 0.2) {
          if (await session.passivate()) counts.passivated++;
        } else {
          const turns = 1 + Math.floor(random() * 4);
          for (let i = 0; i < turns; i++) {
            const fault = random();
            const message =
              fault < 0.01
                ? 'crash please'
                : fault < 0.03
                  ? `fail [[mock:500]] ${i}`
                  : `${pick(['hello', 'how are you', 'tell me more', 'thanks'])} ${i}`;
            await record(session.send(message));
          }
        }
      } finally {
        busy.delete(key);
      }
    }
  };

  // Every session object exists from the start (deleted ones come back later), so that the
  // supervisor's own bookkeeping is at its steady size before anything is measured.
  for (let i = 0; i < KEYS; i++) {
    supervisor.session(`soak:dedicated:${i}`, { agent: 'dedicated' });
    supervisor.session(`soak:pooled:${i}`, { agent: 'pooled' });
  }
  const started = Date.now();
  const deadline = started + MINUTES * 60_000;
  const samples: Sample[] = [];
  let lastTurns = 0;
  let lastPrint = started;
  const take = (): Sample => {
    // The mock records every request it served: forget them, or the harness is what grows.
    mock.reset();
    gc();
    const memory = process.memoryUsage();
    const stats = supervisor.stats();
    return {
      minutes: (Date.now() - started) / 60_000,
      rssMiB: memory.rss / MiB,
      heapMiB: memory.heapUsed / MiB,
      handles: handleCount().total,
      liveWorkers: stats.liveWorkers,
    };
  };
  const print = (sample: Sample) => {
    const stats = supervisor.stats();
    const handles = handleCount();
    const turns = stats.turns.ok + stats.turns.failed;
    const seconds = (Date.now() - lastPrint) / 1000;
    const rate = seconds > 0 ? (turns - lastTurns) / seconds : 0;
    lastTurns = turns;
    lastPrint = Date.now();
    console.log(
      `${pad(sample.minutes.toFixed(1), 6)} min | RSS ${pad(sample.rssMiB.toFixed(0), 5)} MiB | heap ${pad(sample.heapMiB.toFixed(1), 6)} MiB | workers live ${pad(stats.liveWorkers, 3)} warm ${stats.warmWorkers} | handles ${pad(handles.total, 4)} (ports ${handles.ports}, workers ${handles.workers}) | sessions ${pad(stats.sessions, 4)} | turns ${pad(turns, 7)} (${rate.toFixed(0)}/s, failed ${stats.turns.failed}) | starts ${stats.workerStarts} crashes ${stats.crashes}`,
    );
  };

  console.log(
    `soak: ${MINUTES} min, ${CONCURRENCY} users, ${KEYS} keys per placement, seed ${SEED}; fit after ${WARMUP_S} s; limits RSS ${MAX_RSS_SLOPE} MiB/min, heap ${MAX_HEAP_SLOPE} MiB/min, handles ${MAX_HANDLE_SLOPE}/min`,
  );
  print(take());
  let nextPrint = started + INTERVAL_S * 1000;
  const sampler = setInterval(() => {
    const sample = take();
    // Only the steady load is fitted: after the deadline the users are finishing their last
    // turns and the workers settle (a mature worker holds more than a young one).
    if (Date.now() < deadline) samples.push(sample);
    if (Date.now() >= nextPrint - 250) {
      print(sample);
      nextPrint += INTERVAL_S * 1000;
    }
  }, SAMPLE_S * 1000);

  await Promise.all(Array.from({ length: CONCURRENCY }, () => user(deadline)));
  clearInterval(sampler);
  // Printed, not fitted: the load has stopped, and workers are being let go.
  print(take());

  await supervisor.close();
  await mock.close();
  const liveAfterClose = supervisor.stats().liveWorkers;
  // Ports and threads are released a few loop iterations after close.
  let after = handleCount();
  for (let i = 0; i < 100 && (after.ports > 0 || after.workers > 0); i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    after = handleCount();
  }
  await rm(dir, { recursive: true, force: true });

  const fitted = samples.filter((sample) => sample.minutes * 60 >= WARMUP_S);
  // The low-water mark of each window: [mid-window minute, lowest value].
  const floors = (value: (sample: Sample) => number): [number, number][] => {
    const windows = new Map<number, Sample[]>();
    for (const sample of fitted) {
      const index = Math.floor((sample.minutes * 60 - WARMUP_S) / WINDOW_S);
      windows.set(index, [...(windows.get(index) ?? []), sample]);
    }
    return [...windows.entries()]
      .filter(([, members]) => members.length * SAMPLE_S >= WINDOW_S / 2)
      .map(([index, members]) => [
        (WARMUP_S + (index + 0.5) * WINDOW_S) / 60,
        Math.min(...members.map(value)),
      ]);
  };
  const rssFloors = floors((sample) => sample.rssMiB);
  const rssSlope = slope(rssFloors);
  const heapSlope = slope(fitted.map((sample) => [sample.minutes, sample.heapMiB]));
  const handleSlope = slope(floors((sample) => sample.handles));
  const failures: string[] = [];
  if (fitted.length < 3)
    failures.push(`only ${fitted.length} samples after the warm-up: run longer`);
  if (rssSlope > MAX_RSS_SLOPE) failures.push(`RSS grows ${rssSlope.toFixed(2)} MiB/min`);
  if (heapSlope > MAX_HEAP_SLOPE) failures.push(`heap grows ${heapSlope.toFixed(2)} MiB/min`);
  if (handleSlope > MAX_HANDLE_SLOPE) failures.push(`handles grow ${handleSlope.toFixed(2)}/min`);
  if (counts.untyped > 0) {
    failures.push(`${counts.untyped} untyped errors, e.g. ${untypedExamples.join(' | ')}`);
  }
  if (liveAfterClose !== 0) failures.push(`${liveAfterClose} live workers after close`);
  if (after.ports > 0 || after.workers > 0) {
    failures.push(`${after.ports} ports and ${after.workers} workers still open after close`);
  }

  console.log(
    `\nturns: ${counts.ok} answered, ${counts.typedErrors} typed errors ${JSON.stringify(byCode)}, ${counts.untyped} untyped; sessions created ${counts.created}, deleted ${counts.deleted}, passivated on request ${counts.passivated}`,
  );
  console.log(
    `fit after ${WARMUP_S} s over ${rssFloors.length} windows of ${WINDOW_S} s (${fitted.length} samples): RSS floor ${rssSlope.toFixed(2)} MiB/min (limit ${MAX_RSS_SLOPE}), heap ${heapSlope.toFixed(2)} MiB/min (limit ${MAX_HEAP_SLOPE}), handles floor ${handleSlope.toFixed(2)}/min (limit ${MAX_HANDLE_SLOPE})`,
  );
  console.log(`RSS floors (MiB): ${rssFloors.map(([, value]) => value.toFixed(0)).join(' ')}`);
  console.log(
    `after close: ${liveAfterClose} live workers, ${after.total} handles (${after.ports} ports, ${after.workers} workers)`,
  );
  if (MINUTES < 5) {
    console.log(
      'note: a run this short is still warming up (allocator arenas and JIT code grow as workers come and go); judge growth on runs of 5 minutes or more (the default is 30)',
    );
  }
  if (failures.length > 0) {
    console.log(`\nFAIL\n  ${failures.join('\n  ')}`);
    return 1;
  }
  console.log('\nPASS');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
