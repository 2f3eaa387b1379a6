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

const fromSources = import.meta.url.endsWith('.ts');

/** The URL of a worker entry file, ready for `new Worker(url)`. */
export function workerEntryUrl(name: WorkerEntryName): URL {
  const url = new URL(
    fromSources ? `../../dist/workers/${name}.js` : `../../workers/${name}.js`,
    import.meta.url,
  );
  if (fromSources && !existsSync(fileURLToPath(url))) {
    throw new InternalError(
      `worker entry ${fileURLToPath(url)} is missing: run \`npm run build\` before running from the TypeScript sources`,
    );
  }
  return url;
}
