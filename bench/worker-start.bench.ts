/**
 * What a session worker thread costs to start, until it says `ready`, against a bare worker
 * (the probe entry: a thread that only says `ready`) in the same run: the session worker's
 * bundle loaded directly (compiled afresh in every thread), and through its entry, which turns
 * on Node's on-disk compile cache first (Node ≥ 22.1; on older Node the two are the same).
 * Samples interleave the three, one thread at a time, so load drifts hit them alike.
 *
 * `npm run bench -- worker-start`; compare Node versions with
 * `npm run build && npx -p node@22 node --import tsx bench/run.ts worker-start`.
 */
import module from 'node:module';
import { Worker } from 'node:worker_threads';
import { workerEntryUrl } from '../src/runtime/worker-entry.js';
import { runIsolated } from './_util/isolated.js';
import { formatMs, summarize } from './_util/latency.js';

const SAMPLES = Number(process.env['WORKER_START_SAMPLES'] ?? 40);

async function startUntilReady(url: URL): Promise<number> {
  const started = performance.now();
  const worker = new Worker(url);
  try {
    await new Promise<void>((resolve, reject) => {
      worker.once('error', reject);
      worker.on('message', (message: { type?: string }) => {
        if (message?.type === 'ready') resolve();
      });
    });
    return performance.now() - started;
  } finally {
    await worker.terminate();
  }
}

export default function workerStartBench(): Promise<string> {
  // In a plain child process: under `--import tsx` every worker would load tsx too.
  return runIsolated(import.meta.url, 'measureWorkerStarts');
}

export async function measureWorkerStarts(): Promise<string> {
  const entry = workerEntryUrl('session-worker');
  const cases = {
    'bare worker (probe) — baseline': workerEntryUrl('probe'),
    'session worker, bundle loaded directly': new URL('session-worker.bundle.cjs', entry),
    'session worker entry (compile cache on)': entry,
  };
  const samples = new Map<string, number[]>(Object.keys(cases).map((name) => [name, []]));
  // One unmeasured start each: the first fills the compile cache, if there is one.
  for (const url of Object.values(cases)) await startUntilReady(url);
  const names = Object.keys(cases) as (keyof typeof cases)[];
  for (let round = 0; round < SAMPLES; round++) {
    const order = round % 2 === 0 ? names : [...names].reverse();
    for (const name of order) samples.get(name)?.push(await startUntilReady(cases[name]));
  }
  const summaries = names.map((name) => ({ name, summary: summarize(samples.get(name) ?? []) }));
  const base = summaries[0]?.summary.p50 ?? Number.NaN;
  const direct = summaries[1]?.summary.p50 ?? Number.NaN;
  return [
    `Node ${process.version}; compile cache ${'enableCompileCache' in module ? 'available' : 'not available (Node < 22.1)'}; ${SAMPLES} starts each, interleaved, one at a time, until the thread's first \`ready\`.`,
    '',
    '| case | p50 | p99 | vs bare worker (p50) | vs bundle loaded directly (p50) |',
    '|---|---:|---:|---:|---:|',
    ...summaries.map(
      ({ name, summary }) =>
        `| ${name} | ${formatMs(summary.p50)} | ${formatMs(summary.p99)} | ${(summary.p50 / base).toFixed(2)}× | ${(summary.p50 / direct).toFixed(2)}× |`,
    ),
  ].join('\n');
}
