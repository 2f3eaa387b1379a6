/**
 * Peer comparison on identical work: the same agent (no tools, the same instructions), the same
 * mock LLM in its own process (50 ms to the first token, then 200 tokens/s, streamed), N
 * concurrent sessions, each an isolated agent instance, 3 turns per session, for
 *
 * (a) agentcell, dedicated placement: a worker thread per session;
 * (b) agentcell, pooled placement: every turn a task on a shared piscina pool (a thread per core);
 * (c) agentcell in-process: `agent.clone()` per session, then `chat()`; no workers (baseline);
 * (d) the OpenAI Agents SDK for JavaScript (`@openai/agents`): `agent.clone({})` and a
 *     MemorySession per session, one Runner with the Chat Completions model provider pointed at
 *     the mock, tracing disabled;
 * (e) bare worker threads (the probe entry, which only says `ready`), started through a queue as
 *     wide as agentcell's start queue, turns answered without a model call: with (c), the
 *     baseline for (a)'s cold phase (N bare thread starts + the in-process cold phase).
 *
 * `@openai/agents` needs Node 22, so every case runs in a child process under the Node that
 * `npx -y -p node@22` installs (resolved once, then spawned directly): the same Node for all
 * peers, plain JavaScript, agentcell from the compiled dist/ (no tsx, so workers start as in
 * production). The workload and its measurement are one file, bench/_util/peer-harness.mjs,
 * shared by all peers; the peers are bench/_util/peer-agentcell.mjs,
 * bench/_util/peer-openai-agents.mjs and bench/_util/peer-bare-threads.mjs; the report is
 * bench/_util/peers-report.ts.
 *
 * Each case reports a cold phase (sessions opened inside the timed region, so making the
 * instance, a clone or a worker, is charged) and a warm phase (the same sessions, live, 3 more
 * turns), throughput, p99 turn latency, peak RSS of the child, and ratios to (c). Dedicated
 * placement at the largest N may not start in the time box on a small machine: it is then
 * measured at the largest N that finishes, and (c), (d) and (e) again at that N for its ratios.
 *
 * Environment: PEERS_N (100,1000), PEERS_TURNS (3), PEERS_TIMEBOX_SECONDS (180, per phase),
 * PEERS_MAX_LOAD (3), PEERS_LOAD_WAIT_SECONDS (600, before the first case),
 * PEERS_CASE_LOAD_WAIT_SECONDS (30, before each further case), PEERS_ROUNDS (3: every case is
 * run up to this many times, in rotated order, and the median run reported),
 * PEERS_REPEAT_LIMIT_SECONDS (90: a case whose first run took longer is not repeated),
 * PEERS_NODE (a Node ≥ 22 to use instead of resolving one with npx), PEERS_CASES
 * (dedicated,pooled,in-process,openai-agents,bare-threads).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { formatMs } from './_util/latency.js';
import { formatNumber } from './_util/measure.js';
import { type MockProcess, startMockProcess } from './_util/mock-process.js';
import {
  type CaseName,
  goalSection,
  LABELS,
  type Outcome,
  type PeerResult,
  type Run,
  sizeTable,
} from './_util/peers-report.js';

const FIRST_TOKEN_MS = 50;
const TOKENS_PER_SECOND = 200;
const MESSAGE_CHARS = 64;
const CASES: readonly CaseName[] = [
  'dedicated',
  'pooled',
  'in-process',
  'openai-agents',
  'bare-threads',
];
const ISOLATION: Record<CaseName, string> = {
  dedicated: 'own worker thread per session',
  pooled: `turns on a shared pool of ${availableParallelism()} threads, off the host thread`,
  'in-process': 'none: all sessions on the host thread',
  'openai-agents': 'none: all sessions on the host thread',
  'bare-threads': 'own worker thread per session, with no agent in it (start cost only)',
};

interface Settings {
  readonly sizes: readonly number[];
  readonly turns: number;
  readonly timeboxSeconds: number;
  readonly maxLoad: number;
  readonly caseLoadWaitSeconds: number;
  readonly cases: readonly CaseName[];
  readonly rounds: number;
  readonly repeatLimitSeconds: number;
}

interface Runtime {
  readonly node: string;
  readonly nodeVersion: string;
  /** Why (d) cannot run, if it cannot. */
  readonly agentsUnavailable: string | undefined;
  readonly agentsVersion: string | undefined;
  mockUrl: string;
  /** URL of the snapshot's `dist/src/index.js` that the agentcell cases import. */
  readonly agentcellDist: string;
}

const load1 = (): number => loadavg()[0] ?? Number.NaN;

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    throw new Error(`${name} must be a positive number, not ${JSON.stringify(raw)}`);
  }
  return value;
}

function envList(name: string, fallback: string): string[] {
  return (process.env[name] ?? fallback)
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}

function settings(): Settings {
  const sizes = envList('PEERS_N', '100,1000').map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n <= 0)) {
    throw new Error(`PEERS_N must list positive integers, not ${process.env['PEERS_N']}`);
  }
  const cases = envList('PEERS_CASES', CASES.join(','));
  const unknown = cases.filter((c) => !CASES.some((known) => known === c));
  if (unknown.length > 0) throw new Error(`unknown PEERS_CASES ${unknown.join(', ')}`);
  return {
    sizes: [...new Set(sizes)].sort((a, b) => a - b),
    turns: Math.round(envNumber('PEERS_TURNS', 3)),
    timeboxSeconds: envNumber('PEERS_TIMEBOX_SECONDS', 180),
    maxLoad: envNumber('PEERS_MAX_LOAD', 3),
    caseLoadWaitSeconds: envNumber('PEERS_CASE_LOAD_WAIT_SECONDS', 30),
    cases: CASES.filter((c) => cases.includes(c)),
    rounds: Math.round(envNumber('PEERS_ROUNDS', 3)),
    repeatLimitSeconds: envNumber('PEERS_REPEAT_LIMIT_SECONDS', 90),
  };
}

const log = (line: string): void => {
  process.stderr.write(`[peers] ${line}\n`);
};

/** Waits until the 1-minute load average is below `max`, polling every 10 s, for up to `seconds`. */
async function awaitQuiet(
  max: number,
  seconds: number,
): Promise<{ waitedS: number; load: number }> {
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let announced = false;
  while (load1() >= max && performance.now() < deadline) {
    if (!announced) {
      log(`load average ${load1().toFixed(2)} ≥ ${max}: waiting (up to ${seconds} s)`);
      announced = true;
    }
    await sleep(10_000);
  }
  const waitedS = (performance.now() - start) / 1000;
  if (announced) log(`load average ${load1().toFixed(2)} after ${waitedS.toFixed(0)} s`);
  return { waitedS, load: load1() };
}

/** A Node ≥ 22: PEERS_NODE, or the binary of the npm `node@22` package (installed by npx). */
function resolveNode22(): { path: string; version: string } | { error: string } {
  const fromEnv = process.env['PEERS_NODE'];
  let path = fromEnv;
  if (!path) {
    const found = spawnSync('npx', ['-y', '-p', 'node@22', 'node', '-p', 'process.execPath'], {
      encoding: 'utf8',
      timeout: 300_000,
    });
    if (found.status !== 0) {
      return {
        error: `\`npx -y -p node@22 node\` failed (${found.error?.message ?? `exit ${found.status}`}): ${found.stderr.trim().slice(-300)}`,
      };
    }
    path = found.stdout.trim().split('\n').at(-1);
  }
  if (!path) return { error: 'no Node 22 path' };
  const version = spawnSync(path, ['-p', 'process.version'], { encoding: 'utf8' });
  const text = version.stdout?.trim() ?? '';
  const major = Number(/^v(\d+)/.exec(text)?.[1]);
  if (version.status !== 0 || !(major >= 22)) {
    return { error: `${path} is ${text || 'not runnable'}, not Node ≥ 22` };
  }
  return { path, version: text };
}

function agentsSdkVersion(): { version: string } | { error: string } {
  const manifest = new URL('../node_modules/@openai/agents/package.json', import.meta.url);
  if (!existsSync(manifest)) {
    return { error: '`@openai/agents` is not installed (run `npm ci`)' };
  }
  const parsed: unknown = JSON.parse(readFileSync(manifest, 'utf8'));
  const version =
    typeof parsed === 'object' && parsed !== null && 'version' in parsed
      ? String(parsed.version)
      : 'unknown';
  return { version };
}

/**
 * A private copy of dist/ (with package.json and a link to node_modules) in a temp dir: other
 * runs on this machine may rebuild dist/ while the benchmark runs, and a worker or a child
 * that loads a half-written file fails. The copy is checked by importing it under `node`;
 * taken again (up to 5 times, 5 s apart) while the check fails.
 */
async function snapshotDist(node: string): Promise<{ url: string; dir: string }> {
  const root = new URL('../', import.meta.url);
  let lastError = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), 'agentcell-peers-'));
    cpSync(fileURLToPath(new URL('dist', root)), join(dir, 'dist'), { recursive: true });
    copyFileSync(fileURLToPath(new URL('package.json', root)), join(dir, 'package.json'));
    symlinkSync(fileURLToPath(new URL('node_modules', root)), join(dir, 'node_modules'), 'dir');
    const url = pathToFileURL(join(dir, 'dist/src/index.js')).href;
    const check = spawnSync(
      node,
      [
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(url)}); if (typeof m.Agent !== 'function' || typeof m.Supervisor !== 'function') process.exit(3);`,
      ],
      { encoding: 'utf8' },
    );
    if (check.status === 0 && existsSync(join(dir, 'dist/workers/session-worker.cjs'))) {
      return { url, dir };
    }
    lastError = check.stderr.trim().split('\n').slice(-2).join(' ');
    rmSync(dir, { recursive: true, force: true });
    log(`dist/ snapshot not usable (${lastError || `exit ${check.status}`}); retrying in 5 s`);
    await sleep(5000);
  }
  throw new Error(`could not take a usable snapshot of dist/: ${lastError}`);
}

/** The mock LLM in its own process; retried, as a rebuild of dist/ may be under way. */
async function startMock(): Promise<MockProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startMockProcess({
        firstTokenMs: FIRST_TOKEN_MS,
        tokensPerSecond: TOKENS_PER_SECOND,
      });
    } catch (error) {
      if (attempt >= 3) throw error;
      log(`mock LLM did not start (${String(error)}); retrying in 5 s`);
      await sleep(5000);
    }
  }
}

/** Each case's peer script, and the arguments it takes before the harness's own. */
const PEERS: Record<CaseName, { readonly script: string; readonly args: readonly string[] }> = {
  dedicated: { script: 'peer-agentcell.mjs', args: ['dedicated'] },
  pooled: { script: 'peer-agentcell.mjs', args: ['pooled'] },
  'in-process': { script: 'peer-agentcell.mjs', args: ['in-process'] },
  'openai-agents': { script: 'peer-openai-agents.mjs', args: [] },
  'bare-threads': { script: 'peer-bare-threads.mjs', args: [] },
};

/** The case's child process running now, if any: killed if the benchmark is stopped. */
let activeChild: ChildProcess | undefined;

/** Runs one case in a child process under `runtime.node`; its result is its `PEER_RESULT` line. */
function runCase(runtime: Runtime, name: CaseName, n: number, s: Settings): Promise<Outcome> {
  const args = [
    fileURLToPath(new URL(`./_util/${PEERS[name].script}`, import.meta.url)),
    ...PEERS[name].args,
    String(n),
    runtime.mockUrl,
    String(s.turns),
    String(s.timeboxSeconds),
  ];
  // Two time boxes, their drain graces, start-up and shutdown: past that the child is stuck.
  const killAfterMs = (2 * s.timeboxSeconds + 2 * 60 + 120) * 1000;
  return new Promise((resolve) => {
    const child = spawn(runtime.node, args, {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, PEERS_AGENTCELL_DIST: runtime.agentcellDist },
    });
    activeChild = child;
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('error', (error) => {
      clearTimeout(killer);
      resolve({ ok: false, error: error.message });
    });
    child.on('exit', (code, signal) => {
      clearTimeout(killer);
      if (activeChild === child) activeChild = undefined;
      const line = stdout.split('\n').find((l) => l.startsWith('PEER_RESULT '));
      if (line) {
        resolve({ ok: true, value: JSON.parse(line.slice('PEER_RESULT '.length)) as PeerResult });
      } else {
        const tail = stdout.trim().split('\n').slice(-3).join(' / ');
        resolve({
          ok: false,
          error: `exited with ${signal ?? `code ${code}`} before a result${tail ? `: ${tail}` : ''}`,
        });
      }
    });
  });
}

const finished = (r: PeerResult): boolean =>
  !r.cold.timedOut && r.cold.completedSessions === r.n && r.warm !== undefined;

/** Whether the mock LLM answers `GET /v1/models` within 5 s. */
async function mockAlive(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/models`, { signal: AbortSignal.timeout(5000) });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

/** The mock LLM, started again if something outside stopped it (other runs share the machine). */
interface MockHolder {
  mock: MockProcess;
  restarts: string[];
}

async function ensureMock(holder: MockHolder, runtime: Runtime, before: string): Promise<void> {
  if (await mockAlive(runtime.mockUrl)) return;
  log(`the mock LLM at ${runtime.mockUrl} does not answer: starting it again`);
  await holder.mock.stop().catch(() => {});
  holder.mock = await startMock();
  runtime.mockUrl = holder.mock.url;
  holder.restarts.push(before);
}

async function measureCase(
  runtime: Runtime,
  name: CaseName,
  n: number,
  s: Settings,
  into: Run[],
  holder: MockHolder,
): Promise<Run> {
  await awaitQuiet(s.maxLoad, s.caseLoadWaitSeconds);
  await ensureMock(holder, runtime, `${LABELS[name]}, N = ${n}`);
  const loadBefore = load1();
  log(`${LABELS[name]}, N = ${n} (load ${loadBefore.toFixed(2)})…`);
  const start = performance.now();
  let outcome = await runCase(runtime, name, n, s);
  // A child that failed within seconds never measured anything (a start-up failure): retry.
  for (let retry = 0; retry < 2 && !outcome.ok && performance.now() - start < 15_000; retry++) {
    log(`  ${outcome.error}; retrying in 5 s`);
    await sleep(5000);
    await ensureMock(holder, runtime, `${LABELS[name]}, N = ${n} (retry)`);
    outcome = await runCase(runtime, name, n, s);
  }
  const durationMs = performance.now() - start;
  log(
    `  done in ${formatMs(durationMs)}: ${
      outcome.ok
        ? `cold ${formatNumber(outcome.value.cold.turnsPerSecond)} turns/s${finished(outcome.value) ? '' : ' (did not finish)'}, warm ${outcome.value.warm ? formatNumber(outcome.value.warm.turnsPerSecond) : 'n/a'} turns/s`
        : outcome.error
    }`,
  );
  const run = { name, n, outcome, loadBefore, durationMs };
  into.push(run);
  return run;
}

/** Whether to run a case again in a later round: only quick cases that finished are repeated. */
function repeatable(runs: readonly Run[], name: CaseName, n: number, s: Settings): boolean {
  const first = runs.find((run) => run.name === name && run.n === n);
  return (
    first?.outcome.ok === true &&
    finished(first.outcome.value) &&
    first.durationMs <= s.repeatLimitSeconds * 1000
  );
}

/**
 * The next, smaller N to try for a case that did not finish: ~90% of the sessions it got an
 * answer to in the time box, and of the live-worker ceiling the supervisor reported.
 */
function smallerN(run: Run, floor: number): number | undefined {
  const r = run.outcome.ok ? run.outcome.value : undefined;
  const ceiling = Number(r?.details['maxLiveSessions'] ?? Number.POSITIVE_INFINITY);
  const reached = Math.min(
    r ? Math.max(r.cold.completedSessions, r.cold.answeredSessions) : run.n / 2,
    Number.isFinite(ceiling) && ceiling > 0 ? ceiling : Number.POSITIVE_INFINITY,
  );
  const step = reached >= 500 ? 100 : 50;
  const next = Math.floor((0.9 * reached) / step) * step;
  const capped = Math.min(next, run.n - step);
  return capped >= floor ? capped : undefined;
}

/** `items` rotated left by `by`, so that no case always runs first (or last) in a round. */
const rotate = <T>(items: readonly T[], by: number): T[] => {
  const k = items.length === 0 ? 0 : by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
};

/** Finds the largest N ≤ `from.n` at which dedicated placement finishes; notes each step. */
async function dedicatedFallback(
  runtime: Runtime,
  from: Run,
  s: Settings,
  runs: Run[],
  notes: string[],
  holder: MockHolder,
): Promise<number | undefined> {
  let last = from;
  const floor = Math.min(...s.sizes);
  for (let attempt = 0; attempt < 3; attempt++) {
    const got = last.outcome.ok
      ? `in the ${s.timeboxSeconds} s time box ${last.outcome.value.cold.completedSessions} of ${last.n} sessions got all ${s.turns} replies, ${last.outcome.value.cold.answeredSessions} at least one; live-worker ceiling ${String(last.outcome.value.details['maxLiveSessions'])}`
      : last.outcome.error;
    const next = smallerN(last, floor);
    if (next === undefined) {
      notes.push(
        `${LABELS.dedicated} did not finish N = ${last.n} (${got}), and no smaller N ≥ ${floor} is left to try.`,
      );
      return undefined;
    }
    notes.push(`${LABELS.dedicated} did not finish N = ${last.n} (${got}): trying N = ${next}.`);
    last = await measureCase(runtime, 'dedicated', next, s, runs, holder);
    if (!last.outcome.ok) {
      notes.push(`${LABELS.dedicated} at N = ${next} failed: ${last.outcome.error}.`);
      return undefined;
    }
    if (last.outcome.ok && finished(last.outcome.value)) {
      notes.push(
        `${LABELS.dedicated} finished N = ${next} in ${formatMs(last.durationMs)}; (c), (d) and (e) are measured at N = ${next} too, for its ratios.`,
      );
      return next;
    }
  }
  notes.push(`${LABELS.dedicated}: no N found that finishes within the time box (3 tries).`);
  return undefined;
}

export default async function peersBench(): Promise<string> {
  const s = settings();
  const runStart = performance.now();

  const node = resolveNode22();
  const sdk = agentsSdkVersion();
  let agentsUnavailable: string | undefined;
  if ('error' in sdk) agentsUnavailable = sdk.error;
  else if ('error' in node) agentsUnavailable = `no Node 22 to run it with: ${node.error}`;
  const nodePath = 'path' in node ? node.path : process.execPath;
  const nodeVersion = 'path' in node ? node.version : process.version;
  const cases = s.cases.filter((c) => c !== 'openai-agents' || agentsUnavailable === undefined);
  log(`children run ${nodeVersion} (${nodePath}); cases: ${cases.join(', ')}`);

  const snapshot = await snapshotDist(nodePath);
  const initialWait = await awaitQuiet(s.maxLoad, envNumber('PEERS_LOAD_WAIT_SECONDS', 600));
  const loadAtStart = load1();
  const loads: number[] = [];
  const holder: MockHolder = { mock: await startMock(), restarts: [] };
  const runtime: Runtime = {
    node: nodePath,
    nodeVersion,
    agentsUnavailable,
    agentsVersion: 'version' in sdk ? sdk.version : undefined,
    mockUrl: holder.mock.url,
    agentcellDist: snapshot.url,
  };
  const runs: Run[] = [];
  const notes: string[] = [];
  const plan = s.sizes.map((n) => ({ n, names: cases }));
  // Stopped from outside: leave no mock process and no snapshot behind.
  const onSignal = (signal: NodeJS.Signals) => {
    activeChild?.kill('SIGKILL');
    rmSync(snapshot.dir, { recursive: true, force: true });
    void holder.mock.stop().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGTERM', onSignal).once('SIGINT', onSignal);
  try {
    for (let index = 0; index < plan.length; index++) {
      const { n, names } = plan[index] ?? { n: 0, names: [] };
      for (let round = 0; round < s.rounds; round++) {
        for (const name of rotate(names, round)) {
          if (round > 0 && !repeatable(runs, name, n, s)) continue;
          const run = await measureCase(runtime, name, n, s, runs, holder);
          loads.push(run.loadBefore);
          if (name !== 'dedicated' || round > 0) continue;
          // Only a run that measured and ran out of time calls for a smaller N.
          if (!run.outcome.ok || finished(run.outcome.value)) continue;
          // Dedicated did not finish at this N in the time box: find the largest N that does,
          // and measure the in-process alternatives there too.
          const smaller = await dedicatedFallback(runtime, run, s, runs, notes, holder);
          if (smaller !== undefined && !plan.some((step) => step.n === smaller)) {
            plan.push({
              n: smaller,
              names: cases.filter((c) => c !== 'pooled'),
            });
          }
        }
      }
    }
  } finally {
    process.off('SIGTERM', onSignal).off('SIGINT', onSignal);
    await holder.mock.stop();
    rmSync(snapshot.dir, { recursive: true, force: true });
  }

  const measuredSizes = [...new Set(runs.map((run) => run.n))].sort((a, b) => a - b);
  const sortedLoads = [...loads].sort((a, b) => a - b);
  const header = [
    `Identical work for every peer: one agent (instructions "Answer briefly.", no tools, history kept), ${s.turns} turns per session, all N sessions at once, each session its own agent instance; user messages of ${MESSAGE_CHARS} characters, the reply is the mock's echo (~18 tokens) and is checked on every turn. Mock LLM (agentcell's, in its own process under ${process.version}): ${FIRST_TOKEN_MS} ms to the first token, then ${TOKENS_PER_SECOND} tokens/s, streamed (~140 ms per turn unloaded).`,
    '',
    `Every case in its own child process under Node ${nodeVersion} (\`npx -y -p node@22\`; ${nodePath}), plain JavaScript: agentcell from dist/ (a copy taken at the start; no tsx, workers start as in production), ${runtime.agentsVersion ? `\`@openai/agents\` ${runtime.agentsVersion} (Chat Completions provider, tracing disabled, streamed runs, a MemorySession per session)` : '`@openai/agents` not run'}. Pooled: ${availableParallelism()} pool threads. Supervisors: \`maxConcurrentTurns\` = N, \`maxLiveSessions\` = N (capped by the machine's ceiling), \`idleTimeoutMs: 0\`, journal in memory.`,
    '',
    `Phases: **cold** = ${s.turns} turns per session timed from opening the sessions (a clone, or a worker start, is inside the figure); **warm** = ${s.turns} more turns of the same live sessions. Each phase time-boxed at ${s.timeboxSeconds} s. Throughput = replies / wall time; latency = send → reply; peak RSS = the child process (worker threads included, mock excluded), sampled every 100 ms; RSS per session = (peak − RSS after warm-up) / N; CPU = the child process. Up to ${s.rounds} rounds, cases rotated each round; a case is repeated only if its first run finished within ${s.repeatLimitSeconds} s.`,
    '',
    `Machine load (1-minute load average; ${availableParallelism()} cores, so above ${availableParallelism()} other processes competed for them): ${loadAtStart.toFixed(2)} when measuring began (after waiting ${initialWait.waitedS.toFixed(0)} s for it to drop below ${s.maxLoad}); before each case median ${(sortedLoads[Math.floor((sortedLoads.length - 1) / 2)] ?? Number.NaN).toFixed(2)}, range ${(sortedLoads[0] ?? Number.NaN).toFixed(2)}–${(sortedLoads.at(-1) ?? Number.NaN).toFixed(2)}; ${load1().toFixed(2)} at the end. Run: ${formatMs(performance.now() - runStart)}.`,
  ];
  if (agentsUnavailable) header.push('', `(d) not run: ${agentsUnavailable}.`);
  if (notes.length > 0) header.push('', ...notes);
  if (holder.restarts.length > 0) {
    header.push(
      '',
      `The mock LLM stopped answering (stopped from outside) and was started again before: ${holder.restarts.join('; ')}.`,
    );
  }
  const sections = [
    header.join('\n'),
    ...measuredSizes.map((n) => sizeTable(runs, n, cases, s.turns)),
    [
      '### Isolation each case gives',
      '',
      ...cases.map((c) => `- ${LABELS[c]}: ${ISOLATION[c]}`),
    ].join('\n'),
    goalSection(runs, measuredSizes),
  ];
  return sections.join('\n\n');
}
