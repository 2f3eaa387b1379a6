/**
 * Every byte a session thread loads is paid per thread (parse, compile, JIT, maps): the thread's
 * code stays small, and the heavy libraries the host uses (validators, the model SDK, the
 * logger) never enter it.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const dist = resolve(dirname(fileURLToPath(import.meta.url)), '../../dist/workers');
const MAX_BYTES = 150 * 1024;
const HOST_ONLY = [
  'zod',
  'openai',
  'ajv',
  'pino',
  'p-queue',
  'piscina',
  'ioredis',
  'prom-client',
  '@opentelemetry/api',
];

interface Metafile {
  readonly outputs: Record<string, { readonly inputs: Record<string, unknown> }>;
}
const meta = JSON.parse(readFileSync(resolve(dist, 'bundle-meta.json'), 'utf8')) as Metafile;

describe.each(['session-worker.bundle.cjs', 'turn-task.bundle.js'])('the %s bundle', (file) => {
  const output = Object.entries(meta.outputs).find(([path]) => path.endsWith(file));

  it(`is at most ${MAX_BYTES / 1024} KiB`, () => {
    expect(statSync(resolve(dist, file)).size).toBeLessThanOrEqual(MAX_BYTES);
  });

  it('holds none of the libraries that belong to the host', () => {
    expect(output).toBeDefined();
    const packages = Object.keys(output?.[1].inputs ?? {}).flatMap((input) => {
      const match = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
      return match?.[1] ? [match[1]] : [];
    });
    expect(packages.length).toBeGreaterThan(0); // comlink at least: the check sees packages
    expect([...new Set(packages)].filter((pkg) => HOST_ONLY.includes(pkg))).toEqual([]);
  });
});
