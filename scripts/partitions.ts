/**
 * The cluster across real network partitions: Redis, the mock model and three cluster nodes,
 * each in a Linux network namespace of its own, joined by veth links to a bridge (see
 * partitions/lab.ts), while links are cut one way or both, flapped and throttled under steady
 * load (partitions/scenarios.ts). After each fault every message is audited against what its
 * caller saw and what Redis holds (partitions/traffic.ts). Exit 1 when any promise was broken.
 *
 *   npm run partitions                  # every scenario, a results table at the end
 *   npm run partitions -- --quick       # the scenarios `npm test` runs
 *   npm run partitions -- --json out.json
 *
 * Needs root, iproute2 and redis-server; fails saying which is missing. The namespaces are
 * removed at the end, on failure, on Ctrl-C, and (if a run was killed) by the next run.
 * Internally the script runs twice: outside, it builds the namespaces, starts itself inside
 * the controller's namespace (`--inside`), and tears everything down once that ends.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { NetworkLab } from './partitions/lab.js';
import { runInside } from './partitions/run.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
    inside: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});

if (values.help) {
  console.log('npm run partitions [-- --quick] [-- --json results.json]');
  process.exit(0);
}

if (values.inside !== undefined) {
  const results = await runInside(NetworkLab.attach(JSON.parse(values.inside)), values.quick);
  if (values.json !== undefined) writeFileSync(values.json, JSON.stringify(results, null, 2));
  process.exit(results.every((result) => result.violations.length === 0) ? 0 : 1);
}

/** Whole run, however it goes: the controller is killed past this (a heal may wait on TCP). */
const DEADLINE_MS = values.quick ? 360_000 : 900_000;

if (spawnSync('redis-server', ['--version']).status !== 0) {
  console.error(
    'partitions: redis-server could not be run; install it (apt-get install redis-server)',
  );
  process.exit(1);
}

let lab: NetworkLab;
try {
  lab = NetworkLab.create(['ctl', 'redis', 'llm', 'n1', 'n2', 'n3']);
} catch (error) {
  console.error(`partitions: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
const args = [
  ...(values.quick ? ['--quick'] : []),
  ...(values.json !== undefined ? ['--json', values.json] : []),
];
const [command = '', ...rest] = lab.exec('ctl', [
  process.execPath,
  '--import',
  'tsx',
  fileURLToPath(import.meta.url),
  '--inside',
  JSON.stringify(lab.toJSON()),
  ...args,
]);
const inside = spawn(command, rest, { stdio: 'inherit' });
const stop = () => inside.kill('SIGKILL');
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
const timer = setTimeout(() => {
  console.error(`partitions: no result within ${DEADLINE_MS / 1000} s; stopping`);
  stop();
}, DEADLINE_MS);
let code = 1;
try {
  const [exitCode] = (await once(inside, 'exit')) as [number | null];
  code = exitCode ?? 1;
} finally {
  clearTimeout(timer);
  lab.destroy();
}
process.exit(code);
