/**
 * Bare worker threads as a peer of bench/peers.bench.ts: the floor under the cold phase of
 * dedicated placement. A session is a bare thread (the probe entry, which only says `ready`),
 * and its turns are answered here without a model call, so the cold phase's wall time is the
 * N thread starts and little else:
 *
 *   node bench/_util/peer-bare-threads.mjs <n> <mock url> <turns> <timebox s>
 *
 * PEERS_AGENTCELL_DIST, if set, is the URL of the `dist/src/index.js` whose probe entry to start.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import PQueue from 'p-queue';
import { parseArgs, runPeer } from './peer-harness.mjs';

const dist =
  process.env.PEERS_AGENTCELL_DIST ?? new URL('../../dist/src/index.js', import.meta.url).href;
const probe = new URL('../workers/probe.cjs', dist);

const { n, turns, timeboxMs } = parseArgs(process.argv.slice(2));

// As wide as agentcell's own start queue, so both pay for the same number of starts at once.
const starts = new PQueue({ concurrency: Math.max(2, availableParallelism()) });
const workers = new Set();

function startThread() {
  const worker = new Worker(probe);
  workers.add(worker);
  // The listeners stay after `ready`: a later error or exit then only drops the thread (the
  // promise has settled), rather than an unhandled 'error' event ending the process.
  return new Promise((resolve, reject) => {
    const fail = (error) => {
      workers.delete(worker);
      reject(error);
    };
    worker.on('error', fail);
    worker.once('exit', (code) => fail(new Error(`probe thread exited with code ${code}`)));
    worker.on('message', (message) => {
      if (message?.type === 'ready') resolve(worker);
    });
  });
}

await runPeer(
  {
    name: 'bare-threads',
    async open() {
      const worker = await starts.add(startThread);
      return {
        send: async (message) => `echo: ${message}`,
        close: async () => {
          workers.delete(worker);
          await worker.terminate();
        },
      };
    },
    details: () => ({ startConcurrency: starts.concurrency }),
    close: () => Promise.all([...workers].map((worker) => worker.terminate())),
  },
  { n, turns, timeboxMs },
);
