/**
 * The one place that knows where a worker entry file lives. Worker threads do not pass
 * through a test runner's or loader's transform, so entry files always run as compiled
 * JavaScript from `dist/workers/`: from compiled code that is a sibling folder, and from the
 * TypeScript sources (tests, benchmarks) it is the build output, which `npm test` makes first.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { InternalError } from '../errors.js';

/** Entry files under `workers/`. */
export type WorkerEntryName = 'probe' | 'session-worker' | 'turn-task';

/**
 * Threads started once per session load CommonJS (no ESM loader to set up in each); the pool's
 * turn task is an ES module that piscina imports (scripts/bundle-workers.mjs says why).
 */
const FILE_OF: Record<WorkerEntryName, string> = {
  probe: 'probe.cjs',
  'session-worker': 'session-worker.cjs',
  'turn-task': 'turn-task.js',
};

const fromSources = import.meta.url.endsWith('.ts');

/** The URL of a worker entry file, ready for `new Worker(url)`. */
export function workerEntryUrl(name: WorkerEntryName): URL {
  const url = new URL(
    fromSources ? `../../dist/workers/${FILE_OF[name]}` : `../../workers/${FILE_OF[name]}`,
    import.meta.url,
  );
  if (fromSources && !existsSync(fileURLToPath(url))) {
    throw new InternalError(
      `worker entry ${fileURLToPath(url)} is missing: run \`npm run build\` before running from the TypeScript sources`,
    );
  }
  return url;
}
