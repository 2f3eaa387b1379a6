/**
 * Runs one export of a benchmark module in a fresh child process. Benchmarks of worker threads
 * need this: under `node --import tsx` every worker inherits `--import tsx` and pays for
 * loading it (a loader thread and ~200 ms per worker on a small machine), which production
 * workers, compiled JavaScript under plain Node, never do. The child registers tsx for its main
 * thread only, runs with `--expose-gc`, and starts with a clean heap and RSS.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const entry = fileURLToPath(new URL('./isolated-entry.mjs', import.meta.url));

/**
 * Calls `exportName(...args)` of `module` (a URL, usually `import.meta.url`) in a child process
 * and resolves with the string it returned. The child's stdout and stderr are inherited.
 */
export function runIsolated(
  module: string | URL,
  exportName: string,
  args: readonly string[] = [],
): Promise<string> {
  const child = spawn(
    process.execPath,
    ['--expose-gc', entry, fileURLToPath(module), exportName, ...args],
    { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  return new Promise((resolve, reject) => {
    let result: string | undefined;
    child.on('message', (message) => {
      result = String(message);
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (result !== undefined && code === 0) resolve(result);
      else
        reject(
          new Error(
            `isolated ${exportName}() exited with ${signal ?? `code ${code}`} before sending a result`,
          ),
        );
    });
  });
}
