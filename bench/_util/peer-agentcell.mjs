/**
 * agentcell as a peer of bench/peers.bench.ts, from the compiled dist/ (plain Node, no tsx, so
 * worker threads start as they do in production):
 *
 *   node bench/_util/peer-agentcell.mjs <dedicated|pooled|in-process> <n> <mock url> <turns> <timebox s>
 *
 * - dedicated: a Supervisor, a worker thread per session (`placement: 'dedicated'`);
 * - pooled: a Supervisor running every turn on a shared piscina pool, one thread per core;
 * - in-process: `agent.clone()` per session, then `chat()`: no workers, no supervisor.
 *
 * PEERS_AGENTCELL_DIST, if set, is the URL of the `dist/src/index.js` to import instead.
 */
import { availableParallelism } from 'node:os';
import { HISTORY_WINDOW, INSTRUCTIONS, MODEL, parseArgs, runPeer } from './peer-harness.mjs';

// PEERS_AGENTCELL_DIST: a snapshot of dist/ taken by peers.bench.ts, so that a rebuild of
// dist/ while the benchmark runs cannot change the code under measurement.
const { Agent, Supervisor } = await import(
  process.env.PEERS_AGENTCELL_DIST ?? new URL('../../dist/src/index.js', import.meta.url).href
);

const [placement, ...rest] = process.argv.slice(2);
const { n, url, turns, timeboxMs } = parseArgs(rest);

const config = {
  name: 'bench',
  instructions: INSTRUCTIONS,
  llm: MODEL,
  baseUrl: url,
  apiKey: 'k',
  memory: { historyWindow: HISTORY_WINDOW },
};

function inProcessPeer() {
  const template = new Agent(config);
  return {
    name: 'in-process',
    open() {
      const agent = template.clone();
      return { send: (message) => agent.chat(message) };
    },
  };
}

function supervisorPeer(kind) {
  const threads = availableParallelism();
  const supervisor = new Supervisor({
    placement: kind,
    maxConcurrentTurns: n,
    idleTimeoutMs: 0,
    maxLiveSessions: n,
    ...(kind === 'pooled'
      ? { poolThreads: threads, poolTurnsPerThread: Math.ceil(n / threads) }
      : {}),
  });
  supervisor.register('bench', new Agent(config));
  return {
    name: kind,
    open(key) {
      const session = supervisor.session(key, { agent: 'bench' });
      return {
        send: async (message) => (await session.send(message)).text,
        close: () => session.close(),
      };
    },
    details() {
      const stats = supervisor.stats();
      return {
        liveWorkers: stats.liveWorkers,
        maxLiveSessions: stats.maxLiveSessions,
        workerStarts: stats.workerStarts,
        warmHits: stats.warmHits,
        passivatedSessions: stats.passivatedSessions,
        crashes: stats.crashes,
        poolThreads: kind === 'pooled' ? threads : undefined,
      };
    },
    close: () => supervisor.close(),
  };
}

if (placement !== 'dedicated' && placement !== 'pooled' && placement !== 'in-process') {
  throw new Error(`unknown placement ${JSON.stringify(placement)}`);
}
const peer = placement === 'in-process' ? inProcessPeer() : supervisorPeer(placement);
await runPeer(peer, { n, turns, timeboxMs });
