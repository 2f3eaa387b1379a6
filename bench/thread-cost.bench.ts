/**
 * What one session thread costs against a bare worker thread, in the same run and process:
 * the code it loads, the time until it is ready for a turn (cold: a thread started, the agent
 * built, the session bound), and, with N of each alive and idle, resident memory, memory maps
 * and CPU per thread. Session threads have run one turn each (their first model call made,
 * their first events posted) before they idle; bare threads are the probe entry, which only
 * says `ready`.
 *
 * Environment: THREAD_COST_SAMPLES (20 cold starts each, interleaved), THREAD_COST_N (100),
 * THREAD_COST_SETTLE_SECONDS (5), THREAD_COST_IDLE_SECONDS (10).
 */
import { readFileSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { Agent } from '../src/agent/agent.js';
import { toBlueprint } from '../src/agent/blueprint.js';
import { encodeJournal } from '../src/agent/journal.js';
import { ModelService } from '../src/llm/model-service.js';
import { DedicatedRunner } from '../src/runtime/placement/dedicated.js';
import type { RunnerInit } from '../src/runtime/placement/runner.js';
import { threadAgentOf } from '../src/runtime/thread-agent.js';
import { workerEntryUrl } from '../src/runtime/worker-entry.js';
import { startMockLlm } from '../src/testing/mock-llm.js';
import type { HostApi } from '../src/worker/api.js';
import { runIsolated } from './_util/isolated.js';
import { formatMs, summarize } from './_util/latency.js';
import { formatBytes } from './_util/rss-sampler.js';

const SAMPLES = Number(process.env['THREAD_COST_SAMPLES'] ?? 20);
const N = Number(process.env['THREAD_COST_N'] ?? 100);
const SETTLE_MS = Number(process.env['THREAD_COST_SETTLE_SECONDS'] ?? 5) * 1000;
const IDLE_MS = Number(process.env['THREAD_COST_IDLE_SECONDS'] ?? 10) * 1000;

export default function threadCostBench(): Promise<string> {
  // In a plain child process: under `--import tsx` every worker would load tsx too.
  return runIsolated(import.meta.url, 'measureThreadCost');
}

const host: HostApi = {
  callTool: async () => undefined,
  runHook: async () => {},
  validate: async () => true,
  approve: async () => false,
  mcpTools: async () => [],
  callMcpTool: async () => '',
};

interface Thread {
  stop(): Promise<void>;
}

async function startBare(): Promise<Thread> {
  const worker = new Worker(workerEntryUrl('probe'));
  await new Promise<void>((resolve, reject) => {
    worker.once('error', reject);
    worker.on('message', (message: { type?: string }) => {
      if (message?.type === 'ready') resolve();
    });
  });
  return {
    stop: async () => {
      await worker.terminate();
    },
  };
}

function mapsInUse(): number {
  return readFileSync('/proc/self/maps', 'latin1').split('\n').length - 1;
}

interface Footprint {
  readonly rssBytes: number;
  readonly maps: number;
  /** CPU of the whole process per thread per second of idling, in ms. */
  readonly idleCpuMs: number;
}

/** N threads alive and idle: what they add to the process. */
async function footprint(start: () => Promise<Thread>): Promise<Footprint> {
  globalThis.gc?.();
  await sleep(500);
  const rssBefore = process.memoryUsage.rss();
  const mapsBefore = mapsInUse();
  const threads: Thread[] = [];
  for (let i = 0; i < N; i++) threads.push(await start());
  await sleep(SETTLE_MS);
  globalThis.gc?.();
  const cpuBefore = process.cpuUsage();
  await sleep(IDLE_MS);
  const cpu = process.cpuUsage(cpuBefore);
  const result = {
    rssBytes: (process.memoryUsage.rss() - rssBefore) / N,
    maps: (mapsInUse() - mapsBefore) / N,
    idleCpuMs: (cpu.user + cpu.system) / 1000 / N / (IDLE_MS / 1000),
  };
  await Promise.all(threads.map((thread) => thread.stop()));
  return result;
}

export async function measureThreadCost(): Promise<string> {
  const mock = await startMockLlm();
  const models = new ModelService();
  const agent = new Agent({ name: 'bench', llm: 'mock', baseUrl: mock.url, apiKey: 'sk-bench' });
  const init: RunnerInit = {
    ...threadAgentOf(toBlueprint(agent), models),
    tools: [],
    handoffs: {},
    hooks: [],
    validators: [],
    host,
    models,
    sessionKey: 'bench',
    journal: encodeJournal([]),
  };
  const options = { startTimeoutMs: 30_000, rpcTimeoutMs: 30_000 };
  let turns = 0;
  const startSession = async (): Promise<Thread> => {
    const runner = await DedicatedRunner.start(init, options);
    const end = await runner.runTurn(`t${turns++}`, 'hello', () => {});
    if (!end.ok) throw new Error(`a turn failed: ${end.error.message}`);
    return { stop: () => runner.terminate() };
  };
  const readySession = async (): Promise<number> => {
    const started = performance.now();
    const runner = await DedicatedRunner.start(init, options);
    const ms = performance.now() - started;
    await runner.terminate();
    return ms;
  };
  const readyBare = async (): Promise<number> => {
    const started = performance.now();
    const thread = await startBare();
    const ms = performance.now() - started;
    await thread.stop();
    return ms;
  };

  // Cold starts, one at a time, interleaved (one unmeasured start each first).
  await readyBare();
  await readySession();
  const bareStarts: number[] = [];
  const sessionStarts: number[] = [];
  for (let round = 0; round < SAMPLES; round++) {
    if (round % 2 === 0) {
      bareStarts.push(await readyBare());
      sessionStarts.push(await readySession());
    } else {
      sessionStarts.push(await readySession());
      bareStarts.push(await readyBare());
    }
  }
  const bareReady = summarize(bareStarts);
  const sessionReady = summarize(sessionStarts);

  const bare = await footprint(startBare);
  const session = await footprint(startSession);
  await mock.close();

  const bundle = new URL('session-worker.bundle.cjs', workerEntryUrl('session-worker'));
  const codeBytes = statSync(bundle).size;
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  return [
    `Node ${process.version}; cold starts: ${SAMPLES} each, interleaved, one at a time; footprint: ${N} threads of each kind alive, ${SETTLE_MS / 1000} s to settle, CPU over ${IDLE_MS / 1000} s of idling (whole process, per thread).`,
    '',
    '| metric | session thread | bare worker (baseline) | ratio | target |',
    '|---|---:|---:|---:|---:|',
    `| code loaded per thread | ${(codeBytes / 1024).toFixed(1)} KiB | — | — | ≤ 150 KiB |`,
    `| ready, cold (p50) | ${formatMs(sessionReady.p50)} | ${formatMs(bareReady.p50)} | ${ratio(sessionReady.p50, bareReady.p50)} | ≤ 1.3× |`,
    `| ready, cold (p99) | ${formatMs(sessionReady.p99)} | ${formatMs(bareReady.p99)} | ${ratio(sessionReady.p99, bareReady.p99)} | |`,
    `| RSS per live idle thread | ${formatBytes(session.rssBytes)} | ${formatBytes(bare.rssBytes)} | ${ratio(session.rssBytes, bare.rssBytes)} | ≤ 1.5× |`,
    `| memory maps per idle thread | ${session.maps.toFixed(1)} | ${bare.maps.toFixed(1)} | ${ratio(session.maps, bare.maps)} | ≤ 1.3× |`,
    `| idle CPU per thread (ms/s) | ${session.idleCpuMs.toFixed(3)} | ${bare.idleCpuMs.toFixed(3)} | ${ratio(session.idleCpuMs, bare.idleCpuMs)} | ≤ 1.1× |`,
  ].join('\n');
}
