/**
 * One process of bench/cluster.bench.ts, plain JavaScript on the build (dist/): no loader, so
 * session workers start as they do in production. `mode: 'cluster'` runs a Supervisor with the cluster option (redisCluster),
 * `mode: 'file'` a single-node Supervisor on a FileStore (the baseline).
 *
 * argv: config JSON { mode, redis, prefix, nodeId, shards, mockUrl, storeDir, supervisor }.
 * stdin, one JSON command a line: `load` { keys, turns, concurrency } → `load-done` with every
 * turn's latency and the process's CPU time; `probe` { keys } → `probe-done` with one latency
 * per key (sequential sends); `close`.
 */
import { createInterface } from 'node:readline';

const config = JSON.parse(process.argv.at(-1) ?? '{}');
const { Agent, Supervisor, FileStore } = await import('../../dist/src/index.js');
const { redisCluster } = await import('../../dist/src/cluster/index.js');
const agent = new Agent({
  name: 'cell',
  llm: 'mock-model',
  baseUrl: config.mockUrl,
  apiKey: 'sk-test',
});

let send;
let close;
if (config.mode === 'cluster') {
  // The user-facing API: the same Supervisor, with the cluster option.
  const supervisor = new Supervisor({
    ...config.supervisor,
    cluster: redisCluster({
      redis: config.redis,
      prefix: config.prefix,
      nodeId: config.nodeId,
      shards: config.shards,
      heartbeatMs: config.heartbeatMs ?? 250,
      leaseMs: config.leaseMs ?? 5_000,
    }),
  });
  supervisor.register('cell', agent);
  await supervisor.start();
  send = (key, message) => supervisor.session(key, { agent: 'cell' }).send(message);
  close = () => supervisor.close();
} else {
  const store = new FileStore({ dir: config.storeDir });
  const supervisor = new Supervisor({ ...config.supervisor, store });
  supervisor.register('cell', agent);
  send = (key, message) => supervisor.session(key, { agent: 'cell' }).send(message);
  close = async () => {
    await supervisor.close();
    await store.close();
  };
}

const out = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);
out({ ev: 'ready' });

async function load({ keys, turns, concurrency }) {
  const samples = [];
  let failed = 0;
  const cpu = process.cpuUsage();
  let next = 0;
  const lane = async () => {
    while (next < keys.length) {
      const key = keys[next++];
      for (let turn = 0; turn < turns; turn++) {
        const start = performance.now();
        try {
          await send(key, `${key} turn ${turn}`);
          samples.push(performance.now() - start);
        } catch {
          failed++;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, keys.length) }, lane));
  const used = process.cpuUsage(cpu);
  out({ ev: 'load-done', samples, failed, cpuMs: (used.user + used.system) / 1000 });
}

async function probe({ keys }) {
  const samples = [];
  for (const key of keys) {
    const start = performance.now();
    await send(key, `${key} probe`);
    samples.push(performance.now() - start);
  }
  out({ ev: 'probe-done', samples });
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const command = JSON.parse(line);
  const run =
    command.op === 'load' ? load(command) : command.op === 'probe' ? probe(command) : undefined;
  if (run) {
    run.catch((error) => out({ ev: 'failed', error: String(error) }));
  } else if (command.op === 'close') {
    void close().then(() => process.exit(0));
  }
});
