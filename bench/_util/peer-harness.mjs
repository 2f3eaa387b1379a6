/**
 * The measuring side of the peer benchmark (bench/peers.bench.ts), shared by every peer so
 * that each one runs the same workload, measured the same way, in a process of its own:
 *
 * 1. warm-up, not measured: WARMUP_SESSIONS sessions × 2 turns (JIT, connection pool, workers'
 *    code cache), then dropped;
 * 2. cold: N sessions opened at once, each an isolated agent instance, each `turns` turns in a
 *    row; timed from the first open to the last reply, so the cost of making the instances
 *    (a clone, or a worker thread and its agent) is in the figure;
 * 3. warm: the same N sessions, now live, `turns` more turns each.
 *
 * Every reply is checked: it must be the mock's echo of the message sent, so every peer did the
 * same work. The result goes to stdout as one line, `PEER_RESULT <json>`.
 *
 * Plain JavaScript, run by the Node that peers.bench.ts resolves (Node 22), without tsx.
 */
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

/** Characters per user message; the mock's reply is `echo: <message>` (~18 tokens). */
export const MESSAGE_CHARS = 64;
export const INSTRUCTIONS = 'Answer briefly.';
export const MODEL = 'mock-model';
/** Messages of history each agent keeps: more than 6 turns make, so none is cut. */
export const HISTORY_WINDOW = 20;
const WARMUP_SESSIONS = 10;
const WARMUP_TURNS = 2;
/** Time the turns in flight at the end of a time box get to settle. */
const DRAIN_GRACE_MS = 60_000;
const RSS_INTERVAL_MS = 100;

/** The user message of turn `turn` of session `session`, padded to MESSAGE_CHARS. */
export function messageFor(session, turn) {
  return `session ${session} turn ${turn} `.padEnd(MESSAGE_CHARS, 'x');
}

const load1 = () => loadavg()[0] ?? Number.NaN;

function percentile(sorted, q) {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil(q * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))] ?? Number.NaN;
}

function summarize(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  let sum = 0;
  for (const sample of sorted) sum += sample;
  return {
    count: sorted.length,
    mean: sorted.length === 0 ? Number.NaN : sum / sorted.length,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: sorted.at(-1) ?? Number.NaN,
  };
}

function errorCode(error) {
  if (error && typeof error === 'object') {
    if (typeof error.code === 'string') return error.code;
    if (typeof error.name === 'string') return error.name;
  }
  return 'unknown';
}

/** Peak RSS of this process (worker threads included), sampled every RSS_INTERVAL_MS. */
function sampleRss() {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, RSS_INTERVAL_MS);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, process.memoryUsage.rss());
    },
  };
}

/** True if `work` settled within `ms`. */
async function settledWithin(work, ms) {
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

/**
 * One measured phase: every session runs `turns` turns in a row, all sessions at once; no turn
 * starts after the deadline. `targets[i]` is a session, or a function opening it (cold phase).
 */
async function phase(name, targets, firstTurn, turns, timeboxMs) {
  const loadBefore = load1();
  const latencies = [];
  const failed = {};
  let ok = 0;
  let wrong = 0;
  let inFlight = 0;
  let completedSessions = 0;
  let answeredSessions = 0;
  let timedOut = false;
  const sessions = new Array(targets.length);
  const rss = sampleRss();
  const cpu = process.cpuUsage();
  const start = performance.now();
  const deadline = start + timeboxMs;
  const work = Promise.all(
    targets.map(async (target, i) => {
      let session;
      try {
        session = typeof target === 'function' ? await target() : target;
      } catch (error) {
        const code = `open: ${errorCode(error)}`;
        failed[code] = (failed[code] ?? 0) + 1;
        return;
      }
      sessions[i] = session;
      let done = 0;
      for (let turn = firstTurn; turn < firstTurn + turns; turn++) {
        if (performance.now() >= deadline) {
          timedOut = true;
          break;
        }
        const message = messageFor(i, turn);
        inFlight++;
        const sent = performance.now();
        try {
          const reply = await session.send(message);
          latencies.push(performance.now() - sent);
          if (reply === `echo: ${message}`) {
            ok++;
            done++;
          } else {
            wrong++;
          }
        } catch (error) {
          const code = errorCode(error);
          failed[code] = (failed[code] ?? 0) + 1;
        } finally {
          inFlight--;
        }
      }
      if (done === turns) completedSessions++;
      if (done > 0) answeredSessions++;
    }),
  );
  const settled = await settledWithin(work, timeboxMs + DRAIN_GRACE_MS);
  const elapsedMs = performance.now() - start;
  const used = process.cpuUsage(cpu);
  const peakRssBytes = rss.stop();
  return {
    result: {
      name,
      sessions: targets.length,
      turnsPerSession: turns,
      ok,
      wrongReplies: wrong,
      failed,
      lost: settled ? 0 : inFlight,
      completedSessions,
      answeredSessions,
      timedOut: timedOut || !settled,
      elapsedMs,
      turnsPerSecond: (ok * 1000) / elapsedMs,
      latency: summarize(latencies),
      cpuMs: (used.user + used.system) / 1000,
      peakRssBytes,
      load: [loadBefore, load1()],
    },
    sessions,
    settled,
  };
}

/**
 * Runs the workload against one peer and prints its result. `peer.open(key)` makes one isolated
 * agent instance (sync or async) whose `send(message)` resolves with the reply text;
 * `peer.details()` adds what the peer knows of itself; `peer.close()` releases everything.
 */
export async function runPeer(peer, { n, turns, timeboxMs }) {
  const rssAtStart = process.memoryUsage.rss();
  const warm = await Promise.all(
    Array.from({ length: Math.min(WARMUP_SESSIONS, n) }, (_, i) => peer.open(`warm-up-${i}`)),
  );
  for (let turn = 0; turn < WARMUP_TURNS; turn++) {
    await Promise.all(warm.map((session, i) => session.send(messageFor(i, turn))));
  }
  await Promise.all(warm.map((session) => session.close?.()));
  await sleep(500);
  const rssBefore = process.memoryUsage.rss();

  const openers = Array.from({ length: n }, (_, i) => () => peer.open(`session-${i}`));
  const cold = await phase('cold', openers, 0, turns, timeboxMs);
  let warmPhase;
  if (cold.settled && !cold.result.timedOut && cold.result.completedSessions === n) {
    warmPhase = await phase('warm', cold.sessions, turns, turns, timeboxMs);
  }
  const details = peer.details?.() ?? {};
  const result = {
    peer: peer.name,
    node: process.version,
    n,
    rssAtStart,
    rssBefore,
    cold: cold.result,
    warm: warmPhase?.result,
    details,
  };
  process.stdout.write(`PEER_RESULT ${JSON.stringify(result)}\n`);
  // Closing may hang on turns that never settled: give it a bounded time, then exit anyway.
  await settledWithin(Promise.resolve(peer.close?.()), 30_000);
  process.exit(0);
}

/** Positional arguments shared by the peers: n, url, turns, timebox in seconds. */
export function parseArgs(argv) {
  const [nText, url, turnsText, timeboxText] = argv;
  const n = Number(nText);
  const turns = Number(turnsText);
  const timeboxMs = Number(timeboxText) * 1000;
  if (!Number.isInteger(n) || n <= 0 || !url || !Number.isInteger(turns) || !(timeboxMs > 0)) {
    throw new Error(`usage: <n> <mock url> <turns> <timebox seconds>; got ${argv.join(' ')}`);
  }
  return { n, url, turns, timeboxMs };
}
